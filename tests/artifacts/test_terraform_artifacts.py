"""Terraform roots (primary and DR) and the shared modules they call: formatting, production
invariants, module wiring, the existing states' addresses and the engine's outputs.

No AWS provider can be downloaded here, so `terraform init/validate/plan` do not run; the module
wiring check (module_violations) is the offline part of what validate would say, and the state
checks compare against the addresses the roots had before the modules (terraform_pre_modules.json).
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from harness.artifact_checks import (
    ENGINE_ROUTE53_CHANGES,
    REPO,
    TF_PRIMARY,
    TF_SECONDARY,
    db_parameter_group_violations,
    failover_health_check_violations,
    failover_record_violations,
    load_tf,
    module_dir,
    module_violations,
    output_meaning_violations,
    parse_dir,
    preview_listener_violations,
    state_address_violations,
    terraform_fmt,
    tf_violations,
    trace,
    trace_output,
)

ROOTS = [TF_PRIMARY, TF_SECONDARY]
MODULES = TF_PRIMARY / "modules"
SHARED_MODULES = {"network", "eks", "alb", "data_network", "db_parameters"}
PRE_MODULES = json.loads((Path(__file__).parent / "terraform_pre_modules.json").read_text())
# Created on purpose after the module refactor (the engine's providers need them).
ADDED = {
    "terraform": {"module.alb.aws_lb_listener.preview", "aws_route53_record.preview"},
    "terraform-secondary": {
        "module.alb.aws_lb_listener.preview",
        "aws_route53_record.preview",
        "module.db_parameters.aws_db_parameter_group.this",
    },
}
ENGINE_OUTPUTS_PRIMARY = {
    "alb_listener_arn",
    "alb_preview_listener_arn",
    "primary_health_check_id",
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
    "alb_preview_listener_arn",
    "route53_zone_id",
    "api_record_name",
    "secondary_health_check_id",
}


def _resources(root: Path, rtype: str) -> dict[str, dict]:
    """Resources of a type in a root and its modules, by name (names must not collide)."""
    found = [r for r in load_tf(root)["resources"] if r.rtype == rtype and not r.none]
    assert len({r.name for r in found}) == len(found), [r.address for r in found]
    return {r.name: r.body for r in found}


def test_required_files_exist() -> None:
    for f in (
        "main.tf",
        "eks.tf",
        "database.tf",
        "loadbalancer.tf",
        "monitoring.tf",
        "variables.tf",
        "outputs.tf",
        "moved.tf",
    ):
        assert (TF_PRIMARY / f).is_file(), f
    assert (TF_PRIMARY / "production.tfvars").is_file()
    assert (TF_SECONDARY / "outputs.tf").is_file()
    assert (TF_SECONDARY / "moved.tf").is_file()
    for module in ("network", "eks", "alb", "data-network", "db-parameters"):
        for f in ("main.tf", "variables.tf", "outputs.tf"):
            assert (MODULES / module / f).is_file(), f"{module}/{f}"


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


def test_invariants_follow_module_inputs(tmp_path: Path) -> None:
    """A module resource is judged with what the caller passes: a node group module called with
    1..50 nodes is reported at the module's address, the same module called with 3..20 is not."""
    module = tmp_path / "modules" / "ng"
    module.mkdir(parents=True)
    (module / "main.tf").write_text(
        """
variable "min" { type = number }
variable "max" { type = number }
resource "aws_eks_node_group" "ng" {
  scaling_config {
    min_size     = var.min
    desired_size = var.min
    max_size     = var.max
  }
}
"""
    )
    (tmp_path / "main.tf").write_text(
        """
variable "node_max" { default = 50 }
module "small" {
  source = "./modules/ng"
  min    = 1
  max    = var.node_max
}
module "right" {
  source = "./modules/ng"
  min    = 3
  max    = 20
}
"""
    )
    assert tf_violations(tmp_path) == [
        "module.small.aws_eks_node_group.ng: node group must scale 3..20, got 1..50"
    ]


@pytest.mark.parametrize("root", ROOTS, ids=lambda p: p.name)
def test_module_wiring_is_consistent(root: Path) -> None:
    """Every module input passed is declared, required ones are passed, every module.x.y read is a
    declared output, every reference resolves in its scope, every moved block fits."""
    assert module_violations(root) == []


def test_module_check_catches_broken_wiring(tmp_path: Path) -> None:
    module = tmp_path / "modules" / "net"
    module.mkdir(parents=True)
    (module / "main.tf").write_text(
        """
variable "name" { type = string }
variable "cidr" { type = string }
resource "aws_vpc" "main" {
  cidr_block = var.cidr
  tags       = { Name = var.nme }
}
output "vpc_id" { value = aws_vpc.main.id }
"""
    )
    (tmp_path / "main.tf").write_text(
        """
module "net" {
  source = "./modules/net"
  name   = "x"
  region = "us-west-2"
}
module "gone" {
  source = "./modules/missing"
}
resource "aws_flow_log" "main" { vpc_id = aws_vpc.main.id }
output "vpc_id" { value = module.net.vpc_id }
output "subnets" { value = module.net.private_subnet_ids }
moved {
  from = aws_vpc.main
  to   = module.net.aws_vpc.primary
}
"""
    )
    text = "\n".join(module_violations(tmp_path))
    for expected in (
        "module.net.private_subnet_ids: ./modules/net has no output 'private_subnet_ids'",
        "module.net passes 'region', not a variable of ./modules/net",
        "module.net does not pass required variable 'cidr'",
        "module.gone source './modules/missing' is not a local module",
        "resource aws_flow_log.main: aws_vpc.main is not declared here",
        "module.net resource aws_vpc.main: var.nme is not declared",
        "moved to module.net.aws_vpc.primary, which is not declared",
    ):
        assert expected in text, f"{expected!r} not reported in:\n{text}"
    assert "module.net.vpc_id" not in text  # the declared output is fine


@pytest.mark.parametrize("root", ROOTS, ids=lambda p: p.name)
def test_existing_state_keeps_every_resource(root: Path) -> None:
    """Every address the production/DR state holds is still declared or moved (with moved {}) to a
    declared resource of the same count/for_each shape, and nothing new would be created."""
    assert state_address_violations(root, PRE_MODULES[root.name]["resources"], ADDED[root.name]) == []


def test_state_check_catches_a_missing_moved_block(tmp_path: Path) -> None:
    module = tmp_path / "modules" / "net"
    module.mkdir(parents=True)
    (module / "main.tf").write_text(
        'resource "aws_vpc" "main" {}\nresource "aws_subnet" "private" { count = 3 }\n'
    )
    (tmp_path / "main.tf").write_text(
        """
module "net" { source = "./modules/net" }
moved {
  from = aws_subnet.private
  to   = module.net.aws_subnet.private
}
"""
    )
    before = {"aws_vpc.main": "single", "aws_subnet.private": "for_each"}
    assert sorted(state_address_violations(tmp_path, before)) == [
        "aws_subnet.private (for_each): moved to module.net.aws_subnet.private (count)",
        "aws_vpc.main: no longer declared and not moved: would be destroyed",
        "module.net.aws_vpc.main: not in the existing state: would be created",
    ]
    # Listing a resource as added on purpose accepts its creation; a stale entry is reported.
    assert sorted(state_address_violations(tmp_path, before, {"module.net.aws_vpc.main", "aws_lb.gone"})) == [
        "aws_lb.gone: listed as added, but not a new declared resource",
        "aws_subnet.private (for_each): moved to module.net.aws_subnet.private (count)",
        "aws_vpc.main: no longer declared and not moved: would be destroyed",
    ]


@pytest.mark.parametrize("root", ROOTS, ids=lambda p: p.name)
def test_outputs_keep_their_names_and_meaning(root: Path) -> None:
    """Each output the root had still exists and, followed through module outputs and moved
    blocks, reads the same attribute of the same object."""
    assert output_meaning_violations(root, PRE_MODULES[root.name]["outputs"]) == []


def test_output_meaning_check_catches_a_changed_output(tmp_path: Path) -> None:
    module = tmp_path / "modules" / "alb"
    module.mkdir(parents=True)
    (module / "main.tf").write_text(
        """
resource "aws_lb" "main" {}
resource "aws_lb_listener" "https" {}
output "listener_arn" { value = aws_lb.main.arn }
"""
    )
    (tmp_path / "main.tf").write_text(
        """
module "alb" { source = "./modules/alb" }
output "alb_listener_arn" { value = module.alb.listener_arn }
moved {
  from = aws_lb_listener.https
  to   = module.alb.aws_lb_listener.https
}
"""
    )
    before = {
        "alb_listener_arn": "${aws_lb_listener.https.arn}",
        "eks_cluster_name": "${aws_eks_cluster.main.name}",
    }
    assert output_meaning_violations(tmp_path, before) == [
        'output alb_listener_arn: was "${module.alb.aws_lb_listener.https.arn}", '
        'now "${module.alb.aws_lb.main.arn}"',
        "output eks_cluster_name: removed",
    ]


def test_engine_outputs_exist() -> None:
    assert set(load_tf(TF_PRIMARY)["outputs"]) >= ENGINE_OUTPUTS_PRIMARY
    assert set(load_tf(TF_SECONDARY)["outputs"]) >= ENGINE_OUTPUTS_SECONDARY
    for root in ROOTS:
        assert trace_output(root, "alb_listener_arn") == '"${module.alb.aws_lb_listener.https.arn}"'
        assert trace_output(root, "blue_target_group_arn") == (
            '"${module.alb.aws_lb_target_group.pool[\\"blue\\"].arn}"'
        )


def test_both_roots_call_the_same_modules() -> None:
    """One copy of the network, EKS, ALB, data-store and DB parameter group wiring: both roots call the
    same directories."""
    calls = {root.name: parse_dir(root).modules for root in ROOTS}
    for root in ROOTS:
        assert set(calls[root.name]) == SHARED_MODULES
    for name in SHARED_MODULES:
        dirs = {module_dir(root, calls[root.name][name]["source"]) for root in ROOTS}
        assert len(dirs) == 1 and next(iter(dirs)).parent == MODULES.resolve(), dirs


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
    for root in ROOTS:  # the data stores sit in the database subnets behind their own security groups
        (db,) = _resources(root, "aws_db_subnet_group").values()
        assert trace(root, db["subnet_ids"]) == '"${module.network.aws_subnet.database[*].id}"'
        store = _resources(root, "aws_security_group")["store"]
        assert store["for_each"] == "${local.stores}"
        assert "cluster_security_group_id" in trace(root, store["ingress"][0]["security_groups"][0])
    stores = parse_dir(MODULES / "data-network").locals["stores"]
    assert {k: v["port"] for k, v in stores.items()} == {"database": 5432, "redis": 6379}


def test_network_spans_three_azs_with_private_subnets() -> None:
    for root in ROOTS:
        subnets = _resources(root, "aws_subnet")
        assert {"public", "private", "database"} <= set(subnets)
        assert all(s["count"] == 3 for s in subnets.values())
        # The node group's subnets are what the caller passes, followed to the network module.
        (ng,) = _resources(root, "aws_eks_node_group").values()
        assert trace(root, ng["subnet_ids"]) == '"${module.network.aws_subnet.private[*].id}"'
    assert load_tf(TF_PRIMARY)["variables"]["cluster_name"] == "claude-deployment-prod"


def test_edge_has_waf_with_owasp_rules_and_monitoring_has_alarms() -> None:
    acl = _resources(TF_PRIMARY, "aws_wafv2_web_acl")["cloudfront"]
    assert acl["scope"] == "CLOUDFRONT"
    assert "AWSManagedRulesCommonRuleSet" in str(acl)
    cf = _resources(TF_PRIMARY, "aws_cloudfront_distribution")["main"]
    assert "aws_wafv2_web_acl.cloudfront.arn" in cf["web_acl_id"]
    assert _resources(TF_PRIMARY, "aws_cloudwatch_metric_alarm")
    assert _resources(TF_PRIMARY, "aws_sns_topic")
    assert "ReplicaLag" in str(_resources(TF_SECONDARY, "aws_cloudwatch_metric_alarm"))


# --- what the engine's AWS providers need from the roots (docs/providers.md) ---------------------

ALB_MODULE = """
resource "aws_security_group" "alb" {
  ingress {
    from_port   = 443
    to_port     = 443
    protocol    = "tcp"
    cidr_blocks = ["0.0.0.0/0"]
  }
  ingress {
    from_port   = 8443
    to_port     = 8443
    protocol    = "tcp"
    cidr_blocks = PREVIEW_CIDRS
  }
}
resource "aws_lb" "main" {
  security_groups            = [aws_security_group.alb.id]
  enable_deletion_protection = true
}
resource "aws_lb_target_group" "pool" { for_each = toset(["blue", "green"]) }
resource "aws_lb_listener" "https" {
  load_balancer_arn = aws_lb.main.arn
  port              = 443
  protocol          = "HTTPS"
  certificate_arn   = "cert"
  default_action { type = "forward" }
  lifecycle { ignore_changes = [default_action] }
}
resource "aws_lb_listener" "preview" {
  load_balancer_arn = aws_lb.main.arn
  port              = 8443
  protocol          = "HTTPS"
  certificate_arn   = "cert"
  default_action {
    type             = "forward"
    target_group_arn = aws_lb_target_group.pool[PREVIEW_POOL].arn
  }
  LIFECYCLE
}
output "preview_listener_arn" { value = aws_lb_listener.preview.arn }
output "https_listener_arn" { value = aws_lb_listener.https.arn }
"""


def _alb_root(tmp_path: Path, cidrs: str, pool: str, lifecycle: str, output: str) -> Path:
    module = tmp_path / "modules" / "alb"
    module.mkdir(parents=True)
    text = ALB_MODULE.replace("PREVIEW_CIDRS", cidrs).replace("PREVIEW_POOL", pool)
    (module / "main.tf").write_text(text.replace("LIFECYCLE", lifecycle))
    (tmp_path / "main.tf").write_text(
        'module "alb" { source = "./modules/alb" }\n'
        f'output "alb_preview_listener_arn" {{ value = {output} }}\n'
    )
    return tmp_path


@pytest.mark.parametrize("root", ROOTS, ids=lambda p: p.name)
def test_preview_listener_for_blue_green(root: Path) -> None:
    """aws.preview_listener_arn: a second HTTPS listener (own port, same certificate) created forwarding
    to green, its action left to the engine, not open to the world, output as alb_preview_listener_arn."""
    assert preview_listener_violations(root) == []
    assert trace_output(root, "alb_preview_listener_arn") == '"${module.alb.aws_lb_listener.preview.arn}"'
    (listener,) = [b for b in _resources(root, "aws_lb_listener").values() if b.get("port") != 443]
    assert listener["port"] == 8443
    assert "preview_port" not in json.dumps(parse_dir(root).modules["alb"])  # 8443 in both roots


def test_preview_listener_check_passes_a_good_twin(tmp_path: Path) -> None:
    good = _alb_root(
        tmp_path,
        '["10.0.0.0/16"]',
        '"green"',
        "lifecycle { ignore_changes = [default_action] }",
        "module.alb.preview_listener_arn",
    )
    assert preview_listener_violations(good) == []


def test_preview_listener_check_catches_a_broken_one(tmp_path: Path) -> None:
    broken = _alb_root(tmp_path, '["0.0.0.0/0"]', '"blue"', "", "module.alb.https_listener_arn")
    assert preview_listener_violations(broken) == [
        "module.alb.aws_lb_listener.preview: created forwarding to the green pool's target group",
        "module.alb.aws_lb_listener.preview: ignore_changes must list default_action "
        "(the engine rewrites it)",
        "module.alb.aws_lb_listener.preview: port 8443 open to the world (it serves an unreleased version)",
        'output alb_preview_listener_arn: "${module.alb.aws_lb_listener.https.arn}", '
        'not "${module.alb.aws_lb_listener.preview.arn}"',
    ]
    # ... and the production invariants report the world-open 8443 as well.
    assert "module.alb.aws_security_group.alb: 0.0.0.0/0 ingress other than 443/tcp on the ALB" in (
        tf_violations(broken)
    )


@pytest.mark.parametrize("root", ROOTS, ids=lambda p: p.name)
def test_failover_records_ignore_what_a_failover_changes(root: Path) -> None:
    assert failover_record_violations(root) == []
    (record,) = [b for b in _resources(root, "aws_route53_record").values() if "failover_routing_policy" in b]
    assert "failover_routing_policy" in record["lifecycle"][0]["ignore_changes"]


def test_engine_route53_changes_are_what_the_provider_upserts() -> None:
    """The list the check uses names fields the route53 provider really writes in its UPSERT."""
    source = (REPO / "activities" / "global_entry" / "route53.py").read_text()
    upsert = source[source.index("def switch") : source.index("def url")]
    for field in ENGINE_ROUTE53_CHANGES:
        assert f'record["{field}"] =' in upsert, field


def test_failover_record_check_catches_a_record_terraform_would_flip_back(tmp_path: Path) -> None:
    (tmp_path / "main.tf").write_text(
        """
resource "aws_route53_record" "api_primary" {
  set_identifier = "primary"
  failover_routing_policy { type = "PRIMARY" }
  lifecycle { ignore_changes = [alias] }
}
resource "aws_route53_record" "api_secondary" {
  set_identifier = "secondary"
  failover_routing_policy { type = "SECONDARY" }
  lifecycle { ignore_changes = [failover_routing_policy] }
}
resource "aws_route53_record" "plain" { name = "x" }
resource "aws_route53_record" "api_weighted_a" {
  set_identifier = "A"
  weighted_routing_policy { weight = 100 }
}
resource "aws_route53_record" "api_weighted_b" {
  set_identifier = "B"
  weighted_routing_policy { weight = 0 }
  lifecycle { ignore_changes = [weighted_routing_policy] }
}
"""
    )
    assert failover_record_violations(tmp_path) == [
        "aws_route53_record.api_primary: lifecycle ignore_changes must list failover_routing_policy",
        "aws_route53_record.api_weighted_a: lifecycle ignore_changes must list weighted_routing_policy",
    ]


def _environments() -> dict:
    return yaml.safe_load((REPO / "deploy-code.yaml").read_text())["environments"]


@pytest.mark.parametrize("root", ROOTS, ids=lambda p: p.name)
def test_deploy_code_gives_every_checked_record_its_health_check(root: Path) -> None:
    assert failover_health_check_violations(root, _environments()) == []


def test_health_check_check_catches_a_region_without_one() -> None:
    envs = _environments()
    del envs["production"]["dr"]["aws"]["regions"]["us-east-1"]["health_check_id"]
    assert failover_health_check_violations(TF_SECONDARY, envs) == [
        "environments.production.dr.aws.regions.us-east-1: no health_check_id, but record 'secondary' "
        "has one (a failover would remove it)"
    ]


@pytest.mark.parametrize("root", ROOTS, ids=lambda p: p.name)
def test_every_db_instance_has_its_own_parameter_group(root: Path) -> None:
    assert db_parameter_group_violations(root) == []


def test_replica_parameter_group_matches_the_primary() -> None:
    """The replica, once promoted, is the primary: same family and settings in its own group."""
    (primary,) = _resources(TF_PRIMARY, "aws_db_parameter_group").values()
    (replica,) = _resources(TF_SECONDARY, "aws_db_parameter_group").values()
    assert replica["family"] == primary["family"] == "postgres15"
    assert replica["parameter"] == primary["parameter"]
    for group in (primary, replica):  # the engine's fence is not reset by the next apply
        assert "parameter" in group["lifecycle"][0]["ignore_changes"]


def test_parameter_group_check_catches_default_missing_and_shared(tmp_path: Path) -> None:
    (tmp_path / "main.tf").write_text(
        """
resource "aws_db_parameter_group" "pg" { family = "postgres15" }
resource "aws_db_instance" "a" { parameter_group_name = aws_db_parameter_group.pg.name }
resource "aws_db_instance" "b" { parameter_group_name = aws_db_parameter_group.pg.name }
resource "aws_db_instance" "c" { parameter_group_name = "default.postgres15" }
resource "aws_db_instance" "d" { replicate_source_db = "arn" }
resource "aws_db_instance" "e" { parameter_group_name = aws_db_parameter_group.gone.name }
"""
    )
    assert db_parameter_group_violations(tmp_path) == [
        "aws_db_instance.c: parameter group 'default.postgres15' is not an aws_db_parameter_group here",
        "aws_db_instance.d: no parameter_group_name (AWS's default group cannot be fenced)",
        "aws_db_instance.e: parameter group '${aws_db_parameter_group.gone.name}' is not an "
        "aws_db_parameter_group here",
        "aws_db_parameter_group.pg is shared by aws_db_instance.a, aws_db_instance.b "
        "(a fence would hit both)",
    ]


def test_parameter_group_check_follows_module_outputs(tmp_path: Path) -> None:
    """A group declared in a called module counts as the instance's own through the module's output;
    one module instance's group used by two instances is shared, an output that is not a group's
    name (or is not declared) is refused."""
    module = tmp_path / "modules" / "pg"
    module.mkdir(parents=True)
    (module / "main.tf").write_text(
        """
resource "aws_db_parameter_group" "this" { family = "postgres15" }
output "name" { value = aws_db_parameter_group.this.name }
output "default" { value = "default.postgres15" }
"""
    )
    (tmp_path / "main.tf").write_text(
        """
module "own" { source = "./modules/pg" }
module "both" { source = "./modules/pg" }
resource "aws_db_instance" "ok" { parameter_group_name = module.own.name }
resource "aws_db_instance" "a" { parameter_group_name = module.both.name }
resource "aws_db_instance" "b" { parameter_group_name = module.both.name }
resource "aws_db_instance" "c" { parameter_group_name = module.own.default }
resource "aws_db_instance" "e" { parameter_group_name = module.own.gone }
"""
    )
    assert db_parameter_group_violations(tmp_path) == [
        "aws_db_instance.c: parameter group '${module.own.default}' is not an aws_db_parameter_group here",
        "aws_db_instance.e: parameter group '${module.own.gone}' is not an aws_db_parameter_group here",
        "module.both.aws_db_parameter_group.this is shared by aws_db_instance.a, aws_db_instance.b "
        "(a fence would hit both)",
    ]
