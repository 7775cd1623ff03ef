"""A release survives its worker's death; CI re-runs attach; bad input changes nothing."""

from __future__ import annotations

import asyncio
import sys
import time
from collections import Counter
from pathlib import Path

import pytest
from temporalio.api.enums.v1 import EventType
from temporalio.client import Client

from engine import temporal
from engine.client import start_or_attach
from engine.contracts import AnalysisResult, ReleaseResult, ReleaseStatus
from harness.stack import Stack, new_version
from harness.support import REPO, WorkerProcess
from infrastructure.local.instances import InstanceManager


async def scheduled_activities(client: Client, workflow_id: str, run_id: str) -> Counter[str]:
    history = await client.get_workflow_handle(workflow_id, run_id=run_id).fetch_history()
    return Counter(
        e.activity_task_scheduled_event_attributes.activity_type.name
        for e in history.events
        if e.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED
    )


async def test_worker_killed_during_analysis_resumes_without_redoing_steps(
    client: Client, stack: Stack, task_queue: str, worker_process: WorkerProcess
) -> None:
    version = new_version()
    spec = stack.spec(
        version, "- set_weight: 20\n- analysis: {templates: [error-rate]}\n- set_weight: 50", count=6
    )
    worker_process.start()
    handle, _ = await start_or_attach(client, spec, task_queue=task_queue)
    deadline = time.monotonic() + 60
    while not (await handle.query("status", result_type=ReleaseStatus)).step.startswith("analysis"):
        assert time.monotonic() < deadline
        await asyncio.sleep(0.2)
    await asyncio.sleep(4.5)  # initial delay 2 s, then measurements every second
    killed_at = time.time()
    worker_process.kill()
    await asyncio.sleep(1.0)
    worker_process.start()
    result: ReleaseResult = await asyncio.wait_for(handle.result(), timeout=90)

    assert result.outcome == "succeeded", result.reason
    assert stack.count_versions(100) == {version: 100}
    # No step was done twice: each activity was scheduled once per step (a retry is not a new schedule).
    counts = await scheduled_activities(client, handle.id, handle.result_run_id or "")
    assert counts["router.set_traffic"] == 4  # 20 %, 50 %, 100 %, old pool out of the router
    assert counts["platform.start_pool"] == 2  # the canary, then its full size
    assert counts["analysis.run"] == 1
    # The analysis resumed from its heartbeat: measurements from before the kill were kept, none redone.
    history = await handle.fetch_history()
    completed = [e for e in history.events if e.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_COMPLETED]
    started = [e for e in history.events if e.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_STARTED]
    assert any(e.activity_task_started_event_attributes.attempt >= 2 for e in started)
    analysis = next(
        AnalysisResult.model_validate_json(e.activity_task_completed_event_attributes.result.payloads[0].data)
        for e in completed
        if b'"measurements"' in e.activity_task_completed_event_attributes.result.payloads[0].data
    )
    assert len(analysis.measurements) == 6
    before_kill = [m for m in analysis.measurements if m.at.timestamp() < killed_at]
    assert 1 <= len(before_kill) < 6


async def run_starter(stack: Stack, task_queue: str, *args: str, starter: str = "deploy") -> tuple[int, str]:
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        f"starters/{starter}.py",
        *args,
        cwd=REPO,
        env=stack.env(task_queue),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    out, _ = await asyncio.wait_for(proc.communicate(), timeout=120)
    return proc.returncode or 0, out.decode()


@pytest.mark.usefixtures("worker")
async def test_ci_reruns_attach_and_a_different_version_is_refused(
    client: Client, stack: Stack, task_queue: str
) -> None:
    config = str(stack.write_config("- set_weight: 20\n- pause: {}\n- set_weight: 60"))
    version, other = new_version(), new_version()

    code, out = await run_starter(stack, task_queue, version, "canary", "--config", config)
    assert code == 0 and out.startswith(f"started sample-api/local@{version}"), out
    code, out = await run_starter(stack, task_queue, version, "canary", "--config", config)
    assert code == 0 and out.startswith(f"attached to sample-api/local@{version}"), out
    code, out = await run_starter(stack, task_queue, other, "canary", "--config", config)
    assert code == 3
    assert f"release {version} (canary) is running in local" in out

    # CI's `--wait` attaches and follows; an approver approves with the control starter.
    waiting = asyncio.ensure_future(
        run_starter(stack, task_queue, version, "canary", "--config", config, "--wait")
    )
    code, out = await run_starter(
        stack, task_queue, "approve", "--config", config, "--as", "alice", starter="control"
    )
    while code == 3 and "nothing awaits approval" in out:  # the pause step may not be reached yet
        await asyncio.sleep(0.5)
        code, out = await run_starter(
            stack, task_queue, "approve", "--config", config, "--as", "alice", starter="control"
        )
    assert (code, out.strip()) == (0, "approved by alice")
    code, out = await waiting
    assert code == 0, out
    assert f"SUCCEEDED: {version} is live" in out
    # A re-run of the finished release attaches to it and deploys nothing.
    code, out = await run_starter(stack, task_queue, version, "canary", "--config", config, "--wait")
    assert code == 0 and out.startswith(f"attached to sample-api/local@{version}"), out
    workflow_id = temporal.release_workflow_id("sample-api", "local")
    query = f'WorkflowId = "{workflow_id}" AND DeployVersion = "{version}"'
    runs = [w async for w in client.list_workflows(query)]
    assert len(runs) == 1


@pytest.mark.usefixtures("worker")
async def test_a_failed_release_exits_non_zero(stack: Stack, task_queue: str) -> None:
    from infrastructure.local.sample_service import set_behaviour

    version = new_version()
    set_behaviour(stack.layout, version, error_rate=0.5)
    config = str(stack.write_config("- set_weight: 20\n- analysis: {templates: [error-rate]}"))
    code, out = await run_starter(stack, task_queue, version, "canary", "--config", config, "--wait")
    assert code == 1, out
    assert "ROLLED_BACK: analysis error-rate failed" in out


BAD_INPUTS = [
    (["1.2", "canary"], "version '1.2' is malformed"),
    (["../../etc/passwd", "canary"], "is malformed"),
    (["v1.2.3;rm -rf /", "canary"], "is malformed"),
    (["v1.2.3", "Canary"], "unknown strategy 'Canary' (strategy names are lower case)"),
    (["v1.2.3", "teleport"], "unknown strategy 'teleport'"),
    (["v1.2.3", "canary", "--env", "prod"], "unknown environment 'prod'"),
]


async def test_bad_input_is_refused_before_any_side_effect(
    client: Client, stack: Stack, task_queue: str, tmp_path: Path
) -> None:
    before = (
        sorted(i.model_dump_json() for i in InstanceManager(stack.layout).list(probe=False)),
        stack.weights(),
    )
    runs_before = [w.run_id async for w in client.list_workflows()]
    broken = tmp_path / "broken.yaml"
    broken.write_text(stack.config_text("- set_weight: 150"))
    cases = [
        *BAD_INPUTS,
        (["v1.2.3", "canary", "--config", str(broken)], "strategies.canary.steps.0.set_weight"),
    ]
    for args, expected in cases:
        code, out = await run_starter(stack, task_queue, *args)
        assert code == 2, (args, out)
        assert expected in out, (args, out)
    after = (
        sorted(i.model_dump_json() for i in InstanceManager(stack.layout).list(probe=False)),
        stack.weights(),
    )
    assert after == before
    assert [w.run_id async for w in client.list_workflows()] == runs_before
