"""What every release workflow shares: controls, status, audit log, compensation.

Strategies (``canary.py`` and later ``blue_green.py``, ``rolling.py``) subclass
:class:`ReleaseWorkflow` and read like their runbook; the mechanics live here:

- controls as Temporal updates (the caller gets accepted or refused at once) and
  the same as signals (for the web UI's "send signal"): approve, promote and
  resume move a release forward and need a configured approver; pause and abort
  stop it and anyone may send them. Every refusal is kept in the status.
- every activity call is interruptible: an abort or a failed background analysis
  cancels what runs and goes straight to compensation;
- compensation steps are pushed as side effects happen and run in reverse order.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable
from datetime import timedelta
from typing import Any, TypeVar

from temporalio import workflow
from temporalio.common import RetryPolicy
from temporalio.exceptions import ActivityError, ApplicationError

from workflows.compensation import Compensations

with workflow.unsafe.imports_passed_through():
    from engine import temporal as names
    from engine.contracts import (
        AnalysisRef,
        AnalysisRequest,
        AnalysisResult,
        Control,
        Decision,
        DrainRequest,
        EnvironmentRef,
        Instance,
        Measurement,
        MetricTally,
        Observed,
        Phase,
        PoolRequest,
        PreviewCheck,
        PreviewRequest,
        QueryCheckRequest,
        ReleaseResult,
        ReleaseSpec,
        ReleaseStatus,
        RouterState,
        SmokeRequest,
        SmokeResult,
        StopRequest,
        TrafficRequest,
    )

T = TypeVar("T")

POOLS = ("blue", "green")
"""The two pools every platform offers: the live one and the one a release goes to."""

NON_RETRYABLE = ["BadRequest"]


def retry(first: timedelta, most: timedelta, attempts: int = 0) -> RetryPolicy:
    """Exponential retry from ``first`` up to ``most`` apart; 0 attempts means until it succeeds.

    Bad input (``BadRequest``) is never retried.
    """
    return RetryPolicy(
        initial_interval=first,
        maximum_interval=most,
        maximum_attempts=attempts,
        non_retryable_error_types=NON_RETRYABLE,
    )


def options(timeout: timedelta, policy: RetryPolicy, heartbeat: timedelta | None = None) -> dict[str, Any]:
    """Keyword arguments for ``workflow.execute_activity``."""
    out: dict[str, Any] = {"start_to_close_timeout": timeout, "retry_policy": policy}
    if heartbeat is not None:
        out["heartbeat_timeout"] = heartbeat
    return out


MS, S = timedelta(milliseconds=1), timedelta(seconds=1)
QUICK = options(15 * S, retry(200 * MS, 3 * S, attempts=20))
"""Router changes, observations and smoke checks: fast, retried for about a minute."""
SLOW = options(5 * 60 * S, retry(1 * S, 10 * S, attempts=5), heartbeat=10 * S)
"""Starting and stopping instances: heartbeats while instances come up."""
COMPENSATE = options(5 * 60 * S, retry(200 * MS, 10 * S), heartbeat=10 * S)
"""Undo steps, and steps past the point of no return, retry until they succeed and cannot be
interrupted (``finish=True``): a half-undone release is worse than a slow one."""
ANALYSIS_RETRY = retry(200 * MS, 2 * S, attempts=10)
ANALYSIS_HEARTBEAT = 2 * S
APPROVAL_TICK = 5 * 60 * S
"""How often a release waiting for approval republishes deploy_awaiting_approval_seconds."""
"""A worker killed mid-analysis is noticed within this, and the analysis resumes elsewhere."""


class Interrupted(Exception):
    """Raised inside a release when it must stop and roll back."""

    def __init__(self, reason: str, by: str = "engine") -> None:
        super().__init__(reason)
        self.reason = reason
        self.by = by


def cause(exc: BaseException) -> str:
    """The message a human wants from an activity failure."""
    if isinstance(exc, ActivityError) and exc.cause is not None:
        return str(exc.cause)
    return str(exc)


class ReleaseWorkflow:
    """Base of the strategy workflows; subclasses implement ``release()``."""

    def __init__(self, spec: ReleaseSpec) -> None:
        self.spec = spec
        self.env = spec.environment
        self.status = ReleaseStatus(
            release=spec.release_id,
            version=spec.version,
            strategy=spec.strategy,
            environment=self.env.name,
            phase=Phase.PENDING,
        )
        self._interrupt: Interrupted | None = None
        self._paused = False
        self._pause_reason = ""
        self._awaiting_approval = False
        self._approved = False
        self._promote_requested = False
        self._point_of_no_return = False
        self._compensations = Compensations()
        self.stable_pool = ""
        self.canary_pool = ""
        self.stable: list[Instance] = []

    # ------------------------------------------------------------------ #
    # Running a release
    # ------------------------------------------------------------------ #

    async def release(self) -> ReleaseResult:
        raise NotImplementedError

    async def execute(self) -> ReleaseResult:
        """Run ``release()``; on failure, abort or cancellation, undo in reverse order."""
        self.decide(
            f"release {self.spec.release_id} ({self.spec.strategy}) requested by {self.spec.requested_by}"
        )
        try:
            result = await self.release()
        except (Interrupted, ActivityError, ApplicationError, asyncio.CancelledError) as exc:
            if isinstance(exc, Interrupted):
                why, by = exc.reason, exc.by
            elif isinstance(exc, asyncio.CancelledError):
                why, by = "the workflow was cancelled", "temporal"
            else:
                why, by = cause(exc), "engine"
            result = await self._roll_back(why, by)
        await workflow.wait_condition(workflow.all_handlers_finished)
        self._count_outcome(result)
        return result

    async def _roll_back(self, why: str, by: str) -> ReleaseResult:
        if not self._compensations:
            self.set_phase(Phase.FAILED)
            self.decide("failed before any change", by=by, reason=why)
            return self.result("failed", why)
        self.set_phase(Phase.ROLLING_BACK)
        self.decide("rolling back", by=by, reason=why)
        try:
            await self._compensations.run(lambda what: self.decide(f"undo: {what}"))
        except (ActivityError, ApplicationError) as exc:
            self.set_phase(Phase.FAILED)
            self.decide("rollback failed", reason=cause(exc))
            return self.result("failed", f"{why}; then the rollback failed: {cause(exc)}")
        self.set_phase(Phase.ROLLED_BACK)
        return self.result("rolled_back", why)

    def on_failure_undo(self, what: str, undo: Callable[[], Awaitable[Any]]) -> None:
        """Register how to undo a side effect that is about to happen."""
        self._compensations.add(what, undo)

    def point_of_no_return(self, what: str) -> None:
        """From here on the release completes forward; abort is refused."""
        self._compensations.clear()
        self._point_of_no_return = True
        self.decide(what)

    def result(self, outcome: str, reason: str, live_version: str | None = None) -> ReleaseResult:
        live = live_version or (self.spec.version if outcome == "succeeded" else self.status.stable_version)
        return ReleaseResult(
            outcome=outcome,  # type: ignore[arg-type]
            reason=reason,
            version=self.spec.version,
            live_version=live,
            status=self.query_status(),
        )

    # ------------------------------------------------------------------ #
    # Activities, interruptible
    # ------------------------------------------------------------------ #

    async def guarded(self, start: Callable[[], Awaitable[T]]) -> T:
        """Await an activity unless the release is interrupted first."""
        self.check_interrupt()
        task = asyncio.ensure_future(start())
        await workflow.wait_condition(lambda: task.done() or self._interrupt is not None)
        if not task.done():
            task.cancel()
            self.check_interrupt()
        return task.result()

    def check_interrupt(self) -> None:
        if self._interrupt is not None:
            raise self._interrupt

    def interrupt(self, reason: str, by: str = "engine") -> None:
        if self._interrupt is None and not self._point_of_no_return:
            self._interrupt = Interrupted(reason, by)

    async def observe(self) -> Observed:
        return await self.guarded(
            lambda: workflow.execute_activity(
                "platform.observe",
                EnvironmentRef(environment=self.env),
                result_type=Observed,
                summary="observe instances and traffic",
                **QUICK,
            )
        )

    async def start_pool(
        self, pool: str, version: str, count: int, *, finish: bool = False
    ) -> list[Instance]:
        options = COMPENSATE if finish else SLOW
        request = PoolRequest(environment=self.env, pool=pool, version=version, count=count)
        call = workflow.execute_activity(
            "platform.start_pool",
            request,
            result_type=list[Instance],
            summary=f"run {count} x {version} in {pool}",
            **options,
        )
        return await (call if finish else self.guarded(lambda: call))

    async def stop_pool(self, pool: str, slots: list[int] | None = None) -> None:
        await workflow.execute_activity(
            "platform.stop_pool",
            StopRequest(environment=self.env, pool=pool, slots=slots),
            summary=f"stop {pool}" + (f" slots {slots}" if slots is not None else ""),
            **COMPENSATE,
        )

    async def set_preview(self, members: list[Instance], *, finish: bool = False) -> list[str]:
        """Point the preview route at ``members`` (none: it serves nothing); read back."""
        summary = f"preview -> {len(members)} instance(s)" if members else "preview serves nothing"
        call = workflow.execute_activity(
            "router.set_preview",
            PreviewRequest(environment=self.env, members=members),
            result_type=list[str],
            summary=summary,
            **(COMPENSATE if finish else QUICK),
        )
        return await (call if finish else self.guarded(lambda: call))

    async def drain(self, instances: list[Instance], within: timedelta) -> dict[str, int]:
        """No new requests to ``instances`` at the router; returns once none has one in flight."""
        return await workflow.execute_activity(
            "router.drain",
            DrainRequest(environment=self.env, instances=instances, timeout=within),
            result_type=dict[str, int],
            summary=f"drain {', '.join(f'{i.pool}{i.slot}' for i in instances)}",
            **COMPENSATE,
        )

    async def preview_check(
        self, requests: int, duration: timedelta | None = None, *, judge_codes: bool = True
    ) -> None:
        """Requests through the preview route: all answered by this release (and 2xx)."""
        request = PreviewCheck(
            environment=self.env,
            requests=requests,
            version=self.spec.version,
            duration=duration,
            judge_codes=judge_codes,
        )
        result = await self.guarded(
            lambda: workflow.execute_activity(
                "smoke.preview",
                request,
                result_type=SmokeResult,
                summary=f"{requests} requests through the preview route",
                start_to_close_timeout=(duration or timedelta(0)) + timedelta(seconds=30),
                retry_policy=QUICK["retry_policy"],
            )
        )
        if not result.ok:
            raise Interrupted("preview check failed: " + "; ".join(result.failures[:3]))
        self.decide(f"preview check passed: {result.checked} requests answered by {self.spec.version}")

    async def set_traffic(
        self, weights: dict[str, int], members: dict[str, list[Instance]], *, finish: bool = False
    ) -> RouterState:
        request = TrafficRequest(environment=self.env, weights=weights, members=members)
        summary = "traffic " + ", ".join(f"{p} {w}%" for p, w in weights.items())
        options = COMPENSATE if finish else QUICK
        call = workflow.execute_activity(
            "router.set_traffic", request, result_type=RouterState, summary=summary, **options
        )
        state = await (call if finish else self.guarded(lambda: call))
        self._gauge_weights(state)
        return state

    async def smoke(self, instances: list[Instance]) -> None:
        result = await self.guarded(
            lambda: workflow.execute_activity(
                "smoke.check",
                SmokeRequest(environment=self.env, instances=instances, path=self.spec.app.health_path),
                result_type=SmokeResult,
                summary=f"smoke {len(instances)} instances",
                **QUICK,
            )
        )
        if not result.ok:
            raise Interrupted("smoke check failed: " + "; ".join(result.failures))
        self.decide(f"smoke check passed on {result.checked} instances")

    # ------------------------------------------------------------------ #
    # What is live; analysis
    # ------------------------------------------------------------------ #

    def find_stable(self, live: Observed) -> str:
        """The pool taking traffic, and its version; refuse anything ambiguous.

        Sets ``stable_pool``, ``stable`` (its instances) and ``canary_pool`` (the other pool,
        where the new version goes).
        """
        serving = [pool for pool, weight in live.router.weights.items() if weight > 0]
        if not serving:
            msg = f"nothing takes traffic in {self.env.name!r}: start the platform first"
            raise Interrupted(msg)
        if len(serving) > 1:
            split = ", ".join(f"{p} {live.router.weights[p]:g}%" for p in serving)
            msg = f"traffic is split ({split}): another release is in progress or was interrupted"
            raise Interrupted(msg)
        self.stable_pool = serving[0]
        self.canary_pool = next(p for p in POOLS if p != self.stable_pool)
        self.stable = [i for i in live.instances if i.pool == self.stable_pool]
        versions = sorted({i.version for i in self.stable})
        if len(versions) != 1:
            msg = f"the stable pool {self.stable_pool} runs {versions or 'nothing'}; expected one version"
            raise Interrupted(msg)
        self.update_status(
            stable_version=versions[0], stable_pool=self.stable_pool, canary_pool=self.canary_pool
        )
        return versions[0]

    async def clear_leftovers(self, live: Observed) -> None:
        """Stop idle instances of another version left in the pool this release goes to."""
        leftovers = [
            i for i in live.instances if i.pool == self.canary_pool and i.version != self.spec.version
        ]
        if leftovers:
            self.decide(f"clearing {len(leftovers)} idle leftover instance(s) of {leftovers[0].version}")
            await self.stop_pool(self.canary_pool)

    def analysis_args(self) -> dict[str, str]:
        return {
            "app": self.spec.app.name,
            "environment": self.env.name,
            "canary_version": self.spec.version,
            "stable_version": self.status.stable_version or "",
            "canary_pool": self.canary_pool,
            "stable_pool": self.stable_pool,
        }

    def analysis_refs(self) -> list[AnalysisRef]:
        """Every analysis template this release may run, once each."""
        spec = self.spec
        refs: list[AnalysisRef] = []
        if spec.canary is not None:
            refs += [r for s in spec.canary.steps for r in s.analyses] + spec.canary.background_analysis
        if spec.blue_green is not None:
            refs += spec.blue_green.pre_promotion_analysis + spec.blue_green.post_promotion_analysis
        if spec.rolling is not None:
            refs += spec.rolling.analysis
        return list({r.name: r for r in refs}.values())

    async def check_queries(self) -> None:
        """Before any side effect: the metrics provider parses every analysis query.

        A query that does not parse fails the release before any change (non-retryable
        BadRequest naming the template and metric).
        """
        refs = self.analysis_refs()
        if not refs or not workflow.patched("check-queries-before-start"):
            return
        args = {k: v or k for k, v in self.analysis_args().items()}  # syntax only: any label value
        request = QueryCheckRequest(environment=self.env, analyses=refs, args=args)
        checked = await self.guarded(
            lambda: workflow.execute_activity(
                "analysis.check_queries",
                request,
                result_type=int,
                summary=f"check the queries of {', '.join(r.name for r in refs)}",
                **QUICK,
            )
        )
        self.decide(f"analysis queries accepted by the metrics provider ({checked} checked)")

    async def run_analysis(
        self, ref: AnalysisRef, chunk: timedelta | None = None, tallies: dict[str, MetricTally] | None = None
    ) -> AnalysisResult:
        """One analysis activity: to its verdict, or for one chunk of a background run."""
        longest = max(m.initial_delay + m.interval * (m.count or 1) for m in ref.metrics)
        request = AnalysisRequest(
            environment=self.env,
            name=ref.name,
            metrics=ref.metrics,
            args=self.analysis_args(),
            chunk=chunk,
            tallies=tallies or {},
        )
        return await workflow.execute_activity(
            "analysis.run",
            request,
            result_type=AnalysisResult,
            summary=f"analysis {ref.name}" + (" (background)" if chunk else ""),
            start_to_close_timeout=(chunk or longest) * 2 + timedelta(seconds=30),
            heartbeat_timeout=ANALYSIS_HEARTBEAT,
            retry_policy=ANALYSIS_RETRY,
        )

    async def analyse(self, refs: list[AnalysisRef]) -> None:
        """An analysis gate: every template must succeed; failed rolls back, inconclusive pauses."""
        results = await self.guarded(lambda: asyncio.gather(*(self.run_analysis(r) for r in refs)))
        for result in results:
            self.record_analysis(result.measurements)
            if result.phase == "failed":
                raise Interrupted(f"analysis {result.name} failed: {result.message}")
        for result in results:
            if result.phase == "inconclusive":
                self.pause_for_human(f"analysis {result.name} inconclusive: {result.message}")
                await self.checkpoint()
                return
        self.decide("analysis passed: " + ", ".join(f"{r.name} ({r.message})" for r in results))

    # ------------------------------------------------------------------ #
    # Pauses, approvals and status
    # ------------------------------------------------------------------ #

    async def checkpoint(self) -> None:
        """Between steps: stop here while paused; roll back if interrupted."""
        self.check_interrupt()
        if self._paused:
            previous = self.status.phase
            self.set_phase(Phase.PAUSED)
            await workflow.wait_condition(lambda: not self._paused or self._interrupt is not None)
            self.check_interrupt()
            self.set_phase(previous)

    async def wait_for_approval(self, what: str) -> None:
        """Hold until an approver approves (or promotes); roll back on timeout."""
        self._awaiting_approval, self._approved = True, False
        self.set_phase(Phase.AWAITING_APPROVAL)
        self.decide(f"waiting for approval: {what}")
        timeout, started = self.env.approval_timeout, workflow.now()

        def decided() -> bool:
            return self._approved or self._promote_requested or self._interrupt is not None

        try:
            if workflow.patched("approval-wait-gauge"):
                # Wake every few minutes to publish how long the release has waited (the
                # DeploymentAwaitingApprovalTooLong alert reads it).
                while not decided():
                    waited = workflow.now() - started
                    self._gauge_awaiting(waited)
                    if waited >= timeout:
                        raise TimeoutError
                    with contextlib.suppress(TimeoutError):
                        await workflow.wait_condition(decided, timeout=min(APPROVAL_TICK, timeout - waited))
            else:
                await workflow.wait_condition(decided, timeout=timeout)
        except TimeoutError:
            self.interrupt(f"approval timed out after {timeout}")
        finally:
            self._awaiting_approval = False
            self._gauge_awaiting(timedelta(0))
        self.check_interrupt()
        self.set_phase(Phase.PROGRESSING)

    async def hold(self, duration: timedelta) -> None:
        """A timed pause; promote ends it early, abort interrupts it."""
        with contextlib.suppress(TimeoutError):
            await workflow.wait_condition(
                lambda: self._promote_requested or self._interrupt is not None, timeout=duration
            )
        self.check_interrupt()

    def pause_for_human(self, reason: str) -> None:
        """Inconclusive evidence: stop and let a human decide (resume, promote or abort)."""
        self._paused, self._pause_reason = True, reason
        self.decide("paused", reason=reason)

    def decide(self, what: str, by: str = "engine", reason: str = "") -> None:
        entry = Decision(at=workflow.now(), what=what, by=by, reason=reason)
        self.status = self.status.model_copy(update={"decisions": [*self.status.decisions, entry]})
        workflow.logger.info("%s%s", what, f" ({reason})" if reason else "")
        workflow.set_current_details(self._details())

    def set_phase(self, phase: Phase) -> None:
        if phase != self.status.phase:
            self.status = self.status.model_copy(update={"phase": phase})
            workflow.upsert_search_attributes([names.PHASE.value_set(phase.value)])

    def update_status(self, **changes: Any) -> None:
        self.status = self.status.model_copy(update=changes)

    def record_analysis(self, measurements: list[Measurement]) -> None:
        if measurements:
            latest = {m.metric: m for m in measurements}
            self.update_status(last_analysis=list(latest.values()))

    def _details(self) -> str:
        s = self.status
        lines = [
            f"**{s.release}** ({s.strategy}): {s.phase.value}",
            f"step {s.step_index}/{s.step_count} {s.step}; canary weight {s.canary_weight:g}%",
            *(f"- {d.what}{' (' + d.reason + ')' if d.reason else ''}" for d in s.decisions[-5:]),
        ]
        return "\n".join(lines)

    @workflow.query(name="status")
    def query_status(self) -> ReleaseStatus:
        return self.status.model_copy(
            update={
                "paused": self._paused,
                "pause_reason": self._pause_reason,
                "awaiting_approval": self._awaiting_approval,
            }
        )

    # ------------------------------------------------------------------ #
    # Controls
    # ------------------------------------------------------------------ #

    def _authorize(self, control: Control, action: str) -> None:
        """Record and refuse an action from someone not on the approvers list."""
        if control.identity not in self.env.approvers:
            entry = Decision(
                at=workflow.now(), what=f"refused {action}", by=control.identity, reason=control.reason
            )
            self.status = self.status.model_copy(update={"refused": [*self.status.refused, entry]})
            allowed = ", ".join(self.env.approvers)
            msg = f"{control.identity!r} may not {action} in {self.env.name!r} (approvers: {allowed})"
            raise ApplicationError(msg, type="NotAnApprover", non_retryable=True)

    def _check_target(self, control: Control) -> None:
        if control.version is not None and control.version != self.spec.version:
            msg = f"this run releases {self.spec.version}, not {control.version}"
            raise ValueError(msg)

    def _check_open(self) -> None:
        if self.status.phase in (
            Phase.SUCCEEDED,
            Phase.ROLLED_BACK,
            Phase.FAILED,
        ):
            msg = f"the release has ended ({self.status.phase.value})"
            raise ValueError(msg)

    @workflow.update(name="approve")
    def approve(self, control: Control) -> str:
        self._authorize(control, "approve")
        self._approved = True
        self.decide("approved", by=control.identity, reason=control.reason)
        return f"approved by {control.identity}"

    @approve.validator
    def _validate_approve(self, control: Control) -> None:
        self._check_target(control)
        self._check_open()
        if not self._awaiting_approval:
            msg = f"nothing awaits approval (phase {self.status.phase.value})"
            raise ValueError(msg)

    @workflow.update(name="promote")
    def promote(self, control: Control) -> str:
        self._authorize(control, "promote")
        self._promote_requested, self._paused = True, False
        self.decide("promote: skip the remaining steps", by=control.identity, reason=control.reason)
        return f"promotion requested by {control.identity}"

    @promote.validator
    def _validate_promote(self, control: Control) -> None:
        self._check_target(control)
        self._check_open()
        if self._point_of_no_return:
            msg = "the release is already promoting"
            raise ValueError(msg)

    @workflow.update(name="resume")
    def resume(self, control: Control) -> str:
        self._authorize(control, "resume")
        self._paused, self._pause_reason = False, ""
        self.decide("resumed", by=control.identity, reason=control.reason)
        return f"resumed by {control.identity}"

    @resume.validator
    def _validate_resume(self, control: Control) -> None:
        self._check_target(control)
        self._check_open()
        if not self._paused:
            msg = "the release is not paused"
            raise ValueError(msg)

    @workflow.update(name="pause")
    def pause(self, control: Control) -> str:
        self._paused, self._pause_reason = True, f"paused by {control.identity}: {control.reason}"
        self.decide("pause requested", by=control.identity, reason=control.reason)
        return "the release holds at the next step boundary"

    @pause.validator
    def _validate_pause(self, control: Control) -> None:
        self._check_target(control)
        self._check_open()

    @workflow.update(name="abort")
    def abort(self, control: Control) -> str:
        self.interrupt(
            f"aborted by {control.identity}: {control.reason or 'no reason given'}", by=control.identity
        )
        return "rolling back"

    @abort.validator
    def _validate_abort(self, control: Control) -> None:
        self._check_target(control)
        self._check_open()
        if self._point_of_no_return:
            msg = "the release is past its point of no return (promoted); deploy the previous version instead"
            raise ValueError(msg)

    # The same controls as signals, for the web UI. Refusals are recorded, not raised.
    @workflow.signal(name="approve-signal")
    def approve_signal(self, control: Control) -> None:
        self._as_signal(self._validate_approve, self.approve, control)

    @workflow.signal(name="abort-signal")
    def abort_signal(self, control: Control) -> None:
        self._as_signal(self._validate_abort, self.abort, control)

    def _as_signal(
        self, validate: Callable[[Control], None], handle: Callable[[Control], str], control: Control
    ) -> None:
        try:
            validate(control)
            handle(control)
        except (ValueError, ApplicationError) as exc:
            if not isinstance(exc, ApplicationError):
                self.decide("ignored signal", by=control.identity, reason=str(exc))

    # ------------------------------------------------------------------ #
    # Metrics
    # ------------------------------------------------------------------ #

    def _gauge_weights(self, state: RouterState) -> None:
        gauge = workflow.metric_meter().create_gauge_float(
            "deploy_traffic_weight_percent", "share of traffic per pool", "%"
        )
        for pool, weight in state.weights.items():
            gauge.set(weight, {"environment": self.env.name, "pool": pool})

    def _gauge_awaiting(self, waited: timedelta) -> None:
        workflow.metric_meter().create_gauge_float(
            "deploy_awaiting_approval_seconds", "how long the release has waited for approval", "s"
        ).set(waited.total_seconds(), {"environment": self.env.name})

    def _count_outcome(self, result: ReleaseResult) -> None:
        meter = workflow.metric_meter()
        labels = {"outcome": result.outcome, "strategy": self.spec.strategy, "environment": self.env.name}
        meter.create_counter("deploy_release_total", "releases by outcome").add(1, labels)
        if result.outcome == "rolled_back":
            meter.create_counter("deploy_rollbacks_total", "releases rolled back").add(
                1, {"environment": self.env.name}
            )
