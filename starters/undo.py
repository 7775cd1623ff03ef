"""``control.py undo``: the environment back to the previous live version of every component.

    python starters/control.py undo [--env local] --as NAME|--key KEY --reason TEXT [--strategy S] [--wait]

The previous live version is the newest earlier release of the environment that succeeded with a
version other than the live one (``engine/undo.py``, read from Temporal's visibility store and each
run's result, as ``control.py history`` reads them). Within the environment's ``rollback_window``
the undo takes the fast path: the previous version at full size beside the live one, every user
moved at once, no analysis, no steps (every other component and region: one batch, no gate, no
bake). Outside it, a normal release of the previous version with its analysis (``--strategy``,
default the strategy of the release it undoes). Undo ignores deploy windows.

It needs an approver like promote: ``--as`` one of the environment's approvers, or ``--key`` where
approvals are signed (the signature names the run it undoes and the version it returns to). The
approval travels in the new run's input and the Release workflow verifies it before any change;
refused, it changes nothing. While a release runs, undo is that release's abort with an approver
(a blue-green release in its scale-down delay flips back to the pool that never stopped).

Exit codes: 0 started (``--wait``: ended where it should), 1 the undo failed, 2 refused before
anything started (no approver, nothing to go back to, bad input), 3 refused by a running release.
"""

from __future__ import annotations

import argparse
import asyncio
from datetime import UTC, datetime

from temporalio.client import Client, WorkflowHandle, WorkflowUpdateFailedError
from temporalio.exceptions import FailureError

from engine import temporal
from engine.client import Refused, control_target, release_runs, start_or_attach
from engine.config import DeployConfig
from engine.contracts import STRATEGIES, Control, EnvironmentSpec, ReleaseResult
from engine.errors import InputError
from engine.undo import ReleaseRun, plan_undo, resolve_undo
from starters.common import EXIT_BAD_INPUT, EXIT_OK, EXIT_REFUSED, EXIT_RELEASE_FAILED, fail
from starters.signing import sign, sign_for

ANSWER_WITHIN = 30.0
"""Seconds to wait for a worker to run the update (a running release's undo)."""


def check(env: EnvironmentSpec, control: Control, strategy: str | None) -> None:
    """Refused before anything starts: no approver of the environment, or an unknown strategy."""
    if control.identity not in env.approvers:
        approvers = ", ".join(env.approvers) or "none"
        msg = (
            f"undo needs an approver of {env.name!r} ({approvers}): {control.identity!r} is not one; "
            "nothing started"
        )
        raise InputError(msg)
    if strategy is not None and strategy not in STRATEGIES:
        raise InputError(f"--strategy {strategy!r}: one of {', '.join(STRATEGIES)}")


async def undo(
    client: Client, config: DeployConfig, env: EnvironmentSpec, args: argparse.Namespace, control: Control
) -> int:
    """Back to the previous live version (a new Release run), or the running release's approved abort."""
    workflow_id = temporal.release_workflow_id(config.app.name, env.name)
    window = config.environments[env.name].rollback_window

    def enough(runs: list[ReleaseRun]) -> bool:
        """A release runs, or the previous version is found: older results are not needed."""
        if runs[0].running:
            return True
        try:
            plan_undo(env.name, runs, window, datetime.now(UTC))
        except InputError:
            return False
        return True

    runs = await release_runs(client, workflow_id, enough=enough)
    if runs and runs[0].running:
        handle = client.get_workflow_handle(workflow_id, run_id=runs[0].run_id, result_type=ReleaseResult)
        return await _undo_running(handle, env, args, control, runs[0].version)
    signed = env.policy.approvals == "signed"
    try:
        plan = plan_undo(env.name, runs, window, datetime.now(UTC))
        undone = plan.current.strategy if plan.current.strategy in STRATEGIES else "canary"
        approval = control
        if signed:
            signature = sign(
                args.key,
                workflow_id=workflow_id,
                run_id=plan.current.run_id,
                action="undo",
                environment=env.name,
                subject=plan.previous.version,
            )
            approval = control.model_copy(update={"signature": signature})
        pipeline = resolve_undo(config, plan, strategy=args.strategy or undone, approval=approval)
    except InputError as exc:
        return fail(str(exc), EXIT_BAD_INPUT)
    assert pipeline.undo is not None  # resolve_undo sets it
    how = "the fast path" if pipeline.undo.fast else f"a {pipeline.release.strategy} release"
    summary = f"undo {plan.live} back to {plan.previous.version} ({how})"
    try:
        handle, _ = await start_or_attach(client, pipeline, redeploy=True, summary=summary)
    except Refused as exc:
        return fail(str(exc), EXIT_REFUSED)
    print(
        f"undo in {env.name}: {plan.live} back to {plan.previous.version} by {how} "
        f"({pipeline.undo.window}); run {handle.result_run_id}",
        flush=True,
    )
    return await _ended(handle, ("succeeded", "no_change")) if args.wait else EXIT_OK


async def _undo_running(
    handle: WorkflowHandle, env: EnvironmentSpec, args: argparse.Namespace, control: Control, version: str
) -> int:
    """A release runs: undo is its abort, by an approver (signed over that run where signed)."""
    try:
        target = await asyncio.wait_for(control_target(handle), timeout=ANSWER_WITHIN)
        if env.policy.approvals == "signed":
            signature = await sign_for(target, args.key, "undo", env.name)
            control = control.model_copy(update={"signature": signature})
        answer = await asyncio.wait_for(
            target.execute_update("undo", control, result_type=str), timeout=ANSWER_WITHIN
        )
    except TimeoutError:
        return fail(f"no worker answered within {ANSWER_WITHIN:g}s: is worker.py running?", EXIT_REFUSED)
    except WorkflowUpdateFailedError as exc:
        reason = exc.cause.message if isinstance(exc.cause, FailureError) else str(exc.cause)
        return fail(f"undo refused: {reason}", EXIT_REFUSED)
    print(f"{version} is being released in {env.name}: {answer}", flush=True)
    return await _ended(handle, ("rolled_back",)) if args.wait else EXIT_OK


async def _ended(handle: WorkflowHandle, wanted: tuple[str, ...]) -> int:
    """Wait for the run's end; 0 when it ended as the undo wants (the undo's own run succeeded, or the
    running release it aborted rolled back), else 1."""
    result: ReleaseResult = await handle.result()
    print(f"{result.outcome.upper()}: {result.reason} (live: {result.live_version})")
    return EXIT_OK if result.outcome in wanted else EXIT_RELEASE_FAILED
