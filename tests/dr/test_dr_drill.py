"""DR drills: over and back, leaving the platform as found; and a Schedule that really fires one."""

from __future__ import annotations

import asyncio
import time

import pytest
from temporalio.client import Client

from engine.contracts.dr import DrResult
from harness.dr_stack import DrStack

pytestmark = pytest.mark.timeout(240)


async def test_drill_leaves_platform_as_found(
    stack: DrStack, task_queue: str, worker: None, writer: type
) -> None:
    with writer(stack.dr.global_url, start=1_000_000) as w:
        result = await stack.run_starter(
            task_queue, "failover.py", "--to", "B", "--drill", "--wait", limit=180
        )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "drill" in result.stdout and "RTO" in result.stdout
    assert stack.is_home(), stack.topology()  # A primary and serving, B its synchronous streaming standby
    missing = set(w.acked) - stack.orders("A")
    assert w.acked and not missing, f"{len(missing)} acknowledged writes missing"
    with stack.conn("B") as conn:
        assert conn.execute("SELECT pg_is_in_recovery()").fetchone() == (True,)
    assert stack.orders("B") >= set(w.acked)  # in sync: the standby has every write too


async def test_schedule_created_by_the_starter_fires_a_drill(
    stack: DrStack, client: Client, task_queue: str, worker: None
) -> None:
    created = await stack.run_starter(
        task_queue, "schedule_dr_drill.py", "create", "--interval", "3s", "--note", "test"
    )
    assert created.returncode == 0, created.stderr
    sid = "dr-drill-schedule-sample-api-local"
    try:
        handle = client.get_schedule_handle(sid)
        deadline = time.monotonic() + 30
        while not (desc := await handle.describe()).info.recent_actions:
            assert time.monotonic() < deadline, "the schedule did not fire"
            await asyncio.sleep(0.5)
        paused = await stack.run_starter(
            task_queue, "schedule_dr_drill.py", "pause", "--note", "one is enough"
        )
        assert paused.returncode == 0, paused.stderr
        workflow_id = desc.info.recent_actions[0].action.workflow_id  # type: ignore[attr-defined]
        result = await asyncio.wait_for(
            client.get_workflow_handle(workflow_id, result_type=DrResult).result(), 180
        )
        assert result.outcome == "succeeded", result.reason
        assert result.report.trigger == "schedule" and len(result.report.parts) == 2
        described = await stack.run_starter(task_queue, "schedule_dr_drill.py", "describe")
        assert (
            described.returncode == 0 and "PAUSED" in described.stdout and "one is enough" in described.stdout
        )
        assert (await handle.describe()).schedule.policy.overlap.name == "SKIP"
    finally:
        deleted = await stack.run_starter(task_queue, "schedule_dr_drill.py", "delete")
    assert deleted.returncode == 0, deleted.stderr
    assert stack.is_home(), stack.topology()
