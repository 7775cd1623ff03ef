"""The DR monitor against a real regional outage: region A dies, the monitor fails over to B on its own."""

from __future__ import annotations

import asyncio
import time

import pytest
from temporalio.client import Client, WorkflowExecutionStatus, WorkflowHandle
from temporalio.service import RPCError

from engine import temporal
from engine.contracts.dr import DrResult, DrStatus
from harness.dr_stack import DrStack
from infrastructure.local import dr as local_dr

pytestmark = pytest.mark.timeout(240)


async def last_run(client: Client, workflow_id: str) -> str | None:
    try:
        return (await client.get_workflow_handle(workflow_id).describe()).run_id
    except RPCError:
        return None


async def failover_after_outage(client: Client, stack: DrStack, failover_id: str) -> WorkflowHandle:
    """Kill region A; the failover run the monitor then starts (not an earlier test's run)."""
    earlier = await last_run(client, failover_id)  # other tests' failovers share the id
    await asyncio.to_thread(local_dr.kill_region, stack.dr, "A")
    deadline = time.monotonic() + 60
    while (run_id := await last_run(client, failover_id)) == earlier:
        assert time.monotonic() < deadline, "the monitor started no failover within 60s"
        await asyncio.sleep(0.2)
    return client.get_workflow_handle(failover_id, run_id=run_id, result_type=DrResult)


async def test_monitor_fails_over_when_region_a_dies_and_loses_no_acknowledged_write(
    stack: DrStack, client: Client, task_queue: str, worker: None, writer: type
) -> None:
    spec = stack.spec(auto_approve=True)
    started = await stack.run_starter(task_queue, "dr_monitor.py", "start", auto_approve=True)
    assert started.returncode == 0, started.stdout + started.stderr
    assert started.stdout.startswith("started DrMonitor dr-monitor-sample-api-local"), started.stdout
    again = await stack.run_starter(task_queue, "dr_monitor.py", "start", auto_approve=True)
    assert again.returncode == 0 and again.stdout.startswith("attached to DrMonitor"), again.stdout
    monitor = client.get_workflow_handle(temporal.dr_workflow_id(spec.app, spec.environment, "monitor"))
    try:
        with writer(stack.dr.global_url) as w:
            await asyncio.sleep(1.5)
            healthy = await stack.run_starter(task_queue, "dr_monitor.py", "status", auto_approve=True)
            assert "primary A" in healthy.stdout and "0 failures in a row" in healthy.stdout, healthy.stdout
            failover_id = temporal.dr_workflow_id(spec.app, spec.environment, "failover")
            failover = await failover_after_outage(client, stack, failover_id)
            result = await asyncio.wait_for(failover.result(), 90)
            await asyncio.sleep(1.0)  # writes go on through B
        assert result.outcome == "succeeded", result.reason
        assert result.report.trigger == "monitor"
        assert result.report.detection_seconds is not None and result.report.rto_seconds is not None
        assert result.status.decisions[0].what  # the failover's own record
        topology = stack.topology()
        assert topology["active"] == "B"
        assert topology["B"][0] == "primary" and topology["B"][3] == "B"
        missing = set(w.acked) - stack.orders("B")
        assert not missing, f"{len(missing)} acknowledged writes missing, e.g. {sorted(missing)[:5]}"

        status = await stack.run_starter(task_queue, "dr_monitor.py", "status", auto_approve=True)
        assert "failover started: dr-failover-sample-api-local" in status.stdout, status.stdout
        assert "primary B" in status.stdout, status.stdout  # it now watches the new primary
    finally:
        stopped = await stack.run_starter(task_queue, "dr_monitor.py", "stop", auto_approve=True)
    assert stopped.returncode == 0, stopped.stdout + stopped.stderr
    deadline = time.monotonic() + 10
    while (await monitor.describe()).status == WorkflowExecutionStatus.RUNNING:
        assert time.monotonic() < deadline
        await asyncio.sleep(0.2)
    gone = await stack.run_starter(task_queue, "dr_monitor.py", "status", auto_approve=True)
    assert gone.returncode == 3 and "no DR monitor runs" in gone.stderr, gone.stdout + gone.stderr


async def test_stopping_the_monitor_leaves_its_failover_running(
    stack: DrStack, client: Client, task_queue: str, worker: None
) -> None:
    """Without auto_approve the monitor's failover waits for an approver; stopping the monitor then
    closes the monitor only, and the approved failover finishes."""
    spec = stack.spec()
    started = await stack.run_starter(task_queue, "dr_monitor.py", "start")
    assert started.returncode == 0, started.stdout + started.stderr
    monitor = client.get_workflow_handle(temporal.dr_workflow_id(spec.app, spec.environment, "monitor"))
    failover = await failover_after_outage(
        client, stack, temporal.dr_workflow_id(spec.app, spec.environment, "failover")
    )
    deadline = time.monotonic() + 60
    while not (await failover.query("status", result_type=DrStatus)).awaiting_approval:
        assert time.monotonic() < deadline, "the failover does not wait for an approver"
        await asyncio.sleep(0.2)

    stopped = await stack.run_starter(task_queue, "dr_monitor.py", "stop", "--reason", "maintenance")
    assert stopped.returncode == 0, stopped.stdout + stopped.stderr
    deadline = time.monotonic() + 15
    while (await monitor.describe()).status == WorkflowExecutionStatus.RUNNING:
        assert time.monotonic() < deadline, "the monitor did not stop"
        await asyncio.sleep(0.2)
    assert (await monitor.describe()).status == WorkflowExecutionStatus.CANCELED
    assert (await failover.describe()).status == WorkflowExecutionStatus.RUNNING

    approved = await stack.run_starter(task_queue, "failover.py", "--approve", "--as", "alice")
    assert approved.returncode == 0, approved.stdout + approved.stderr
    result = await asyncio.wait_for(failover.result(), 90)
    assert result.outcome == "succeeded", result.reason
    assert stack.topology()["active"] == "B"
