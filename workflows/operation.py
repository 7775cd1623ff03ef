"""What every workflow of this engine is: an operation with a status, an audit log and an undo stack.

Releases (``workflows/base.py``) and disaster-recovery operations (``workflows/dr_base.py``)
both keep a status that a query answers, a log of decisions (who decided what, and why),
an interrupt (abort, a failed check) that stops what runs, compensation steps pushed as side
effects happen and run in reverse on failure, a point of no return after which nothing is
undone, and approvers checked (by name, or by SSH signature where approvals are signed, with
the two-person rule where two are required) before anything moves forward.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Generic, NoReturn, TypeVar

from temporalio import workflow
from temporalio.exceptions import ActivityError, ApplicationError

from workflows.compensation import Compensations

with workflow.unsafe.imports_passed_through():
    from engine import approvals
    from engine.contracts import Approval, ApprovalPolicy, Control, Decision, Phase, ReleaseStatus
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
        self._nonces: set[str] = set()
        self._wait_started = datetime.min.replace(tzinfo=UTC)
        """When the current approval wait began: approvals count from there (two-person rule)."""

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
    def authorize(
        self,
        control: Control,
        action: str,
        approvers: list[str],
        where: str,
        *,
        policy: ApprovalPolicy | None = None,
        subject: str = "",
        run_id: str | None = None,
    ) -> Approval:
        """The approval, recorded; or refused (and the refusal recorded with its reason) when the
        sender is no approver or, where approvals are signed, the signature does not prove that
        this approver approves this ``action`` of this run (``subject``: its version or target; ``run_id``:
        the run the signature names, when not this one: an undo names the run it undoes)."""
        if control.identity not in approvers:
            allowed = ", ".join(approvers)
            why = f"{control.identity!r} may not {action} in {where!r} (approvers: {allowed})"
            self._refuse(control, action, why, "NotAnApprover")
        fingerprint = None
        if policy is not None and policy.approvals == "signed":
            fingerprint = self._check_signature(control, action, where, policy, subject, run_id=run_id)
        approval = Approval(
            action=action,
            by=control.identity,
            fingerprint=fingerprint,
            at=workflow.now(),
            reason=control.reason,
        )
        self.status = self.status.model_copy(update={"approvals": [*self.status.approvals, approval]})
        return approval

    def _check_signature(
        self,
        control: Control,
        action: str,
        where: str,
        policy: ApprovalPolicy,
        subject: str,
        *,
        run_id: str | None = None,
    ) -> str:
        """The key's fingerprint, if the signature proves it; refused otherwise (deterministic)."""
        signature = control.signature
        if signature is None:
            why = f"approvals in {where!r} are signed: {action} needs the approver's SSH signature"
            self._refuse(control, action, why, "SignatureRefused")
        info = workflow.info()
        text = approvals.message(
            workflow_id=info.workflow_id,
            run_id=run_id or info.run_id,
            action=action,
            environment=where,
            version=subject,
            issued_at=signature.issued_at,
            nonce=signature.nonce,
        )
        signers = [approvals.Signer(tuple(k.principals), k.key_type, k.key) for k in policy.signers]
        try:
            signer = approvals.verify(signature.armored, text, signers)  # deterministic: the payload alone
            if control.identity not in signer.principals:
                who = ", ".join(signer.principals)
                raise approvals.SignatureRefused(f"signed by the key of {who}, not of {control.identity!r}")
            approvals.check_time(signature.issued_at, workflow.now(), policy.signature_validity)
            if signature.nonce in self._nonces:
                raise approvals.SignatureRefused(
                    "its nonce was used before in this run (a replayed signature)"
                )
        except approvals.SignatureRefused as exc:
            self._refuse(control, action, f"signature refused: {exc}", "SignatureRefused")
        self._nonces.add(signature.nonce)
        return signer.fingerprint

    def _refuse(self, control: Control, action: str, why: str, kind: str) -> NoReturn:
        """Record the refusal with its reason (the status's ``refused``), and refuse."""
        entry = Decision(at=workflow.now(), what=f"refused {action}", by=control.identity, reason=why)
        self.status = self.status.model_copy(update={"refused": [*self.status.refused, entry]})
        raise ApplicationError(why, type=kind, non_retryable=True)

    def count_approval(
        self,
        control: Control,
        action: str,
        approvers: list[str],
        where: str,
        *,
        policy: ApprovalPolicy,
        subject: str,
    ) -> str | None:
        """Authorize ``control``; None once enough distinct approvers (keys, when signed) have given
        ``action`` since the wait began, else the answer saying how many more are needed."""
        self.authorize(control, action, approvers, where, policy=policy, subject=subject)
        needed = max(0, policy.required_approvals - self.approvals_given(action, self._wait_started))
        self.update_status(approvals_needed=needed)
        if not needed:
            return None
        given = policy.required_approvals - needed
        self.decide(
            f"{action} {given} of {policy.required_approvals}", by=control.identity, reason=control.reason
        )
        return f"{action} by {control.identity} counted: {needed} more distinct approver(s) needed"

    def approvals_given(self, action: str, since: datetime) -> int:
        """Distinct approvers (distinct keys when signed) of ``action`` since ``since``."""
        given = {a.fingerprint or a.by for a in self.status.approvals if a.action == action and a.at >= since}
        return len(given)
