"""Start, inspect or stop the DR monitor: the workflow that fails over when the primary region dies.

    python starters/dr_monitor.py start  [--env local] [--config deploy-code.yaml]
    python starters/dr_monitor.py status [--env local]
    python starters/dr_monitor.py stop   [--env local] [--reason "maintenance"]

One monitor per app and environment (workflow id ``dr-monitor-APP-ENV``): ``start`` when one
runs already attaches to it and says so. The monitor checks the region users reach every
``health_check_interval``; after ``health_check_failures`` failures in a row it starts
``DrFailover`` to the standby region (waiting for an approver unless ``auto_approve``).
``stop`` cancels the monitor only, never a failover it started.

Exit codes: 0 done, 2 refused input (no DR section, bad config), 3 no monitor runs (status, stop).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys

from temporalio.common import WorkflowIDConflictPolicy, WorkflowIDReusePolicy

from engine import temporal
from engine.config import load_config
from engine.contracts.dr import DrSpec, MonitorRequest, MonitorStatus
from engine.dr_config import resolve_dr
from engine.errors import InputError
from engine.temporal import ConnectionSettingsError
from starters.common import EXIT_BAD_INPUT, EXIT_OK, EXIT_REFUSED, fail


async def main_async(command: str, spec: DrSpec, reason: str) -> int:
    client = await temporal.connect()
    workflow_id = temporal.dr_workflow_id(spec.app, spec.environment, "monitor")
    if command == "start":
        already = await temporal.is_running(client, workflow_id)
        handle = await client.start_workflow(
            "DrMonitor",
            MonitorRequest(dr=spec),
            id=workflow_id,
            task_queue=temporal.TASK_QUEUE,
            id_conflict_policy=WorkflowIDConflictPolicy.USE_EXISTING,
            id_reuse_policy=WorkflowIDReusePolicy.ALLOW_DUPLICATE,
        )
        verb = "attached to" if already else "started"
        print(f"{verb} DrMonitor {workflow_id}: {temporal.ui_link(workflow_id, handle.result_run_id)}")
        print(
            f"  checks {spec.regions} every {spec.health_check_interval}; fails over after "
            f"{spec.health_check_failures} failures in a row"
            f" ({'automatically' if spec.auto_approve else 'an approver approves'})"
        )
        return EXIT_OK
    if not await temporal.is_running(client, workflow_id):
        return fail(f"no DR monitor runs for {spec.app}/{spec.environment} ({workflow_id})", EXIT_REFUSED)
    handle = client.get_workflow_handle(workflow_id)
    if command == "stop":
        await handle.cancel()
        print(f"cancelled {workflow_id}{': ' + reason if reason else ''}")
        return EXIT_OK
    status = await handle.query("status", result_type=MonitorStatus)
    print(
        f"{workflow_id}: primary {status.primary or '?'}, {status.checks} checks, "
        f"{status.consecutive_failures} failures in a row"
    )
    for failure in status.last_failures:
        print(f"  last failure: {failure}")
    for started in status.failovers_started:
        print(f"  failover started: {started}")
    return EXIT_OK


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("command", choices=("start", "status", "stop"))
    parser.add_argument("--env", default=None, help="environment (default: deploy-code.yaml's default)")
    parser.add_argument("--reason", default="", help="printed with stop")
    parser.add_argument("--config", default=None, help="deploy-code.yaml to use")
    args = parser.parse_args(argv)
    try:
        spec = resolve_dr(load_config(args.config), args.env)
    except InputError as exc:
        return fail(str(exc), EXIT_BAD_INPUT)
    try:
        return asyncio.run(main_async(args.command, spec, args.reason))
    except ConnectionSettingsError as exc:
        return fail(str(exc), EXIT_BAD_INPUT)


if __name__ == "__main__":
    code = main()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)  # skip finalisation: the Temporal client's runtime thread can abort it (SIGABRT)
