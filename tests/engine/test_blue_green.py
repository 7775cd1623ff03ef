"""Blue-green releases on the real local platform, with real user traffic through the router."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest
from temporalio.client import Client, WorkflowHandle

from engine import catalog
from engine.client import start_or_attach
from engine.config import ConfigError, InputError, parse_config, resolve_release
from engine.contracts import Phase, ReleaseResult, ReleaseSpec
from harness.stack import Stack, Users, new_version, wait_for
from infrastructure.local.instances import InstanceManager
from infrastructure.local.sample_service import set_behaviour
from starters import control, deploy
from starters.common import EXIT_BAD_INPUT, EXIT_OK, EXIT_REFUSED

PREVIEW_GATE = """
preview-errors:
  metrics:
    - name: error-ratio
      query: >-
        (sum(rate(http_requests_total{version="{{canary_version}}",code=~"5.."}[3s])) or vector(0))
        / sum(rate(http_requests_total{version="{{canary_version}}"}[3s]))
      success_condition: result < 0.05
      failure_condition: result >= 0.05
      interval: 1s
      initial_delay: 4s   # a new instance is in Prometheus' targets about 5 s after it starts
      count: 5
      inconclusive_limit: 4
"""


async def start(client: Client, spec: ReleaseSpec, task_queue: str) -> WorkflowHandle:
    handle, attached = await start_or_attach(client, spec, task_queue=task_queue)
    assert not attached
    return handle


def decided_at(result: ReleaseResult, prefix: str) -> float:
    return next(d.at.timestamp() for d in result.status.decisions if d.what.startswith(prefix))


def pids(stack: Stack, pool: str) -> dict[int, int]:
    return {i.slot: i.pid for i in InstanceManager(stack.layout).list(probe=False) if i.pool == pool}


def preview_serving(stack: Stack) -> list[str]:
    return [s.name for s in stack.haproxy.servers("preview") if s.admin == "ready" and s.weight > 0]


@pytest.fixture
def controls(stack: Stack, monkeypatch: pytest.MonkeyPatch) -> Callable[..., object]:
    """``python starters/control.py ACTION ...`` in-process, aimed at this stack's release."""
    monkeypatch.setenv("TEMPORAL_ADDRESS", stack.temporal_address)
    path = stack.tmp / "control.yaml"
    path.write_text(stack.config_text("- set_weight: 50"))

    async def run(*argv: str) -> int:
        return await control.main([*argv, "--config", str(path)])

    return run


@pytest.mark.usefixtures("worker")
async def test_users_see_blue_until_the_switch_and_green_after(
    client: Client, stack: Stack, task_queue: str, controls: Callable[..., object]
) -> None:
    blue, green = stack.stable_version(), new_version()
    spec = stack.strategy_spec(
        green,
        "blue-green",
        """
        auto_promotion_enabled: false
        preview_requests: 10
        pre_promotion_analysis: {templates: [preview-errors]}
        scale_down_delay: 1s
        """,
        templates=PREVIEW_GATE,
    )
    with Users(stack.layout.router_url) as users:
        handle = await start(client, spec, task_queue)
        held = await wait_for(handle, lambda s: s.awaiting_approval)
        assert held.phase == Phase.AWAITING_APPROVAL
        assert any(d.what.startswith("analysis passed: preview-errors") for d in held.decisions)
        # Green answers on the preview route; users still get blue only.
        async with httpx.AsyncClient(base_url=stack.layout.preview_url, timeout=5) as http:
            assert {(await http.get("/")).headers["x-version"] for _ in range(20)} == {green}
        assert stack.count_versions(50) == {blue: 50}
        assert await controls("status") == EXIT_OK  # type: ignore[misc]
        assert await controls("approve", "--as", "mallory") == EXIT_REFUSED  # type: ignore[misc]
        assert await controls("approve", "--as", "alice", "--reason", "preview ok") == EXIT_OK  # type: ignore[misc]
        result: ReleaseResult = await handle.result()
        await asyncio.sleep(0.3)

    assert result.outcome == "succeeded", result.reason
    assert result.live_version == green
    new_pool = result.status.canary_pool  # "green" is the new version; its pool may be either
    switching, switched = decided_at(result, "switching users"), decided_at(result, f"users on {new_pool}")
    before = {a.version for a in users.answers if a.answered < switching}
    after = {a.version for a in users.answers if a.sent > switched}
    assert before == {blue} and after == {green}, (before, after)
    assert users.failed == [], users.failed[:3]
    assert len(users.answers) > 200
    assert stack.count_versions(50) == {green: 50}
    assert pids(stack, result.status.canary_pool or "") and not pids(stack, held.stable_pool or "")
    assert preview_serving(stack) == []
    assert [(r.by, r.what) for r in result.status.refused] == [("mallory", "refused approve")]
    assert [d.by for d in result.status.decisions if d.what == "approved"] == ["alice"]


@pytest.mark.usefixtures("worker")
async def test_failing_pre_promotion_analysis_never_exposes_green(
    client: Client, stack: Stack, task_queue: str
) -> None:
    blue, green = stack.stable_version(), new_version()
    set_behaviour(stack.layout, green, error_rate=0.5)
    spec = stack.strategy_spec(
        green,
        "blue-green",
        "preview_requests: 0\npre_promotion_analysis: {templates: [preview-errors]}",
        templates=PREVIEW_GATE,
    )
    with Users(stack.layout.router_url) as users:
        handle = await start(client, spec, task_queue)
        result: ReleaseResult = await handle.result()

    assert result.outcome == "rolled_back"
    assert "analysis preview-errors failed" in result.reason
    assert users.versions() == {blue: len(users.answers)}, users.versions()
    assert users.failed == []
    assert pids(stack, result.status.canary_pool or "") == {}
    assert preview_serving(stack) == []
    undo = [d.what for d in result.status.decisions if d.what.startswith("undo")]
    assert undo == ["undo: clear the preview route", f"undo: stop green ({green})"]


@pytest.mark.usefixtures("worker")
async def test_rollback_in_the_scale_down_window_is_a_flip(
    client: Client, stack: Stack, task_queue: str, controls: Callable[..., object]
) -> None:
    blue, green = stack.stable_version(), new_version()
    spec = stack.strategy_spec(green, "blue-green", "preview_requests: 5\nscale_down_delay: 10m")
    live_pool = next(s.name.rstrip("0123456789") for s in stack.haproxy.servers("app") if s.weight > 0)
    blue_pids = pids(stack, live_pool)
    with Users(stack.layout.router_url) as users:
        handle = await start(client, spec, task_queue)
        await wait_for(handle, lambda s: s.step == "scale-down delay")
        assert stack.count_versions(30) == {green: 30}
        assert await controls("abort", "--as", "bob", "--reason", "errors in logs") == EXIT_OK  # type: ignore[misc]
        result: ReleaseResult = await handle.result()

    assert result.outcome == "rolled_back"
    assert result.reason == "aborted by bob: errors in logs"
    assert pids(stack, live_pool) == blue_pids  # the same processes: no new instance was needed
    assert stack.count_versions(50) == {blue: 50}
    assert pids(stack, result.status.canary_pool or "") == {}
    assert users.failed == []
    undo = [d.what for d in result.status.decisions if d.what.startswith("undo")]
    assert undo == [
        f"undo: flip users back to blue ({blue})",
        "undo: clear the preview route",
        f"undo: stop green ({green})",
    ]


BAD_CONFIG = """
app: {name: sample-api}
environments:
  local: {providers: {platform: local, router: haproxy, analysis: prometheus}, instances: 2}
strategies:
  canary: {steps: [{set_weight: 50}]}
  blue_green: {scale_down_delay: %s}
"""


def test_negative_scale_down_delay_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as refused:
        parse_config(BAD_CONFIG % "-30s")
    assert "strategies.blue_green.scale_down_delay: a duration cannot be negative (-30s)" in str(
        refused.value
    )
    path = tmp_path / "deploy-code.yaml"
    path.write_text(BAD_CONFIG % "-30s")
    assert asyncio.run(deploy.main(["v1.2.3", "blue-green", "--config", str(path)])) == EXIT_BAD_INPUT


def test_blue_green_needs_a_router_with_a_preview_route(monkeypatch: pytest.MonkeyPatch) -> None:
    config = parse_config(BAD_CONFIG % "30s")
    assert resolve_release(config, "v1.2.3", "blue-green").blue_green is not None
    no_preview = catalog.Provider(target=catalog.CATALOG["router"]["haproxy"].target)
    monkeypatch.setitem(catalog.CATALOG["router"], "haproxy", no_preview)
    with pytest.raises(InputError, match=r"blue-green needs a preview route.*'haproxy', which has none"):
        resolve_release(config, "v1.2.3", "blue-green")
    assert resolve_release(config, "v1.2.3", "canary").canary is not None  # other strategies still work
