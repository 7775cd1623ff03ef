"""What the disaster-recovery workflows share: status, decisions, approval, timed steps, undo.

A failover has regions and databases instead of versions and traffic weights, so it gets this
small base over :class:`~workflows.operation.Operation` (status, decisions, interrupts, the undo
stack, approvers: the same as releases) with the option sets of ``workflows/options.py``:
approve/abort updates (approve needs a configured approver), steps timed into the report,
a compensation stack run in reverse, and a point of no return.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import Any, TypeVar

from temporalio import workflow
from temporalio.exceptions import ActivityError, ApplicationError, ChildWorkflowError

from workflows.operation import Interrupted, Operation, cause
from workflows.options import DR_QUICK, ActivityOptions, call

with workflow.unsafe.imports_passed_through():
    from engine.contracts import Control, Phase
    from engine.contracts.activities import Activity
    from engine.contracts.dr import DrReport, DrResult, DrSpec, DrStatus, StepTiming

T = TypeVar("T")
Req = TypeVar("Req")
Res = TypeVar("Res")


class Refused(Exception):
    """The request cannot run as asked; nothing was changed."""


class DrWorkflow(Operation[DrStatus]):
    """Base of the failover and drill workflows; subclasses implement ``body()``."""

    kind = "failover"

    def __init__(self, dr: DrSpec, operation: str) -> None:
        super().__init__(DrStatus(operation=operation, phase=Phase.PENDING))
        self.dr = dr
        self.report = DrReport(kind=self.kind, started_at=workflow.now())
        self._awaiting_approval = False
        self._approved_by: str | None = None

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
            outcome, reason = await self.undo_all(why)
        self.report = self.report.model_copy(
            update={"outcome": outcome, "reason": reason, "finished_at": workflow.now()}
        )
        self.update_status(report=self.report)
        self.count_outcome(outcome)
        await workflow.wait_condition(workflow.all_handlers_finished)
        return DrResult(outcome=outcome, reason=reason, report=self.report, status=self.query_status())

    def count_outcome(self, outcome: str) -> None:
        """Metrics of the finished operation (monitoring/production/ENGINE_METRICS.md); drills override."""

    # ------------------------------------------------------------------ #
    # Steps and activities
    # ------------------------------------------------------------------ #

    async def step(self, name: str, run: Callable[[], Awaitable[T]]) -> T:
        """Run one step of the runbook, timed into the report; abort interrupts it before the switch."""
        self.check_interrupt()
        self.update_status(step=name)
        started = workflow.now()
        result = await self.guarded(run)
        seconds = round((workflow.now() - started).total_seconds(), 3)
        self.report = self.report.model_copy(
            update={"steps": [*self.report.steps, StepTiming(step=name, seconds=seconds)]}
        )
        self.update_status(report=self.report)
        return result

    async def call(
        self, declared: Activity[Req, Res], request: Req, options: ActivityOptions = DR_QUICK
    ) -> Res:
        """Run a declared activity (summary: its name), quick and briefly retried unless told otherwise."""
        return await call(declared, request, summary=declared.name, **options)

    async def wait_for_approval(self, what: str) -> None:
        self._awaiting_approval = True
        self._wait_started = workflow.now()
        self.update_status(approvals_needed=self.dr.policy.required_approvals)
        self.set_phase(Phase.AWAITING_APPROVAL)
        self.decide(f"waiting for approval: {what}")
        try:
            await workflow.wait_condition(
                lambda: self._approved_by is not None or self._interrupt is not None,
                timeout=self.dr.approval_timeout,
            )
        except TimeoutError:
            self.interrupt(f"approval timed out after {self.dr.approval_timeout}")
        finally:
            self._awaiting_approval = False
        self.check_interrupt()
        self.set_phase(Phase.PROGRESSING)

    # ------------------------------------------------------------------ #
    # Status
    # ------------------------------------------------------------------ #

    def details(self) -> str:
        recent = "\n".join(f"- {d.what}" for d in self.status.decisions[-6:])
        return f"**{self.status.operation}**: {self.status.phase.value}\n{recent}"

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
        # What an approver signs as the subject of a failover: the operation, as the status names it.
        dr = self.dr
        more = self.count_approval(
            control, "approve", dr.approvers, dr.environment, policy=dr.policy, subject=self.status.operation
        )
        if more is not None:
            return more
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
        self.interrupt(
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
