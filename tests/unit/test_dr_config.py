"""DR configuration of the AWS environments: deploy-code.yaml's staging/production ``dr`` sections
resolve to the RDS, Route53 and Kubernetes providers, and missing settings are config errors."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest
import yaml

from engine.config import REPO_ROOT, ConfigError, InputError, parse_config
from engine.contracts.dr import Topology
from engine.dr_config import resolve_dr


def _doc() -> dict[str, Any]:
    return yaml.safe_load((REPO_ROOT / "deploy-code.yaml").read_text())


def _resolve(doc: dict[str, Any], env: str = "staging") -> Any:
    return resolve_dr(parse_config(yaml.safe_dump(doc)), env)


@pytest.mark.parametrize("env", ["staging", "production"])
def test_aws_environments_select_rds_route53_and_kubernetes(env: str) -> None:
    spec = _resolve(_doc(), env)
    assert spec.providers.model_dump() == {
        "database": "rds",
        "global_entry": "route53",
        "regions": "kubernetes",
    }
    assert spec.aws is not None and spec.kubernetes is not None
    assert set(spec.aws.regions) == set(spec.kubernetes.regions) == set(spec.regions)
    assert not spec.synchronous_replication and spec.local is None
    home, standby = spec.regions
    assert spec.aws.regions[home].db_instance_id.endswith("-db")
    assert spec.aws.regions[standby].db_instance_id.endswith("-db-replica")


@pytest.mark.parametrize(
    ("drop", "message"),
    [
        ("aws", "selects database 'rds' and global_entry 'route53', which need environments.staging.dr.aws"),
        ("kubernetes", "selects regions 'kubernetes', which needs environments.staging.dr.kubernetes"),
    ],
)
def test_providers_without_their_settings_are_a_config_error(drop: str, message: str) -> None:
    doc = _doc()
    del doc["environments"]["staging"]["dr"][drop]
    with pytest.raises(InputError, match=message):
        _resolve(doc)


def test_rds_with_synchronous_replication_is_a_config_error() -> None:
    doc = _doc()
    doc["environments"]["staging"]["dr"]["synchronous_replication"] = True
    with pytest.raises(InputError, match="asynchronously only; set synchronous_replication: false"):
        _resolve(doc)


def test_settings_must_name_the_dr_regions() -> None:
    doc = _doc()
    regions = doc["environments"]["staging"]["dr"]["aws"]["regions"]
    regions["eu-west-1"] = regions.pop(doc["environments"]["staging"]["dr"]["regions"][1])
    with pytest.raises(ConfigError, match=r"aws\.regions names"):
        parse_config(yaml.safe_dump(doc))


def test_version_drift_is_converge_unless_configured_and_a_typo_is_refused() -> None:
    assert _resolve(_doc(), "local").version_drift == "converge"
    doc = _doc()
    doc["environments"]["local"]["dr"]["version_drift"] = "refuse"
    assert _resolve(doc, "local").version_drift == "refuse"
    doc["environments"]["local"]["dr"]["version_drift"] = "ignore"
    with pytest.raises(ConfigError, match=r"environments\.local\.dr\.version_drift"):
        _resolve(doc, "local")


def test_drift_names_each_component_whose_version_differs() -> None:
    at = datetime.now(UTC)
    seen = Topology(
        databases={},
        active_region="A",
        writes_to={},
        at=at,
        versions={"A": {"api": "v2", "worker": "v2"}, "B": {"api": "v1", "worker": "v2"}},
    )
    assert seen.drift("A", "B") == {"api": ("v2", "v1")}
    assert seen.drift("B", "A") == {"api": ("v1", "v2")}
    lost = seen.model_copy(update={"versions": {"B": {"api": "v1"}}})
    assert lost.drift("A", "B") == {}  # A does not answer: nothing to compare
    empty_b = seen.model_copy(update={"versions": {"A": {"api": "v2"}, "B": {}}})
    assert empty_b.drift("A", "B") == {"api": ("v2", None)}


def test_a_region_scaled_for_users_scales_the_workers_the_environment_releases() -> None:
    local = _resolve(_doc(), "local")
    assert (local.workers, local.standby_workers) == (2, 1)  # app.components.worker
    staging = _resolve(_doc(), "staging")  # api and worker: claude-deployment-worker in each cluster
    assert (staging.workers, staging.standby_workers) == (2, 1)
    data = _doc()
    data["environments"]["staging"]["components"] = ["api"]
    api_only = _resolve(data, "staging")
    assert (api_only.workers, api_only.standby_workers) == (0, 0)
