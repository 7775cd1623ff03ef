"""The engine's client side: start a release or attach to it, follow it, find where controls go.

Starters (``starters/deploy.py``, ``starters/control.py``), scripts and tests use these; they
talk to Temporal only, never to a provider.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable

from temporalio.client import Client, WorkflowExecution, WorkflowHandle
from temporalio.client import WorkflowExecutionStatus as Status
from temporalio.common import (
    SearchAttributePair,
    TypedSearchAttributes,
    WorkflowIDConflictPolicy,
    WorkflowIDReusePolicy,
)
from temporalio.exceptions import FailureError, WorkflowAlreadyStartedError
from temporalio.service import RPCError, RPCStatusCode

from engine import temporal
from engine.contracts import ReleaseResult, ReleaseSpec, ReleaseStatus
from engine.contracts.pipeline import STRATEGY_WORKFLOWS, PipelineSpec
from engine.contracts.promotion import TrainResult, TrainSpec, TrainStatus
from engine.undo import ReleaseRun


class Refused(Exception):
    """Another release runs in this environment."""


async def start_or_attach(
    client: Client,
    spec: ReleaseSpec | PipelineSpec,
    *,
    redeploy: bool = False,
    task_queue: str | None = None,
    summary: str | None = None,
) -> tuple[WorkflowHandle, bool]:
    """The handle of this release's run, and whether it was already there.

    A :class:`PipelineSpec` starts the release pipeline (workflow ``Release``, which runs
    the strategy as its child); a bare :class:`ReleaseSpec` starts the strategy workflow.
    """
    workflow_type, argument = (
        ("Release", spec) if isinstance(spec, PipelineSpec) else (STRATEGY_WORKFLOWS[spec.strategy], spec)
    )
    spec = spec.release if isinstance(spec, PipelineSpec) else spec
    workflow_id = temporal.release_workflow_id(spec.app.name, spec.environment.name)
    env = spec.environment.name

    def busy(version: str | None, strategy: str | None, run_id: str) -> str:
        return (
            f"release {version} ({strategy}) is running in {env} (workflow {workflow_id}, run {run_id}); "
            f"wait for it, or abort it with: python starters/control.py abort --env {env} --reason '...'"
        )

    async def start() -> WorkflowHandle:
        return await client.start_workflow(
            workflow_type,
            argument,
            id=workflow_id,
            result_type=ReleaseResult,
            task_queue=task_queue or temporal.TASK_QUEUE,
            id_reuse_policy=WorkflowIDReusePolicy.ALLOW_DUPLICATE,
            id_conflict_policy=WorkflowIDConflictPolicy.FAIL,
            search_attributes=TypedSearchAttributes(
                [
                    SearchAttributePair(temporal.ENVIRONMENT, env),
                    SearchAttributePair(temporal.VERSION, spec.version),
                    SearchAttributePair(temporal.STRATEGY, spec.strategy),
                    SearchAttributePair(temporal.PHASE, "Pending"),
                ]
            ),
            static_summary=summary or f"{spec.strategy} release of {spec.version} to {env}",
            static_details=f"requested by {spec.requested_by}",
        )

    return await _start_once(
        client,
        workflow_id,
        (spec.version, spec.strategy),
        ReleaseResult,
        busy=busy,
        start=start,
        redeploy=redeploy,
    )


async def _start_once(
    client: Client,
    workflow_id: str,
    wanted: tuple[str, str],
    result_type: type,
    *,
    busy: Callable[[str | None, str | None, str], str],
    start: Callable[[], Awaitable[WorkflowHandle]],
    redeploy: bool,
) -> tuple[WorkflowHandle, bool]:
    """Attach to the run of ``wanted`` (version, strategy) that is running, or (unless ``redeploy``)
    to one that ran before; refuse another one running (``busy`` says why); else ``start`` it. A
    starter that loses the race to start looks again (a CI re-run never starts twice)."""
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
            if (version, strategy) == wanted:
                return client.get_workflow_handle(
                    workflow_id, run_id=desc.run_id, result_type=result_type
                ), True
            raise Refused(busy(version, strategy, desc.run_id))
        if not redeploy:
            query = f'WorkflowId = "{workflow_id}" AND DeployVersion = "{wanted[0]}"'
            async for earlier in client.list_workflows(query, limit=1):
                if earlier.status != Status.RUNNING:
                    return (
                        client.get_workflow_handle(
                            workflow_id, run_id=earlier.run_id, result_type=result_type
                        ),
                        True,
                    )
        try:
            return await start(), False
        except WorkflowAlreadyStartedError:
            continue  # another starter won the race: look again
    msg = f"could not start or attach to {workflow_id}: it keeps changing"
    raise Refused(msg)


async def follow(
    handle: WorkflowHandle,
    show: Callable[[ReleaseStatus], object],
    show_strategy: Callable[[ReleaseStatus], object] | None = None,
    every: float = 0.5,
) -> ReleaseResult:
    """Query the release's status every ``every`` seconds until it ends; return its result.

    ``show`` gets each status of the release, ``show_strategy`` each status of the strategy's
    child workflow while the release pipeline runs one.
    """
    result_task = asyncio.ensure_future(handle.result())
    while not result_task.done():
        with contextlib.suppress(RPCError):  # the first workflow task may not have run yet
            status = await handle.query("status", result_type=ReleaseStatus)
            show(status)
            if status.child_workflow_id and show_strategy is not None:
                child = handle._client.get_workflow_handle(status.child_workflow_id)
                show_strategy(await child.query("status", result_type=ReleaseStatus))
        await asyncio.wait([result_task], timeout=every)
    result: ReleaseResult = result_task.result()
    show(result.status)
    return result


async def control_target(handle: WorkflowHandle) -> WorkflowHandle:
    """Where a control goes: the strategy's child workflow while the pipeline runs it
    (and waits for nothing itself), else the release workflow."""
    status = await handle.query("status", result_type=ReleaseStatus)
    if status.child_workflow_id and not status.awaiting_approval:
        return handle._client.get_workflow_handle(status.child_workflow_id)
    return handle


async def release_runs(
    client: Client,
    workflow_id: str,
    *,
    limit: int = 50,
    enough: Callable[[list[ReleaseRun]], bool] | None = None,
) -> list[ReleaseRun]:
    """The runs of an environment's release workflow, newest first, from visibility, each finished
    one with its result's outcome and live version (what ``control.py undo`` goes back from).
    Results are read a few runs at a time, newest first, until ``enough`` says the runs so far
    suffice (the undo's previous version found: older runs' results are not read)."""
    found = [ran async for ran in client.list_workflows(f'WorkflowId = "{workflow_id}"', limit=limit)]
    found.sort(key=lambda ran: ran.start_time, reverse=True)
    runs: list[ReleaseRun] = []
    for at in range(0, len(found), RESULTS_AT_ONCE):
        batch = found[at : at + RESULTS_AT_ONCE]
        results = await asyncio.gather(*(run_result(client, workflow_id, ran) for ran in batch))
        for ran, result in zip(batch, results, strict=True):
            attrs = ran.typed_search_attributes
            runs.append(
                ReleaseRun(
                    run_id=ran.run_id,
                    version=attrs.get(temporal.VERSION) or "?",
                    strategy=attrs.get(temporal.STRATEGY) or "?",
                    started=ran.start_time,
                    closed=ran.close_time,
                    outcome=result.outcome if result else None,
                    live_version=result.live_version if result else None,
                    running=ran.status == Status.RUNNING,
                )
            )
        if enough is not None and enough(runs):
            break
    return runs


RESULTS_AT_ONCE = 4
"""Results of release runs read concurrently by :func:`release_runs`."""


async def run_result(client: Client, workflow_id: str, ran: WorkflowExecution) -> ReleaseResult | None:
    """A finished release run's result (None for a run still going, or failed without one)."""
    if ran.status != Status.COMPLETED:
        return None
    handle = client.get_workflow_handle(workflow_id, run_id=ran.run_id, result_type=ReleaseResult)
    try:
        return await handle.result(follow_runs=False)
    except (FailureError, RPCError):
        return None


async def start_train(
    client: Client, spec: TrainSpec, *, redeploy: bool = False, task_queue: str | None = None
) -> tuple[WorkflowHandle, bool]:
    """The handle of this promotion train (workflow ``PromotionTrain``, id ``train-APP-ENV-ENV``),
    and whether it was already there: the same version and strategy running, or a train of this
    version that ran before (a CI re-run attaches, never releases twice; ``redeploy`` runs it anew)."""
    workflow_id = temporal.train_workflow_id(spec.app, [s.environment for s in spec.stages])

    def busy(version: str | None, strategy: str | None, _: str) -> str:
        return (
            f"train {version} ({strategy}) is running ({workflow_id}); wait for it, or stop it with: "
            f"python starters/control.py abort --train {','.join(s.environment for s in spec.stages)}"
        )

    async def start() -> WorkflowHandle:
        return await client.start_workflow(
            "PromotionTrain",
            spec,
            id=workflow_id,
            result_type=TrainResult,
            task_queue=task_queue or temporal.TASK_QUEUE,
            id_reuse_policy=WorkflowIDReusePolicy.ALLOW_DUPLICATE,
            id_conflict_policy=WorkflowIDConflictPolicy.FAIL,
            search_attributes=TypedSearchAttributes(
                [
                    SearchAttributePair(temporal.VERSION, spec.version),
                    SearchAttributePair(temporal.STRATEGY, spec.strategy),
                ]
            ),
            static_summary=f"promotion train of {spec.version} ({spec.strategy}): {spec.train_id}",
            static_details=f"requested by {spec.requested_by}",
        )

    return await _start_once(
        client,
        workflow_id,
        (spec.version, spec.strategy),
        TrainResult,
        busy=busy,
        start=start,
        redeploy=redeploy,
    )


async def follow_train(
    handle: WorkflowHandle, show: Callable[[TrainStatus], object], every: float = 1.0
) -> TrainResult:
    """Query the train's status every ``every`` seconds until it ends; return its result."""
    result_task = asyncio.ensure_future(handle.result())
    while not result_task.done():
        with contextlib.suppress(RPCError):  # the first workflow task may not have run yet
            show(await handle.query("status", result_type=TrainStatus))
        await asyncio.wait([result_task], timeout=every)
    result: TrainResult = result_task.result()
    show(result.status)
    return result
