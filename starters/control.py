"""Drive the running release of an environment.

    python starters/control.py approve|promote|resume|pause|abort|status [--env local]
                               [--as NAME] [--key SSH_KEY] [--reason TEXT] [--version V] [--json]
    python starters/control.py history [--env local] [--limit 20] [--json]
    python starters/control.py undo [--env local] --as NAME|--key KEY --reason TEXT [--strategy S] [--wait]
    python starters/control.py status|abort --train [staging,production] [--reason TEXT] [--json]

``history`` lists the environment's releases, newest first: when, version, strategy, how each
ended (the engine's phase) and how long it took, from Temporal's visibility store.

approve, promote and resume move a release forward and need an approver listed
for the environment in deploy-code.yaml; pause and abort stop it and anyone may
send them. Each is a Temporal update: the answer says at once whether it was
accepted. The same controls work from the CLI:

    temporal workflow update execute --workflow-id release-sample-api-local \\
        --name approve --input '{"identity": "alice", "reason": "dashboards look fine"}'

``override-window --reason TEXT`` lets a release run outside its environment's deploy windows
(``deploy_windows``): one waiting for its window starts now, one paused when its window closed goes
on, and windows no longer pause it. It needs an approver, like approve (signed where approvals are).

Where an environment's approvals are signed (``approvals: signed``), approve, promote and
resume carry your SSH signature over this very action of this very run: pass ``--key`` (your
private key, or its .pub with the key in ssh-agent; also DEPLOY_SIGNING_KEY). ``--as`` then
defaults to the approver whose allowed_signers entry holds the key. For the ``temporal`` CLI,
``python starters/sign_approval.py approve --env E --key K`` prints the ``--input`` JSON.

``undo`` returns the environment to the previous live version of every component, by the fast path
within its ``rollback_window``; it needs an approver like promote (``starters/undo.py``).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
from collections.abc import Awaitable, Callable

from temporalio.client import (
    Client,
    WorkflowHandle,
    WorkflowUpdateFailedError,
)
from temporalio.exceptions import FailureError
from temporalio.service import RPCError

from engine import temporal
from engine.client import control_target, run_result
from engine.config import load_config, resolve_environment
from engine.contracts import Control, ReleaseStatus
from engine.errors import InputError
from starters import train, undo
from starters.common import (
    EXIT_BAD_INPUT,
    EXIT_OK,
    EXIT_REFUSED,
    default_identity,
    fail,
    format_approvals,
    format_decision,
    format_evidence,
    format_status,
    run,
)
from starters.pipeline import format_report
from starters.signing import identity_of, sign_for

ACTIONS = ("approve", "promote", "resume", "pause", "abort", "status", "history", "undo", "override-window")
SIGNED = ("approve", "promote", "resume", "undo", "override-window")
"""Actions that need the approver's signature where approvals are signed (pause and abort do not)."""
ANSWER_WITHIN = 30.0
"""Seconds to wait for a worker to run the update."""


def print_status(status: ReleaseStatus, *, as_json: bool, approvers: list[str] | None = None) -> None:
    if as_json:
        print(json.dumps(status.model_dump(mode="json"), indent=2))
        return
    print(f"{status.release} ({status.strategy})")
    print(format_status(status))
    for d in status.decisions:
        print(format_decision(d))
    for d in status.refused:
        print("  REFUSED" + format_decision(d))
    if not status.stages:  # else the report lists them
        for line in format_approvals(status.approvals, status.approvals_needed, approvers or []):
            print(line)
    if status.evidence:
        print("EVIDENCE (each judge's tests: canary against baseline or SLO)")
        for e in status.evidence:
            print(format_evidence(e))
    if status.stages:
        print(format_report(status))


async def show_status(handle: WorkflowHandle, *, as_json: bool, approvers: list[str]) -> None:
    """The release's status and, while its strategy runs as a child workflow, the child's."""
    status = await handle.query("status", result_type=ReleaseStatus)
    print_status(status, as_json=as_json, approvers=approvers)
    if status.child_workflow_id and not as_json:
        child = handle._client.get_workflow_handle(status.child_workflow_id)
        print(f"\nNOW RUNNING ({status.child_workflow_id})")
        print_status(
            await child.query("status", result_type=ReleaseStatus), as_json=False, approvers=approvers
        )


async def show_history(client: Client, workflow_id: str, *, limit: int, as_json: bool) -> None:
    """The runs of the environment's release workflow, newest first."""
    rows = []
    runs = [ran async for ran in client.list_workflows(f'WorkflowId = "{workflow_id}"', limit=limit)]
    results = await asyncio.gather(*(run_result(client, workflow_id, ran) for ran in runs))
    for ran, result in zip(runs, results, strict=True):
        approved = sorted({a.by for a in result.status.approvals}) if result else []
        attrs = ran.typed_search_attributes
        took = (ran.close_time - ran.start_time).total_seconds() if ran.close_time else None
        rows.append(
            {
                "started": ran.start_time.strftime("%Y-%m-%d %H:%M:%S"),
                "version": attrs.get(temporal.VERSION) or "?",
                "strategy": attrs.get(temporal.STRATEGY) or "?",
                "phase": attrs.get(temporal.PHASE) or "?",
                "status": ran.status.name.lower() if ran.status else "?",
                "seconds": None if took is None else round(took, 1),
                "approved_by": approved,
                "run_id": ran.run_id,
            }
        )
    if as_json:
        print(json.dumps(rows, indent=2))
        return
    if not rows:
        print(f"no release has run as {workflow_id} yet")
        return
    head = f"{'STARTED (UTC)':<19}  {'VERSION':<14} {'STRATEGY':<10} {'PHASE':<16} {'TOOK':>7}"
    print(f"{head}  {'APPROVED BY':<16} RUN")
    for r in rows:
        duration = "running" if r["seconds"] is None else f"{r['seconds']:g}s"
        phase = r["phase"] if r["status"] in ("completed", "running") else f"{r['phase']} ({r['status']})"
        what = f"{r['version']:<14} {r['strategy']:<10} {phase:<16}"
        names = r["approved_by"]
        who = (",".join(names) if isinstance(names, list) else "") or "-"
        print(f"{r['started']:<19}  {what} {duration:>7}  {who:<16} {r['run_id']}")


async def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("action", choices=ACTIONS)
    parser.add_argument("--env", default=None)
    parser.add_argument("--config", default=None)
    parser.add_argument("--as", dest="identity", default=None, help="who you are (default: $DEPLOY_IDENTITY)")
    parser.add_argument(
        "--key",
        default=os.environ.get("DEPLOY_SIGNING_KEY"),
        help="your SSH key (private key, or .pub with the key in ssh-agent), where approvals are signed "
        "(also DEPLOY_SIGNING_KEY)",
    )
    parser.add_argument("--reason", default="")
    parser.add_argument("--version", default=None, help="refuse unless this version is the running release")
    parser.add_argument("--json", action="store_true", help="status or history as JSON")
    parser.add_argument("--limit", type=int, default=20, help="history: how many releases (newest first)")
    parser.add_argument(
        "--train",
        nargs="?",
        const="",
        default=None,
        metavar="ENV,ENV",
        help="status or abort of a promotion train (its environments; alone: the promotion section's)",
    )
    parser.add_argument("--strategy", default=None, help="undo outside the rollback window: how")
    parser.add_argument("--wait", action="store_true", help="undo: follow it to its end")
    args = parser.parse_args(argv)
    if args.train is not None:
        return await _train(args)
    try:
        config = load_config(args.config)
        env = resolve_environment(config, args.env)
        signed = env.policy.approvals == "signed" and args.action in SIGNED
        if signed and not args.key:
            msg = (
                f"approvals in {env.name!r} are signed: {args.action} needs your SSH key "
                "(--key ~/.ssh/id_ed25519, or DEPLOY_SIGNING_KEY)"
            )
            raise InputError(msg)
        identity = args.identity or (identity_of(args.key, env.policy) if signed else default_identity())
        control = Control(identity=identity, reason=args.reason, version=args.version)
        if args.action == "undo":
            undo.check(env, control, args.strategy)
    except (InputError, ValueError) as exc:
        return fail(str(exc), EXIT_BAD_INPUT)

    client = await temporal.connect()
    if args.action == "undo":
        return await undo.undo(client, config, env, args, control)
    handle = client.get_workflow_handle(temporal.release_workflow_id(config.app.name, env.name))

    async def send() -> str | None:
        if args.action == "status":
            await show_status(handle, as_json=args.json, approvers=env.approvers)
            return None
        if args.action == "history":
            await show_history(client, handle.id, limit=args.limit, as_json=args.json)
            return None
        target = await asyncio.wait_for(control_target(handle), timeout=ANSWER_WITHIN)
        signed_control = control
        if signed:
            signature = await sign_for(target, args.key, args.action, env.name)
            signed_control = control.model_copy(update={"signature": signature})
        return await asyncio.wait_for(
            target.execute_update(args.action, signed_control, result_type=str), timeout=ANSWER_WITHIN
        )

    return await _answer(args.action, send, f"no release to {args.action} in {env.name}")


async def _answer(action: str, send: Callable[[], Awaitable[str | None]], missing: str) -> int:
    """Run ``send`` (a status shown, or an update sent) and print the workflow's answer; a worker that
    does not answer, a refusal or a missing run is said and becomes the exit code."""
    try:
        answer = await send()
    except TimeoutError:
        msg = f"no worker answered within {ANSWER_WITHIN:g}s: is worker.py running on this task queue?"
        return fail(msg, EXIT_REFUSED)
    except WorkflowUpdateFailedError as exc:
        reason = exc.cause.message if isinstance(exc.cause, FailureError) else str(exc.cause)
        return fail(f"{action} refused: {reason}", EXIT_REFUSED)
    except RPCError as exc:
        return fail(f"{missing}: {exc.message}", EXIT_REFUSED)
    if answer is not None:
        print(answer)
    return EXIT_OK


async def _train(args: argparse.Namespace) -> int:
    """``--train``: the promotion train's status, or abort it (starters/train.py)."""
    try:
        if args.action not in ("status", "abort"):
            msg = (
                f"{args.action} --train: a train takes status and abort; {args.action} goes to the stage's "
                "release (--env ENV)"
            )
            raise InputError(msg)
        config = load_config(args.config)
        workflow_id = train.train_id(config, args.train or None)
        control = Control(
            identity=args.identity or default_identity(), reason=args.reason, version=args.version
        )
    except (InputError, ValueError) as exc:
        return fail(str(exc), EXIT_BAD_INPUT)
    client = await temporal.connect()
    handle = client.get_workflow_handle(workflow_id)

    async def send() -> str | None:
        if args.action == "status":
            await train.show(handle, as_json=args.json)
            return None
        return await asyncio.wait_for(
            handle.execute_update("abort", control, result_type=str), timeout=ANSWER_WITHIN
        )

    return await _answer(args.action, send, f"no train {workflow_id}")


if __name__ == "__main__":
    run(main())
