"""Fault injection on the real local platform: the engine keeps its promises when things break.

Each test breaks one real dependency of a running release (the Temporal server, Prometheus,
HAProxy's runtime API, the image registry), checks what the engine does about it, and
restores the dependency in a ``finally`` block: the stack is shared by the other tests of
this xdist worker.
"""

from __future__ import annotations

import asyncio
from typing import TypeVar

import pytest
from temporalio.api.enums.v1 import EventType
from temporalio.client import Client, WorkflowHandle

from engine.client import start_or_attach
from engine.contracts import Control, Phase, ReleaseResult, ReleaseStatus
from harness.judge import run as judge_run
from harness.pipeline import pipeline_spec, snapshot
from harness.stack import Stack, new_version, wait_for
from harness.support import retrying
from infrastructure.local import images
from infrastructure.local.instances import InstanceManager
from infrastructure.local.prometheus import Prometheus
from infrastructure.local.release_services import Registry
from infrastructure.local.temporal_server import TemporalServer

T = TypeVar("T")


async def status(handle: WorkflowHandle) -> ReleaseStatus:
    return await retrying(lambda: handle.query("status", result_type=ReleaseStatus))


async def result_of(handle: WorkflowHandle, within: float = 120) -> ReleaseResult:
    return await asyncio.wait_for(retrying(handle.result, within), within)


async def start(
    client: Client, stack: Stack, task_queue: str, version: str, steps: str, **kw: object
) -> WorkflowHandle:
    handle, attached = await start_or_attach(client, stack.spec(version, steps, **kw), task_queue=task_queue)
    assert not attached
    return handle


async def activity_attempts(handle: WorkflowHandle, activity: str) -> list[int]:
    """The attempt number each ``activity`` ran to completion on (from the history)."""
    history = await handle.fetch_history()
    names = {
        e.event_id: e.activity_task_scheduled_event_attributes.activity_type.name
        for e in history.events
        if e.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED
    }
    return [
        e.activity_task_started_event_attributes.attempt
        for e in history.events
        if e.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_STARTED
        and names[e.activity_task_started_event_attributes.scheduled_event_id] == activity
    ]


# --------------------------------------------------------------------------- #


@pytest.mark.usefixtures("worker")
async def test_temporal_server_restart_mid_canary_finishes_the_release(
    client: Client, stack: Stack, task_queue: str
) -> None:
    version = new_version()
    handle = await start(
        client, stack, task_queue, version, "- set_weight: 25\n- pause: {duration: 3s}\n- set_weight: 50"
    )
    await wait_for(handle, lambda s: s.step.startswith("pause"), status=status)
    server = TemporalServer(stack.layout)
    assert server.port == stack.layout.temporal_port
    db = stack.layout.temporal_db
    try:
        server.stop()
        assert not server.running()
        await asyncio.sleep(1.0)  # the timer of the pause comes due while the server is down
    finally:
        server.start(timeout=60)
    assert server.address == stack.temporal_address and db.exists()

    # The same database: the run is still there, and the in-process worker carries it on.
    result = await result_of(handle)
    assert result.outcome == "succeeded", result.reason
    assert result.live_version == version
    assert stack.count_versions(100) == {version: 100}
    assert {i.version for i in InstanceManager(stack.layout).list()} == {version}
    weights = [d.what for d in result.status.decisions if d.what.startswith("canary weight")]
    assert weights == [
        "canary weight 25% (router reads back 25%)",
        "canary weight 50% (router reads back 50%)",
        "canary weight 100% (router reads back 100%)",
    ]


@pytest.mark.usefixtures("worker")
async def test_prometheus_down_pauses_with_a_reason_and_never_promotes(
    client: Client, stack: Stack, task_queue: str
) -> None:
    stable, version = stack.stable_version(), new_version()
    handle = await start(
        client,
        stack,
        task_queue,
        version,
        "- set_weight: 25\n- analysis: {templates: [error-rate]}\n- set_weight: 50",
        count=6,
    )
    await wait_for(handle, lambda s: s.step.startswith("analysis"), status=status)
    weights = stack.weights()
    prometheus = Prometheus(stack.layout)
    try:
        prometheus.stop()  # within the analysis' 2 s initial delay
        paused = await wait_for(handle, lambda s: s.paused, within=60, status=status)
        assert paused.phase == Phase.PAUSED
        assert "analysis error-rate inconclusive" in paused.pause_reason
        assert "error-ratio" in paused.pause_reason
        assert "error" in paused.pause_reason.lower()
        await asyncio.sleep(2.5)
        still = await status(handle)
        assert still.paused and still.phase == Phase.PAUSED
        assert still.step_index == 2 and still.canary_weight == 25
        assert stack.weights() == weights  # the canary keeps its 25 %, nothing more
        assert not any(d.what.startswith("canary weight 50") for d in still.decisions)
        assert not any("promote" in d.what for d in still.decisions)
    finally:
        prometheus.start(timeout=60)
    await handle.execute_update(
        "abort", Control(identity="alice", reason="metrics were down"), result_type=str
    )
    result = await result_of(handle)
    assert result.outcome == "rolled_back", result.reason
    assert "aborted by alice: metrics were down" in result.reason
    assert stack.count_versions(100) == {stable: 100}
    assert {i.version for i in InstanceManager(stack.layout).list()} == {stable}


@pytest.mark.usefixtures("worker")
async def test_router_api_unreachable_for_seconds_is_retried_then_the_release_goes_on(
    client: Client, stack: Stack, task_queue: str
) -> None:
    version = new_version()
    handle = await start(
        client, stack, task_queue, version, "- set_weight: 25\n- pause: {duration: 2s}\n- set_weight: 50"
    )
    await wait_for(handle, lambda s: s.step.startswith("pause"), status=status)
    sock = stack.layout.haproxy_sock
    away = sock.with_name(sock.name + ".away")
    sock.rename(away)  # HAProxy keeps listening; nobody can connect by the path
    try:
        await wait_for(handle, lambda s: s.step_index == 3, within=30, status=status)
        await asyncio.sleep(2.0)
        s = await status(handle)
        assert s.step_index == 3 and s.canary_weight == 25  # still retrying, nothing failed
    finally:
        away.rename(sock)
    result = await result_of(handle)

    assert result.outcome == "succeeded", result.reason
    assert stack.count_versions(100) == {version: 100}
    assert "canary weight 50% (router reads back 50%)" in [d.what for d in result.status.decisions]
    attempts = await activity_attempts(handle, "router.set_traffic")
    assert len(attempts) == 4  # 25 %, 50 %, 100 %, old pool out: the retries are no new changes
    assert attempts[1] >= 2, attempts


@pytest.mark.usefixtures("worker")
async def test_registry_down_fails_the_pipeline_cleanly_before_any_deployment(
    client: Client, stack: Stack, task_queue: str
) -> None:
    version = new_version()
    images.push(images.registry_url(stack.layout), version)
    before = snapshot(stack)
    registry = Registry(stack.layout)
    registry.stop()
    try:
        handle, _ = await start_or_attach(client, pipeline_spec(stack, version), task_queue=task_queue)
        result = await result_of(handle, within=120)
    finally:
        registry.start()
    assert result.outcome == "failed", result.reason
    registry_url = images.registry_url(stack.layout)
    assert result.reason.startswith("pre-deployment validation failed: image:"), result.reason
    assert f"image registry {registry_url} unreachable" in result.reason
    pre = next(s for s in result.status.stages if s.name == "pre-validation")
    assert pre.verdict == "failed" and "unreachable" in pre.detail
    assert [s.verdict for s in result.status.stages[1:]] == ["pending"] * 4 + ["failed"]
    assert not any(d.what.startswith("promoted") for d in result.status.decisions)
    assert snapshot(stack) == before  # instances, weights and production tags unchanged


def test_a_metric_that_never_measured_successfully_is_inconclusive_not_a_success() -> None:
    """Every measurement errored (Prometheus down) yet within the limits: not a pass."""
    down = ConnectionError("connection refused")
    result, _, _ = judge_run([down] * 3, count=3, inconclusive_limit=3)
    assert result.phase == "inconclusive"
    assert "error-ratio: no successful measurement" in result.message
    assert "connection refused" in result.message
    result, _, _ = judge_run([None, 0.01, down], count=3, inconclusive_limit=3)
    assert result.phase == "successful"
