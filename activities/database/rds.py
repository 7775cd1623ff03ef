"""DR database provider: Amazon RDS (PostgreSQL) with a cross-region read replica.

Settings: ``DrSpec.aws`` (:class:`~engine.contracts.aws_dr.AwsDrSettings`); nodes are named
by DR region, each an RDS instance in its region's account/region.

* ``node``: ``describe_db_instances``. An instance that reports
  ``ReadReplicaSourceDBInstanceIdentifier`` is the standby, otherwise the primary. The lag of
  the replica is CloudWatch's ``ReplicaLag`` (seconds) of the replica; with no datapoint in
  the last 5 minutes the replica's state is ``unknown`` (the failover then refuses unless
  forced: an unmeasured lag is not a small one). RDS gives no byte position: ``lag_bytes`` 0.
* ``fence``: RDS refuses to stop an instance that has a read replica, so the old primary is
  fenced the way RDS allows: ``default_transaction_read_only = 1`` in its own DB parameter
  group (a dynamic parameter, applied at once: new transactions of every session are
  read-only), and the tag ``deploy-code:fenced``. An instance with no replica left (already
  detached) is also stopped. A parameter group that is AWS's default or shared with the other
  region's instance cannot be changed safely and is refused with a clear message. An
  instance whose API does not answer (region down) is reported unreachable (``False``).
* ``promote``: refuses an instance that is not a replica (unless this provider promoted it:
  tag ``deploy-code:promoted``, written *before* the call, so a retry after a crash is
  idempotent), calls ``promote_read_replica`` and waits until the instance is ``available``
  and no longer reports a source (what RDS shows once the promotion is done).
* ``catch_up``: waits until ``ReplicaLag`` is 0; returns the seconds of lag left, rounded up
  (RDS has no bytes; 0 only when CloudWatch says 0).
* Replication is asynchronous only (``set_replication(synchronous=True)`` is refused);
  ``rebuild_as_standby`` would be a new replica instance (Terraform), refused with a message.
"""

from __future__ import annotations

import math
import time
from datetime import UTC, datetime, timedelta
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from activities.interfaces import Progress
from clients import aws
from engine.contracts.aws_dr import AwsDrRegion
from engine.contracts.dr import DbNode, DrSpec, Replica
from engine.errors import BadRequest

PROMOTED = "deploy-code:promoted"
FENCED = "deploy-code:fenced"
READ_ONLY = "default_transaction_read_only"
POLL = 5.0


class RdsDatabase:
    def __init__(self, spec: DrSpec) -> None:
        self.settings = aws.dr_settings_for(spec)
        self.poll = POLL
        self._aws = aws.DrRegionClients(self.settings)

    def _region(self, region: str) -> AwsDrRegion:
        return self._aws.region(region)

    def _client(self, region: str, service: str) -> Any:
        return self._aws.client(region, service)

    def _rds(self, region: str) -> Any:
        return self._client(region, "rds")

    def describe(self, region: str) -> dict[str, Any]:
        return self._aws.describe_db(region)

    def _tags(self, region: str, arn: str) -> dict[str, str]:
        tags = self._rds(region).list_tags_for_resource(ResourceName=arn)["TagList"]
        return {t["Key"]: t["Value"] for t in tags}

    def _tag(self, region: str, arn: str, key: str) -> None:
        self._rds(region).add_tags_to_resource(ResourceName=arn, Tags=[{"Key": key, "Value": "true"}])

    def replica_lag(self, region: str) -> float | None:
        """Newest ``ReplicaLag`` (s) of the region's instance over the last 5 minutes; None: no data."""
        conf = self._region(region)
        cw = self._client(region, "cloudwatch")
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
            db = self.describe(region)
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
                        Replica(
                            region=other,
                            state=self._replication_state(other, lag),
                            sync="async",
                            lag_bytes=0,
                            lag_seconds=lag,
                        )
                    )
        fenced = tags.get(FENCED) == "true" or db.get("DBInstanceStatus") in ("stopping", "stopped")
        return DbNode(
            region=region,
            reachable=True,
            role="standby" if standby else "primary",
            fenced=fenced,
            replicas=replicas,
        )

    def _replication_state(self, replica: str, lag: float | None) -> str:
        """``streaming`` when RDS reports nothing abnormal about the replica and its lag is measured."""
        try:
            infos = self.describe(replica).get("StatusInfos") or []
        except (ClientError, BotoCoreError):
            return "unknown"
        for info in infos:
            if info.get("StatusType") == "read replication" and not info.get("Normal", True):
                return str(info.get("Status") or "error")
        return "streaming" if lag is not None else "unknown"

    # ---- fence ---------------------------------------------------------------------------------
    def _own_parameter_group(self, region: str, db: dict[str, Any]) -> str:
        groups = [g["DBParameterGroupName"] for g in db.get("DBParameterGroups", [])]
        name = db["DBInstanceIdentifier"]
        if not groups or groups[0].startswith("default."):
            msg = (
                f"cannot fence {name} ({region}): it uses AWS's default parameter group "
                f"{groups[0] if groups else '(none)'}, which cannot be changed; give it its own (Terraform)"
            )
            raise BadRequest(msg)
        for other in self.settings.regions:
            if other != region:
                try:
                    theirs = [
                        g["DBParameterGroupName"] for g in self.describe(other).get("DBParameterGroups", [])
                    ]
                except (ClientError, BotoCoreError):
                    continue  # the other region's API is down: its group cannot be read, nor hurt
                if groups[0] in theirs and self._region(other).aws.region == self._region(region).aws.region:
                    msg = (
                        f"cannot fence {name} ({region}): its parameter group {groups[0]} is also the one of "
                        f"{other}'s instance, which would turn read-only too"
                    )
                    raise BadRequest(msg)
        return groups[0]

    def _read_only(self, region: str, group: str, on: bool) -> None:
        with aws.refusals("DBParameterGroupNotFound", "InvalidDBParameterGroupState", what=f"group {group}"):
            self._rds(region).modify_db_parameter_group(
                DBParameterGroupName=group,
                Parameters=[
                    {
                        "ParameterName": READ_ONLY,
                        "ParameterValue": "1" if on else "0",
                        "ApplyMethod": "immediate",
                    }
                ],
            )

    def read_only(self, region: str) -> bool:
        """Whether the region's parameter group makes new transactions read-only (the fence)."""
        db = self.describe(region)
        group = db["DBParameterGroups"][0]["DBParameterGroupName"]
        params = self._rds(region).describe_db_parameters(DBParameterGroupName=group, Source="user")
        return any(
            p["ParameterName"] == READ_ONLY and p.get("ParameterValue") == "1" for p in params["Parameters"]
        )

    def fence(self, region: str) -> bool:
        try:
            db = self.describe(region)
        except (ClientError, BotoCoreError):
            return False
        group = self._own_parameter_group(region, db)
        self._tag(region, db["DBInstanceArn"], FENCED)
        self._read_only(region, group, True)
        if db.get("DBInstanceStatus") == "available" and not db.get("ReadReplicaDBInstanceIdentifiers"):
            with aws.refusals("InvalidDBInstanceState", "InvalidDBInstanceStateFault", what="stop to fence"):
                self._rds(region).stop_db_instance(DBInstanceIdentifier=db["DBInstanceIdentifier"])
        return True

    def unfence(self, region: str) -> None:
        db = self.describe(region)
        rds = self._rds(region)
        if db.get("DBInstanceStatus") in ("stopped", "stopping"):
            rds.start_db_instance(DBInstanceIdentifier=db["DBInstanceIdentifier"])
        self._read_only(region, self._own_parameter_group(region, db), False)
        rds.remove_tags_from_resource(ResourceName=db["DBInstanceArn"], TagKeys=[FENCED])

    # ---- promote -------------------------------------------------------------------------------
    def promote(self, region: str) -> bool:
        db = self.describe(region)
        name, arn = db["DBInstanceIdentifier"], db["DBInstanceArn"]
        if not db.get("ReadReplicaSourceDBInstanceIdentifier"):
            if self._tags(region, arn).get(PROMOTED) == "true":
                return True
            msg = f"RDS instance {name} ({region}) is not a read replica; nothing to promote"
            raise BadRequest(msg)
        self._tag(
            region, arn, PROMOTED
        )  # first: a retry after a crash finds it promoted, not "not a replica"
        with aws.refusals("InvalidDBInstanceState", "InvalidDBInstanceStateFault", what="promote"):
            self._rds(region).promote_read_replica(DBInstanceIdentifier=name)
        deadline = time.monotonic() + self.settings.change_timeout
        while True:
            now = self.describe(region)
            if now.get("DBInstanceStatus") == "available" and not now.get(
                "ReadReplicaSourceDBInstanceIdentifier"
            ):
                return False
            if time.monotonic() > deadline:
                msg = (
                    f"{name} is {now.get('DBInstanceStatus')} (source "
                    f"{now.get('ReadReplicaSourceDBInstanceIdentifier')}) {self.settings.change_timeout:g}s "
                    "after promote_read_replica"
                )
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
        """Wait until the replica's ReplicaLag is 0; returns the seconds still behind, rounded up
        (RDS reports no bytes), or -1 when CloudWatch had no datapoint."""
        deadline = time.monotonic() + timeout
        while True:
            lag = self.replica_lag(standby)
            if lag is not None and lag <= 0:
                return 0
            if time.monotonic() > deadline:
                return math.ceil(lag) if lag is not None else -1
            progress(f"replica lag of {standby}: {lag}")
            time.sleep(self.poll)
