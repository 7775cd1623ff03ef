"""What every workflow of this engine is: an operation with a status, an audit log and an undo stack.

Releases (``workflows/base.py``) and disaster-recovery operations (``workflows/dr_base.py``)
both keep a status that a query answers, a log of decisions (who decided what, and why),
an interrupt (abort, a failed check) that stops what runs, compensation steps pushed as side
effects happen and run in reverse on failure, a point of no return after which nothing is
undone, and approvers checked by name before anything moves forward.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Generic, TypeVar

from temporalio import workflow
from temporalio.exceptions import ActivityError, ApplicationError

from workflows.compensation import Compensations

with workflow.unsafe.imports_passed_through():
    from engine.contracts import Control, Decision, Phase, ReleaseStatus
    from engine.contracts.dr import DrStatus

T = TypeVar("T")
StatusT = TypeVar("StatusT", ReleaseStatus, DrStatus)


class Interrupted(Exception):
    """Raised inside an operation when it must stop and undo what it did."""

    def __init__(self, reason: str, by: str = "engine") -> None:
        super().__init__(reason)
        self.reason = reason
        self.by = by


def cause(exc: BaseException) -> str:
    """The message a human wants from an activity failure."""
    if isinstance(exc, ActivityError) and exc.cause is not None:
        return str(exc.cause)
    return str(exc)


class Operation(Generic[StatusT]):
    """Status, decisions, interrupt and undo stack of one workflow run."""

    def __init__(self, status: StatusT) -> None:
        self.status: StatusT = status
        self._interrupt: Interrupted | None = None
        self._point_of_no_return = False
        self._compensations = Compensations()

    # ---- the audit log and status -----------------------------------------------------------
    def details(self) -> str:
        """What the web UI shows as the run's current details (markdown)."""
        raise NotImplementedError

    def decide(self, what: str, by: str = "engine", reason: str = "") -> None:
        """Record a decision in the status (and the worker log)."""
        entry = Decision(at=workflow.now(), what=what, by=by, reason=reason)
        self.status = self.status.model_copy(update={"decisions": [*self.status.decisions, entry]})
        workflow.logger.info("%s%s", what, f" ({reason})" if reason else "")
        workflow.set_current_details(self.details())

    def set_phase(self, phase: Phase) -> None:
        self.status = self.status.model_copy(update={"phase": phase})

    def update_status(self, **changes: object) -> None:
        self.status = self.status.model_copy(update=changes)

    # ---- interrupts ---------------------------------------------------------------------------
    def interrupt(self, reason: str, by: str = "engine") -> None:
        """Stop the operation at once (what runs is cancelled) and undo; not past the point of no return."""
        if self._interrupt is None and not self._point_of_no_return:
            self._interrupt = Interrupted(reason, by)

    def check_interrupt(self) -> None:
        if self._interrupt is not None:
            raise self._interrupt

    async def guarded(self, start: Callable[[], Awaitable[T]]) -> T:
        """Await ``start()`` unless the operation is interrupted first (then what runs is cancelled)."""
        self.check_interrupt()
        task = asyncio.ensure_future(start())
        await workflow.wait_condition(lambda: task.done() or self._interrupt is not None)
        if not task.done():
            task.cancel()
            self.check_interrupt()
        return task.result()

    # ---- undo ---------------------------------------------------------------------------------
    def on_failure_undo(self, what: str, undo: Callable[[], Awaitable[object]]) -> None:
        """Register how to undo a side effect that is about to happen."""
        self._compensations.add(what, undo)

    def point_of_no_return(self, what: str) -> None:
        """From here on the operation completes forward; abort is refused, nothing is undone."""
        self._compensations.clear()
        self._point_of_no_return = True
        self.decide(what)

    async def undo_all(
        self,
        why: str,
        *,
        by: str = "engine",
        nothing: str = "failed",
        start: str = "undoing",
        noun: str = "undo",
    ) -> tuple[str, str]:
        """Run the undo stack in reverse: ``(outcome, reason)``, outcome failed or rolled_back.

        With nothing to undo the operation failed (``nothing`` is logged); a failed undo step
        leaves the rest and fails the operation, saying what failed.
        """
        if not self._compensations:
            self.set_phase(Phase.FAILED)
            self.decide(nothing, by=by, reason=why)
            return "failed", why
        self.set_phase(Phase.ROLLING_BACK)
        self.decide(start, by=by, reason=why)
        try:
            await self._compensations.run(lambda what: self.decide(f"undo: {what}"))
        except (ActivityError, ApplicationError) as exc:
            self.set_phase(Phase.FAILED)
            self.decide(f"{noun} failed", reason=cause(exc))
            return "failed", f"{why}; then the {noun} failed: {cause(exc)}"
        self.set_phase(Phase.ROLLED_BACK)
        return "rolled_back", why

    # ---- approvers ----------------------------------------------------------------------------
    def authorize(self, control: Control, action: str, approvers: list[str], where: str) -> None:
        """Record and refuse ``action`` from someone not among ``approvers``."""
        if control.identity in approvers:
            return
        entry = Decision(
            at=workflow.now(), what=f"refused {action}", by=control.identity, reason=control.reason
        )
        self.status = self.status.model_copy(update={"refused": [*self.status.refused, entry]})
        allowed = ", ".join(approvers)
        msg = f"{control.identity!r} may not {action} in {where!r} (approvers: {allowed})"
        raise ApplicationError(msg, type="NotAnApprover", non_retryable=True)
