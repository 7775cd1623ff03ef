"""The worker serves the SDK's and the engine's metrics on a Prometheus port."""

from __future__ import annotations

import asyncio
import socket
import time

import httpx
from temporalio.client import Client

from engine.client import start_or_attach
from engine.contracts import Control, ReleaseResult, ReleaseStatus
from harness.stack import Stack, new_version
from harness.support import WorkerProcess


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def scrape(port: int, name: str) -> dict[str, float]:
    """{labels: value} of one metric on the worker's /metrics."""
    text = httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=5).text
    return {
        line.split("{", 1)[1].rsplit("}", 1)[0]: float(line.rsplit(" ", 1)[1])
        for line in text.splitlines()
        if line.startswith(name + "{")
    }


async def test_worker_exports_release_metrics(client: Client, stack: Stack, task_queue: str) -> None:
    port = free_port()
    worker = WorkerProcess(
        stack.env(task_queue), stack.tmp / f"metrics-{task_queue}.log", task_queue, f"127.0.0.1:{port}"
    )
    worker.start()
    try:
        spec = stack.spec(new_version(), "- set_weight: 20\n- pause: {}\n- set_weight: 40")
        handle, _ = await start_or_attach(client, spec, task_queue=task_queue)
        deadline = time.monotonic() + 60
        while not (await handle.query("status", result_type=ReleaseStatus)).awaiting_approval:
            assert time.monotonic() < deadline
            await asyncio.sleep(0.2)
        waiting = await asyncio.to_thread(scrape, port, "deploy_awaiting_approval_seconds")
        assert any('environment="local"' in labels for labels in waiting), waiting
        weights = await asyncio.to_thread(scrape, port, "deploy_traffic_weight_percent")
        assert sorted(round(v) for k, v in weights.items()) == [20, 80], weights
        await handle.execute_update("approve", Control(identity="alice", reason="metrics"))
        result: ReleaseResult = await handle.result()
        assert result.outcome == "succeeded"
        await asyncio.sleep(0.5)
        releases = await asyncio.to_thread(scrape, port, "deploy_release_total")
        assert [v for k, v in releases.items() if 'outcome="succeeded"' in k] == [1.0], releases
        waiting = await asyncio.to_thread(scrape, port, "deploy_awaiting_approval_seconds")
        assert list(waiting.values()) == [0.0]  # reset once approved
        sdk = await asyncio.to_thread(scrape, port, "temporal_workflow_completed")
        assert sum(sdk.values()) >= 1
    finally:
        worker.stop()
