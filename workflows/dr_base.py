"""What the disaster-recovery workflows share: status, decisions, approval, timed steps, undo.

:class:`~workflows.base.ReleaseWorkflow` is built around a release (a version, traffic
weights); a failover has regions and databases instead, so it gets this small base. It
reuses the release base's activity option sets, ``Interrupted`` and ``cause``, and keeps
the same shape: decisions log, ``status`` query, approve/abort updates (approve needs a
configured approver), a compensation stack run in reverse, and a point of no return.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import Any, TypeVar

from temporalio import workflow
from temporalio.exceptions import ActivityError, ApplicationError, ChildWorkflowError

from workflows.base import MS, Interrupted, S, cause, options, retry
from workflows.compensation import Compensations

with workflow.unsafe.imports_passed_through():
    from engine.contracts import Control, Decision, Phase
    from engine.contracts.dr import DrReport, DrResult, DrSpec, DrStatus, StepTiming

T = TypeVar("T")

DR_QUICK = options(20 * S, retry(200 * MS, 2 * S, attempts=15))
"""Fence, promote, switch, observe: quick, retried for about half a minute."""
DR_SLOW = options(10 * 60 * S, retry(1 * S, 5 * S, attempts=5), heartbeat=3 * S)
"""Rebuilds, catch-up, scaling, probes: heartbeat, so a dead worker is noticed within seconds."""
DR_UNDO = options(10 * 60 * S, retry(500 * MS, 10 * S, attempts=30), heartbeat=3 * S)
"""Undo steps: retried for several minutes."""


class Refused(Exception):
    """The request cannot run as asked; nothing was changed."""


class DrWorkflow:
    """Base of the failover and drill workflows; subclasses implement ``body()``."""

    kind = "failover"

    def __init__(self, dr: DrSpec, operation: str) -> None:
        self.dr = dr
        self.status = DrStatus(operation=operation, phase=Phase.PENDING)
        self.report = DrReport(kind=self.kind, started_at=workflow.now())  # type: ignore[arg-type]
        self._compensations = Compensations()
        self._point_of_no_return = False
        self._awaiting_approval = False
        self._approved_by: str | None = None
        self._interrupt: Interrupted | None = None

    async def body(self) -> str:
        raise NotImplementedError

    async def execute(self) -> DrResult:
        self.decide(f"{self.status.operation} requested")
        self.set_phase(Phase.PROGRESSING)
        try:
            reason = await self.body()
            outcome = "succeeded"
            self.set_phase(Phase.SUCCEEDED)
        except Refused as exc:
            outcome, reason = "refused", str(exc)
            self.set_phase(Phase.FAILED)
            self.decide("refused; nothing was changed", reason=reason)
        except (
            Interrupted,
            ActivityError,
            ApplicationError,
            ChildWorkflowError,
            asyncio.CancelledError,
        ) as exc:
            why = exc.reason if isinstance(exc, Interrupted) else cause(exc)
            if isinstance(exc, ChildWorkflowError) and exc.cause is not None:
                why = cause(exc.cause)
            outcome, reason = await self._undo(why)
        self.report = self.report.model_copy(
            update={"outcome": outcome, "reason": reason, "finished_at": workflow.now()}
        )
        self.update_status(report=self.report)
        self.count_outcome(outcome)
        await workflow.wait_condition(workflow.all_handlers_finished)
        return DrResult(outcome=outcome, reason=reason, report=self.report, status=self.query_status())  # type: ignore[arg-type]

    def count_outcome(self, outcome: str) -> None:
        """Metrics of the finished operation (monitoring/production/ENGINE_METRICS.md); drills override."""

    async def _undo(self, why: str) -> tuple[str, str]:
        if not self._compensations:
            self.set_phase(Phase.FAILED)
            self.decide("failed", reason=why)
            return "failed", why
        self.set_phase(Phase.ROLLING_BACK)
        self.decide("undoing", reason=why)
        try:
            await self._compensations.run(lambda what: self.decide(f"undo: {what}"))
        except (ActivityError, ApplicationError) as exc:
            self.set_phase(Phase.FAILED)
            self.decide("undo failed", reason=cause(exc))
            return "failed", f"{why}; then the undo failed: {cause(exc)}"
        self.set_phase(Phase.ROLLED_BACK)
        return "rolled_back", why

    def on_failure_undo(self, what: str, undo: Callable[[], Awaitable[Any]]) -> None:
        self._compensations.add(what, undo)

    def point_of_no_return(self, what: str) -> None:
        self._compensations.clear()
        self._point_of_no_return = True
        self.decide(what)

    # ------------------------------------------------------------------ #
    # Steps and activities
    # ------------------------------------------------------------------ #

    async def step(self, name: str, run: Callable[[], Awaitable[T]]) -> T:
        """Run one step of the runbook, timed into the report; abort interrupts it before the switch."""
        self.check_interrupt()
        self.update_status(step=name)
        started = workflow.now()
        task = asyncio.ensure_future(run())
        await workflow.wait_condition(lambda: task.done() or self._interrupt is not None)
        if not task.done():
            task.cancel()
            self.check_interrupt()
        result = task.result()
        seconds = round((workflow.now() - started).total_seconds(), 3)
        self.report = self.report.model_copy(
            update={"steps": [*self.report.steps, StepTiming(step=name, seconds=seconds)]}
        )
        self.update_status(report=self.report)
        return result

    async def call(self, name: str, arg: Any, result_type: type | None = None, **options: Any) -> Any:
        return await workflow.execute_activity(
            name, arg, result_type=result_type, summary=name, **(options or DR_QUICK)
        )

    def check_interrupt(self) -> None:
        if self._interrupt is not None:
            raise self._interrupt

    async def wait_for_approval(self, what: str) -> None:
        self._awaiting_approval = True
        self.set_phase(Phase.AWAITING_APPROVAL)
        self.decide(f"waiting for approval: {what}")
        try:
            await workflow.wait_condition(
                lambda: self._approved_by is not None or self._interrupt is not None,
                timeout=self.dr.approval_timeout,
            )
        except TimeoutError:
            self._interrupt = Interrupted(f"approval timed out after {self.dr.approval_timeout}")
        finally:
            self._awaiting_approval = False
        self.check_interrupt()
        self.set_phase(Phase.PROGRESSING)

    # ------------------------------------------------------------------ #
    # Status
    # ------------------------------------------------------------------ #

    def decide(self, what: str, by: str = "engine", reason: str = "") -> None:
        entry = Decision(at=workflow.now(), what=what, by=by, reason=reason)
        self.status = self.status.model_copy(update={"decisions": [*self.status.decisions, entry]})
        workflow.logger.info("%s%s", what, f" ({reason})" if reason else "")
        recent = "\n".join(f"- {d.what}" for d in self.status.decisions[-6:])
        workflow.set_current_details(f"**{self.status.operation}**: {self.status.phase.value}\n{recent}")

    def set_phase(self, phase: Phase) -> None:
        self.status = self.status.model_copy(update={"phase": phase})

    def update_status(self, **changes: Any) -> None:
        self.status = self.status.model_copy(update=changes)

    def measure(self, **values: Any) -> None:
        self.report = self.report.model_copy(update=values)
        self.update_status(report=self.report)

    @staticmethod
    def seconds(start: datetime | None, end: datetime | None) -> float | None:
        if start is None or end is None:
            return None
        return round((end - start).total_seconds(), 3)

    @workflow.query(name="status")
    def query_status(self) -> DrStatus:
        return self.status.model_copy(update={"awaiting_approval": self._awaiting_approval})

    # ------------------------------------------------------------------ #
    # Controls
    # ------------------------------------------------------------------ #

    @workflow.update(name="approve")
    def approve(self, control: Control) -> str:
        if control.identity not in self.dr.approvers:
            entry = Decision(
                at=workflow.now(), what="refused approve", by=control.identity, reason=control.reason
            )
            self.update_status(refused=[*self.status.refused, entry])
            allowed = ", ".join(self.dr.approvers)
            msg = f"{control.identity!r} may not approve in {self.dr.environment!r} (approvers: {allowed})"
            raise ApplicationError(msg, type="NotAnApprover", non_retryable=True)
        self._approved_by = control.identity
        self.decide("approved", by=control.identity, reason=control.reason)
        return f"approved by {control.identity}"

    @approve.validator
    def _validate_approve(self, control: Control) -> None:
        if not self._awaiting_approval:
            msg = f"nothing awaits approval (phase {self.status.phase.value})"
            raise ValueError(msg)

    @workflow.update(name="abort")
    def abort(self, control: Control) -> str:
        self._interrupt = Interrupted(
            f"aborted by {control.identity}: {control.reason or 'no reason given'}", by=control.identity
        )
        return "undoing"

    @abort.validator
    def _validate_abort(self, control: Control) -> None:
        if self._point_of_no_return:
            msg = "users were already switched to the new region: fail back instead"
            raise ValueError(msg)
        if self.status.phase in (Phase.SUCCEEDED, Phase.FAILED, Phase.ROLLED_BACK):
            msg = f"the operation has ended ({self.status.phase.value})"
            raise ValueError(msg)
