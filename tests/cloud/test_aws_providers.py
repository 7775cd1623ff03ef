"""CloudWatch, ECR, RDS, Route53 and credentials against moto in server mode.

What moto does not model, and what these tests therefore claim:
* RDS ``promote_read_replica`` is cosmetic (the instance keeps reporting its source): the
  promotion test covers the call contract (refusal of a non-replica, the call, the wait for
  ``available``, the idempotency tag), not a real promotion.
* Route53 health checks always report Success: only the healthy path is exercised.
* ECR computes a wrong digest unless ``imageDigest`` is passed: the CI image is put with
  its digest, and promotion passes it too (as the provider does against AWS).
* Replica lag is injected as a ``ReplicaLag`` datapoint through CloudWatch's API.
"""

from __future__ import annotations

import hashlib
import json
from datetime import UTC, datetime
from typing import Any

import pytest

from activities.analysis.cloudwatch import CloudWatchMetrics
from activities.database.rds import RdsDatabase
from activities.global_entry.route53 import Route53GlobalEntry
from clients import aws
from clients.ecr import EcrImages
from engine.contracts import AwsSettings, EnvironmentSpec, Providers
from engine.contracts.aws_dr import AwsDrRegion, AwsDrSettings
from engine.contracts.dr import DrProviders, DrSpec
from engine.errors import BadRequest
from harness.cloud import unique
from harness.cloud_dr import RdsInstance, RdsPlayer, put_replica_lag


def _env(settings: AwsSettings) -> EnvironmentSpec:
    return EnvironmentSpec(
        name="staging",
        providers=Providers(platform="kubernetes", router="alb", analysis="cloudwatch"),
        instances=2,
        aws=settings,
    )


def test_cloudwatch_value_and_no_data(aws_settings: AwsSettings) -> None:
    namespace = unique("App")
    dims = [{"Name": "TargetGroup", "Value": "targetgroup/app-green/1"}]
    aws.client(aws_settings, "cloudwatch").put_metric_data(
        Namespace=namespace,
        MetricData=[
            {"MetricName": "Errors", "Value": 7.0, "Timestamp": datetime.now(UTC), "Dimensions": dims}
        ],
    )
    metrics = CloudWatchMetrics(_env(aws_settings))
    stat = {
        "Metric": {"Namespace": namespace, "MetricName": "Errors", "Dimensions": dims},
        "Stat": "Sum",
        "Period": 60,
    }
    assert metrics.query(json.dumps({"MetricStat": stat})) == 7.0
    missing = {**stat, "Metric": {"Namespace": namespace, "MetricName": "Nothing"}}
    assert metrics.query(json.dumps([{"MetricStat": missing}])) is None  # no data: inconclusive
    with pytest.raises(BadRequest, match="JSON"):
        metrics.query("sum(rate(x[5s]))")


def test_credentials_assume_the_environments_role(aws_settings: AwsSettings) -> None:
    role = aws.client(aws_settings, "iam").create_role(
        RoleName=unique("deployer"), AssumeRolePolicyDocument=json.dumps({"Version": "2012-10-17"})
    )["Role"]["Arn"]
    settings = aws_settings.model_copy(update={"role_arn": role})
    identity = aws.client(settings, "sts").get_caller_identity()
    assert ":assumed-role/" in identity["Arn"] and identity["Arn"].endswith("/deploy-code")
    assert aws.client(aws_settings, "sts").get_caller_identity()["Arn"] != identity["Arn"]


def _manifest(tag: str) -> str:
    return json.dumps(
        {
            "schemaVersion": 2,
            "mediaType": "application/vnd.docker.distribution.manifest.v2+json",
            "config": {
                "mediaType": "application/vnd.docker.container.image.v1+json",
                "size": 1,
                "digest": "sha256:" + hashlib.sha256(tag.encode()).hexdigest(),
            },
            "layers": [],
        }
    )


def test_ecr_promotes_by_digest_and_respects_immutable_tags(aws_settings: AwsSettings) -> None:
    ecr = aws.client(aws_settings, "ecr")
    ci, prod = unique("ci/app"), unique("prod/app")
    ecr.create_repository(repositoryName=ci)
    ecr.create_repository(repositoryName=prod, imageTagMutability="IMMUTABLE")
    digests = {}
    for build in ("build-1", "build-2"):
        body = _manifest(build)
        digests[build] = "sha256:" + hashlib.sha256(body.encode()).hexdigest()
        ecr.put_image(repositoryName=ci, imageManifest=body, imageTag=build, imageDigest=digests[build])
    images = EcrImages(aws_settings)
    url = f"123456789012.dkr.ecr.{aws_settings.region}.amazonaws.com/{prod}"
    assert images.promote(ci, digests["build-1"], url, "v1.0.0") == digests["build-1"]
    assert images.resolve(prod, "v1.0.0") == digests["build-1"]
    got = ecr.batch_get_image(repositoryName=prod, imageIds=[{"imageTag": "v1.0.0"}])["images"][0]
    assert got["imageId"]["imageDigest"] == digests["build-1"]
    assert images.promote(ci, digests["build-1"], prod, "v1.0.0") == digests["build-1"]  # idempotent
    with pytest.raises(BadRequest, match="already points to"):
        images.promote(ci, digests["build-2"], prod, "v1.0.0")
    with pytest.raises(BadRequest, match="does not exist"):
        images.promote(ci, "sha256:" + "f" * 64, prod, "v1.0.1")
    assert images.resolve(prod, "v1.0.1") is None


def _dr(
    aws_settings: AwsSettings,
    primary: str,
    replica: str,
    zone: str = "Z0",
    record: str = "api.x",
    **route53: Any,
) -> DrSpec:
    settings = AwsDrSettings(
        regions={
            "A": AwsDrRegion(aws=aws_settings, db_instance_id=primary, record_value="a.elb.example.com"),
            "B": AwsDrRegion(aws=aws_settings, db_instance_id=replica, record_value="b.elb.example.com"),
        },
        route53_zone_id=zone,
        api_record_name=record,
        change_timeout=10,
        **route53,
    )
    return DrSpec(
        app="sample-api", environment="staging", version="v1.0.0", regions=["A", "B"],
        providers=DrProviders(database="rds", global_entry="route53"), instances=2, standby_instances=1,
        rpo_budget=5, health_check_interval=1, health_check_failures=3, auto_approve=False,
        synchronous_replication=False, catch_up_timeout=5, aws=settings,
    )  # fmt: skip


def _instance(rds: Any, name: str, group: str | None = None) -> dict[str, Any]:
    extra = {"DBParameterGroupName": group} if group else {}
    return rds.create_db_instance(
        DBInstanceIdentifier=name, DBInstanceClass="db.t3.micro", Engine="postgres",
        MasterUsername="app", MasterUserPassword="password123", AllocatedStorage=20, **extra,
    )["DBInstance"]  # fmt: skip


def test_rds_refuses_a_non_replica_and_promotes_a_replica(aws_settings: AwsSettings) -> None:
    """moto's promote_read_replica is cosmetic (the instance keeps reporting its source):
    harness.cloud_dr.RdsPlayer, between the provider and moto, makes moto show a finished promotion."""
    rds = aws.client(aws_settings, "rds")
    primary, replica = unique("db-a"), unique("db-b")
    _instance(rds, primary)
    rds.create_db_instance_read_replica(DBInstanceIdentifier=replica, SourceDBInstanceIdentifier=primary)
    put_replica_lag(aws_settings, replica, 3.0, datetime.now(UTC))
    player = RdsPlayer(aws_settings.endpoint_url or "", None, [RdsInstance("B", aws_settings, replica)])
    player.start()
    try:
        via_player = aws_settings.model_copy(update={"endpoint_url": player.url})
        db = RdsDatabase(_dr(via_player, primary, replica))
        db.poll = 0.05
        a, b = db.node("A"), db.node("B")
        assert (a.role, b.role) == ("primary", "standby")
        assert a.replicas[0].region == "B" and a.replicas[0].lag_seconds == 3.0  # injected lag read back
        assert a.replicas[0].state == "streaming"
        with pytest.raises(BadRequest, match="not a read replica"):
            db.promote("A")
        assert player.calls("Action=PromoteReadReplica") == 0
        assert db.promote("B") is False
        assert db.promote("B") is True  # idempotent: already promoted by this provider
        assert player.calls("Action=PromoteReadReplica") == 1 and not player.errors
    finally:
        player.stop()
    got = rds.describe_db_instances(DBInstanceIdentifier=replica)["DBInstances"][0]
    assert not got.get("ReadReplicaSourceDBInstanceIdentifier") and got["DBInstanceStatus"] == "available"
    tags = {
        t["Key"]: t["Value"] for t in rds.list_tags_for_resource(ResourceName=got["DBInstanceArn"])["TagList"]
    }
    assert tags["deploy-code:promoted"] == "true"
    with pytest.raises(BadRequest, match="asynchronously"):
        db.set_replication(primary="B", standby="A", synchronous=True)


def test_rds_lag_without_data_is_unknown_not_zero(aws_settings: AwsSettings) -> None:
    rds = aws.client(aws_settings, "rds")
    primary, replica = unique("db-a"), unique("db-b")
    _instance(rds, primary)
    rds.create_db_instance_read_replica(DBInstanceIdentifier=replica, SourceDBInstanceIdentifier=primary)
    node = RdsDatabase(_dr(aws_settings, primary, replica)).node("A")
    assert node.replicas[0].lag_seconds is None and node.replicas[0].state == "unknown"


def test_rds_fence_uses_the_primarys_own_parameter_group(aws_settings: AwsSettings) -> None:
    """RDS cannot stop an instance with a read replica: the fence is default_transaction_read_only."""
    rds = aws.client(aws_settings, "rds")
    primary, replica, group, other = unique("db-a"), unique("db-b"), unique("pg-a"), unique("pg-b")
    for g in (group, other):
        rds.create_db_parameter_group(
            DBParameterGroupName=g, DBParameterGroupFamily="postgres15", Description=g
        )
    _instance(rds, primary, group)
    rds.create_db_instance_read_replica(
        DBInstanceIdentifier=replica, SourceDBInstanceIdentifier=primary, DBParameterGroupName=group
    )
    db = RdsDatabase(_dr(aws_settings, primary, replica))
    # The replica shares the group (same AWS region): fencing would make it read-only too.
    with pytest.raises(BadRequest, match="also the one of B"):
        db.fence("A")
    assert not db.node("A").fenced and not db.read_only("A")
    rds.modify_db_instance(DBInstanceIdentifier=replica, DBParameterGroupName=other)
    assert db.fence("A") is True
    assert db.read_only("A") and db.node("A").fenced and not db.read_only("B")
    got = rds.describe_db_instances(DBInstanceIdentifier=primary)["DBInstances"][0]
    assert got["DBInstanceStatus"] == "available"  # not stopped: it still has its replica
    db.unfence("A")
    assert not db.read_only("A") and not db.node("A").fenced
    # An instance on AWS's default group cannot be fenced by a parameter: refused before any change.
    plain = unique("db-c")
    _instance(rds, plain)
    assert rds.describe_db_instances(DBInstanceIdentifier=plain)["DBInstances"][0]["DBParameterGroups"][0][
        "DBParameterGroupName"
    ].startswith("default.")
    db = RdsDatabase(_dr(aws_settings, plain, replica))
    with pytest.raises(BadRequest, match="default parameter group"):
        db.fence("A")
    assert not db.node("A").fenced


def test_route53_switch_upserts_failover_records_and_waits_insync(aws_settings: AwsSettings) -> None:
    """Route53 health checks are always Success in moto: only the healthy path is covered."""
    r53 = aws.client(aws_settings, "route53")
    name = unique("shop") + ".example.com"
    zone = r53.create_hosted_zone(Name=name, CallerReference=unique("ref"))["HostedZone"]["Id"].split("/")[-1]
    entry = Route53GlobalEntry(_dr(aws_settings, "db-a", "db-b", zone=zone, record=f"api.{name}"))
    entry.poll = 0.05
    assert entry.active() is None
    entry.switch("A")
    assert entry.active() == "A"
    entry.switch("B")
    records = {r["SetIdentifier"]: r for r in entry.records()}
    assert records["B"]["Failover"] == "PRIMARY" and records["A"]["Failover"] == "SECONDARY"
    assert records["B"]["ResourceRecords"] == [{"Value": "b.elb.example.com"}]
    assert entry.url() == "https://b.elb.example.com"  # the value of the record in force
    with pytest.raises(BadRequest, match="unknown region"):
        entry.switch("C")


def test_route53_weighted_records_send_everyone_to_one_region(aws_settings: AwsSettings) -> None:
    """``routing: weighted``: the active region's record carries the weight, the other 0."""
    r53 = aws.client(aws_settings, "route53")
    name = unique("shop") + ".example.com"
    zone = r53.create_hosted_zone(Name=name, CallerReference=unique("ref"))["HostedZone"]["Id"].split("/")[-1]
    spec = _dr(aws_settings, "db-a", "db-b", zone=zone, record=f"api.{name}", routing="weighted")
    entry = Route53GlobalEntry(spec)
    entry.poll = 0.05

    def weights() -> dict[str, int]:
        sets = r53.list_resource_record_sets(HostedZoneId=zone)["ResourceRecordSets"]
        return {r["SetIdentifier"]: r["Weight"] for r in sets if r["Name"] == f"api.{name}."}

    entry.switch("A")
    assert weights() == {"A": 100, "B": 0}
    assert entry.active() == "A"
    assert entry.url() == "https://a.elb.example.com"
    entry.switch("B")
    assert weights() == {"A": 0, "B": 100}
    assert entry.active() == "B"
    assert entry.url() == "https://b.elb.example.com"

    # Users split by hand (50/50): no single active region, and a switch ends the split.
    r53.change_resource_record_sets(
        HostedZoneId=zone,
        ChangeBatch={
            "Changes": [
                {
                    "Action": "UPSERT",
                    "ResourceRecordSet": {
                        "Name": f"api.{name}.", "Type": "CNAME", "SetIdentifier": region, "Weight": 50,
                        "TTL": 30, "ResourceRecords": [{"Value": f"{region.lower()}.elb.example.com"}],
                    },
                }
                for region in ("A", "B")
            ]
        },
    )  # fmt: skip
    assert entry.active() is None
    with pytest.raises(RuntimeError, match="no active weighted record"):
        entry.url()
    entry.switch("A")
    assert weights() == {"A": 100, "B": 0}
    with pytest.raises(ValueError, match="less than or equal to 255"):
        _dr(aws_settings, "db-a", "db-b", routing="weighted", active_weight=256)
