"""Terraform roots (primary and DR): formatting, production invariants and the engine's outputs."""

from __future__ import annotations

from pathlib import Path

import pytest
from artifact_checks import TF_PRIMARY, TF_SECONDARY, load_tf, terraform_fmt, tf_violations

ROOTS = [TF_PRIMARY, TF_SECONDARY]
ENGINE_OUTPUTS_PRIMARY = {
    "alb_listener_arn",
    "blue_target_group_arn",
    "green_target_group_arn",
    "primary_db_instance_id",
    "route53_zone_id",
    "api_record_name",
    "eks_cluster_name",
    "ecr_ci_repository_url",
    "ecr_prod_repository_url",
}
ENGINE_OUTPUTS_SECONDARY = {
    "replica_db_instance_id",
    "alb_listener_arn",
    "route53_zone_id",
    "api_record_name",
}


def _resources(root: Path, rtype: str) -> dict[str, dict]:
    return {name: body for t, name, body in load_tf(root)["resources"] if t == rtype}


def test_required_files_exist() -> None:
    for f in (
        "main.tf",
        "eks.tf",
        "database.tf",
        "loadbalancer.tf",
        "monitoring.tf",
        "variables.tf",
        "outputs.tf",
    ):
        assert (TF_PRIMARY / f).is_file(), f
    assert (TF_PRIMARY / "production.tfvars").is_file()
    assert (TF_SECONDARY / "outputs.tf").is_file()


@pytest.mark.parametrize("root", ROOTS, ids=lambda p: p.name)
def test_terraform_fmt(root: Path, tf_env: dict[str, str]) -> None:
    proc = terraform_fmt(root, tf_env)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_terraform_fmt_rejects_misformatted(tmp_path: Path, tf_env: dict[str, str]) -> None:
    (tmp_path / "bad.tf").write_text(
        'resource "aws_sns_topic" "x" {\nname="a"\n  kms_master_key_id =   "k"\n}\n'
    )
    assert terraform_fmt(tmp_path, tf_env).returncode != 0


@pytest.mark.parametrize("root", ROOTS, ids=lambda p: p.name)
def test_production_invariants(root: Path) -> None:
    assert tf_violations(root) == []


def test_invariants_catch_broken_file(tmp_path: Path) -> None:
    (tmp_path / "main.tf").write_text(
        """
resource "aws_db_subnet_group" "db" { subnet_ids = aws_subnet.public[*].id }
resource "aws_db_instance" "db" {
  storage_encrypted       = false
  deletion_protection     = false
  multi_az                = false
  publicly_accessible     = true
  backup_retention_period = 1
}
resource "aws_security_group" "web" {
  ingress {
    from_port   = 22
    to_port     = 22
    protocol    = "tcp"
    cidr_blocks = ["0.0.0.0/0"]
  }
}
resource "aws_eks_node_group" "ng" {
  scaling_config {
    min_size     = 1
    desired_size = 1
    max_size     = 50
  }
}
resource "aws_s3_bucket" "logs" { bucket = "x" }
"""
    )
    text = "\n".join(tf_violations(tmp_path))
    for expected in (
        "encryption at rest",
        "deletion protection",
        "Multi-AZ",
        "publicly_accessible",
        "database in public subnets",
        ">= 7 days",
        "0.0.0.0/0 ingress",
        "3..20",
        "aws_s3_bucket.logs",
    ):
        assert expected in text, f"{expected!r} not reported in:\n{text}"


def test_engine_outputs_exist() -> None:
    assert set(load_tf(TF_PRIMARY)["outputs"]) >= ENGINE_OUTPUTS_PRIMARY
    assert set(load_tf(TF_SECONDARY)["outputs"]) >= ENGINE_OUTPUTS_SECONDARY


@pytest.mark.parametrize("root", ROOTS, ids=lambda p: p.name)
def test_listener_weighted_blue_green_and_left_to_the_engine(root: Path) -> None:
    (listener,) = [b for b in _resources(root, "aws_lb_listener").values() if b.get("port") == 443]
    (action,) = listener["default_action"]
    (forward,) = action["forward"]
    weights = sorted((tg["arn"], tg["weight"]) for tg in forward["target_group"])
    assert [w for _, w in weights] == [100, 0]
    assert "pool[blue]" in weights[0][0].replace('"', "")
    assert "pool[green]" in weights[1][0].replace('"', "")
    assert "default_action" in listener["lifecycle"][0]["ignore_changes"]


def test_data_stores_match_the_seed() -> None:
    tf = load_tf(TF_PRIMARY)
    db = _resources(TF_PRIMARY, "aws_db_instance")["primary"]
    assert db["engine"] == "postgres"
    assert str(tf["variables"]["db_engine_version"]).startswith("15")
    redis = _resources(TF_PRIMARY, "aws_elasticache_replication_group")["redis"]
    assert str(tf["variables"]["redis_engine_version"]).startswith("7")
    assert redis["parameter_group_name"].endswith("cluster.on")
    assert tf["variables"]["redis_shards"] > 1
    replica = _resources(TF_SECONDARY, "aws_db_instance")["replica"]
    assert "primary_db_instance_arn" in replica["replicate_source_db"]


def test_network_spans_three_azs_with_private_subnets() -> None:
    subnets = _resources(TF_PRIMARY, "aws_subnet")
    assert {"public", "private", "database"} <= set(subnets)
    assert all(s["count"] == 3 for s in subnets.values())
    assert load_tf(TF_PRIMARY)["variables"]["cluster_name"] == "claude-deployment-prod"
    for ng in _resources(TF_PRIMARY, "aws_eks_node_group").values():
        assert "aws_subnet.private" in ng["subnet_ids"]


def test_edge_has_waf_with_owasp_rules_and_monitoring_has_alarms() -> None:
    acl = _resources(TF_PRIMARY, "aws_wafv2_web_acl")["cloudfront"]
    assert acl["scope"] == "CLOUDFRONT"
    assert "AWSManagedRulesCommonRuleSet" in str(acl)
    cf = _resources(TF_PRIMARY, "aws_cloudfront_distribution")["main"]
    assert "aws_wafv2_web_acl.cloudfront.arn" in cf["web_acl_id"]
    assert _resources(TF_PRIMARY, "aws_cloudwatch_metric_alarm")
    assert _resources(TF_PRIMARY, "aws_sns_topic")
    assert "ReplicaLag" in str(_resources(TF_SECONDARY, "aws_cloudwatch_metric_alarm"))
