"""Analysis gates of a release: the queries checked before any change, analyses run to a verdict.

A gate passes when every template succeeds; a failed analysis rolls the release back; an
inconclusive one (missing data is never a success) pauses for a human. The judging itself
happens in the ``analysis.run`` activity; this is what the workflow does with its verdicts.
"""

from __future__ import annotations

import asyncio
from datetime import timedelta

from temporalio import workflow

from workflows.operation import Interrupted
from workflows.options import ANALYSIS_HEARTBEAT, ANALYSIS_RETRY, QUICK, call
from workflows.steps import ReleaseSteps

with workflow.unsafe.imports_passed_through():
    from engine.contracts import (
        AnalysisRef,
        AnalysisRequest,
        AnalysisResult,
        Measurement,
        MetricTally,
        QueryCheckRequest,
    )
    from engine.contracts.activities import CHECK_QUERIES, RUN_ANALYSIS


class AnalysisGates(ReleaseSteps):
    """Analysis orchestration of a release."""

    def analysis_args(self) -> dict[str, str]:
        return {
            "app": self.spec.app.name,
            "environment": self.env.name,
            "canary_version": self.spec.version,
            "stable_version": self.status.stable_version or "",
            "canary_pool": self.canary_pool,
            "stable_pool": self.stable_pool,
        }

    async def check_queries(self) -> None:
        """Before any side effect: the metrics provider parses every analysis query.

        A query that does not parse fails the release before any change (non-retryable
        BadRequest naming the template and metric).
        """
        refs = self.spec.analysis_refs()
        if not refs or not workflow.patched("check-queries-before-start"):
            return
        args = {k: v or k for k, v in self.analysis_args().items()}  # syntax only: any label value
        request = QueryCheckRequest(environment=self.env, analyses=refs, args=args)
        summary = f"check the queries of {', '.join(r.name for r in refs)}"
        checked = await self.guarded(lambda: call(CHECK_QUERIES, request, summary=summary, **QUICK))
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
        return await call(
            RUN_ANALYSIS,
            request,
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

    def record_analysis(self, measurements: list[Measurement]) -> None:
        if measurements:
            latest = {m.metric: m for m in measurements}
            self.update_status(last_analysis=list(latest.values()))
