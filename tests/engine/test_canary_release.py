"""Canary releases on the real local platform, through a real Temporal dev server."""

from __future__ import annotations

import asyncio
import json

import pytest
from temporalio.client import Client, WorkflowHandle, WorkflowUpdateFailedError

from engine import temporal
from engine.client import start_or_attach
from engine.contracts import Control, Phase, ReleaseResult, ReleaseStatus
from harness.stack import Stack, new_version, wait_for
from infrastructure.local.instances import InstanceManager
from infrastructure.local.sample_service import set_behaviour
from infrastructure.local.temporal_server import temporal_binary

pytestmark = pytest.mark.usefixtures("worker")

QUICK_STEPS = """
- set_weight: 25
- analysis: {templates: [error-rate]}
- set_weight: 50
"""


async def start(
    client: Client, stack: Stack, task_queue: str, version: str, steps: str, **kw: object
) -> WorkflowHandle:
    handle, attached = await start_or_attach(client, stack.spec(version, steps, **kw), task_queue=task_queue)
    assert not attached
    return handle


async def status(handle: WorkflowHandle) -> ReleaseStatus:
    return await handle.query("status", result_type=ReleaseStatus)


async def test_good_release_reaches_100_percent(client: Client, stack: Stack, task_queue: str) -> None:
    old, version = stack.stable_version(), new_version()
    handle = await start(client, stack, task_queue, version, QUICK_STEPS)
    result: ReleaseResult = await handle.result()

    assert result.outcome == "succeeded", result.reason
    assert result.live_version == version
    # The router really sends every request to the new version, and the old one is gone.
    assert stack.count_versions(200) == {version: 200}
    running = {i.version for i in InstanceManager(stack.layout).list()}
    assert running == {version}, f"{old} should be retired, running: {running}"
    weights = [d.what for d in result.status.decisions if d.what.startswith("canary weight")]
    assert weights == [
        "canary weight 25% (router reads back 25%)",
        "canary weight 50% (router reads back 50%)",
        "canary weight 100% (router reads back 100%)",
    ]
    desc = await handle.describe()
    assert desc.typed_search_attributes.get(temporal.PHASE) == Phase.SUCCEEDED.value


async def test_bad_release_rolls_back_and_traffic_returns_to_stable(
    client: Client, stack: Stack, task_queue: str
) -> None:
    stable, version = stack.stable_version(), new_version()
    set_behaviour(stack.layout, version, error_rate=0.2)
    handle = await start(client, stack, task_queue, version, QUICK_STEPS)
    result: ReleaseResult = await handle.result()

    assert result.outcome == "rolled_back"
    assert "analysis error-rate failed" in result.reason
    assert result.live_version == stable
    assert stack.count_versions(200) == {stable: 200}
    assert stack.weights()[result.status.canary_pool or ""] == 0
    undo = [d.what for d in result.status.decisions if d.what.startswith("undo")]
    assert undo == [f"undo: send all traffic back to {stable}", "undo: stop the canary instances"]


async def test_approval_pause_holds_until_cli_approval(client: Client, stack: Stack, task_queue: str) -> None:
    version = new_version()
    handle = await start(
        client, stack, task_queue, version, "- set_weight: 20\n- pause: {}\n- set_weight: 40"
    )
    await wait_for(handle, lambda s: s.awaiting_approval)
    await asyncio.sleep(2)
    held = await status(handle)
    assert held.phase == Phase.AWAITING_APPROVAL and held.canary_weight == 20

    # Someone who is not an approver is refused, and the refusal is kept.
    with pytest.raises(WorkflowUpdateFailedError) as refused:
        await handle.execute_update("approve", Control(identity="mallory", reason="let me"))
    assert "'mallory' may not approve in 'local' (approvers: alice)" in str(refused.value.cause)
    assert [(r.by, r.what) for r in (await status(handle)).refused] == [("mallory", "refused approve")]

    # The approver approves through the `temporal` CLI: the path the web UI and operators use.
    # (An asyncio subprocess: the in-process worker shares this event loop.)
    cli = await asyncio.create_subprocess_exec(
        temporal_binary(),
        "workflow",
        "update",
        "execute",
        "--address",
        stack.temporal_address,
        "--workflow-id",
        handle.id,
        "--name",
        "approve",
        "--input",
        json.dumps({"identity": "alice", "reason": "dashboards green"}),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    _, err = await asyncio.wait_for(cli.communicate(), timeout=30)
    assert cli.returncode == 0, err.decode()
    result: ReleaseResult = await handle.result()
    assert result.outcome == "succeeded"
    approved = [d for d in result.status.decisions if d.what == "approved"]
    assert [(d.by, d.reason) for d in approved] == [("alice", "dashboards green")]


async def test_abort_rolls_back(client: Client, stack: Stack, task_queue: str) -> None:
    stable, version = stack.stable_version(), new_version()
    handle = await start(client, stack, task_queue, version, "- set_weight: 30\n- pause: {duration: 10m}")
    await wait_for(handle, lambda s: s.canary_weight == 30)
    answer = await handle.execute_update("abort", Control(identity="bob", reason="saw errors in logs"))
    assert answer == "rolling back"
    result: ReleaseResult = await handle.result()
    assert result.outcome == "rolled_back"
    assert result.reason == "aborted by bob: saw errors in logs"
    assert stack.count_versions(100) == {stable: 100}


async def test_missing_data_is_inconclusive_and_pauses(client: Client, stack: Stack, task_queue: str) -> None:
    stable, version = stack.stable_version(), new_version()
    handle = await start(
        client, stack, task_queue, version, "- set_weight: 10\n- analysis: {templates: [no-data]}"
    )
    paused = await wait_for(handle, lambda s: s.paused)
    assert "inconclusive" in paused.pause_reason and "no data" in paused.pause_reason
    assert paused.phase == Phase.PAUSED
    await asyncio.sleep(1.5)
    assert (await status(handle)).phase == Phase.PAUSED  # it never promotes on missing data
    await handle.execute_update("abort", Control(identity="alice", reason="no metrics"))
    assert (await handle.result()).outcome == "rolled_back"
    assert stack.stable_version() == stable
