"""The simulated providers (no I/O, for benchmarks): they satisfy the Protocols and keep their promises.

The Protocol check is static (mypy assigns each provider to its Protocol type; a deliberately
wrong assignment must be reported, so the check can fail). The behaviour is exercised through
the engine's real activities (``temporalio.testing.ActivityEnvironment``) on an environment
resolved from a deploy-code.yaml that names the simulated providers.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import uuid
from pathlib import Path

import pytest
from temporalio.exceptions import ApplicationError
from temporalio.testing import ActivityEnvironment

from activities import definitions, registry
from clients.simulated import SEED_VERSION
from engine.config import parse_config, resolve_release
from engine.contracts import (
    AnalysisRequest,
    DrainRequest,
    EnvironmentRef,
    EnvironmentSpec,
    PoolRequest,
    PreviewCheck,
    PreviewRequest,
    SmokeRequest,
    StopRequest,
    TrafficRequest,
)
from engine.errors import BadRequest

REPO = Path(__file__).resolve().parents[2]

CONFIG = """
app: {name: sample-api}
default_environment: %(name)s
environments:
  %(name)s:
    providers: {platform: simulated, router: simulated, analysis: simulated, smoke: simulated}
    instances: 2
analysis_templates:
  gate:
    metrics:
      - {name: errors, query: 'sum(rate(errors[1m]))', success_condition: result < 0.05, count: 2,
         interval: 1s, initial_delay: 0s}
strategies:
  canary: {steps: [{set_weight: 50}, {analysis: {templates: [gate]}}]}
"""

PROTOCOL_CHECK = """
from activities.analysis.simulated import SimulatedMetrics
from activities.interfaces import Metrics, Platform, Router, Smoke
from activities.platform.simulated import SimulatedPlatform
from activities.router.simulated import SimulatedRouter
from activities.smoke.simulated import SimulatedSmoke
from engine.contracts import EnvironmentSpec


def check(env: EnvironmentSpec) -> None:
    platform: Platform = SimulatedPlatform(env)
    router: Router = SimulatedRouter(env)
    metrics: Metrics = SimulatedMetrics(env)
    smoke: Smoke = SimulatedSmoke(env)
"""


def _mypy(source: str, tmp_path: Path) -> subprocess.CompletedProcess[str]:
    path = tmp_path / "protocol_check.py"
    path.write_text(source)
    return subprocess.run(
        [
            sys.executable,
            "-m",
            "mypy",
            "--follow-imports=silent",
            "--ignore-missing-imports",
            "--no-error-summary",
            "--cache-dir",
            str(tmp_path / "mypy-cache"),
            str(path),
        ],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


@pytest.mark.skipif(shutil.which("mypy", path=str(Path(sys.executable).parent)) is None, reason="no mypy")
def test_simulated_providers_satisfy_the_protocols(tmp_path: Path) -> None:
    ok = _mypy(PROTOCOL_CHECK, tmp_path)
    assert ok.returncode == 0, ok.stdout + ok.stderr
    # The same check reports a provider of the wrong capability.
    wrong = _mypy(
        PROTOCOL_CHECK.replace("router: Router = SimulatedRouter", "router: Router = SimulatedSmoke"),
        tmp_path,
    )
    assert wrong.returncode != 0
    assert "protocol_check.py" in wrong.stdout and "Router" in wrong.stdout


@pytest.fixture
def env() -> EnvironmentSpec:
    """An environment of its own (the providers' state is per environment name, per process)."""
    name = f"sim-{uuid.uuid4().hex[:8]}"
    spec = resolve_release(
        parse_config(CONFIG % {"name": name}), "v2.0.0", "canary", name, requested_by="test"
    )
    return spec.environment


def test_config_accepts_the_simulated_providers(env: EnvironmentSpec) -> None:
    assert env.providers.model_dump() == {
        "platform": "simulated",
        "router": "simulated",
        "analysis": "simulated",
        "smoke": "simulated",
    }
    assert env.local is None  # no local platform settings: nothing on disk or ports


def test_a_canary_walk_through_the_engine_activities(env: EnvironmentSpec) -> None:
    act = ActivityEnvironment()
    seen = act.run(definitions.observe, EnvironmentRef(environment=env))
    assert {(i.pool, i.version) for i in seen.instances} == {("blue", SEED_VERSION)}
    assert len(seen.instances) == env.instances
    assert seen.router.weights == {"blue": 100.0, "green": 0.0}

    stable = seen.instances
    canary = act.run(
        definitions.start_pool, PoolRequest(environment=env, pool="green", version="v2.0.0", count=1)
    )
    assert [(i.pool, i.slot, i.version) for i in canary] == [("green", 0, "v2.0.0")]
    # Idempotent: asking again starts nothing new.
    again = act.run(
        definitions.start_pool, PoolRequest(environment=env, pool="green", version="v2.0.0", count=1)
    )
    assert again == canary
    smoke = act.run(definitions.smoke_check, SmokeRequest(environment=env, instances=canary, path="/healthz"))
    assert smoke.ok and smoke.checked == 1

    state = act.run(
        definitions.set_traffic,
        TrafficRequest(
            environment=env, weights={"blue": 75, "green": 25}, members={"blue": stable, "green": canary}
        ),
    )
    assert state.weights == {"blue": 75.0, "green": 25.0}
    assert registry.router(env).read().weights == {"blue": 75.0, "green": 25.0}

    request = AnalysisRequest.model_validate(
        {
            "environment": env.model_dump(mode="json"),
            "name": "gate",
            "metrics": [
                {
                    "name": "errors",
                    "query": "sum(rate(errors[1m]))",
                    "success_condition": "result < 0.05",
                    "count": 2,
                    "interval": "PT0.1S",
                    "initial_delay": "PT0S",
                }
            ],
            "args": {},
        }
    )
    result = act.run(definitions.run_analysis, request)
    assert result.phase == "successful"
    assert [m.value for m in result.measurements] == [0.0, 0.0]

    # Draining a stable instance takes its share away; the rest of the pool keeps blue's 75 %.
    drained = act.run(definitions.drain, DrainRequest(environment=env, instances=stable[:1], timeout="PT5S"))
    assert drained == {stable[0].address: 0}
    assert registry.router(env).read().weights == pytest.approx({"blue": 60.0, "green": 40.0})

    act.run(definitions.stop_pool, StopRequest(environment=env, pool="green"))
    assert {i.pool for i in registry.platform(env).list_instances()} == {"blue"}
    smoke = act.run(definitions.smoke_check, SmokeRequest(environment=env, instances=canary, path="/healthz"))
    assert not smoke.ok and "not running" in smoke.failures[0]


def test_preview_route(env: EnvironmentSpec) -> None:
    act = ActivityEnvironment()
    green = act.run(
        definitions.start_pool, PoolRequest(environment=env, pool="green", version="v2.0.0", count=2)
    )
    serving = act.run(definitions.set_preview, PreviewRequest(environment=env, members=green))
    assert serving == sorted(i.address for i in green)
    check = PreviewCheck(environment=env, requests=3, version="v2.0.0")
    assert act.run(definitions.preview_check, check).ok
    wrong = act.run(definitions.preview_check, check.model_copy(update={"version": "v9.9.9"}))
    assert not wrong.ok and "not v9.9.9" in wrong.failures[0]
    act.run(definitions.set_preview, PreviewRequest(environment=env, members=[]))
    assert not act.run(definitions.preview_check, check).ok


def test_bad_requests_are_refused_before_any_change(env: EnvironmentSpec) -> None:
    act = ActivityEnvironment()
    stable = registry.platform(env).list_instances()
    cases = [
        (definitions.start_pool, PoolRequest(environment=env, pool="blue", version="v2.0.0", count=1)),
        (
            definitions.set_traffic,
            TrafficRequest(environment=env, weights={"blue": 50, "green": 50}, members={"blue": stable}),
        ),
        (
            definitions.set_traffic,
            TrafficRequest(environment=env, weights={"purple": 100}, members={"purple": stable}),
        ),
    ]
    for fn, request in cases:
        with pytest.raises(ApplicationError) as info:
            act.run(fn, request)
        assert info.value.non_retryable and info.value.type == "BadRequest"
    with pytest.raises(BadRequest, match="unknown pool"):
        registry.platform(env).stop(pool="purple")
    assert registry.platform(env).list_instances() == stable
    assert registry.router(env).read().weights == {"blue": 100.0, "green": 0.0}


def test_state_is_per_environment(env: EnvironmentSpec) -> None:
    other = env.model_copy(update={"name": env.name + "-other"})
    registry.platform(env).start(version="v2.0.0", pool="green", count=1, progress=lambda _: None)
    assert {i.pool for i in registry.platform(other).list_instances()} == {"blue"}
