"""Human controls of a release, its pauses and its status.

Controls are Temporal updates (the caller gets accepted or refused at once) and, for the
web UI's "send signal", the same as signals: approve, promote and resume move a release
forward and need a configured approver; pause and abort stop it and anyone may send them.
Every refusal is kept in the status. A release holds at the next step boundary while
paused, waits for approval with a timeout (publishing how long it has waited), and pauses
for a human on inconclusive evidence.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from datetime import timedelta

from temporalio import workflow
from temporalio.exceptions import ApplicationError

from workflows.operation import Operation
from workflows.options import APPROVAL_TICK

with workflow.unsafe.imports_passed_through():
    from engine import temporal as names
    from engine.contracts import Control, Instance, Phase, ReleaseSpec, ReleaseStatus


class ReleaseControls(Operation[ReleaseStatus]):
    """The state of a release run, and what people can do to it."""

    def __init__(self, spec: ReleaseSpec) -> None:
        super().__init__(
            ReleaseStatus(
                release=spec.release_id,
                version=spec.version,
                strategy=spec.strategy,
                environment=spec.environment.name,
                phase=Phase.PENDING,
            )
        )
        self.spec = spec
        self.env = spec.environment
        self._paused = False
        self._pause_reason = ""
        self._awaiting_approval = False
        self._approved = False
        self._promote_requested = False
        self._window_paused = False
        """Paused by a deploy window (engine/windows.py): resume or override-window goes on."""
        self._window_waiting = False
        """Not started yet, waiting for the deploy window to open: only override-window starts it now."""
        self._window_overridden = False
        self.stable_pool = ""
        self.canary_pool = ""
        self.stable: list[Instance] = []

    # ---- pauses and approvals -----------------------------------------------------------------
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
        self._wait_started = workflow.now()
        self.update_status(approvals_needed=self.env.policy.required_approvals)
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
            self.update_status(approvals_needed=0)
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

    def set_phase(self, phase: Phase) -> None:
        if phase != self.status.phase:
            self.status = self.status.model_copy(update={"phase": phase})
            workflow.upsert_search_attributes([names.PHASE.value_set(phase.value)])

    def details(self) -> str:
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

    # ---- controls ----------------------------------------------------------------------------
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
        return self._approve(control)

    def _approve(self, control: Control) -> str:
        if (more := self._count(control, "approve")) is not None:
            return more
        self._approved = True
        self.decide("approved", by=control.identity, reason=control.reason)
        return f"approved by {control.identity}"

    def _count(self, control: Control, action: str) -> str | None:
        """Who may, proof that it is them where approvals are signed, and how many more are needed
        (the two-person rule): ``workflows/operation.py``."""
        env = self.env
        return self.count_approval(
            control, action, env.approvers, env.name, policy=env.policy, subject=self.spec.version
        )

    @approve.validator
    def _validate_approve(self, control: Control) -> None:
        self._check_target(control)
        self._check_open()
        if not self._awaiting_approval:
            msg = f"nothing awaits approval (phase {self.status.phase.value})"
            raise ValueError(msg)

    @workflow.update(name="promote")
    def promote(self, control: Control) -> str:
        if (more := self._count(control, "promote")) is not None:
            return more
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
        env = self.env
        self.authorize(
            control, "resume", env.approvers, env.name, policy=env.policy, subject=self.spec.version
        )
        self._paused, self._pause_reason = False, ""
        self._window_paused = False
        self.decide("resumed", by=control.identity, reason=control.reason)
        return f"resumed by {control.identity}"

    @resume.validator
    def _validate_resume(self, control: Control) -> None:
        self._check_target(control)
        self._check_open()
        if not self._paused:
            msg = "the release is not paused"
            raise ValueError(msg)
        if self._window_waiting:
            msg = f"{self._pause_reason}; to start it now: override-window with a reason (recorded)"
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
        return self._abort(control)

    def _abort(self, control: Control) -> str:
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

    @workflow.update(name="undo")
    def undo(self, control: Control) -> str:
        """``control.py undo`` while this release runs: an abort that needs an approver (signed where
        approvals are), back to the version that was live (blue-green in its scale-down delay: a flip)."""
        env = self.env
        self.authorize(control, "undo", env.approvers, env.name, policy=env.policy, subject=self.spec.version)
        self.interrupt(
            f"undone by {control.identity}: {control.reason or 'no reason given'}", by=control.identity
        )
        return f"undoing {self.spec.version}: back to the version that was live"

    @undo.validator
    def _validate_undo(self, control: Control) -> None:
        self._validate_abort(control)

    # The same controls as signals, for the web UI. Refusals are recorded, not raised.
    @workflow.signal(name="approve-signal")
    def approve_signal(self, control: Control) -> None:
        self._as_signal(self._validate_approve, self._approve, control)

    @workflow.signal(name="abort-signal")
    def abort_signal(self, control: Control) -> None:
        self._as_signal(self._validate_abort, self._abort, control)

    def _as_signal(
        self, validate: Callable[[Control], None], handle: Callable[[Control], str], control: Control
    ) -> None:
        try:
            validate(control)
            handle(control)
        except (ValueError, ApplicationError) as exc:
            if not isinstance(exc, ApplicationError):
                self.decide("ignored signal", by=control.identity, reason=str(exc))

    def _gauge_awaiting(self, waited: timedelta) -> None:
        workflow.metric_meter().create_gauge_float(
            "deploy_awaiting_approval_seconds", "how long the release has waited for approval", "s"
        ).set(waited.total_seconds(), {"environment": self.env.name})

    # ---- deploy windows: the Release workflow decides (workflows/release.py), its strategy child is told
    def hold_for_window(self, reason: str, *, waiting: bool = False) -> None:
        """Pause for a deploy window (after the current step, at the next checkpoint); resume or
        override-window goes on (``waiting``: not started yet, only override-window starts it)."""
        self._paused, self._pause_reason = True, reason
        self._window_paused, self._window_waiting = True, waiting
        self._wait_started = workflow.now()  # override approvals count from here (two-person rule)

    def windows_apply(self) -> bool:
        """Whether a deploy window holds this run (the Release: whenever it has windows)."""
        return self._window_paused

    @workflow.signal(name="window-closed")
    def window_closed(self, control: Control) -> None:
        """The deploy window closed (sent by the Release workflow to its strategy child): pause after the
        current step. Like pause, open to anyone; resume or override-window (approvers) goes on."""
        if self._window_overridden or self.status.phase in (Phase.SUCCEEDED, Phase.ROLLED_BACK, Phase.FAILED):
            return
        self.hold_for_window(f"the deploy window closed: {control.reason}")
        self.decide("pause: the deploy window closed", by=control.identity, reason=control.reason)

    @workflow.update(name="override-window")
    def override_window(self, control: Control) -> str:
        """An approver lets the release run outside its deploy windows from now on, with a reason
        (recorded in decisions and approvals); the same policy as approve (named or signed)."""
        if (more := self._count(control, "override-window")) is not None:
            return more
        self._window_overridden = True
        if self._window_paused:
            self._paused, self._pause_reason = False, ""
            self._window_paused = self._window_waiting = False
        self.decide("deploy window overridden", by=control.identity, reason=control.reason)
        return f"deploy window overridden by {control.identity}: the release goes on"

    @override_window.validator
    def _validate_override_window(self, control: Control) -> None:
        self._check_target(control)
        self._check_open()
        if not control.reason.strip():
            msg = "override-window needs a reason (--reason TEXT): it is recorded with the approval"
            raise ValueError(msg)
        if self._window_overridden:
            msg = "the deploy window is already overridden for this release"
            raise ValueError(msg)
        if not self.windows_apply():
            msg = "no deploy window holds this release"
            raise ValueError(msg)
