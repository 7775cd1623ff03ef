"""A promotion train: one version through environments, the same image digest all the way.

The runbook this replaces (an operator taking a version from staging to production):

1. Release the version to the first environment (staging) with its own Release pipeline, as a
   child workflow under the usual id ``release-APP-ENV`` (so ``control.py --env staging`` reaches
   it: approvals, pause, abort). It must succeed; anything else stops the train.
2. Note the image digest its image stage promoted: from here on the train carries that digest.
3. Soak: wait the stage's soak time with its analysis (threshold templates, measured chunk by
   chunk against the live version, ``analysis.run`` like a canary's background analysis) still
   passing. A failed or inconclusive analysis stops the train before the next environment: the
   soaking environment keeps the version (its release is past its point of no return; going
   back is a release of the previous version, which an operator decides), and the status says so.
4. The next environment (production) releases the same digest: its pipeline gets it as
   ``expected_digest`` and its image stage refuses, before promoting anything, a tag that now
   points at another digest. Its approvals are its own (production's signed two-person rule
   applies inside its Release).
5. ``abort`` (``control.py abort --train``) stops the train: a stage being released gets the abort
   (it rolls itself back); a soak ends; environments already released stay.
"""

from __future__ import annotations

import asyncio
import contextlib
from datetime import datetime, timedelta
from typing import Literal

from temporalio import workflow
from temporalio.common import (
    SearchAttributePair,
    TypedSearchAttributes,
    WorkflowIDReusePolicy,
)
from temporalio.exceptions import ActivityError, ChildWorkflowError, WorkflowAlreadyStartedError
from temporalio.workflow import ParentClosePolicy

from workflows.operation import cause
from workflows.options import ANALYSIS_HEARTBEAT, ANALYSIS_RETRY, QUICK, call

with workflow.unsafe.imports_passed_through():
    from engine import temporal as names
    from engine.contracts import (
        AnalysisRef,
        AnalysisRequest,
        Control,
        Decision,
        EnvironmentRef,
        MetricTally,
        Phase,
        ReleaseResult,
    )
    from engine.contracts.activities import OBSERVE, RUN_ANALYSIS
    from engine.contracts.promotion import (
        TrainResult,
        TrainSpec,
        TrainStage,
        TrainStageReport,
        TrainStatus,
    )

OK = ("succeeded", "no_change")


@workflow.defn(name="PromotionTrain")
class PromotionTrain:
    """One version through environments in order: release, soak, the same digest onwards."""

    @workflow.init
    def __init__(self, spec: TrainSpec) -> None:
        self.spec = spec
        self.status = TrainStatus(
            train=spec.train_id,
            version=spec.version,
            strategy=spec.strategy,
            stages=[
                TrainStageReport(
                    environment=s.environment,
                    workflow_id=names.release_workflow_id(spec.app, s.environment),
                    soak=s.soak,
                    analysis=[r.name for r in s.analysis],
                )
                for s in spec.stages
            ],
        )
        self._abort: Control | None = None

    @workflow.run
    async def run(self, spec: TrainSpec) -> TrainResult:
        self.decide(f"train {spec.train_id} ({spec.strategy}) requested by {spec.requested_by}")
        result = await self._stages()
        await workflow.wait_condition(workflow.all_handlers_finished)
        return result

    async def _stages(self) -> TrainResult:
        for index, stage in enumerate(self.spec.stages):
            if self._abort is not None:
                return self._end("aborted", f"{self._aborted()}; {stage.environment} not released")
            self.update_status(current=index)
            stopped = await self._release(index, stage)
            if stopped is None and stage.soak > timedelta(0):
                stopped = await self._soak(index, stage)
            if stopped is not None:
                return stopped
        where = ", ".join(s.environment for s in self.spec.stages)
        return self._end("succeeded", f"{self.spec.version} ({self.status.digest}) released to {where}")

    # ------------------------------------------------------------------ #
    # A stage's release: its environment's Release pipeline as a child
    # ------------------------------------------------------------------ #

    async def _release(self, index: int, stage: TrainStage) -> TrainResult | None:
        """The stage's Release to success (None), or the train's end."""
        env, carried = stage.environment, self.status.digest
        pipeline = stage.pipeline
        if index > 0:
            pipeline = pipeline.model_copy(update={"expected_digest": carried})
        child_id = self.status.stages[index].workflow_id
        self.report(index, verdict="releasing", expected_digest=pipeline.expected_digest, detail=child_id)
        spec = pipeline.release
        try:
            handle = await workflow.start_child_workflow(
                "Release",
                pipeline,
                id=child_id,
                result_type=ReleaseResult,
                id_reuse_policy=WorkflowIDReusePolicy.ALLOW_DUPLICATE,
                parent_close_policy=ParentClosePolicy.REQUEST_CANCEL,
                static_summary=f"{spec.strategy} release of {spec.version} to {env} "
                f"(stage {index + 1} of train {self.spec.train_id})",
                search_attributes=TypedSearchAttributes(
                    [
                        SearchAttributePair(names.ENVIRONMENT, env),
                        SearchAttributePair(names.VERSION, spec.version),
                        SearchAttributePair(names.STRATEGY, spec.strategy),
                        SearchAttributePair(names.PHASE, Phase.PENDING.value),
                    ]
                ),
            )
        except WorkflowAlreadyStartedError:
            why = f"another release runs in {env} ({child_id}); nothing released there"
            self.report(index, verdict="failed", detail=why)
            return self._end("stopped", f"{env}: {why}")
        self.report(index, run_id=handle.first_execution_run_id)
        self.update_status(child_workflow_id=child_id)
        expects = f", expecting digest {carried}" if index > 0 else ""
        self.decide(f"{env}: release {spec.version} runs as child workflow {child_id}{expects}")
        try:
            result = await self._follow(handle)
        except ChildWorkflowError as exc:
            why = f"the release workflow failed: {cause(exc)}"
            self.report(index, verdict="failed", detail=why)
            return self._end("stopped", f"{env}: {why}")
        finally:
            self.update_status(child_workflow_id=None)
        promoted = _promoted_digest(result)
        if result.outcome not in OK:
            verdict = "rolled_back" if result.outcome == "rolled_back" else "failed"
            self.report(index, verdict=verdict, detail=f"{result.outcome}: {result.reason}")
            if self._abort is not None:
                return self._end("aborted", f"{self._aborted()}; {env}: {result.outcome}: {result.reason}")
            return self._end("stopped", f"{env}: {result.outcome}: {result.reason}")
        if promoted is None or (index > 0 and promoted != carried):
            why = f"released, but its image stage promoted {promoted}, not a digest the train can carry"
            self.report(index, verdict="failed", detail=why)
            return self._end("stopped", f"{env}: {why}")
        if index == 0:
            self.update_status(digest=promoted)
        self.report(index, verdict="passed", digest=promoted, detail=f"{result.outcome}: {result.reason}")
        self.decide(f"{env}: {spec.version} released, image {promoted}")
        return None

    async def _follow(self, handle: workflow.ChildWorkflowHandle) -> ReleaseResult:
        """The stage's result; an abort of the train meanwhile is forwarded to it (it rolls back)."""
        task: asyncio.Future[ReleaseResult] = asyncio.ensure_future(_result(handle))
        await workflow.wait_condition(lambda: task.done() or self._abort is not None)
        if not task.done() and self._abort is not None:
            control = Control(identity=self._abort.identity, reason=f"train aborted: {self._abort.reason}")
            await handle.signal("abort-signal", control)
        return await task

    # ------------------------------------------------------------------ #
    # The soak
    # ------------------------------------------------------------------ #

    async def _soak(self, index: int, stage: TrainStage) -> TrainResult | None:
        """Wait ``stage.soak`` with its analysis passing (None), or the train's end."""
        env = stage.environment
        if self._abort is not None:
            self.report(index, detail=f"released; {self._aborted()} before its soak")
            return self._end("aborted", f"{self._aborted()}; {env} stays on {self.spec.version}")
        started = workflow.now()
        until = started + stage.soak
        names_ = ", ".join(r.name for r in stage.analysis) or "no analysis configured"
        self.report(
            index, verdict="soaking", soak_started=started, soak_until=until, detail=f"soak {stage.soak}"
        )
        self.decide(f"{env}: soak {stage.soak} ({names_}) before the next stage")
        watches: list[asyncio.Future[str | None]] = []
        failure: str | None = None
        if stage.analysis:
            try:
                args = await self._analysis_args(stage)
            except ActivityError as exc:
                failure = f"could not observe {env} for its soak analysis: {cause(exc)}"
            else:
                watches = [
                    asyncio.ensure_future(self._watch(index, stage, ref, args, until))
                    for ref in stage.analysis
                ]

        def failed() -> str | None:
            return failure or next((w.result() for w in watches if w.done() and w.result()), None)

        def over() -> bool:
            return self._abort is not None or failed() is not None

        with contextlib.suppress(TimeoutError):
            await workflow.wait_condition(over, timeout=stage.soak)
        # The timer is up: each watch ends with its chunk at ``until`` (or a failure comes first).
        await workflow.wait_condition(lambda: over() or all(w.done() for w in watches))
        failure = failed()
        for w in watches:  # after an abort or a failure: the others stop measuring
            w.cancel()
        await asyncio.gather(*watches, return_exceptions=True)
        soaked = round((workflow.now() - started).total_seconds(), 3)
        if failure is not None:
            self.report(index, verdict="soak_failed", soaked_s=soaked, detail=failure)
            why = (
                f"{env}: {failure} after {soaked:g}s of its {stage.soak} soak; the train stops before "
                f"{self._next(index)}. {env} keeps {self.spec.version} (released past its point of no "
                "return): release the previous version there if it must go back"
            )
            return self._end("stopped", why)
        if self._abort is not None:
            self.report(index, verdict="aborted", soaked_s=soaked, detail="released; soak aborted")
            return self._end(
                "aborted", f"{self._aborted()} during the soak; {env} stays on {self.spec.version}"
            )
        self.report(
            index, verdict="passed", soaked_s=soaked, detail=f"released; soaked {stage.soak} ({names_})"
        )
        self.decide(f"{env}: soaked {soaked:g}s, analysis passing ({names_})")
        return None

    async def _analysis_args(self, stage: TrainStage) -> dict[str, str]:
        """The template arguments for the live version: the pool serving it, its region."""
        env = stage.pipeline.release.environment
        live = await call(
            OBSERVE, EnvironmentRef(environment=env), summary=f"observe {env.name} before its soak", **QUICK
        )
        serving = sorted(p for p, w in live.router.weights.items() if w > 0)
        version = self.spec.version
        mine = sorted({i.pool for i in live.instances if i.pool in serving and i.version == version})
        pool = (mine or serving or [""])[0]
        if env.local is not None:
            region = env.local.region or env.local.regions[0]
        else:
            region = env.aws.region if env.aws is not None else ""
        return {
            "app": self.spec.app,
            "environment": env.name,
            "canary_version": version,
            "stable_version": version,
            "canary_pool": pool,
            "stable_pool": pool,
            "region": region,
            "component": env.component,
        }

    async def _watch(
        self, index: int, stage: TrainStage, ref: AnalysisRef, args: dict[str, str], until: datetime
    ) -> str | None:
        """One template, chunk after chunk until the soak ends: the failure, or None."""
        env = stage.pipeline.release.environment
        tallies: dict[str, MetricTally] = {}
        while (left := until - workflow.now()) > timedelta(0):
            chunk = min(left, stage.chunk)
            request = AnalysisRequest(
                environment=env, name=ref.name, metrics=ref.metrics, args=args, chunk=chunk, tallies=tallies
            )
            try:
                result = await call(
                    RUN_ANALYSIS,
                    request,
                    summary=f"soak {env.name}: analysis {ref.name}",
                    start_to_close_timeout=chunk * 2 + timedelta(seconds=30),
                    heartbeat_timeout=ANALYSIS_HEARTBEAT,
                    retry_policy=ANALYSIS_RETRY,
                )
            except ActivityError as exc:
                return f"analysis {ref.name} could not run: {cause(exc)}"
            if result.measurements:
                latest = {m.metric: m for m in result.measurements}
                self.report(index, measurements=list(latest.values()))
            if result.phase in ("failed", "inconclusive"):
                return f"analysis {ref.name} {result.phase}: {result.message}"
            tallies = result.tallies if result.phase == "running" else {}
        return None

    # ------------------------------------------------------------------ #
    # Status, controls
    # ------------------------------------------------------------------ #

    def report(self, index: int, **changes: object) -> None:
        stages = list(self.status.stages)
        stages[index] = stages[index].model_copy(update=changes)
        self.update_status(stages=stages)

    def update_status(self, **changes: object) -> None:
        self.status = self.status.model_copy(update=changes)
        workflow.set_current_details(self.details())

    def decide(self, what: str, by: str = "engine", reason: str = "") -> None:
        entry = Decision(at=workflow.now(), what=what, by=by, reason=reason)
        self.update_status(decisions=[*self.status.decisions, entry])
        workflow.logger.info("%s%s", what, f" ({reason})" if reason else "")

    def details(self) -> str:
        s = self.status
        lines = [f"**train {s.train}** ({s.strategy}): {s.phase}, digest {s.digest or '-'}"]
        lines += [f"- {r.environment}: {r.verdict} {r.detail}" for r in s.stages]
        return "\n".join(lines)

    def _next(self, index: int) -> str:
        rest = [s.environment for s in self.spec.stages[index + 1 :]]
        return ", ".join(rest) or "the end of the train"

    def _aborted(self) -> str:
        control = self._abort
        assert control is not None
        return f"aborted by {control.identity}: {control.reason or 'no reason given'}"

    def _end(self, outcome: Literal["succeeded", "stopped", "aborted"], reason: str) -> TrainResult:
        stages = [
            r.model_copy(update={"detail": "not released: the train ended before it"})
            if r.verdict == "pending"
            else r
            for r in self.status.stages
        ]
        self.update_status(phase=outcome, current=None, child_workflow_id=None, stages=stages)
        self.decide(f"train {outcome}", reason=reason)
        return TrainResult(
            outcome=outcome,
            reason=reason,
            version=self.spec.version,
            digest=self.status.digest,
            status=self.query_status(),
        )

    @workflow.query(name="status")
    def query_status(self) -> TrainStatus:
        remaining = None
        current = self.status.current
        if current is not None:
            stage = self.status.stages[current]
            if stage.verdict == "soaking" and stage.soak_until is not None:
                remaining = max(0.0, round((stage.soak_until - workflow.now()).total_seconds(), 1))
        return self.status.model_copy(update={"soak_remaining_s": remaining})

    @workflow.update(name="abort")
    def abort(self, control: Control) -> str:
        return self._stop(control)

    def _stop(self, control: Control) -> str:
        self._abort = control
        self.decide("abort requested", by=control.identity, reason=control.reason)
        current = self.status.current
        if current is None:
            return "the train stops"
        stage = self.status.stages[current]
        if stage.verdict == "releasing":
            return f"the train stops; {stage.environment}'s release is aborted (it rolls back)"
        return f"the train stops; {stage.environment} stays on {self.spec.version}"

    @abort.validator
    def _validate_abort(self, control: Control) -> None:
        if control.version is not None and control.version != self.spec.version:
            msg = f"this train carries {self.spec.version}, not {control.version}"
            raise ValueError(msg)
        if self.status.phase != "running":
            msg = f"the train has ended ({self.status.phase})"
            raise ValueError(msg)
        if self._abort is not None:
            msg = f"the train is already stopping ({self._aborted()})"
            raise ValueError(msg)

    @workflow.signal(name="abort-signal")
    def abort_signal(self, control: Control) -> None:
        """The same abort for the web UI's "send signal" (a refusal is recorded, not raised)."""
        try:
            self._validate_abort(control)
        except ValueError as exc:
            self.decide("ignored signal", by=control.identity, reason=str(exc))
            return
        self._stop(control)


async def _result(handle: workflow.ChildWorkflowHandle) -> ReleaseResult:
    result: ReleaseResult = await handle
    return result


def _promoted_digest(result: ReleaseResult) -> str | None:
    """The digest the Release's image stage promoted (its report's measurements)."""
    for stage in result.status.stages:
        if stage.name == "image promotion" and stage.verdict == "passed":
            digest = stage.measurements.get("digest")
            return digest if isinstance(digest, str) else None
    return None
