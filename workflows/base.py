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

with workflow.unsafe.imports_passed_through():
    from engine import temporal as names
    from engine.contracts import (
        Control,
        Decision,
        EnvironmentRef,
        Instance,
        Measurement,
        Observed,
        Phase,
        PoolRequest,
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

NON_RETRYABLE = ["BadRequest"]
QUICK = {
    "start_to_close_timeout": timedelta(seconds=15),
    "retry_policy": RetryPolicy(
        initial_interval=timedelta(milliseconds=200),
        maximum_interval=timedelta(seconds=3),
        maximum_attempts=20,
        non_retryable_error_types=NON_RETRYABLE,
    ),
}
"""Router changes, observations and smoke checks: fast, retried for about a minute."""
SLOW = {
    "start_to_close_timeout": timedelta(minutes=5),
    "heartbeat_timeout": timedelta(seconds=10),
    "retry_policy": RetryPolicy(
        initial_interval=timedelta(seconds=1),
        maximum_interval=timedelta(seconds=10),
        maximum_attempts=5,
        non_retryable_error_types=NON_RETRYABLE,
    ),
}
"""Starting and stopping instances: heartbeats while instances come up."""
COMPENSATE = {
    "start_to_close_timeout": timedelta(minutes=5),
    "heartbeat_timeout": timedelta(seconds=10),
    "retry_policy": RetryPolicy(
        initial_interval=timedelta(milliseconds=200),
        maximum_interval=timedelta(seconds=10),
        non_retryable_error_types=NON_RETRYABLE,
    ),
}
"""Undo steps, and steps past the point of no return, retry until they succeed and cannot be
interrupted (``finish=True``): a half-undone release is worse than a slow one."""
ANALYSIS_RETRY = RetryPolicy(
    initial_interval=timedelta(milliseconds=200),
    maximum_interval=timedelta(seconds=2),
    maximum_attempts=10,
    non_retryable_error_types=NON_RETRYABLE,
)
ANALYSIS_HEARTBEAT = timedelta(seconds=2)
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
        self._compensations: list[tuple[str, Callable[[], Awaitable[Any]]]] = []

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
            while self._compensations:
                what, undo = self._compensations.pop()
                self.decide(f"undo: {what}")
                await undo()
        except (ActivityError, ApplicationError) as exc:
            self.set_phase(Phase.FAILED)
            self.decide("rollback failed", reason=cause(exc))
            return self.result("failed", f"{why}; then the rollback failed: {cause(exc)}")
        self.set_phase(Phase.ROLLED_BACK)
        return self.result("rolled_back", why)

    def on_failure_undo(self, what: str, undo: Callable[[], Awaitable[Any]]) -> None:
        """Register how to undo a side effect that is about to happen."""
        self._compensations.append((what, undo))

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

    async def stop_pool(self, pool: str) -> None:
        await workflow.execute_activity(
            "platform.stop_pool",
            StopRequest(environment=self.env, pool=pool),
            summary=f"stop {pool}",
            **COMPENSATE,
        )

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
        timeout = self.env.approval_timeout
        try:
            await workflow.wait_condition(
                lambda: self._approved or self._promote_requested or self._interrupt is not None,
                timeout=timeout,
            )
        except TimeoutError:
            self.interrupt(f"approval timed out after {timeout}")
        finally:
            self._awaiting_approval = False
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

    def _count_outcome(self, result: ReleaseResult) -> None:
        meter = workflow.metric_meter()
        labels = {"outcome": result.outcome, "strategy": self.spec.strategy, "environment": self.env.name}
        meter.create_counter("deploy_release_total", "releases by outcome").add(1, labels)
        if result.outcome == "rolled_back":
            meter.create_counter("deploy_rollbacks_total", "releases rolled back").add(
                1, {"environment": self.env.name}
            )
