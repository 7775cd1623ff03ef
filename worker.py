"""The engine's worker: runs the release workflows and their activities.

    python worker.py [--task-queue deploy-engine] [--metrics-bind 127.0.0.1:9464]

Connection settings come from Temporal's environment configuration (see
``engine/temporal.py``), so the same worker serves the local dev server, a
self-hosted cluster or Temporal Cloud; run as many replicas as needed on one
task queue. SIGTERM (or Ctrl-C) stops taking new tasks and lets running
activities finish for up to ``--drain-seconds``.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from typing import Any

import structlog
from temporalio.client import Client
from temporalio.runtime import PrometheusConfig, Runtime, TelemetryConfig
from temporalio.worker import Worker

from activities.definitions import ALL as ACTIVITIES
from activities.dr_definitions import ALL as DR_ACTIVITIES
from activities.pipeline_definitions import ALL as PIPELINE_ACTIVITIES
from engine import log as logging_setup
from engine import temporal
from workflows.blue_green import BlueGreenRelease
from workflows.canary import CanaryRelease
from workflows.dr_drill import DrDrill
from workflows.dr_failover import DrFailover
from workflows.dr_monitor import DrMonitor
from workflows.release import Release
from workflows.rolling import RollingRelease

WORKFLOWS = [CanaryRelease, BlueGreenRelease, RollingRelease, Release]
DR_WORKFLOWS = [DrFailover, DrDrill, DrMonitor]
log = structlog.get_logger()


def build_worker(client: Client, task_queue: str, executor: ThreadPoolExecutor, **overrides: Any) -> Worker:
    """The worker with every workflow and activity of the engine (also used by tests)."""
    options: dict[str, Any] = {
        "max_concurrent_activities": 64,
        "graceful_shutdown_timeout": timedelta(seconds=10),
        **overrides,
    }
    return Worker(
        client,
        task_queue=task_queue,
        workflows=[*WORKFLOWS, *DR_WORKFLOWS],
        activities=[*ACTIVITIES, *PIPELINE_ACTIVITIES, *DR_ACTIVITIES],
        activity_executor=executor,
        **options,
    )


async def serve(task_queue: str, metrics_bind: str | None, drain: float) -> None:
    runtime = None
    if metrics_bind:
        runtime = Runtime(telemetry=TelemetryConfig(metrics=PrometheusConfig(bind_address=metrics_bind)))
    client = await temporal.connect(runtime=runtime)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    with ThreadPoolExecutor(max_workers=64, thread_name_prefix="activity") as executor:
        worker = build_worker(
            client, task_queue, executor, graceful_shutdown_timeout=timedelta(seconds=drain)
        )
        async with worker:
            log.info("worker started", task_queue=task_queue, metrics=metrics_bind)
            await stop.wait()
            log.info("worker stopping: draining running activities", seconds=drain)
    log.info("worker stopped")


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--task-queue", default=temporal.TASK_QUEUE)
    default_metrics = f"127.0.0.1:{os.environ.get('DEPLOY_WORKER_METRICS_PORT', '9464')}"
    parser.add_argument(
        "--metrics-bind", default=default_metrics, help="host:port for SDK metrics; '' disables"
    )
    parser.add_argument("--drain-seconds", type=float, default=10.0)
    args = parser.parse_args()
    logging_setup.configure()
    asyncio.run(serve(args.task_queue, args.metrics_bind or None, args.drain_seconds))


if __name__ == "__main__":
    main()
