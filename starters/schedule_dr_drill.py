"""Manage the Temporal Schedule that runs DR drills.

    python starters/schedule_dr_drill.py create [--cron "0 4 * * 1"] [--interval 30s] [--note TEXT]
    python starters/schedule_dr_drill.py update [--cron ...] [--interval ...] [--note ...]
    python starters/schedule_dr_drill.py pause|unpause [--note TEXT]
    python starters/schedule_dr_drill.py trigger | describe | delete

The schedule (id ``dr-drill-schedule-APP-ENV``) starts ``DrDrill`` on the cron of
deploy-code.yaml (``environments.ENV.dr.drill_cron``) or ``--cron`` / ``--interval``;
overlapping runs are skipped. ``describe`` shows the schedule, its recent runs and the
report of the latest drill. Exit codes: 0 done, 2 refused input, 3 the schedule exists
(create) or does not (other actions).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
from datetime import timedelta

from pydantic import TypeAdapter, ValidationError
from temporalio.client import (
    Client,
    Schedule,
    ScheduleActionStartWorkflow,
    ScheduleAlreadyRunningError,
    ScheduleIntervalSpec,
    ScheduleOverlapPolicy,
    SchedulePolicy,
    ScheduleSpec,
    ScheduleState,
    ScheduleUpdate,
    ScheduleUpdateInput,
)
from temporalio.service import RPCError, RPCStatusCode

from engine import temporal
from engine.config import load_config
from engine.contracts import Duration
from engine.contracts.dr import DrillRequest, DrSpec, DrStatus
from engine.dr_config import resolve_dr
from engine.errors import InputError
from starters.common import EXIT_BAD_INPUT, EXIT_OK, EXIT_REFUSED, default_identity, fail
from starters.failover import format_report

ACTIONS = ("create", "update", "pause", "unpause", "trigger", "delete", "describe")


def schedule_id(spec: DrSpec) -> str:
    return f"dr-drill-schedule-{spec.app}-{spec.environment}"


def build(spec: DrSpec, cron: str, interval: timedelta | None, note: str, identity: str) -> Schedule:
    return Schedule(
        action=ScheduleActionStartWorkflow(
            "DrDrill",
            DrillRequest(dr=spec, trigger="schedule", requested_by=f"schedule ({identity})"),
            id=temporal.dr_workflow_id(spec.app, spec.environment, "drill"),
            task_queue=temporal.TASK_QUEUE,
            execution_timeout=timedelta(hours=2),
        ),
        spec=ScheduleSpec(intervals=[ScheduleIntervalSpec(every=interval)])
        if interval
        else ScheduleSpec(cron_expressions=[cron]),
        policy=SchedulePolicy(overlap=ScheduleOverlapPolicy.SKIP),
        state=ScheduleState(note=note),
    )


async def run(action: str, args: argparse.Namespace, spec: DrSpec, identity: str) -> int:
    client: Client = await temporal.connect()
    sid = schedule_id(spec)
    handle = client.get_schedule_handle(sid)
    cron = args.cron or load_config(args.config).environments[spec.environment].dr.drill_cron  # type: ignore[union-attr]
    interval = TypeAdapter(Duration).validate_python(args.interval) if args.interval else None
    note = args.note or f"DR drill of {spec.app}/{spec.environment} ({action} by {identity})"
    try:
        if action == "create":
            try:
                await client.create_schedule(sid, build(spec, cron, interval, note, identity))
            except ScheduleAlreadyRunningError:
                return fail(f"schedule {sid} exists: use update", EXIT_REFUSED)
            print(f"created {sid}: {f'every {interval}' if interval else cron}, overlap SKIP ({note})")
        elif action == "update":
            new = build(spec, cron, interval, note, identity)

            def change(current: ScheduleUpdateInput) -> ScheduleUpdate:
                state = current.description.schedule.state
                new.state.paused = state.paused
                return ScheduleUpdate(schedule=new)

            await handle.update(change)
            print(f"updated {sid}: {f'every {interval}' if interval else cron}")
        elif action == "pause":
            await handle.pause(note=note)
            print(f"paused {sid}")
        elif action == "unpause":
            await handle.unpause(note=note)
            print(f"unpaused {sid}")
        elif action == "trigger":
            await handle.trigger(overlap=ScheduleOverlapPolicy.SKIP)
            print(f"triggered {sid}")
        elif action == "delete":
            await handle.delete()
            print(f"deleted {sid}")
        else:
            await describe(client, sid)
    except RPCError as exc:
        if exc.status == RPCStatusCode.NOT_FOUND:
            return fail(f"schedule {sid} does not exist: create it first", EXIT_REFUSED)
        raise
    return EXIT_OK


async def describe(client: Client, sid: str) -> None:
    desc = await client.get_schedule_handle(sid).describe()
    sched, info = desc.schedule, desc.info
    spec = sched.spec
    when = ", ".join(spec.cron_expressions) or ", ".join(f"every {i.every}" for i in spec.intervals)
    print(f"{sid}: {when}; {'PAUSED' if sched.state.paused else 'active'}; note: {sched.state.note}")
    print(f"  next runs: {', '.join(f'{t:%Y-%m-%d %H:%M:%S}' for t in info.next_action_times[:3])}")
    print(f"  runs so far: {info.num_actions} (skipped for overlap: {info.num_actions_skipped_overlap})")
    for action in info.recent_actions[-5:]:
        wid = getattr(action.action, "workflow_id", "?")
        print(f"  {action.scheduled_at:%Y-%m-%d %H:%M:%S} {wid}")
    if info.recent_actions:
        last = getattr(info.recent_actions[-1].action, "workflow_id", None)
        if last:
            try:
                status = await client.get_workflow_handle(last).query("status", result_type=DrStatus)
            except RPCError:
                return
            if status.report is not None:
                print(format_report(status.report, "  "))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("action", choices=ACTIONS)
    parser.add_argument("--env", default=None, help="environment (default: deploy-code.yaml's default)")
    parser.add_argument("--cron", default=None, help="cron expression (default: dr.drill_cron)")
    parser.add_argument("--interval", default=None, help="run every DURATION instead of the cron (e.g. 30s)")
    parser.add_argument("--note", default="", help="kept on the schedule (why it was paused, ...)")
    parser.add_argument("--as", dest="identity", default=None, help="who you are (default: $DEPLOY_IDENTITY)")
    parser.add_argument("--config", default=None, help="deploy-code.yaml to use")
    args = parser.parse_args(argv)
    identity = args.identity or default_identity()
    try:
        spec = resolve_dr(load_config(args.config), args.env)
        if args.interval:
            try:
                TypeAdapter(Duration).validate_python(args.interval)
            except ValidationError:
                raise InputError(
                    f"--interval {args.interval!r} is not a duration such as 30s or 1h"
                ) from None
    except InputError as exc:
        return fail(str(exc), EXIT_BAD_INPUT)
    return asyncio.run(run(args.action, args, spec, identity))


if __name__ == "__main__":
    code = main()
    sys.stdout.flush()
    sys.stderr.flush()
    # Skip interpreter finalisation: the Temporal client's runtime thread can abort it (SIGABRT).
    os._exit(code)
