"""DR global entry provider: Route53 failover or weighted records.

One record pair (``api_record_name`` in ``route53_zone_id``), one record per region (its
``set_identifier``; an A alias to the region's ALB with ``alias_zone_id``, as Terraform
creates them, else a CNAME). With ``routing: failover`` (default) the active region's record
is PRIMARY and the other SECONDARY; with ``routing: weighted`` the active region's record has
weight ``active_weight`` and the other 0 (Route53 answers a weight-0 record only when every
weighted record with a weight is unhealthy). ``switch`` UPSERTs both in one change batch (atomic;
the target first) and waits until the change is INSYNC. Before switching to a region with a
health check, the health check must not be failing at every checker
(``get_health_check_status``). ``active`` is the region of the PRIMARY record, or of the only
record with a weight (None while weights split users between regions).
Settings: ``DrSpec.aws`` (:class:`~engine.contracts.aws_dr.AwsDrSettings`).

``url`` is ``{entry_scheme}://{value of the active record}``, read from Route53: what a
resolver returns for ``api_record_name`` once the change is INSYNC and the old answer's
TTL has passed. The write probe goes there rather than to ``api_record_name`` so that it
verifies the record in force, not whatever answer a resolver on the worker still caches
(clients keep using the old region for up to ``ttl`` seconds; the RTO does not include that).
With ``https`` the region's ALB needs a certificate that covers its own DNS name.
"""

from __future__ import annotations

import time
from typing import Any

from clients import aws
from engine.contracts.dr import DrSpec
from engine.errors import BadRequest

POLL = 2.0


class Route53GlobalEntry:
    def __init__(self, spec: DrSpec) -> None:
        self.settings = settings = aws.dr_settings_for(spec)
        first = next(iter(settings.regions.values()))
        self._r53 = aws.client(first.aws, "route53")
        self.poll = POLL

    def _name(self) -> str:
        return self.settings.api_record_name.rstrip(".") + "."

    def records(self) -> list[dict[str, Any]]:
        with aws.refusals("NoSuchHostedZone", "InvalidInput", what=f"zone {self.settings.route53_zone_id}"):
            r = self._r53.list_resource_record_sets(
                HostedZoneId=self.settings.route53_zone_id, StartRecordName=self._name()
            )
        policy = "Weight" if self.settings.routing == "weighted" else "Failover"
        return [x for x in r["ResourceRecordSets"] if x["Name"] == self._name() and policy in x]

    def _set_id(self, region: str) -> str:
        return self.settings.regions[region].set_identifier or region

    def _primary(self) -> dict[str, Any] | None:
        """The record users are sent to: PRIMARY, or the only one with a weight."""
        records = self.records()
        if self.settings.routing == "failover":
            return next((r for r in records if r["Failover"] == "PRIMARY"), None)
        weighted = [r for r in records if r["Weight"] > 0]
        return weighted[0] if len(weighted) == 1 else None

    def active(self) -> str | None:
        record = self._primary()
        if record is None:
            return None
        by_set_id = {self._set_id(r): r for r in self.settings.regions}
        return by_set_id.get(record.get("SetIdentifier", ""), record.get("SetIdentifier"))

    def healthy(self, region: str) -> bool:
        check = self.settings.regions[region].health_check_id
        if check is None:
            return True
        status = self._r53.get_health_check_status(HealthCheckId=check)["HealthCheckObservations"]
        return not status or any(o["StatusReport"]["Status"].startswith("Success") for o in status)

    def switch(self, region: str) -> None:
        if region not in self.settings.regions:
            msg = f"unknown region {region!r} (regions: {', '.join(self.settings.regions)})"
            raise BadRequest(msg)
        if self.active() == region:
            return
        if not self.healthy(region):
            msg = f"the health check of {region} fails at every checker; not sending users there"
            raise BadRequest(msg)
        changes = []
        for name in [region] + [r for r in self.settings.regions if r != region]:
            conf = self.settings.regions[name]
            record: dict[str, Any] = {"Name": self._name(), "SetIdentifier": self._set_id(name)}
            if self.settings.routing == "weighted":
                record["Weight"] = self.settings.active_weight if name == region else 0
            else:
                record["Failover"] = "PRIMARY" if name == region else "SECONDARY"
            if conf.alias_zone_id:
                record["Type"] = "A"
                record["AliasTarget"] = {
                    "HostedZoneId": conf.alias_zone_id,
                    "DNSName": conf.record_value,
                    "EvaluateTargetHealth": True,
                }
            else:
                record.update(
                    Type="CNAME", TTL=self.settings.ttl, ResourceRecords=[{"Value": conf.record_value}]
                )
            if conf.health_check_id:
                record["HealthCheckId"] = conf.health_check_id
            changes.append({"Action": "UPSERT", "ResourceRecordSet": record})
        what = f"{self.settings.routing} records"
        with aws.refusals("NoSuchHostedZone", "InvalidChangeBatch", "InvalidInput", what=what):
            change = self._r53.change_resource_record_sets(
                HostedZoneId=self.settings.route53_zone_id,
                ChangeBatch={"Comment": f"deploy-code: users to {region}", "Changes": changes},
            )["ChangeInfo"]
        deadline = time.monotonic() + self.settings.change_timeout
        while change["Status"] != "INSYNC":
            if time.monotonic() > deadline:
                msg = f"Route53 change {change['Id']} not INSYNC after {self.settings.change_timeout}s"
                raise RuntimeError(msg)
            time.sleep(self.poll)
            change = self._r53.get_change(Id=change["Id"])["ChangeInfo"]
        if self.active() != region:
            msg = f"Route53 reads back {self.active()} as the active region, not {region}"
            raise RuntimeError(msg)

    def url(self) -> str:
        record = self._primary()
        if record is None:
            zone = self.settings.route53_zone_id
            msg = f"no active {self.settings.routing} record {self._name()} in zone {zone}"
            raise RuntimeError(msg)
        if "AliasTarget" in record:
            value = record["AliasTarget"]["DNSName"]
        else:
            value = record["ResourceRecords"][0]["Value"]
        return f"{self.settings.entry_scheme}://{value.rstrip('.')}"
