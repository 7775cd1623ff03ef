"""Rolling releases on the real local platform: capacity sampled, users counted through the router."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable
from pathlib import Path

import pytest
from temporalio.client import Client, WorkflowHandle

from engine.client import start_or_attach
from engine.config import ConfigError, InputError, parse_config, resolve_release
from engine.contracts import ReleaseResult, ReleaseStatus, rolling_batches
from harness.stack import Stack, Users, new_version, wait_for
from infrastructure.local.instances import InstanceManager
from infrastructure.local.sample_service import set_behaviour
from starters import control, deploy
from starters.common import EXIT_BAD_INPUT, EXIT_OK

BATCH_GATE = """
batch-errors:
  metrics:
    - name: errors-per-second
      query: (sum(rate(http_requests_total{version="{{canary_version}}",code=~"5.."}[3s])) or vector(0))
      success_condition: result < 0.5
      failure_condition: result >= 0.5
      interval: 1s
      initial_delay: 2s
      count: 4
"""


class Capacity(threading.Thread):
    """Samples the router every few ms: how many servers take traffic (ready, UP, weight > 0)."""

    def __init__(self, stack: Stack) -> None:
        super().__init__(daemon=True, name="capacity")
        self.stack = stack
        self.samples: list[int] = []
        self._done = threading.Event()

    def run(self) -> None:
        while not self._done.wait(0.005):
            servers = self.stack.haproxy.servers("app")
            self.samples.append(
                sum(s.admin == "ready" and s.status.startswith("UP") and s.weight > 0 for s in servers)
            )

    def __enter__(self) -> Capacity:
        self.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._done.set()
        self.join(10)


async def start(client: Client, stack: Stack, task_queue: str, version: str, settings: str) -> WorkflowHandle:
    spec = stack.strategy_spec(version, "rolling", settings, templates=BATCH_GATE)
    handle, attached = await start_or_attach(client, spec, task_queue=task_queue)
    assert not attached
    return handle


def decided(text: str) -> Callable[[ReleaseStatus], bool]:
    return lambda s: any(d.what == text for d in s.decisions)


def running(stack: Stack) -> dict[str, set[str]]:
    out: dict[str, set[str]] = {}
    for i in InstanceManager(stack.layout).list(probe=False):
        out.setdefault(i.pool, set()).add(i.version)
    return out


@pytest.mark.usefixtures("worker")
async def test_rolling_update_keeps_capacity_and_drains_before_stopping(
    client: Client, stack: Stack, task_queue: str
) -> None:
    old, version = stack.stable_version(), new_version()
    with Capacity(stack) as capacity, Users(stack.layout.router_url) as users:
        handle = await start(client, stack, task_queue, version, "max_surge: 1\nmax_unavailable: 0")
        result: ReleaseResult = await handle.result()

    assert result.outcome == "succeeded", result.reason
    assert stack.count_versions(50) == {version: 50}
    assert running(stack) == {result.status.canary_pool: {version}}
    # 2 instances, surge 1, unavailable 0: never fewer than 2 nor more than 3 servers take traffic.
    assert len(capacity.samples) > 100
    assert min(capacity.samples) >= 2 and max(capacity.samples) == 3, sorted(set(capacity.samples))
    assert users.failed == [], users.failed[:3]
    assert set(users.versions()) == {old, version}
    what = [d.what for d in result.status.decisions]
    # Per batch: the new instance passes its smoke check before it takes traffic, and the old
    # one is drained before it is stopped.
    kinds = [w.split(" ")[0] for w in what if w.split(" ")[0] in ("smoke", "traffic", "drained", "batch")]
    assert kinds == ["smoke", "traffic", "drained", "traffic", "batch"] * 2, what


@pytest.mark.usefixtures("worker")
async def test_a_failing_batch_rolls_back_batch_by_batch(
    client: Client, stack: Stack, task_queue: str
) -> None:
    old, version = stack.stable_version(), new_version()
    settings = "max_surge: 1\nmax_unavailable: 0\nanalysis: {templates: [batch-errors]}"
    with Capacity(stack) as capacity, Users(stack.layout.router_url) as users:
        handle = await start(client, stack, task_queue, version, settings)
        await wait_for(handle, decided("batch 1/2 passed its health gate"))
        set_behaviour(stack.layout, version, error_rate=1.0)  # batch 2's gate sees it
        result: ReleaseResult = await handle.result()

    assert result.outcome == "rolled_back"
    assert "analysis batch-errors failed" in result.reason
    undo = [d.what for d in result.status.decisions if d.what.startswith("undo")]
    assert undo == ["undo: restore batch 2", "undo: restore batch 1"]
    assert stack.count_versions(50) == {old: 50}
    assert running(stack) == {result.status.stable_pool: {old}}
    assert min(capacity.samples) >= 2, sorted(set(capacity.samples))
    # Users saw the bad version's own 5xx, but never a transport error or a router refusal.
    assert {a.version for a in users.failed} <= {version}


@pytest.mark.usefixtures("worker")
async def test_status_and_abort_through_the_control_starter(
    client: Client, stack: Stack, task_queue: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    old, version = stack.stable_version(), new_version()
    monkeypatch.setenv("TEMPORAL_ADDRESS", stack.temporal_address)
    config = stack.tmp / "rolling-control.yaml"
    config.write_text(stack.strategy_config("rolling", "batch_pause: 10m"))
    with Users(stack.layout.router_url) as users:
        handle = await start(client, stack, task_queue, version, "batch_pause: 10m")
        held = await wait_for(handle, lambda s: s.decisions[-1].what.startswith("pause "))
        assert held.step == "batch 1/2: +1 new, -1 old" and held.step_index == 1
        assert await control.main(["status", "--config", str(config)]) == EXIT_OK
        assert stack.count_versions(40).keys() == {old, version}
        argv = ["abort", "--as", "bob", "--reason", "saw errors", "--config", str(config)]
        assert await control.main(argv) == EXIT_OK
        result: ReleaseResult = await handle.result()

    assert result.outcome == "rolled_back"
    assert result.reason == "aborted by bob: saw errors"
    assert stack.count_versions(50) == {old: 50}
    assert running(stack) == {result.status.stable_pool: {old}}
    assert users.failed == []


BAD_CONFIG = """
app: {name: sample-api}
environments:
  local: {providers: {platform: local, router: haproxy, analysis: prometheus}, instances: 3}
strategies:
  canary: {steps: [{set_weight: 50}]}
  rolling: {%s}
"""


def test_bad_rolling_settings_are_refused(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="max_surge and max_unavailable are both 0"):
        parse_config(BAD_CONFIG % "max_surge: 0, max_unavailable: 0")
    surge = parse_config(BAD_CONFIG % "max_surge: 4")
    with pytest.raises(InputError, match=r"rolling.max_surge \(4\) is a batch larger than .* 3 instances"):
        resolve_release(surge, "v1.2.3", "rolling")
    down = parse_config(BAD_CONFIG % "max_unavailable: 3")
    with pytest.raises(InputError, match=r"max_unavailable \(3\) would take all 3 instances"):
        resolve_release(down, "v1.2.3", "rolling")
    path = tmp_path / "deploy-code.yaml"
    path.write_text(BAD_CONFIG % "max_surge: 0, max_unavailable: 0")
    assert asyncio.run(deploy.main(["v1.2.3", "rolling", "--config", str(path)])) == EXIT_BAD_INPUT


def test_batches_honour_surge_and_unavailability() -> None:
    assert rolling_batches(3, 3, 1, 0) == [(1, 1), (1, 1), (1, 1)]
    assert rolling_batches(3, 3, 0, 1) == [(0, 1), (1, 1), (1, 1), (1, 0)]
    assert rolling_batches(4, 4, 2, 1) == [(2, 3), (2, 1)]
    for old, target, surge, down in [(3, 3, 1, 0), (4, 4, 2, 1), (2, 3, 1, 0), (5, 5, 0, 2)]:
        live, new = old, 0
        for up, stop in rolling_batches(old, target, surge, down):
            new += up
            assert live + new <= target + surge
            live -= stop
            assert live + new >= min(old, target) - down
        assert (live, new) == (0, target)
