"""The DR drill gauge is derived from Temporal, so a worker restart does not reset it.

A real Temporal dev server (its own, stopped at the end) holds completed ``DrDrill`` runs made by
a stand-in workflow of that name (the real drill needs the two-region platform; the gauge reads
only what any drill leaves in Temporal: its type, input, result and close time). Then:

- ``DrillGauge.last_successes`` returns, per environment, the close time of the newest drill that
  completed with outcome ``succeeded`` (a newer failed drill does not count);
- ``python worker.py`` exports it on its metrics endpoint at start, and again after a restart.
"""

from __future__ import annotations

import asyncio
import os
import time
import uuid
from collections.abc import AsyncIterator
from datetime import datetime

import httpx
import pytest
from temporalio import workflow
from temporalio.client import Client
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import UnsandboxedWorkflowRunner, Worker

from engine.config import load_config
from engine.contracts import Phase
from engine.contracts.dr import DrillRequest, DrReport, DrResult, DrStatus
from engine.dr_config import resolve_dr
from engine.drill_gauge import GAUGE, DrillGauge
from harness.support import WorkerProcess, free_port
from infrastructure.local.temporal_server import temporal_binary


@workflow.defn(name="DrDrill", sandboxed=False)
class StandInDrill:
    """Ends at once with the outcome named in ``requested_by`` ("outcome:failed")."""

    @workflow.run
    async def run(self, req: DrillRequest) -> DrResult:
        outcome = req.requested_by.removeprefix("outcome:")
        report = DrReport(kind="drill", drill=True, outcome=outcome, started_at=workflow.now())  # type: ignore[arg-type]
        phase = Phase.SUCCEEDED if outcome == "succeeded" else Phase.FAILED
        status = DrStatus(operation=f"DR drill of {req.dr.app}/{req.dr.environment}", phase=phase)
        return DrResult(outcome=outcome, reason="stand-in", report=report, status=status)  # type: ignore[arg-type]


@pytest.fixture(scope="module")
async def server() -> AsyncIterator[WorkflowEnvironment]:
    env = await WorkflowEnvironment.start_local(
        data_converter=pydantic_data_converter,
        dev_server_existing_path=temporal_binary(),
        ui=False,
    )
    try:
        yield env
    finally:
        await env.shutdown()


async def run_drill(client: Client, task_queue: str, environment: str, outcome: str) -> datetime:
    """A completed DrDrill run of ``environment`` ending in ``outcome``; returns its close time."""
    dr = resolve_dr(load_config(), "local").model_copy(update={"environment": environment})
    request = DrillRequest(dr=dr, trigger="schedule", requested_by=f"outcome:{outcome}")
    handle = await client.start_workflow(
        "DrDrill",
        request,
        id=f"dr-drill-sample-api-{environment}-{uuid.uuid4().hex[:8]}",
        task_queue=task_queue,
    )
    await handle.result()
    closed = (await handle.describe()).close_time
    assert closed is not None
    return closed


async def visible(client: Client, count: int) -> None:
    """Wait until visibility lists ``count`` completed drills (it is updated asynchronously)."""
    deadline = time.monotonic() + 30
    query = 'WorkflowType = "DrDrill" AND ExecutionStatus = "Completed"'
    while (await client.count_workflows(query)).count < count:
        assert time.monotonic() < deadline, "visibility never listed the drills"
        await asyncio.sleep(0.2)


@pytest.fixture(scope="module")
async def drills(server: WorkflowEnvironment) -> dict[str, datetime]:
    """Drills in order: local ok, local ok, local failed, staging ok. The expected gauge values."""
    client, task_queue = server.client, f"drills-{uuid.uuid4().hex[:8]}"
    async with Worker(
        client, task_queue=task_queue, workflows=[StandInDrill], workflow_runner=UnsandboxedWorkflowRunner()
    ):
        await run_drill(client, task_queue, "local", "succeeded")
        last_local = await run_drill(client, task_queue, "local", "succeeded")
        await run_drill(client, task_queue, "local", "failed")
        staging = await run_drill(client, task_queue, "staging", "succeeded")
    await visible(client, 4)
    return {"local": last_local, "staging": staging}


async def test_last_successes_are_the_newest_succeeded_drill_per_environment(
    server: WorkflowEnvironment, drills: dict[str, datetime]
) -> None:
    gauge = DrillGauge(server.client)
    assert await gauge.last_successes() == drills
    assert await gauge.last_successes() == drills  # again, from what it remembered of each run


def scrape(port: int) -> dict[str, float]:
    """environment -> value of the drill gauge series the worker exports without workflow labels."""
    text = httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=5).text
    found = {}
    for line in text.splitlines():
        if line.startswith(GAUGE + "{") and "workflow_type" not in line:
            labels = dict(kv.split("=", 1) for kv in line.split("{", 1)[1].split("}", 1)[0].split(","))
            found[labels["environment"].strip('"')] = float(line.rsplit(" ", 1)[1])
    return found


async def exported(port: int, expected: dict[str, float]) -> dict[str, float]:
    deadline = time.monotonic() + 60
    while True:
        try:
            seen = await asyncio.to_thread(scrape, port)
        except httpx.HTTPError:
            seen = {}
        if seen == expected or time.monotonic() > deadline:
            return seen
        await asyncio.sleep(0.3)


async def test_the_worker_exports_it_at_start_and_again_after_a_restart(
    server: WorkflowEnvironment, drills: dict[str, datetime], tmp_path_factory: pytest.TempPathFactory
) -> None:
    tmp = tmp_path_factory.mktemp("drill-gauge")
    expected = {env: closed.timestamp() for env, closed in drills.items()}
    env = {"TEMPORAL_ADDRESS": server.client.service_client.config.target_host}
    task_queue = f"worker-{uuid.uuid4().hex[:8]}"
    port = free_port()
    worker = WorkerProcess({**os.environ, **env}, tmp / "worker.log", task_queue, f"127.0.0.1:{port}")
    try:
        worker.start()
        assert await exported(port, expected) == expected, (tmp / "worker.log").read_text()[-2000:]
        worker.kill()  # SIGKILL: no goodbye, as a crashed or replaced pod
        worker.start()
        assert await exported(port, expected) == expected, (tmp / "worker.log").read_text()[-2000:]
    finally:
        worker.stop()
