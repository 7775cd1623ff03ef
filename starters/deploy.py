"""Start a release, or attach to it if it already runs.

    python starters/deploy.py VERSION STRATEGY [--env local] [--wait] [--dry-run]

One release runs per app and environment at a time (the workflow id is
``release-APP-ENV``). Starting the release that already runs, or that already ran
(a CI re-run of the same tag), attaches to it instead of deploying twice; starting
a different version while one runs is refused, naming the running release.
``--redeploy`` starts a fresh run of a version that ran before.

Exit codes: 0 released (or already live), 1 rolled back or failed,
2 refused input (nothing changed), 3 another release is running.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os

from temporalio.api.enums.v1 import WorkflowExecutionStatus
from temporalio.client import Client, WorkflowHandle
from temporalio.client import WorkflowExecutionStatus as Status
from temporalio.common import (
    SearchAttributePair,
    TypedSearchAttributes,
    WorkflowIDConflictPolicy,
    WorkflowIDReusePolicy,
)
from temporalio.exceptions import WorkflowAlreadyStartedError
from temporalio.service import RPCError, RPCStatusCode

from engine import temporal
from engine.config import InputError, load_config, resolve_release
from engine.contracts import ReleaseResult, ReleaseSpec, ReleaseStatus, describe_step
from starters.common import (
    EXIT_BAD_INPUT,
    EXIT_OK,
    EXIT_REFUSED,
    EXIT_RELEASE_FAILED,
    ProgressPrinter,
    default_identity,
    fail,
    run,
)

WORKFLOW_TYPES = {"canary": "CanaryRelease"}


class Refused(Exception):
    """Another release runs in this environment."""


def print_plan(spec: ReleaseSpec) -> None:
    env = spec.environment
    print(f"DRY RUN: nothing is started. Plan for {spec.release_id} ({spec.strategy}):")
    print(f"  environment {env.name}: providers {env.providers.model_dump()}, {env.instances} instances")
    print(f"  approvers: {', '.join(env.approvers) or 'none'}; approval timeout {env.approval_timeout}")
    print(f"  start {spec.canary.canary_instances} canary instance(s) of {spec.version} beside stable")
    for i, resolved in enumerate(spec.canary.steps, start=1):
        print(f"  step {i}: {describe_step(resolved.step)}")
        for ref in resolved.analyses:
            for m in ref.metrics:
                print(
                    f"      {ref.name}/{m.name}: every {m.interval} x{m.count}, fail if {m.failure_condition}"
                )
    for ref in spec.canary.background_analysis:
        print(f"  background analysis: {ref.name} ({', '.join(m.name for m in ref.metrics)})")
    print(f"  promote: scale {spec.version} to {env.instances}, send it 100%, retire the old version")


async def start_or_attach(
    client: Client, spec: ReleaseSpec, *, redeploy: bool = False, task_queue: str | None = None
) -> tuple[WorkflowHandle, bool]:
    """The handle of this release's run, and whether it was already there."""
    workflow_id = temporal.release_workflow_id(spec.app.name, spec.environment.name)
    for _ in range(3):
        try:
            desc = await client.get_workflow_handle(workflow_id).describe()
        except RPCError as exc:
            if exc.status != RPCStatusCode.NOT_FOUND:
                raise
            desc = None
        if desc is not None and desc.status == Status.RUNNING:
            attrs = desc.typed_search_attributes
            version, strategy = attrs.get(temporal.VERSION), attrs.get(temporal.STRATEGY)
            if version == spec.version and strategy == spec.strategy:
                return client.get_workflow_handle(
                    workflow_id, run_id=desc.run_id, result_type=ReleaseResult
                ), True
            msg = (
                f"release {version} ({strategy}) is running in {spec.environment.name} "
                f"(workflow {workflow_id}, run {desc.run_id}); wait for it, or abort it with: "
                f"python starters/control.py abort --env {spec.environment.name} --reason '...'"
            )
            raise Refused(msg)
        if not redeploy:
            query = f'WorkflowId = "{workflow_id}" AND DeployVersion = "{spec.version}"'
            async for earlier in client.list_workflows(query, limit=1):
                if earlier.status != WorkflowExecutionStatus.WORKFLOW_EXECUTION_STATUS_RUNNING:
                    return (
                        client.get_workflow_handle(
                            workflow_id, run_id=earlier.run_id, result_type=ReleaseResult
                        ),
                        True,
                    )
        try:
            handle = await client.start_workflow(
                WORKFLOW_TYPES[spec.strategy],
                spec,
                id=workflow_id,
                result_type=ReleaseResult,
                task_queue=task_queue or temporal.TASK_QUEUE,
                id_reuse_policy=WorkflowIDReusePolicy.ALLOW_DUPLICATE,
                id_conflict_policy=WorkflowIDConflictPolicy.FAIL,
                search_attributes=TypedSearchAttributes(
                    [
                        SearchAttributePair(temporal.ENVIRONMENT, spec.environment.name),
                        SearchAttributePair(temporal.VERSION, spec.version),
                        SearchAttributePair(temporal.STRATEGY, spec.strategy),
                        SearchAttributePair(temporal.PHASE, "Pending"),
                    ]
                ),
                static_summary=f"{spec.strategy} release of {spec.version} to {spec.environment.name}",
                static_details=f"requested by {spec.requested_by}",
            )
        except WorkflowAlreadyStartedError:
            continue  # another starter won the race: look again
        return handle, False
    msg = f"could not start or attach to {workflow_id}: it keeps changing"
    raise Refused(msg)


async def follow(handle: WorkflowHandle) -> ReleaseResult:
    """Print live progress until the release ends; return its result."""
    printer = ProgressPrinter()
    result_task = asyncio.ensure_future(handle.result())
    while not result_task.done():
        with contextlib.suppress(RPCError):  # the first workflow task may not have run yet
            printer.show(await handle.query("status", result_type=ReleaseStatus))
        await asyncio.wait([result_task], timeout=0.5)
    result = result_task.result()
    printer.show(result.status)
    return result


async def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("version")
    parser.add_argument("strategy")
    parser.add_argument(
        "--env", default=None, help="environment from deploy-code.yaml (default: its default)"
    )
    parser.add_argument("--config", default=None, help="path of deploy-code.yaml")
    parser.add_argument(
        "--wait", action="store_true", help="follow the release; exit non-zero unless it succeeds"
    )
    parser.add_argument(
        "--dry-run",
        action="store_true",
        default=os.environ.get("DRY_RUN", "").lower() in ("1", "true", "yes"),
        help="print the plan and start nothing (also DRY_RUN=true)",
    )
    parser.add_argument(
        "--redeploy", action="store_true", help="start a new run of a version that ran before"
    )
    parser.add_argument("--as", dest="identity", default=default_identity(), help="who requests the release")
    args = parser.parse_args(argv)

    try:
        spec = resolve_release(
            load_config(args.config), args.version, args.strategy, args.env, requested_by=args.identity
        )
    except InputError as exc:
        return fail(str(exc), EXIT_BAD_INPUT)
    if args.dry_run:
        print_plan(spec)
        return EXIT_OK

    client = await temporal.connect()
    try:
        handle, attached = await start_or_attach(client, spec, redeploy=args.redeploy)
    except Refused as exc:
        return fail(str(exc), EXIT_REFUSED)
    verb = "attached to" if attached else "started"
    print(f"{verb} {spec.release_id} ({spec.strategy}): {temporal.ui_link(handle.id, handle.result_run_id)}")
    if not args.wait:
        return EXIT_OK
    result = await follow(handle)
    print(f"{result.outcome.upper()}: {result.reason} (live: {result.live_version})")
    return EXIT_OK if result.outcome in ("succeeded", "no_change") else EXIT_RELEASE_FAILED


if __name__ == "__main__":
    run(main())
