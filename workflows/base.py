"""The base of every release workflow: run the strategy, undo on failure, report the result.

Strategies (``canary.py``, ``blue_green.py``, ``rolling.py``) and the pipeline around them
(``release.py``) subclass :class:`ReleaseWorkflow` and implement ``release()``, reading like
their runbook. What they are built from lives one concern per module:

- ``options``: activity option sets and retry policies, and ``call`` (declared activities);
- ``operation``: status, decisions, interrupts, the undo stack (shared with the DR workflows);
- ``controls``: approve / promote / resume / pause / abort, pauses, approvals, the status query;
- ``steps``: the activity steps (observe, run instances, route traffic, smoke) and what is live;
- ``gates``: analysis gates (queries checked before any change, analyses to a verdict).
"""

from __future__ import annotations

import asyncio

from temporalio import workflow
from temporalio.exceptions import ActivityError, ApplicationError

from workflows.gates import AnalysisGates
from workflows.operation import Interrupted, cause

with workflow.unsafe.imports_passed_through():
    from engine.contracts import Outcome, ReleaseResult


class ReleaseWorkflow(AnalysisGates):
    """Base of the strategy workflows; subclasses implement ``release()``."""

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
            outcome, reason = await self.undo_all(
                why, by=by, nothing="failed before any change", start="rolling back", noun="rollback"
            )
            result = self.result(outcome, reason)
        await workflow.wait_condition(workflow.all_handlers_finished)
        self._count_outcome(result)
        return result

    def result(self, outcome: Outcome | str, reason: str, live_version: str | None = None) -> ReleaseResult:
        live = live_version or (self.spec.version if outcome == "succeeded" else self.status.stable_version)
        return ReleaseResult(
            outcome=outcome,
            reason=reason,
            version=self.spec.version,
            live_version=live,
            status=self.query_status(),
        )

    def _count_outcome(self, result: ReleaseResult) -> None:
        meter = workflow.metric_meter()
        labels = {"outcome": result.outcome, "strategy": self.spec.strategy, "environment": self.env.name}
        meter.create_counter("deploy_release_total", "releases by outcome").add(1, labels)
        if result.outcome == "rolled_back":
            meter.create_counter("deploy_rollbacks_total", "releases rolled back").add(
                1, {"environment": self.env.name}
            )
