"""DR database provider: Amazon RDS with a cross-region read replica.

Nodes are named by DR region (``AwsDrSettings.regions``). ``node`` reads the instance
(``describe_db_instances``): a replica (``ReadReplicaSourceDBInstanceIdentifier``) is the
standby, otherwise the primary; the replica lag is CloudWatch's ``ReplicaLag`` (seconds) of
the replica. ``promote`` refuses an instance that is not a replica (unless this provider
promoted it before: the tag ``deploy-code:promoted``, so promotion is idempotent), calls
``promote_read_replica`` and waits until the instance is ``available`` and no longer
reports a source. ``fence`` stops the old primary (``stop_db_instance``) and tags it
``deploy-code:fenced``; an unreachable one returns False. RDS cross-region replication is
asynchronous only: asking for synchronous replication is refused. ``rebuild_as_standby``
would need a new replica instance and is refused with a clear message (an operator job).
"""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from activities.cloud import aws
from activities.interfaces import BadRequest, Progress
from engine.contracts.aws_dr import AwsDrSettings
from engine.contracts.dr import DbNode, DrSpec, Replica

PROMOTED = "deploy-code:promoted"
FENCED = "deploy-code:fenced"
POLL = 5.0


class RdsDatabase:
    def __init__(self, spec: DrSpec, settings: AwsDrSettings | None = None) -> None:
        settings = settings or getattr(spec, "aws", None)
        if settings is None:
            msg = f"environment {spec.environment!r} has no AWS DR settings"
            raise BadRequest(msg)
        self.settings: AwsDrSettings = settings
        self.poll = POLL

    def _region(self, region: str) -> Any:
        conf = self.settings.regions.get(region)
        if conf is None:
            msg = f"unknown region {region!r} (regions: {', '.join(self.settings.regions)})"
            raise BadRequest(msg)
        return conf

    def _rds(self, region: str) -> Any:
        return aws.client(self._region(region).aws, "rds")

    def _describe(self, region: str) -> dict[str, Any]:
        conf = self._region(region)
        with aws.refusals("DBInstanceNotFound", "DBInstanceNotFoundFault", what=f"db {conf.db_instance_id}"):
            return self._rds(region).describe_db_instances(DBInstanceIdentifier=conf.db_instance_id)[
                "DBInstances"
            ][0]

    def _tags(self, region: str, arn: str) -> dict[str, str]:
        tags = self._rds(region).list_tags_for_resource(ResourceName=arn)["TagList"]
        return {t["Key"]: t["Value"] for t in tags}

    def replica_lag(self, region: str) -> float | None:
        """Newest ``ReplicaLag`` (s) of the region's instance over the last 5 minutes; None: no data."""
        conf = self._region(region)
        cw = aws.client(conf.aws, "cloudwatch")
        end = datetime.fromtimestamp((int(time.time()) // 60 + 1) * 60, UTC)  # period-aligned
        r = cw.get_metric_data(
            MetricDataQueries=[
                {
                    "Id": "lag",
                    "MetricStat": {
                        "Metric": {
                            "Namespace": "AWS/RDS",
                            "MetricName": "ReplicaLag",
                            "Dimensions": [{"Name": "DBInstanceIdentifier", "Value": conf.db_instance_id}],
                        },
                        "Period": 60,
                        "Stat": "Maximum",
                    },
                }
            ],
            StartTime=end - timedelta(minutes=5),
            EndTime=end,
        )["MetricDataResults"][0]
        if not r.get("Values"):
            return None
        return float(max(zip(r["Timestamps"], r["Values"], strict=True))[1])

    def node(self, region: str) -> DbNode:
        try:
            db = self._describe(region)
            tags = self._tags(region, db["DBInstanceArn"])
        except (ClientError, BotoCoreError) as exc:
            return DbNode(region=region, reachable=False, error=str(exc)[:300])
        standby = bool(db.get("ReadReplicaSourceDBInstanceIdentifier"))
        replicas = []
        if not standby:
            for other in self.settings.regions:
                if other != region:
                    lag = self.replica_lag(other)
                    replicas.append(
                        Replica(region=other, state="streaming", sync="async", lag_bytes=0, lag_seconds=lag)
                    )
        fenced = tags.get(FENCED) == "true" or db.get("DBInstanceStatus") in ("stopping", "stopped")
        return DbNode(
            region=region,
            reachable=True,
            role="standby" if standby else "primary",
            fenced=fenced,
            replicas=replicas,
        )

    def fence(self, region: str) -> bool:
        try:
            db = self._describe(region)
        except (ClientError, BotoCoreError):
            return False
        rds = self._rds(region)
        rds.add_tags_to_resource(ResourceName=db["DBInstanceArn"], Tags=[{"Key": FENCED, "Value": "true"}])
        if db.get("DBInstanceStatus") == "available":
            with aws.refusals("InvalidDBInstanceState", "InvalidDBInstanceStateFault", what="stop to fence"):
                rds.stop_db_instance(DBInstanceIdentifier=db["DBInstanceIdentifier"])
        return True

    def unfence(self, region: str) -> None:
        db = self._describe(region)
        rds = self._rds(region)
        if db.get("DBInstanceStatus") in ("stopped", "stopping"):
            rds.start_db_instance(DBInstanceIdentifier=db["DBInstanceIdentifier"])
        rds.remove_tags_from_resource(ResourceName=db["DBInstanceArn"], TagKeys=[FENCED])

    def promote(self, region: str) -> bool:
        db = self._describe(region)
        if not db.get("ReadReplicaSourceDBInstanceIdentifier"):
            if self._tags(region, db["DBInstanceArn"]).get(PROMOTED) == "true":
                return True
            name = db["DBInstanceIdentifier"]
            msg = f"RDS instance {name} ({region}) is not a read replica; nothing to promote"
            raise BadRequest(msg)
        rds = self._rds(region)
        with aws.refusals("InvalidDBInstanceState", "InvalidDBInstanceStateFault", what="promote"):
            rds.promote_read_replica(DBInstanceIdentifier=db["DBInstanceIdentifier"])
        rds.add_tags_to_resource(ResourceName=db["DBInstanceArn"], Tags=[{"Key": PROMOTED, "Value": "true"}])
        deadline = time.monotonic() + self.settings.change_timeout
        while True:
            now = self._describe(region)
            if now.get("DBInstanceStatus") == "available":
                return False
            if time.monotonic() > deadline:
                msg = f"{db['DBInstanceIdentifier']} is {now.get('DBInstanceStatus')} after promotion"
                raise RuntimeError(msg)
            time.sleep(self.poll)

    def rebuild_as_standby(self, region: str, *, primary: str, progress: Progress) -> None:
        msg = (
            f"rebuilding {region} as a replica of {primary} on RDS means a new replica instance "
            "(create_db_instance_read_replica + Terraform); do it before failing back"
        )
        raise BadRequest(msg)

    def set_replication(self, *, primary: str, standby: str | None, synchronous: bool) -> None:
        if synchronous:
            raise BadRequest("RDS cross-region read replicas replicate asynchronously only")

    def catch_up(self, *, standby: str, primary: str, timeout: float, progress: Progress) -> int:
        """Wait until the replica's ReplicaLag is 0; returns the lag left in seconds (no bytes on RDS)."""
        deadline = time.monotonic() + timeout
        while True:
            lag = self.replica_lag(standby)
            if lag is not None and lag <= 0:
                return 0
            if time.monotonic() > deadline:
                return int(lag) if lag is not None else -1
            progress(f"replica lag of {standby}: {lag}")
            time.sleep(self.poll)
