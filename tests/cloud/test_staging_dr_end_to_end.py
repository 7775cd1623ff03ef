"""Disaster recovery on ``staging``: the real DrFailover workflow on RDS, Route53 and two EKS regions.

The DrSpec is resolved from deploy-code.yaml's ``environments.staging.dr`` (providers rds,
route53, kubernetes; its regions, instances, RPO budget), with only the endpoints and
resource ids replaced: AWS is moto in server mode (behind harness.cloud_dr.RdsPlayer), each
region's EKS cluster is its own kmock, the workflow runs on a real Temporal dev server with
the engine's real worker. harness/cloud_dr.py plays what moto and kmock do not run (RDS's
database, pods, ALBs) with real PostgreSQL, HAProxy and sample-service processes.

What is real here: the workflow and activities, every provider call (HTTP to moto/kmock),
the PostgreSQL primary/standby pair, the write probe's HTTP requests and the row it writes.
What is played: RDS's promotion and parameter application (moto's promotion is cosmetic:
harness.cloud_dr.RdsPlayer promotes the real standby and makes moto show a finished promotion),
CloudWatch's ReplicaLag (datapoints put by the test, and by the player after the fence),
DNS resolution (the probe goes to the value of the record in force; moto answers no DNS),
and the kubelet/ALB (harness.cloud_dr.RegionKubelet).
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from temporalio.client import Client

import worker as worker_module
from activities.regions.kubernetes import KubernetesRegions
from clients import aws
from engine import temporal
from engine.config import REPO_ROOT, parse_config
from engine.contracts import AwsSettings
from engine.contracts.dr import DrResult, DrSpec, FailoverRequest
from engine.dr_config import resolve_dr
from harness.cloud import KubeCluster, unique, wait_for
from harness.cloud_dr import (
    DataPlane,
    RdsInstance,
    RdsPlayer,
    RegionKubelet,
    deployment,
    put_replica_lag,
    write_fails,
)
from infrastructure.local.layout import Layout
from infrastructure.local.temporal_server import TemporalServer

pytestmark = pytest.mark.timeout(240)


# --------------------------------------------------------------------------- #
# Temporal and the engine's worker
# --------------------------------------------------------------------------- #


@pytest.fixture(scope="module")
def temporal_address(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    server = TemporalServer(Layout.for_tests(tmp_path_factory.mktemp("temporal-dr")))
    try:
        server.start()  # inside: a start that times out still stops what it spawned
        yield server.address
    finally:
        server.stop()


@pytest.fixture
async def client(temporal_address: str) -> Client:
    return await temporal.connect(target_host=temporal_address)


@pytest.fixture
def task_queue() -> str:
    return f"staging-dr-{uuid.uuid4().hex[:10]}"


@pytest.fixture
async def worker(client: Client, task_queue: str) -> AsyncIterator[None]:
    async with worker_module.running(client, task_queue):
        yield


# --------------------------------------------------------------------------- #
# Staging: moto + two kmock clusters (+ the real data plane)
# --------------------------------------------------------------------------- #


class Staging:
    """Two regions as Terraform leaves them, and the DrSpec the starters would resolve."""

    def __init__(self, moto: str, tmp: Path, *, data_plane: bool, replica: bool = True) -> None:
        self.tmp = tmp
        doc = yaml.safe_load((REPO_ROOT / "deploy-code.yaml").read_text())
        self.doc = doc
        dr = doc["environments"]["staging"]["dr"]
        self.regions: tuple[str, str] = (dr["regions"][0], dr["regions"][1])
        self.home, self.standby = self.regions
        self.direct = {r: AwsSettings(region=dr["aws"]["regions"][r]["aws"]["region"], endpoint_url=moto)
                       for r in self.regions}  # fmt: skip
        self.plane: DataPlane | None = None
        self.clusters: dict[str, KubeCluster] = {}
        self.kubelets: list[RegionKubelet] = []
        self.player: RdsPlayer | None = None
        try:
            self._build(moto, dr, data_plane=data_plane, replica=replica)
        except BaseException:
            self.stop()
            raise

    def _build(self, moto: str, dr: dict[str, Any], *, data_plane: bool, replica: bool) -> None:
        home, standby = self.regions
        if data_plane:
            self.plane = DataPlane.start(self.tmp / "plane", self.regions)
        # RDS: the primary with its own parameter group, its cross-region replica (Terraform).
        self.db = {r: unique(f"db-{r}") for r in self.regions}
        self.groups = {r: unique(f"pg-{r}") for r in self.regions}
        for r in self.regions:
            self.rds(r).create_db_parameter_group(
                DBParameterGroupName=self.groups[r], DBParameterGroupFamily="postgres15", Description=r
            )
        primary = self.rds(home).create_db_instance(
            DBInstanceIdentifier=self.db[home], DBInstanceClass="db.t3.micro", Engine="postgres",
            MasterUsername="app", MasterUserPassword="password123", AllocatedStorage=20,
            DBParameterGroupName=self.groups[home],
        )["DBInstance"]  # fmt: skip
        if replica:
            self.rds(standby).create_db_instance_read_replica(
                DBInstanceIdentifier=self.db[standby], SourceDBInstanceIdentifier=primary["DBInstanceArn"],
                DBParameterGroupName=self.groups[standby],
            )  # fmt: skip
        else:  # bad input: an instance that is not a replica where the replica should be
            self.rds(standby).create_db_instance(
                DBInstanceIdentifier=self.db[standby], DBInstanceClass="db.t3.micro", Engine="postgres",
                MasterUsername="app", MasterUserPassword="password123", AllocatedStorage=20,
                DBParameterGroupName=self.groups[standby],
            )  # fmt: skip
        self.endpoints = {r: self.endpoint(r) for r in self.regions}
        self.player = RdsPlayer(
            moto, self.plane, [RdsInstance(r, self.direct[r], self.db[r]) for r in self.regions]
        )
        self.player.start()

        # Route53: the failover record pair, home PRIMARY (Terraform), a health check on the standby.
        self.r53 = aws.client(self.direct[home], "route53")
        domain = unique("staging") + ".example.com"
        self.zone = self.r53.create_hosted_zone(Name=domain, CallerReference=unique("zone"))["HostedZone"][
            "Id"
        ].split("/")[-1]
        self.record = f"api-origin.{domain}"
        check = self.r53.create_health_check(
            CallerReference=unique("hc"),
            HealthCheckConfig={"Type": "HTTP", "FullyQualifiedDomainName": "alb-b.example.com", "Port": 80,
                               "ResourcePath": "/healthz"},
        )["HealthCheck"]["Id"]  # fmt: skip
        self.alb = {r: self.plane.alb(r) if self.plane else f"alb-{r}.example.com" for r in self.regions}

        # deploy-code.yaml's staging.dr, pointed at moto (through the player) and one kmock per region.
        aws_conf, kube_conf = dr["aws"], dr["kubernetes"]
        aws_conf.update(route53_zone_id=self.zone, api_record_name=self.record, entry_scheme="http")
        for r in self.regions:
            region = aws_conf["regions"][r]
            region["aws"].update(endpoint_url=self.player.url, max_attempts=4)
            region.update(db_instance_id=self.db[r], record_value=self.alb[r])
            region["health_check_id"] = check if r == standby else None
            (self.tmp / r).mkdir(parents=True)
            cluster = self.clusters[r] = KubeCluster(self.tmp / r)
            cluster.start()
            k = kube_conf["regions"][r]
            # The api's Deployment only: the kubelet here runs every pod it sees as the api's.
            k["worker"] = None
            k["kubernetes"].update(kubeconfig=str(cluster.kubeconfig), context="kmock")
            if self.plane:
                k["health_url"] = f"http://{self.alb[r]}/healthz"
        # This test is about the failover's AWS mechanics; staging's approvals are signed in
        # deploy-code.yaml, and signed approvals are tested in tests/engine/test_signed_approvals.py.
        self.doc["environments"]["staging"]["approvals"] = "named"
        self.spec: DrSpec = resolve_dr(parse_config(yaml.safe_dump(self.doc)), "staging")
        for r in self.regions:
            self.upsert(r, "PRIMARY" if r == home else "SECONDARY")
        # The app's Deployment in each region (home at full size), its pods writing to their region's RDS.
        database_of = {endpoint: r for r, endpoint in self.endpoints.items()}
        for r in self.regions:
            k = self.kube(r)
            body = deployment(
                k.app, self.spec.kubernetes.regions[r].pool if self.spec.kubernetes else "blue",
                f"{k.image}:{self.spec.version}",
                self.spec.instances if r == home else self.spec.standby_instances,
                {"DATABASE_HOST": self.endpoints[r], "DATABASE_NODE": r}, namespace=k.namespace,
            )  # fmt: skip
            self.clusters[r].apps.create_namespaced_deployment(k.namespace, body)
            if self.plane:
                kubelet = RegionKubelet(self.clusters[r], self.plane, r, database_of)
                self.clusters[r].controller = kubelet
                kubelet.start()
                self.kubelets.append(kubelet)
        if self.plane:
            for r in self.regions:
                wait_for(lambda r=r: self.ready(r) == self.replicas(r), timeout=60)

    # ---- reading moto and kmock ---------------------------------------------------------------
    def rds(self, region: str) -> Any:
        return aws.client(self.direct[region], "rds")

    def kube(self, region: str) -> Any:
        assert self.spec.kubernetes is not None
        return self.spec.kubernetes.regions[region].kubernetes

    def endpoint(self, region: str) -> str:
        e = self.describe(region)["Endpoint"]
        return f"{e['Address']}:{e['Port']}"

    def describe(self, region: str) -> dict[str, Any]:
        return self.rds(region).describe_db_instances(DBInstanceIdentifier=self.db[region])["DBInstances"][0]

    def tags(self, region: str) -> dict[str, str]:
        arn = self.describe(region)["DBInstanceArn"]
        return {
            t["Key"]: t["Value"] for t in self.rds(region).list_tags_for_resource(ResourceName=arn)["TagList"]
        }

    def parameters(self, region: str) -> dict[str, str]:
        got = self.rds(region).describe_db_parameters(DBParameterGroupName=self.groups[region], Source="user")
        return {p["ParameterName"]: p.get("ParameterValue", "") for p in got["Parameters"]}

    def upsert(self, region: str, failover: str) -> None:
        assert self.spec.aws is not None
        conf = self.spec.aws.regions[region]
        self.r53.change_resource_record_sets(
            HostedZoneId=self.zone,
            ChangeBatch={"Changes": [{"Action": "UPSERT", "ResourceRecordSet": {
                "Name": self.record + ".", "Type": "A", "SetIdentifier": conf.set_identifier or region,
                "Failover": failover,
                "AliasTarget": {"HostedZoneId": conf.alias_zone_id, "DNSName": conf.record_value,
                                "EvaluateTargetHealth": True}}}]},
        )  # fmt: skip

    def records(self) -> dict[str, tuple[str, str]]:
        """SetIdentifier -> (Failover, target) as Route53 (moto) stores them."""
        sets = self.r53.list_resource_record_sets(HostedZoneId=self.zone)["ResourceRecordSets"]
        return {
            s["SetIdentifier"]: (s["Failover"], s["AliasTarget"]["DNSName"]) for s in sets if "Failover" in s
        }

    def dep(self, region: str) -> Any:
        k = self.kube(region)
        return self.clusters[region].apps.read_namespaced_deployment(f"{k.app}-blue", k.namespace)

    def replicas(self, region: str) -> int:
        return int(self.dep(region).spec.replicas or 0)

    def ready(self, region: str) -> int:
        return int(self.dep(region).status.available_replicas or 0) if self.dep(region).status else 0

    def env(self, region: str) -> dict[str, str]:
        return {e.name: e.value or "" for e in self.dep(region).spec.template.spec.containers[0].env or []}

    def state(self) -> dict[str, Any]:
        """Everything a refused failover must leave as it was: moto and both clusters."""
        out: dict[str, Any] = {"records": self.records()}
        for r in self.regions:
            db = self.describe(r)
            d = self.dep(r)
            out[r] = {
                "db": (db["DBInstanceStatus"], db.get("ReadReplicaSourceDBInstanceIdentifier")),
                "tags": self.tags(r),
                "parameters": self.parameters(r),
                "deployment": (d.metadata.generation, d.spec.replicas, self.env(r)),
            }
        return out

    def stop(self) -> None:
        for kubelet in self.kubelets:
            kubelet.stop()
        for cluster in reversed(self.clusters.values()):  # kmock's DNS interception unwinds LIFO
            cluster.stop()
        if self.player:
            self.player.stop()
        if self.plane:
            self.plane.stop()


@pytest.fixture
def staging_factory(moto: str, tmp_path: Path) -> Iterator[Any]:
    made: list[Staging] = []

    def make(**kwargs: Any) -> Staging:
        made.append(Staging(moto, tmp_path / f"s{len(made)}", **kwargs))
        return made[-1]

    yield make
    for s in made:
        s.stop()


async def fail_over(client: Client, task_queue: str, s: Staging) -> DrResult:
    return await client.execute_workflow(
        "DrFailover",
        FailoverRequest(dr=s.spec, to_region=s.standby, requested_by="pytest", approved_by="alice"),
        id=f"staging-dr-{uuid.uuid4().hex[:8]}",
        task_queue=task_queue,
        result_type=DrResult,
    )


# --------------------------------------------------------------------------- #
# Tests
# --------------------------------------------------------------------------- #


async def test_failover_promotes_rds_flips_route53_and_moves_writes_to_the_standby_region(
    staging_factory: Any, client: Client, task_queue: str, worker: None
) -> None:
    s: Staging = staging_factory(data_plane=True)
    assert s.plane is not None and s.player is not None and s.spec.aws is not None
    home, standby = s.regions
    assert s.spec.providers.model_dump() == {
        "database": "rds",
        "global_entry": "route53",
        "regions": "kubernetes",
    }
    # RDS's metric: the replica was 0.8 s behind in the previous minute (within the RPO budget).
    put_replica_lag(s.direct[standby], s.db[standby], 0.8, datetime.now(UTC) - timedelta(seconds=60))
    # Before: users reach home; its pods write to home's database; the standby's database is read-only.
    async with httpx.AsyncClient(base_url=f"http://{s.alb[home]}", timeout=5) as http:
        before = await http.post("/orders", json={"id": 1})
    assert (before.status_code, before.json()["node"]) == (201, home)
    assert s.plane.in_recovery(standby) and write_fails(s.plane, standby) == "ReadOnlySqlTransaction"

    result = await fail_over(client, task_queue, s)

    assert result.outcome == "succeeded", (result.reason, s.player.errors)
    assert not s.player.errors and not any(k.errors for k in s.kubelets), [k.errors for k in s.kubelets]
    report = result.report
    assert report.from_region == home and report.to_region == standby
    assert report.rto_seconds is not None and report.rto_seconds > 0
    assert report.rpo_seconds == 0.8  # the lag CloudWatch showed before the fence

    # RDS (moto): the promotion was asked for; moto's own promotion is cosmetic (it would keep
    # reporting the source), what it shows now is what RdsPlayer made it show after the call.
    assert s.player.calls("Action=PromoteReadReplica") == 1
    promoted = s.describe(standby)
    assert promoted["DBInstanceStatus"] == "available"
    assert not promoted.get("ReadReplicaSourceDBInstanceIdentifier")
    assert s.tags(standby)["deploy-code:promoted"] == "true"
    # ... and the real standby really was promoted: it takes writes.
    assert not s.plane.in_recovery(standby) and write_fails(s.plane, standby) is None
    # The old primary is fenced the way RDS allows while it has a replica: its own parameter group
    # makes transactions read-only (read back from moto), applied to the real database.
    assert s.tags(home)["deploy-code:fenced"] == "true"
    assert s.parameters(home)["default_transaction_read_only"] == "1"
    assert write_fails(s.plane, home) == "ReadOnlySqlTransaction"

    # Route53 (moto): the standby's record is PRIMARY, pointing at its ALB; the change was INSYNC
    # (the provider waited for it; moto reports INSYNC at once).
    primary, secondary = (s.spec.aws.regions[r].set_identifier for r in (home, standby))
    assert s.records() == {primary: ("SECONDARY", s.alb[home]), secondary: ("PRIMARY", s.alb[standby])}

    # EKS (kmock): the standby region runs `instances` pods writing to its own (promoted) database;
    # home's pods are told to write nowhere.
    assert s.replicas(standby) == s.spec.instances == s.ready(standby)
    assert s.env(standby) == {"DATABASE_HOST": s.endpoints[standby], "DATABASE_NODE": standby}
    assert s.env(home) == {"DATABASE_HOST": "", "DATABASE_NODE": ""}
    # The region's health as the monitor would read it: Deployment available, its ALB answering.
    assert KubernetesRegions(s.spec).health(standby) == []

    # Through the record in force: a health check and a write, served by the standby region's pods,
    # land in its real database; home's pods refuse writes.
    async with httpx.AsyncClient(base_url=f"http://{s.records()[secondary][1]}", timeout=5) as http:
        assert (await http.get("/healthz")).status_code == 200
        after = await http.post("/orders", json={"id": 2})
    assert (after.status_code, after.json()["node"]) == (201, standby)
    assert {1, 2} <= s.plane.orders(standby)  # 1 replicated before the fence, 2 written after
    assert any(o < 0 for o in s.plane.orders(standby)), "the workflow's write probe is in the new primary"
    async with httpx.AsyncClient(base_url=f"http://{s.alb[home]}", timeout=5) as http:
        assert (await http.post("/orders", json={"id": 3})).status_code == 503


async def test_failover_over_the_rpo_budget_is_refused_before_any_change(
    staging_factory: Any, client: Client, task_queue: str, worker: None
) -> None:
    s: Staging = staging_factory(data_plane=False)
    assert s.player is not None
    put_replica_lag(s.direct[s.standby], s.db[s.standby], 0.8, datetime.now(UTC) - timedelta(seconds=60))
    put_replica_lag(
        s.direct[s.standby], s.db[s.standby], 120.0, datetime.now(UTC)
    )  # newest: 2 minutes behind
    before = s.state()

    result = await fail_over(client, task_queue, s)

    assert result.outcome == "refused", result.reason
    budget = s.spec.rpo_budget.total_seconds()
    assert f"replication lag 120.0s is over the {budget:g}s RPO budget" in result.reason
    assert s.state() == before
    for action in ("PromoteReadReplica", "ModifyDBParameterGroup", "StopDBInstance", "AddTagsToResource"):
        assert s.player.calls(f"Action={action}") == 0, action


async def test_failover_to_an_instance_that_is_not_a_replica_is_refused_before_any_change(
    staging_factory: Any, client: Client, task_queue: str, worker: None
) -> None:
    s: Staging = staging_factory(data_plane=False, replica=False)
    assert s.player is not None
    before = s.state()

    result = await fail_over(client, task_queue, s)

    assert result.outcome == "refused", result.reason
    assert f"{s.standby}'s database is a primary, not a standby" in result.reason
    assert s.state() == before
    assert s.player.calls("Action=PromoteReadReplica") == 0
