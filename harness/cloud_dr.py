"""Test harness of disaster recovery on ``staging``: what RDS, EKS and the ALBs would add to moto and kmock.

The DR providers (rds, route53, kubernetes regions) talk HTTP to moto and to one kmock
cluster per region, as they would to AWS and EKS. moto runs no database and kmock runs no
pod, so the harness plays the data plane with real local processes (infrastructure/local):

* :class:`DataPlane`: per region a real PostgreSQL node (region A the primary, region B its
  asynchronous streaming standby, ``pg_basebackup``), a real HAProxy standing for the
  region's ALB, and real sample-service processes standing for its pods. The region's
  "ALB" address is what the test writes into the Route53 record of that region.
* :class:`RdsPlayer`: a :class:`~harness.cloud.FaultProxy` in front of moto (the providers'
  ``endpoint_url``) that, for the RDS calls moto models only cosmetically, plays what RDS
  would do before letting moto answer:

  - ``PromoteReadReplica``: moto keeps reporting the instance as a replica. The player
    promotes the region's real PostgreSQL standby (``pg_ctl promote``) and re-creates the
    instance in moto as a standalone one (same id, class, parameter group, tags), which is
    what ``describe_db_instances`` shows once RDS has finished a promotion; then moto
    answers the call. (A real promotion takes minutes; here it is done when the call returns.)
  - ``ModifyDBParameterGroup`` with ``default_transaction_read_only``: applied to the real
    PostgreSQL of every instance using that group (``ALTER SYSTEM`` + reload, as RDS does
    for a dynamic parameter). On the fence (``1``) it then publishes the replica's
    ``ReplicaLag`` as RDS would once the primary stopped writing: 0 when the real standby
    has replayed everything the primary wrote (checked by LSN), else the seconds it is behind.

* :class:`RegionKubelet`: the Deployment controller of :mod:`harness.cloud` plus the kubelet and
  the ALB's target registration: for the region's Deployment it points the pods' database
  at what the pod template's env says (``DATABASE_HOST`` -> the region's real PostgreSQL
  whose RDS endpoint that is; empty: writes refused), runs that many real sample processes
  behind the region's HAProxy, and only then writes the Deployment status (ready).
  Shortcut: an env change reaches the running processes through their ``database.json``
  (re-read per request) instead of a pod restart.
"""

from __future__ import annotations

import json
import time
import urllib.parse
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import psycopg

from clients import aws
from engine.contracts import AwsSettings
from harness.cloud import DeploymentController, FaultProxy, KubeCluster
from infrastructure.local import dr as local_dr
from infrastructure.local import haproxy as haproxy_mod
from infrastructure.local import platform
from infrastructure.local.database import PgNode, pg_bin
from infrastructure.local.haproxy import HAProxy
from infrastructure.local.regions import PlatformLayout

READ_ONLY = "default_transaction_read_only"


# --------------------------------------------------------------------------- #
# Real processes: a PostgreSQL pair, an "ALB" (HAProxy) and "pods" per region
# --------------------------------------------------------------------------- #


@dataclass
class DataPlane:
    """Region A's PostgreSQL primary, region B's asynchronous standby, a router per region."""

    dr: PlatformLayout
    regions: tuple[str, str]
    """The DR region names (deploy-code.yaml) of the layout's regions A and B, in that order."""

    @classmethod
    def start(cls, tmp: Path, regions: tuple[str, str]) -> DataPlane:
        plane = cls(PlatformLayout.for_tests(tmp), regions)
        try:
            a, b = plane.node(regions[0]), plane.node(regions[1])
            a.init_primary()
            b.rebuild_from(a, local_dr.slot_name(plane.dr, "B"))
            for name in ("A", "B"):
                layout = plane.dr.region(name)
                layout.ensure_dirs()
                haproxy_mod.write_config(layout)
                HAProxy(layout).start()
        except BaseException:
            plane.stop()
            raise
        return plane

    def stop(self) -> None:
        platform.down(self.dr, purge=True)

    def local(self, region: str) -> str:
        """The layout's name (A/B) of a DR region."""
        return "AB"[self.regions.index(region)]

    def node(self, region: str) -> PgNode:
        return local_dr.node(self.dr, self.local(region))

    def alb(self, region: str) -> str:
        """host:port of the region's router: the value of its Route53 record."""
        return f"127.0.0.1:{self.dr.region(self.local(region)).router_port}"

    def orders(self, region: str) -> set[int]:
        with self.node(region).connect(timeout=3) as conn:
            return {row[0] for row in conn.execute("SELECT id FROM orders").fetchall()}

    def in_recovery(self, region: str) -> bool:
        return self.node(region).in_recovery()

    def point(self, region: str, database: str | None, node_name: str | None) -> None:
        """The region's pods write to ``database``'s PostgreSQL, reporting ``node_name``."""
        path = self.dr.database_file(self.local(region))
        path.parent.mkdir(parents=True, exist_ok=True)
        conninfo = self.node(database).conninfo() if database else None
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps({"conninfo": conninfo, "node": node_name}))
        tmp.replace(path)

    def run_pods(self, region: str, version: str, count: int) -> None:
        local_dr.scale_region(self.dr, self.local(region), version, count)


# --------------------------------------------------------------------------- #
# RDS: the data plane behind moto's control plane
# --------------------------------------------------------------------------- #


@dataclass
class RdsInstance:
    region: str
    """DR region."""
    settings: AwsSettings
    """Its AWS region, against moto itself (not through the player)."""
    db_instance_id: str


class RdsPlayer(FaultProxy):
    """Forwards to moto after playing what RDS does for a promotion and a parameter change."""

    def __init__(self, moto_url: str, plane: DataPlane | None, instances: list[RdsInstance]) -> None:
        super().__init__(moto_url)
        self.plane, self.instances = plane, instances
        self.errors: list[str] = []

    def _rds(self, inst: RdsInstance) -> Any:
        return aws.client(inst.settings, "rds")

    def _by_id(self, db_id: str) -> RdsInstance | None:
        return next((i for i in self.instances if i.db_instance_id == db_id), None)

    def _take(self, body: str) -> tuple[int, str, str] | None:
        fault = super()._take(body)
        if fault is not None:
            return fault
        params = {k: v[0] for k, v in urllib.parse.parse_qs(body).items()}
        try:
            if params.get("Action") == "PromoteReadReplica":
                self._promote(params["DBInstanceIdentifier"])
            elif params.get("Action") == "ModifyDBParameterGroup":
                self._parameters(params)
        except Exception as exc:  # surfaced by the test (assert not player.errors)
            self.errors.append(f"{params.get('Action')}: {exc!r}")
        return None

    def _promote(self, db_id: str) -> None:
        inst = self._by_id(db_id)
        if inst is None:
            return
        rds = self._rds(inst)
        db = rds.describe_db_instances(DBInstanceIdentifier=db_id)["DBInstances"][0]
        if not db.get("ReadReplicaSourceDBInstanceIdentifier"):
            return
        if self.plane is not None and self.plane.in_recovery(inst.region):
            pg = self.plane.node(inst.region)
            pg._run([pg_bin("pg_ctl"), "-D", str(pg.data_dir), "-w", "-t", "30", "promote"], timeout=40)
        tags = rds.list_tags_for_resource(ResourceName=db["DBInstanceArn"])["TagList"]
        # moto 5.2.5 answers 500 to deleting a cross-region replica (it removes the instance, then
        # fails to detach it from its source: ARN vs id); one attempt, then check it is gone.
        once = aws.client(inst.settings.model_copy(update={"max_attempts": 1}), "rds")
        try:
            once.delete_db_instance(DBInstanceIdentifier=db_id, SkipFinalSnapshot=True)
        except Exception:  # a 500 with an HTML body: botocore's ResponseParserError
            left = [d["DBInstanceIdentifier"] for d in rds.describe_db_instances()["DBInstances"]]
            if db_id in left:
                raise
        rds.create_db_instance(
            DBInstanceIdentifier=db_id,
            DBInstanceClass=db["DBInstanceClass"],
            Engine=db["Engine"],
            AllocatedStorage=db.get("AllocatedStorage") or 20,
            MasterUsername="app",
            MasterUserPassword="password123",
            DBParameterGroupName=db["DBParameterGroups"][0]["DBParameterGroupName"],
            Tags=tags,
        )

    def _parameters(self, params: dict[str, str]) -> None:
        group = params["DBParameterGroupName"]
        values = {
            params[k]: params.get(k.replace("ParameterName", "ParameterValue"))
            for k in params
            if k.endswith(".ParameterName")
        }
        if READ_ONLY not in values or self.plane is None:
            return
        on = values[READ_ONLY] == "1"
        for inst in self.instances:
            db = self._rds(inst).describe_db_instances(DBInstanceIdentifier=inst.db_instance_id)[
                "DBInstances"
            ][0]
            if group not in [g["DBParameterGroupName"] for g in db["DBParameterGroups"]]:
                continue
            with self.plane.node(inst.region).connect(timeout=3) as conn:
                conn.execute(f"ALTER SYSTEM SET {READ_ONLY} = {'on' if on else 'off'}")
                conn.execute("SELECT pg_reload_conf()")
            if on:
                for replica in self.instances:
                    if replica is not inst:
                        self._publish_lag(inst, replica)

    def _publish_lag(self, primary: RdsInstance, replica: RdsInstance) -> None:
        """ReplicaLag of the replica as RDS measures it, from the real pair: 0 once it replayed all."""
        assert self.plane is not None
        with self.plane.node(primary.region).connect(timeout=3) as conn:
            row = conn.execute("SELECT pg_current_wal_lsn()").fetchone()
        assert row is not None
        deadline = time.monotonic() + 10
        lag = 0.0
        with self.plane.node(replica.region).connect(timeout=3) as conn:
            while True:
                r = conn.execute(
                    "SELECT pg_wal_lsn_diff(%s::pg_lsn, pg_last_wal_replay_lsn()),"
                    " extract(epoch FROM now() - pg_last_xact_replay_timestamp())",
                    (str(row[0]),),
                ).fetchone()
                assert r is not None
                if r[0] is not None and r[0] <= 0:
                    lag = 0.0
                    break
                lag = float(r[1] or 1.0)
                if time.monotonic() > deadline:
                    break
                time.sleep(0.05)
        put_replica_lag(replica.settings, replica.db_instance_id, lag, datetime.now(UTC))


def put_replica_lag(settings: AwsSettings, db_instance_id: str, seconds: float, at: datetime) -> None:
    """A ``ReplicaLag`` datapoint, as RDS publishes it for a read replica (AWS/RDS, per instance)."""
    aws.client(settings, "cloudwatch").put_metric_data(
        Namespace="AWS/RDS",
        MetricData=[
            {
                "MetricName": "ReplicaLag",
                "Value": seconds,
                "Unit": "Seconds",
                "Timestamp": at,
                "Dimensions": [{"Name": "DBInstanceIdentifier", "Value": db_instance_id}],
            }
        ],
    )


# --------------------------------------------------------------------------- #
# EKS: kubelet and ALB target registration of one region
# --------------------------------------------------------------------------- #


class RegionKubelet(DeploymentController):
    """harness.cloud's Deployment controller for one region's cluster, running real pods."""

    def __init__(
        self,
        cluster: KubeCluster,
        plane: DataPlane,
        region: str,
        endpoints: dict[str, str],
        *,
        host_env: str = "DATABASE_HOST",
        node_env: str = "DATABASE_NODE",
    ) -> None:
        super().__init__(cluster)
        self.plane, self.region = plane, region
        self.endpoints = endpoints
        """RDS endpoint (host:port) -> DR region whose real PostgreSQL it stands for."""
        self.host_env, self.node_env = host_env, node_env

    def _reconcile(self, d: Any) -> None:
        key = (d.metadata.namespace, d.metadata.name)
        if self._done.get(key) != (int(d.metadata.generation or 0), self.failures.get(d.metadata.name, "")):
            container = d.spec.template.spec.containers[0]
            env = {e.name: e.value or "" for e in container.env or []}
            host = env.get(self.host_env, "")
            database = self.endpoints.get(host) if host else None
            if host and database is None:
                self.errors.append(f"{self.region}: {self.host_env}={host!r} is no RDS endpoint of this test")
            self.plane.point(self.region, database, env.get(self.node_env) or None)
            version = container.image.rsplit(":", 1)[-1]
            self.plane.run_pods(self.region, version, int(d.spec.replicas or 0))
        super()._reconcile(d)


def deployment(
    app: str, pool: str, image: str, replicas: int, env: dict[str, str], *, namespace: str = "default"
) -> dict[str, Any]:
    """The region's Deployment as the platform provider creates it, with the database env."""
    labels = {"app": app, "pool": pool}
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {
            "name": f"{app}-{pool}",
            "namespace": namespace,
            "labels": {**labels, "version": image.rsplit(":", 1)[-1]},
        },
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": labels},
            "template": {
                "metadata": {"labels": labels},
                "spec": {
                    "containers": [
                        {
                            "name": app,
                            "image": image,
                            "ports": [{"containerPort": 8080}],
                            "env": [{"name": k, "value": v} for k, v in env.items()],
                        }
                    ]
                },
            },
        },
    }


def write_fails(plane: DataPlane, region: str) -> str | None:
    """The error a direct write to the region's real PostgreSQL gets (None: it is accepted)."""
    try:
        with plane.node(region).connect(timeout=3) as conn:
            conn.execute("INSERT INTO orders (id) VALUES (%s)", (-time.time_ns() // 1000,))
    except psycopg.Error as exc:
        return type(exc).__name__
    return None
