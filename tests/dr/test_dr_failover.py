"""Failover against real PostgreSQL and real processes: writes move, nothing acknowledged is lost."""

from __future__ import annotations

import asyncio
import time
import uuid

import psycopg
import pytest
from temporalio.client import Client, WorkflowExecutionStatus

from engine import temporal
from engine.contracts.dr import DrResult, DrStatus, FailoverRequest
from harness.dr_stack import DrStack
from harness.support import WorkerProcess

pytestmark = pytest.mark.timeout(180)


async def test_failover_moves_writes_and_loses_nothing_acknowledged(
    stack: DrStack, task_queue: str, worker: None, writer: type
) -> None:
    with writer(stack.dr.global_url) as w:
        await asyncio.sleep(1.0)
        before = len(w.acked)
        result = await stack.run_starter(
            task_queue, "failover.py", "--to", "B", "--yes", "--as", "alice", "--wait"
        )
        await asyncio.sleep(1.0)
    assert result.returncode == 0, result.stdout + result.stderr
    assert before > 0 and len(w.acked) > before, "the writer made progress before and after the failover"
    assert "RTO" in result.stdout

    # B takes writes, A refuses them, and every acknowledged write is in B.
    stack.write_directly("B", 10_000_000)
    with pytest.raises(psycopg.errors.ReadOnlySqlTransaction):
        stack.write_directly("A", 10_000_001)
    missing = set(w.acked) - stack.orders("B")
    assert not missing, f"{len(missing)} acknowledged writes missing, e.g. {sorted(missing)[:5]}"
    topology = stack.topology()
    assert topology["active"] == "B"
    assert topology["B"][0] == "primary" and topology["B"][3] == "B"
    assert topology["A"][1] is True and topology["A"][3] is None  # fenced, its instances write nowhere


async def test_worker_killed_mid_failover_finishes(
    stack: DrStack, client: Client, task_queue: str, worker_process: WorkerProcess
) -> None:
    spec = stack.spec()
    worker_process.start()
    workflow_id = f"dr-kill-{uuid.uuid4().hex[:6]}"
    handle = await client.start_workflow(
        "DrFailover",
        FailoverRequest(dr=spec, to_region="B", requested_by="pytest", approved_by="alice"),
        id=workflow_id,
        task_queue=task_queue,
        result_type=DrResult,
    )
    # Kill the worker once the primary is fenced: mid-way, past the first side effects.
    deadline = time.monotonic() + 60
    while True:
        status = await handle.query("status", result_type=DrStatus)
        if any(d.what.startswith("fenced A") for d in status.decisions):
            break
        assert time.monotonic() < deadline, status
        await asyncio.sleep(0.05)
    worker_process.kill()
    await asyncio.sleep(1.0)
    worker_process.start()
    result = await asyncio.wait_for(handle.result(), 90)
    assert result.outcome == "succeeded", result.reason
    assert result.report.rto_seconds is not None
    topology = stack.topology()
    assert topology["active"] == "B"
    assert topology["B"][0] == "primary" and topology["A"][1] is True
    stack.write_directly("B", 20_000_000)


async def test_bad_input_is_refused_and_changes_nothing(
    stack: DrStack, client: Client, task_queue: str, worker: None
) -> None:
    before = stack.topology()

    # Unknown region: the starter refuses before starting anything.
    unknown = await stack.run_starter(task_queue, "failover.py", "--to", "b", "--yes", "--as", "alice")
    assert (
        unknown.returncode == 2
        and "unknown region 'b'" in unknown.stderr
        and "case-sensitive" in unknown.stderr
    )

    # The region that is already primary: the workflow refuses before any side effect.
    same = await stack.run_starter(task_queue, "failover.py", "--to", "A", "--yes", "--as", "alice", "--wait")
    assert same.returncode == 2, same.stdout + same.stderr
    assert "A is already the primary region" in same.stdout
    assert stack.topology() == before

    # A drill while a release runs in the environment: refused by the starter and by the workflow.
    spec = stack.spec()
    release_id = temporal.release_workflow_id(spec.app, spec.environment)
    release = await client.start_workflow(
        "CanaryRelease", "stand-in", id=release_id, task_queue=f"nobody-{task_queue}"
    )
    try:
        drill = await stack.run_starter(task_queue, "failover.py", "--to", "B", "--drill", "--wait")
        assert drill.returncode == 3 and "a release runs" in drill.stderr, drill.stdout + drill.stderr
        from engine.contracts.dr import DrillRequest

        result = await client.execute_workflow(
            "DrDrill",
            DrillRequest(dr=spec, trigger="schedule"),
            id=f"dr-drill-refused-{uuid.uuid4().hex[:6]}",
            task_queue=task_queue,
            result_type=DrResult,
        )
        assert result.outcome == "refused" and release_id in result.reason
    finally:
        await release.terminate("test cleanup")
    assert (await release.describe()).status == WorkflowExecutionStatus.TERMINATED
    assert stack.topology() == before
