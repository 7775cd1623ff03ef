"""Fail over an environment to a region, fail back, or run a DR drill.

    python starters/failover.py --to B [--env local] [--force] [--yes] [--wait]
    python starters/failover.py --to A --failback [--yes] [--wait]
    python starters/failover.py --to B --drill [--wait]

A failover waits for an approver unless ``--yes`` is given by one (``--as``, default
``$DEPLOY_IDENTITY`` or the user): approve it later with
``temporal workflow update execute --name approve ...`` or ``python starters/failover.py
--approve``. ``--failback`` first rebuilds the target region's database as a standby of
the current primary, and afterwards the old primary as the new one's standby. ``--drill``
fails over to the region and back (no approval), refused while a release runs in the
environment. The workflow refuses, changing nothing, a target that is already primary or
a replication lag over the RPO budget (unless ``--force``).

Exit codes: 0 done (or started, without --wait), 1 failed or undone, 2 refused input
(nothing changed), 3 another release or DR operation is running.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys

from temporalio.client import WorkflowHandle, WorkflowUpdateFailedError
from temporalio.common import WorkflowIDConflictPolicy, WorkflowIDReusePolicy
from temporalio.exceptions import FailureError, WorkflowAlreadyStartedError
from temporalio.service import RPCError

from engine import temporal
from engine.config import load_config
from engine.contracts import Control
from engine.contracts.dr import DrillRequest, DrReport, DrResult, DrSpec, DrStatus, FailoverRequest
from engine.dr_config import check_region, resolve_dr
from engine.errors import InputError
from starters.common import (
    EXIT_BAD_INPUT,
    EXIT_OK,
    EXIT_REFUSED,
    EXIT_RELEASE_FAILED,
    default_identity,
    fail,
    format_approvals,
    format_decision,
)
from starters.signing import identity_of, sign_for

EXIT_BY_OUTCOME = {"succeeded": EXIT_OK, "refused": EXIT_BAD_INPUT}


def format_report(report: DrReport, indent: str = "") -> str:
    def num(value: float | None, unit: str = "s") -> str:
        return "-" if value is None else f"{value:g}{unit}"

    lines = [
        f"{indent}{report.kind} {report.from_region or '?'} -> {report.to_region or '?'}"
        f"{' (drill)' if report.drill else ''}: {report.outcome or 'running'} {report.reason}".rstrip(),
        f"{indent}  detection {num(report.detection_seconds)}  RTO {num(report.rto_seconds)}  "
        f"RPO {num(report.rpo_bytes, ' bytes')} not replayed (lag before: {num(report.rpo_seconds)})",
    ]
    lines += [f"{indent}  {s.seconds:>8.3f}s  {s.step}" for s in report.steps]
    for region, versions in sorted(report.versions.items()):
        served = ", ".join(f"{c} {v}" for c, v in sorted(versions.items())) or "nothing"
        lines.append(f"{indent}  versions in {region}: {served}")
    for part in report.parts:
        lines.append(format_report(part, indent + "    "))
    return "\n".join(lines)


async def follow(handle: WorkflowHandle, out: object = print) -> DrResult:
    """Print decisions as they come, then the result."""
    seen = 0
    task = asyncio.ensure_future(handle.result())
    while not task.done():
        try:
            status: DrStatus = await handle.query("status", result_type=DrStatus)
            for d in status.decisions[seen:]:
                print(format_decision(d))
            seen = len(status.decisions)
        except RPCError:
            pass
        await asyncio.wait([task], timeout=1.0)
    return task.result()


async def start(args: argparse.Namespace, spec: DrSpec, identity: str) -> int:
    client = await temporal.connect()
    if args.drill:
        release = temporal.release_workflow_id(spec.app, spec.environment)
        if await temporal.is_running(client, release):
            return fail(f"a release runs in {spec.environment!r} ({release}): no drill now", EXIT_REFUSED)
        workflow = "DrDrill"
        arg: DrillRequest | FailoverRequest = DrillRequest(
            dr=spec, to_region=args.to, trigger="manual", requested_by=identity
        )
        workflow_id = temporal.dr_workflow_id(spec.app, spec.environment, "drill")
    else:
        workflow = "DrFailover"
        arg = FailoverRequest(
            dr=spec,
            to_region=args.to,
            mode="failback" if args.failback else "failover",
            force=args.force,
            trigger="manual",
            requested_by=identity,
            approved_by=identity if args.yes else None,
        )
        workflow_id = temporal.dr_workflow_id(spec.app, spec.environment, "failover")
    try:
        handle = await client.start_workflow(
            workflow,
            arg,
            id=workflow_id,
            task_queue=temporal.TASK_QUEUE,
            result_type=DrResult,
            id_conflict_policy=WorkflowIDConflictPolicy.FAIL,
            id_reuse_policy=WorkflowIDReusePolicy.ALLOW_DUPLICATE,
        )
    except WorkflowAlreadyStartedError:
        return fail(
            f"{workflow_id} is already running; follow it in {temporal.ui_link(workflow_id, None)}",
            EXIT_REFUSED,
        )
    print(f"started {workflow} {workflow_id}: {temporal.ui_link(workflow_id, handle.result_run_id)}")
    if not args.wait:
        return EXIT_OK
    result = await follow(handle)
    print(format_report(result.report))
    for line in format_approvals(result.status.approvals):
        print(f"  {line}")
    return EXIT_BY_OUTCOME.get(result.outcome, EXIT_RELEASE_FAILED)


async def approve(spec: DrSpec, identity: str, reason: str, key: str | None) -> int:
    client = await temporal.connect()
    handle = client.get_workflow_handle(temporal.dr_workflow_id(spec.app, spec.environment, "failover"))
    control = Control(identity=identity, reason=reason)
    if spec.policy.approvals == "signed":
        assert key is not None  # main() refuses a signed approval without a key
        signature = await sign_for(handle, key, "approve", spec.environment, failover=True)
        control = control.model_copy(update={"signature": signature})
    try:
        print(await handle.execute_update("approve", control, result_type=str))
    except WorkflowUpdateFailedError as exc:
        reason = exc.cause.message if isinstance(exc.cause, FailureError) else str(exc.cause)
        return fail(f"approve refused: {reason}", EXIT_REFUSED)
    return EXIT_OK


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--to", help="the region to fail over to (as named in deploy-code.yaml)")
    parser.add_argument("--env", default=None, help="environment (default: deploy-code.yaml's default)")
    parser.add_argument("--drill", action="store_true", help="fail over to the region and back, measured")
    parser.add_argument("--failback", action="store_true", help="rebuild the target as a standby first")
    parser.add_argument("--force", action="store_true", help="accept lag over the RPO budget or unknown")
    parser.add_argument("--yes", action="store_true", help="approve at start (you must be an approver)")
    parser.add_argument("--approve", action="store_true", help="approve the running failover")
    parser.add_argument("--as", dest="identity", default=None, help="who you are (default: $DEPLOY_IDENTITY)")
    parser.add_argument(
        "--key",
        default=os.environ.get("DEPLOY_SIGNING_KEY"),
        help="your SSH key, where approvals are signed (also DEPLOY_SIGNING_KEY)",
    )
    parser.add_argument("--reason", default="", help="recorded with an approval")
    parser.add_argument("--wait", action="store_true", help="follow until it ends and print the report")
    parser.add_argument("--config", default=None, help="deploy-code.yaml to use")
    args = parser.parse_args(argv)
    try:
        spec = resolve_dr(load_config(args.config), args.env)
        signed = spec.policy.approvals == "signed"
        if signed and args.yes:
            msg = (
                f"approvals in {spec.environment!r} are signed: start without --yes, then --approve --key KEY"
            )
            raise InputError(msg)
        if signed and args.approve and not args.key:
            raise InputError(
                f"approvals in {spec.environment!r} are signed: --approve needs --key (your SSH key)"
            )
        identity = args.identity or (
            identity_of(args.key, spec.policy) if signed and args.approve else default_identity()
        )
        if args.approve:
            return asyncio.run(approve(spec, identity, args.reason, args.key))
        if not args.to:
            raise InputError("--to REGION is required")
        check_region(spec, args.to)
        if args.drill and (args.failback or args.force or args.yes):
            raise InputError("--drill takes no --failback, --force or --yes: a drill goes there and back")
        if args.yes and identity not in spec.approvers:
            raise InputError(
                f"--yes approves as {identity!r}, who is not an approver of {spec.environment!r} "
                f"({', '.join(spec.approvers)}): say who you are with --as NAME (or DEPLOY_IDENTITY)"
            )
    except InputError as exc:
        return fail(str(exc), EXIT_BAD_INPUT)
    return asyncio.run(start(args, spec, identity))


if __name__ == "__main__":
    code = main()
    sys.stdout.flush()
    sys.stderr.flush()
    # Skip interpreter finalisation: the Temporal client's runtime thread can abort it (SIGABRT).
    os._exit(code)
