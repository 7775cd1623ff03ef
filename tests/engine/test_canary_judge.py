"""The canary judge on the real local platform: a canary against its fresh baseline, real Prometheus.

Every version here shares a background noise (random errors, lognormal latency) as a real
service would, so a healthy canary and its baseline look alike but never identical; a bad
version adds its own errors or latency. Instances are counted from the platform (their log files
and the instance manager), traffic from the router.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import pytest
from temporalio.client import Client, WorkflowHandle

from engine.client import start_or_attach
from engine.contracts import Control, ReleaseResult, ReleaseStatus
from harness.stack import Stack, new_version, wait_for
from infrastructure.local.instances import InstanceManager
from infrastructure.local.sample_service import BACKGROUND, clear_behaviour, set_behaviour

pytestmark = pytest.mark.usefixtures("worker")

JUDGED = """
- set_weight: 25
- analysis: {templates: [judge]}
- set_weight: 50
- analysis: {templates: [judge]}
"""
WATCHED = "background_analysis: {templates: [judge], chunk: 3s}"


@pytest.fixture
def noise(stack: Stack) -> Iterator[None]:
    """Noise every version shares: 0.1 % random errors, latency median 20 ms, P95 80 ms."""
    set_behaviour(stack.layout, BACKGROUND, error_probability=0.001, latency_median_ms=20, latency_p95_ms=80)
    yield
    clear_behaviour(stack.layout, BACKGROUND)


async def release(
    client: Client, stack: Stack, task_queue: str, version: str, **kw: object
) -> WorkflowHandle:
    spec = stack.spec(version, kw.pop("steps", JUDGED), canary=WATCHED, **kw)  # type: ignore[arg-type]
    handle, attached = await start_or_attach(client, spec, task_queue=task_queue)
    assert not attached
    return handle


def baseline_starts(stack: Stack) -> int:
    """Baseline instances started on this stack so far (each logs its pid once at start)."""
    logs = stack.layout.logs_dir.glob("baseline-*.log")
    return sum(f.read_text().count("listening") for f in logs)


def baseline_running(stack: Stack) -> list[str]:
    return [
        f"{i.pool}{i.slot}" for i in InstanceManager(stack.layout).list(probe=False) if i.pool == "baseline"
    ]


@pytest.mark.usefixtures("noise")
async def test_a_healthy_noisy_canary_is_promoted_with_its_evidence(
    client: Client, stack: Stack, task_queue: str
) -> None:
    version, starts = new_version(), baseline_starts(stack)
    result: ReleaseResult = await (await release(client, stack, task_queue, version)).result()

    assert result.outcome == "succeeded", result.reason
    assert stack.count_versions(100) == {version: 100}
    evidence = {e.metric: e for e in result.status.evidence}
    assert set(evidence) == {"errors", "latency", "errors-slo", "latency-slo"}
    assert all(e.verdict == "pass" and e.canary_requests >= 100 for e in evidence.values())
    assert evidence["latency"].canary is not None and 0.03 < evidence["latency"].canary < 0.2
    what = [d.what for d in result.status.decisions]
    assert any(w.startswith("baseline: 1 fresh instance(s)") for w in what)
    assert sum(w.startswith("analysis passed: judge") for w in what) == 2
    assert "stopped the baseline (baseline)" in what
    assert baseline_starts(stack) == starts + 1 and baseline_running(stack) == []


@pytest.mark.usefixtures("noise")
async def test_two_percent_errors_are_rolled_back_before_promotion(
    client: Client, stack: Stack, task_queue: str
) -> None:
    stable, version, starts = stack.stable_version(), new_version(), baseline_starts(stack)
    set_behaviour(stack.layout, version, error_probability=0.02)
    result: ReleaseResult = await (await release(client, stack, task_queue, version, window="60s")).result()

    assert result.outcome == "rolled_back", result.reason
    assert "analysis judge failed" in result.reason and "error ratio" in result.reason
    assert result.live_version == stable and stack.count_versions(100) == {stable: 100}
    errors = next(e for e in result.status.evidence if e.verdict == "fail")
    assert errors.value is not None and errors.bound is not None and errors.value >= errors.bound
    undo = [d.what for d in result.status.decisions if d.what.startswith("undo")]
    assert undo == [
        f"undo: send all traffic back to {stable}",
        "undo: stop the baseline instances",
        "undo: stop the canary instances",
    ]
    assert baseline_starts(stack) == starts + 1 and baseline_running(stack) == []


@pytest.mark.usefixtures("noise")
async def test_400ms_slower_is_rolled_back_within_seconds(
    client: Client, stack: Stack, task_queue: str
) -> None:
    stable, version = stack.stable_version(), new_version()
    set_behaviour(stack.layout, version, latency_ms=400)
    handle = await release(client, stack, task_queue, version, window="60s")
    result: ReleaseResult = await asyncio.wait_for(handle.result(), timeout=90)

    assert result.outcome == "rolled_back", result.reason
    assert "latency" in result.reason and "slower" in result.reason
    assert result.status.canary_weight == 0
    weights = [d.what for d in result.status.decisions if d.what.startswith("canary weight")]
    assert weights[0] == "canary weight 25% (router reads back 25%)"
    assert not any("50%" in w for w in weights)  # caught at the first step, not the last
    assert stack.count_versions(50) == {stable: 50}


async def test_too_little_traffic_pauses_and_resume_measures_again(
    client: Client, stack: Stack, task_queue: str
) -> None:
    version = new_version()
    steps = "- set_weight: 10\n- analysis: {templates: [judge]}"
    handle = await release(client, stack, task_queue, version, steps=steps, min_requests=100_000, window="3s")
    paused = await wait_for(handle, lambda s: s.paused, within=60)
    assert "analysis judge inconclusive: too little traffic to judge" in paused.pause_reason
    assert "at least 100000 per version needed" in paused.pause_reason

    await handle.execute_update("resume", Control(identity="alice"), result_type=str)
    again = await wait_for(
        handle, lambda s: s.paused and "measured again" in " ".join(d.what for d in s.decisions)
    )
    assert "analysis judge measured again after resume" in [d.what for d in again.decisions]
    assert sum(d.what == "paused" for d in again.decisions) == 2  # once per inconclusive gate, not per chunk

    await handle.execute_update(
        "promote", Control(identity="alice", reason="traffic is low by design"), result_type=str
    )
    result: ReleaseResult = await asyncio.wait_for(handle.result(), timeout=90)
    assert result.outcome == "succeeded", result.reason
    assert "analysis judge not measured again: promote skips the gate" in [
        d.what for d in result.status.decisions
    ]
    assert baseline_running(stack) == []


async def test_a_missing_histogram_is_inconclusive_naming_the_metric(
    client: Client, stack: Stack, task_queue: str
) -> None:
    version = new_version()
    spec = stack.spec(
        version, "- set_weight: 25\n- analysis: {templates: [judge]}", window="4s", min_requests=5
    )
    judge = spec.canary.steps[1].analyses[0].judge  # type: ignore[union-attr]
    assert judge is not None
    broken = judge.model_copy(
        update={
            "latency": 'no_such_histogram_bucket{pool="{{pool}}"}',
            "slo": judge.slo.model_copy(update={"latency": None}),
        }
    )
    steps = [
        s.model_copy(update={"analyses": [a.model_copy(update={"judge": broken}) for a in s.analyses]})
        for s in spec.canary.steps  # type: ignore[union-attr]
    ]
    spec = spec.model_copy(update={"canary": spec.canary.model_copy(update={"steps": steps})})  # type: ignore[union-attr]
    handle, _ = await start_or_attach(client, spec, task_queue=task_queue)
    paused: ReleaseStatus = await wait_for(handle, lambda s: s.paused, within=60)
    assert "no latency histogram in 'no_such_histogram_bucket" in paused.pause_reason
    await handle.execute_update("abort", Control(identity="bob", reason="fix the template"), result_type=str)
    result: ReleaseResult = await asyncio.wait_for(handle.result(), timeout=60)
    assert result.outcome == "rolled_back" and baseline_running(stack) == []
