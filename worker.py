"""The engine's worker: runs the release workflows and their activities.

    python worker.py [--task-queue deploy-engine] [--metrics-bind 127.0.0.1:9464]
        [--max-cached-workflows 1000] [--max-concurrent-workflow-tasks 100]
        [--max-concurrent-activities 64]

Connection settings come from Temporal's environment configuration (see
``engine/temporal.py``), so the same worker serves the local dev server, a
self-hosted cluster or Temporal Cloud; run as many replicas as needed on one
task queue. SIGTERM (or Ctrl-C) stops taking new tasks and lets running
activities finish for up to ``--drain-seconds``.

Capacity (each also from the environment variable named in brackets):

- ``--max-cached-workflows`` [DEPLOY_WORKER_MAX_CACHED_WORKFLOWS], default 1000:
  releases kept in memory between their steps. A release that is not cached is
  replayed from its history at its next step (correct, but CPU). Keep it at or
  above the releases one replica holds; memory grows with it (bench/scale.py
  measures the worker's RSS per release).
- ``--max-concurrent-workflow-tasks`` [DEPLOY_WORKER_MAX_CONCURRENT_WORKFLOW_TASKS],
  default 100: workflow tasks run at once.
- ``--max-concurrent-activities`` [DEPLOY_WORKER_MAX_CONCURRENT_ACTIVITIES], default 64:
  activities run at once; also the size of the activity thread pool (activities
  are synchronous and mostly wait on I/O).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
from collections.abc import AsyncIterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import asynccontextmanager
from datetime import timedelta
from typing import Any

import structlog
from temporalio.client import Client
from temporalio.runtime import PrometheusConfig, Runtime, TelemetryConfig
from temporalio.worker import Worker
from temporalio.worker.workflow_sandbox import SandboxedWorkflowRunner, SandboxRestrictions

from activities.definitions import ALL as ACTIVITIES
from activities.dr_definitions import ALL as DR_ACTIVITIES
from activities.pipeline_definitions import ALL as PIPELINE_ACTIVITIES
from engine import drill_gauge, temporal, tracing
from engine import log as logging_setup
from workflows.blue_green import BlueGreenRelease
from workflows.canary import CanaryRelease
from workflows.dr_drill import DrDrill
from workflows.dr_failover import DrFailover
from workflows.dr_monitor import DrMonitor
from workflows.release import Release
from workflows.rolling import RollingRelease
from workflows.train import PromotionTrain

WORKFLOWS = [CanaryRelease, BlueGreenRelease, RollingRelease, Release, PromotionTrain]
WORKFLOW_RUNNER = SandboxedWorkflowRunner(
    restrictions=SandboxRestrictions.default.with_passthrough_modules("cryptography", "opentelemetry")
)
"""The workflow sandbox, with ``cryptography`` passed through: signed approvals are verified inside
update handlers (engine/approvals.py), and its Rust bindings import lazily at call time, which the
sandbox's re-importing would break (the process aborts). ``opentelemetry`` too: the tracing
interceptor's workflow side uses the worker's own context and tracer (engine/tracing.py)."""
DR_WORKFLOWS = [DrFailover, DrDrill, DrMonitor]
log = structlog.get_logger()

MAX_CONCURRENT_ACTIVITIES = 64
CAPACITY_OPTIONS = {
    # option name: (environment variable, default)
    "max_cached_workflows": ("DEPLOY_WORKER_MAX_CACHED_WORKFLOWS", 1000),
    "max_concurrent_workflow_tasks": ("DEPLOY_WORKER_MAX_CONCURRENT_WORKFLOW_TASKS", 100),
    "max_concurrent_activities": ("DEPLOY_WORKER_MAX_CONCURRENT_ACTIVITIES", MAX_CONCURRENT_ACTIVITIES),
}
"""Worker capacity options (see the module docstring), their variables and defaults."""


def build_worker(client: Client, task_queue: str, executor: ThreadPoolExecutor, **overrides: Any) -> Worker:
    """The worker with every workflow and activity of the engine (also used by tests)."""
    options: dict[str, Any] = {
        "max_concurrent_activities": MAX_CONCURRENT_ACTIVITIES,
        "graceful_shutdown_timeout": timedelta(seconds=10),
        **overrides,
    }
    return Worker(
        client,
        task_queue=task_queue,
        workflow_runner=WORKFLOW_RUNNER,
        workflows=[*WORKFLOWS, *DR_WORKFLOWS],
        activities=[*ACTIVITIES, *PIPELINE_ACTIVITIES, *DR_ACTIVITIES],
        activity_executor=executor,
        **options,
    )


@asynccontextmanager
async def running(client: Client, task_queue: str, **overrides: Any) -> AsyncIterator[Worker]:
    """The engine's worker, with its own activity threads, running until the block ends
    (tests, benchmarks, scripts; ``serve`` is the process's own loop)."""
    threads = overrides.get("max_concurrent_activities", MAX_CONCURRENT_ACTIVITIES)
    with ThreadPoolExecutor(max_workers=threads) as executor:
        async with build_worker(client, task_queue, executor, **overrides) as worker:
            yield worker


def capacity_from_environment(environ: dict[str, str] | None = None) -> dict[str, int]:
    """Capacity options from their environment variables (defaults where unset)."""
    environ = dict(os.environ if environ is None else environ)
    options = {}
    for name, (variable, default) in CAPACITY_OPTIONS.items():
        raw = environ.get(variable, "").strip()
        try:
            value = int(raw) if raw else default
        except ValueError:
            msg = f"{variable}={raw!r} is not a whole number"
            raise SystemExit(msg) from None
        if value < 1:
            msg = f"{variable}={value}: must be at least 1"
            raise SystemExit(msg)
        options[name] = value
    return options


async def serve(
    task_queue: str, metrics_bind: str | None, drain: float, capacity: dict[str, int] | None = None
) -> None:
    runtime = None
    if metrics_bind:
        runtime = Runtime(telemetry=TelemetryConfig(metrics=PrometheusConfig(bind_address=metrics_bind)))
    tracing.configure("deploy-code-worker")  # on when OTEL_EXPORTER_OTLP_ENDPOINT is set
    client = await temporal.connect(runtime=runtime)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    capacity = capacity or capacity_from_environment()
    threads = capacity["max_concurrent_activities"]
    with ThreadPoolExecutor(max_workers=threads, thread_name_prefix="activity") as executor:
        worker = build_worker(
            client, task_queue, executor, graceful_shutdown_timeout=timedelta(seconds=drain), **capacity
        )
        async with worker:
            log.info("worker started", task_queue=task_queue, metrics=metrics_bind, **capacity)
            # The drill gauge from Temporal (a restart must not forget the last drill: DRDrillNotRun).
            drills = runtime and asyncio.create_task(drill_gauge.export(client, runtime.metric_meter))
            await stop.wait()
            if drills:
                drills.cancel()
            log.info("worker stopping: draining running activities", seconds=drain)
    tracing.shutdown()  # the spans still batched
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
    capacity = capacity_from_environment()
    for name, (variable, _) in CAPACITY_OPTIONS.items():
        parser.add_argument(
            "--" + name.replace("_", "-"),
            type=int,
            default=capacity[name],
            help=f"(env {variable}; default {capacity[name]})",
        )
    args = parser.parse_args()
    for name in CAPACITY_OPTIONS:
        if getattr(args, name) < 1:
            parser.error(f"--{name.replace('_', '-')} must be at least 1")
    logging_setup.configure()
    chosen = {name: getattr(args, name) for name in CAPACITY_OPTIONS}
    asyncio.run(serve(args.task_queue, args.metrics_bind or None, args.drain_seconds, chosen))


if __name__ == "__main__":
    main()
