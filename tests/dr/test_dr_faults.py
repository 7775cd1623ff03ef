"""DR against real faults: the standby's PostgreSQL down, the Temporal server restarted mid-failover."""

from __future__ import annotations

import asyncio
import time
import uuid

import psycopg
import pytest
from temporalio.client import Client

from engine.contracts.dr import DrResult, DrStatus, FailoverRequest
from harness.dr_stack import DrStack
from harness.support import retrying
from infrastructure.local import dr as local_dr

pytestmark = pytest.mark.timeout(180)


async def test_failover_to_a_dead_standby_is_refused_and_changes_nothing(
    stack: DrStack, task_queue: str, worker: None
) -> None:
    before = stack.topology()
    standby = local_dr.node(stack.dr, "B")
    standby.stop()
    try:
        result = await stack.run_starter(
            task_queue, "failover.py", "--to", "B", "--yes", "--as", "alice", "--wait"
        )
        out = result.stdout + result.stderr
        assert result.returncode == 2, out
        assert "the standby database in B is unreachable" in out
        after = stack.topology()
        assert after["active"] == "A"
        assert after["A"][0:2] == ("primary", False) and after["A"][3] == "A"  # A still writes, unfenced
        assert after["B"][3] == "B"
    finally:
        standby.start()
    deadline = time.monotonic() + 60
    while stack.topology() != before:  # B streams again (synchronous), as before the fault
        assert time.monotonic() < deadline, stack.topology()
        await asyncio.sleep(0.5)
    stack.write_directly("A", 30_000_000)


async def test_temporal_server_restart_mid_failover_finishes_the_failover(
    stack: DrStack, client: Client, task_queue: str, worker: None
) -> None:
    """The dev server stops (same SQLite file) right after A is fenced, mid-failover; the run finishes."""
    handle = await client.start_workflow(
        "DrFailover",
        FailoverRequest(dr=stack.spec(), to_region="B", requested_by="pytest", approved_by="alice"),
        id=f"dr-restart-{uuid.uuid4().hex[:6]}",
        task_queue=task_queue,
        result_type=DrResult,
    )
    deadline = time.monotonic() + 60
    while not any(
        d.what.startswith("fenced A") for d in (await handle.query("status", result_type=DrStatus)).decisions
    ):
        assert time.monotonic() < deadline
        await asyncio.sleep(0.05)
    server = stack.temporal_server()
    assert server.address == stack.temporal_address
    try:
        server.stop()
        assert not server.running()
        await asyncio.sleep(2.0)  # the worker's activities (catch up, promote) finish while it is down
    finally:
        server.start(timeout=60)
    restarted_at = time.time()

    result = await asyncio.wait_for(retrying(handle.result, 150), 150)
    history = await handle.fetch_history()
    finished = history.events[-1]
    assert finished.event_time.ToSeconds() > restarted_at, "the failover was over before the restart"
    assert result.outcome == "succeeded", result.reason
    assert result.report.rto_seconds is not None
    topology = stack.topology()
    assert topology["active"] == "B"
    assert topology["B"][0] == "primary" and topology["B"][3] == "B"
    assert topology["A"][1] is True  # fenced
    stack.write_directly("B", 40_000_000)
    with pytest.raises(psycopg.errors.ReadOnlySqlTransaction):
        stack.write_directly("A", 40_000_001)
