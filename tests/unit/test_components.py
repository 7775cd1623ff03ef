"""``app.components``: the order a whole-app release takes, and bad input refused naming the field.

Resolving only (no platform): the targets are what the Release workflow runs, in order.
"""

from __future__ import annotations

import re

import pytest
import yaml

from engine.components import dependency_order
from engine.config import parse_config, resolve_release
from engine.contracts import LocalSettings
from engine.errors import ConfigError, InputError
from engine.pipeline import resolve_pipeline

BASE = """
app:
  name: sample-api
  components:
    api: {kind: service}
    worker: {kind: worker, depends_on: [api], instances: 2, standby_instances: 1, gate: {templates: [jobs]}}
environments:
  local:
    providers: {platform: local, router: haproxy, analysis: prometheus}
    instances: 2
    dr: {regions: [A, B], instances: 2, standby_instances: 1}
  staging:
    providers: {platform: kubernetes, router: alb, analysis: cloudwatch}
    instances: 2
    components: [api]
    kubernetes: {app: sample-api, image: registry.example/sample-api}
    aws:
      region: us-west-2
      listener_arn: arn:aws:elasticloadbalancing:us-west-2:123456789012:listener/app/x/1/2
      target_groups:
        blue: arn:aws:elasticloadbalancing:us-west-2:123456789012:targetgroup/b/1
        green: arn:aws:elasticloadbalancing:us-west-2:123456789012:targetgroup/g/2
analysis_templates:
  jobs:
    requests: worker_jobs_total{region="{{region}}",pool="{{pool}}"}
    errors: worker_jobs_total{region="{{region}}",pool="{{pool}}",outcome="failed"}
    slo: {errors: 0.01}
strategies:
  canary:
    baseline: stable
    steps: [{set_weight: 50}]
"""
LOCAL = LocalSettings(state_dir="/tmp/components-test", port_base=30000)


def pipeline(text: str = BASE, env: str = "local", strategy: str = "canary"):  # type: ignore[no-untyped-def]
    config = parse_config(text)
    spec = resolve_release(config, "v2.0.0", strategy, env, local=LOCAL if env == "local" else None)
    return resolve_pipeline(config, spec)


def edit(change: dict[str, object]) -> str:
    """BASE with ``change`` (dotted path -> value) applied."""
    data = yaml.safe_load(BASE)
    for path, value in change.items():
        *parents, last = path.split(".")
        node = data
        for key in parents:
            node = node[key]
        node[last] = value
    return yaml.safe_dump(data)


def test_a_release_goes_to_the_primary_region_first_and_the_api_before_its_worker() -> None:
    targets = pipeline().targets
    assert [(t.component, t.region, t.role, t.main) for t in targets] == [
        ("api", "A", "primary", True),
        ("worker", "A", "primary", False),
        ("api", "B", "standby", False),
        ("worker", "B", "standby", False),
    ]
    worker_a, api_b, worker_b = (t.release for t in targets[1:])
    assert worker_a is not None and api_b is not None and worker_b is not None
    # The worker in A: 2 instances, one per batch, behind its gate, through the worker router.
    assert (
        worker_a.environment.component == "worker"
        and worker_a.environment.providers.router == "dispatch-local"
    )
    assert worker_a.environment.instances == 2 and worker_a.rolling is not None
    assert (worker_a.rolling.max_surge, [r.name for r in worker_a.rolling.analysis]) == (1, ["jobs"])
    # A standby region: its standby size, all at once, no gate (no traffic reaches it to judge).
    assert api_b.environment.local is not None and api_b.environment.local.region == "B"
    assert (api_b.environment.instances, api_b.environment.providers.router) == (1, "haproxy")
    assert api_b.rolling is not None and api_b.rolling.analysis == []
    assert worker_b.environment.instances == 1


def test_waves_put_a_bake_time_before_the_next_region() -> None:
    waves = [{"regions": ["A"], "bake": "30s"}, {"regions": ["B"]}]
    targets = pipeline(edit({"environments.local.waves": waves})).targets
    assert [(t.name, t.wave, t.bake_before.total_seconds()) for t in targets] == [
        ("api in A", 0, 0.0),
        ("worker in A", 0, 0.0),
        ("api in B", 1, 30.0),
        ("worker in B", 1, 0.0),
    ]
    together = pipeline(edit({"environments.local.waves": [{"regions": ["B", "A"]}]})).targets
    assert [(t.name, t.role, t.wave) for t in together][:3] == [
        ("api in A", "primary", 0),
        ("worker in A", "primary", 0),
        ("api in B", "standby", 0),
    ]


def test_the_api_alone_in_one_region_is_the_release_it_always_was() -> None:
    one_region = edit({"environments.local.dr": None, "environments.local.components": ["api"]})
    assert pipeline(one_region).targets == []
    assert pipeline(env="staging").targets == []


def kubernetes_regions(worker: bool = True) -> dict[str, object]:
    """``environments.staging.dr``: two clusters (regions), each with the api's and the workers'
    Deployments."""

    def region(context: str) -> dict[str, object]:
        conf: dict[str, object] = {
            "kubernetes": {"app": "sample-api", "image": "registry.example/sample-api", "context": context}
        }
        if worker:
            conf["worker"] = {"deployment": "claude-deployment-worker", "image": "registry.example/worker"}
        return conf

    return {
        "regions": ["us-west-2", "us-east-1"],
        "providers": {"database": "postgres-local", "global_entry": "haproxy-local", "regions": "kubernetes"},
        "instances": 2,
        "standby_instances": 1,
        "kubernetes": {"regions": {"us-west-2": region("west"), "us-east-1": region("east")}},
    }


def test_on_kubernetes_the_workers_and_the_standby_cluster_are_released_by_rolling_updates() -> None:
    """The api in the home cluster by the strategy; the workers there, then the standby region's api
    and workers, each converged (its Deployment's image and version set, its rollout waited for)."""
    text = edit({"environments.staging.dr": kubernetes_regions(), "environments.staging.components": None})
    targets = pipeline(text, env="staging").targets
    assert [(t.name, t.role, t.main) for t in targets] == [
        ("api in us-west-2", "primary", True),
        ("worker in us-west-2", "primary", False),
        ("api in us-east-1", "standby", False),
        ("worker in us-east-1", "standby", False),
    ]
    converges = [t.converge for t in targets[1:]]
    assert all(c is not None and t.release is None for c, t in zip(converges, targets[1:], strict=True))
    assert [(c.region, c.versions) for c in converges if c] == [
        ("us-west-2", {"worker": "v2.0.0"}),
        ("us-east-1", {"api": "v2.0.0"}),
        ("us-east-1", {"worker": "v2.0.0"}),
    ]
    # The api alone still reaches the standby cluster: a failover finds the live version there.
    api_only = edit({"environments.staging.dr": kubernetes_regions(worker=False)})
    assert [t.name for t in pipeline(api_only, env="staging").targets] == [
        "api in us-west-2",
        "api in us-east-1",
    ]


def test_a_kubernetes_worker_without_its_deployment_in_every_region_is_refused() -> None:
    dr = kubernetes_regions(worker=False)
    text = edit({"environments.staging.dr": dr, "environments.staging.components": ["api", "worker"]})
    with pytest.raises(
        InputError, match=re.escape("environments.staging.dr.kubernetes.regions.us-west-2.worker")
    ):
        pipeline(text, env="staging")


def test_dependency_order_follows_depends_on() -> None:
    data = yaml.safe_load(BASE)["app"]["components"]
    data = {"worker": data["worker"], "api": data["api"]}  # declared worker first
    config = parse_config(edit({"app.components": data}))
    assert dependency_order(config.app.components) == ["api", "worker"]


@pytest.mark.parametrize(
    ("change", "error"),
    [
        (
            {"app.components.api": {"kind": "service", "depends_on": ["worker"]}},
            "depends_on has a cycle among ['api', 'worker']",
        ),
        (
            {"app.components.worker.depends_on": ["db"]},
            "worker.depends_on names ['db'], not components (api, worker)",
        ),
        ({"environments.local.components": ["api", "cron"]}, "environments.local.components names ['cron']"),
        (
            {"app.components.worker.standby_instances": 3},
            "app.components.worker.standby_instances: 3 is above",
        ),
        (
            {"environments.local.dr.standby_instances": 3},
            "environments.local.dr.standby_instances: 3 is above",
        ),
        ({"app.components.worker.gate": {"templates": ["nope"]}}, "gate names analysis template 'nope'"),
        ({"app.components.worker": {"kind": "worker"}}, "a worker needs instances"),
        ({"app.components.api": {"kind": "worker", "instances": 1}}, "exactly one component is a service"),
        (
            {"environments.staging.components": None},
            "environments.staging.components: ['worker'] are released on kubernetes through the DR regions'",
        ),
        ({"environments.local.components": ["worker"]}, "the service component 'api' must be released"),
        (
            {"environments.local.waves": [{"regions": ["A"]}, {"regions": ["C"]}]},
            "environments.local.waves names region(s) ['C'], not regions of local (A, B)",
        ),
        (
            {"environments.local.waves": [{"regions": ["A", "B"]}, {"regions": ["B"]}]},
            "every region in exactly one wave (twice: ['B'], in none: none)",
        ),
        (
            {"environments.local.waves": [{"regions": ["B"]}, {"regions": ["A"]}]},
            "the first wave must hold the primary region 'A'",
        ),
    ],
)
def test_bad_components_are_refused_naming_the_field(change: dict[str, object], error: str) -> None:
    env = "staging" if any(path.startswith("environments.staging") for path in change) else "local"
    with pytest.raises((ConfigError, InputError), match=re.escape(error)):
        pipeline(edit(change), env=env)
