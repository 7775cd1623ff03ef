"""Analysis gates of a release: the queries checked before any change, analyses run to a verdict.

A gate passes when every template passes; a failed analysis rolls the release back; an
inconclusive one (missing data, too little traffic: never a pass) pauses for a human, and
``resume`` measures again (only ``promote`` skips the gate, and the decision log says so).

Two kinds of template (``engine/contracts/analysis.py``):

- threshold templates run in the ``analysis.run`` activity to their verdict;
- comparing judges (sequential, mann-whitney) run in the ``analysis.judge`` activity chunk by
  chunk, the workflow carrying the judge's state from one chunk to the next. A gate opens a window
  (the template's ``window``); the judge says passed or inconclusive when it ends, failed at any
  moment before. Strategies choose the sides: the canary against its baseline, green against blue,
  a rolling batch's new instances against the old ones; the canary keeps one judge per template
  watching from its first traffic to its promotion (``workflows/canary.py``).
"""

from __future__ import annotations

import asyncio
import functools
from datetime import datetime, timedelta

from temporalio import workflow

from workflows.operation import Interrupted
from workflows.options import ANALYSIS_HEARTBEAT, ANALYSIS_RETRY, QUICK, call
from workflows.steps import ReleaseSteps

with workflow.unsafe.imports_passed_through():
    from engine.contracts import (
        AnalysisRef,
        AnalysisRequest,
        AnalysisResult,
        Evidence,
        JudgeRequest,
        JudgeResult,
        JudgeState,
        Measurement,
        MetricTally,
        QueryCheckRequest,
        Side,
    )
    from engine.contracts.activities import CHECK_QUERIES, JUDGE, RUN_ANALYSIS

JUDGE_CHUNK = timedelta(seconds=10)
"""How long one ``analysis.judge`` activity reads before the workflow hears from it (and can
record its evidence); a verdict returns at once."""


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
            "region": self._region(),
            "component": self.env.component,
        }

    def _region(self) -> str:
        """The region the release is aimed at: a local platform's region, else the AWS region."""
        if self.env.local is not None:
            return self.env.local.region or self.env.local.regions[0]
        return self.env.aws.region if self.env.aws is not None else ""

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

    # ---- threshold templates --------------------------------------------------------------------
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
        """An analysis gate: every template must pass; failed rolls back, inconclusive pauses.

        After an inconclusive gate, ``resume`` measures again (the gate runs anew); ``promote``
        ends it. Comparing judges run after the threshold templates (:meth:`judge_gate`).
        """
        threshold = [r for r in refs if r.judge is None]
        judged = [r for r in refs if r.judge is not None]
        while threshold:
            results = await self.guarded(lambda: asyncio.gather(*(self.run_analysis(r) for r in threshold)))
            for result in results:
                self.record_analysis(result.measurements)
                if result.phase == "failed":
                    raise Interrupted(f"analysis {result.name} failed: {result.message}")
            unsure = next((r for r in results if r.phase == "inconclusive"), None)
            if unsure is None:
                self.decide("analysis passed: " + ", ".join(f"{r.name} ({r.message})" for r in results))
                break
            self.pause_for_human(f"analysis {unsure.name} inconclusive: {unsure.message}")
            await self.checkpoint()
            if not workflow.patched("resume-re-measures") or self._skip_gate(unsure.name):
                return
        if judged:
            await self.judge_gate(judged)

    def _skip_gate(self, name: str) -> bool:
        """After a pause: promote ends the gate (said in the log); resume measures again."""
        if self._promote_requested:
            self.decide(f"analysis {name} not measured again: promote skips the gate")
            return True
        self.decide(f"analysis {name} measured again after resume")
        return False

    def record_analysis(self, measurements: list[Measurement]) -> None:
        if measurements:
            latest = {m.metric: m for m in measurements}
            self.update_status(last_analysis=list(latest.values()))

    # ---- comparing judges ---------------------------------------------------------------------------
    def sides(self) -> tuple[Side, Side | None]:
        """What a judge compares: this release's new instances, and the old ones beside them."""
        stable = self.status.stable_version or ""
        return Side(pool=self.canary_pool, version=self.spec.version), Side(
            pool=self.stable_pool, version=stable
        )

    async def judge_chunk(
        self,
        ref: AnalysisRef,
        state: JudgeState,
        canary: Side,
        baseline: Side | None,
        *,
        gate_since: datetime | None,
        chunk: timedelta = JUDGE_CHUNK,
    ) -> JudgeResult:
        """One ``analysis.judge`` activity: ``chunk`` of evidence, or less if a verdict comes first."""
        assert ref.judge is not None  # callers pass comparing templates only
        request = JudgeRequest(
            environment=self.env,
            name=ref.name,
            spec=ref.judge,
            canary=canary,
            baseline=baseline,
            args=self.analysis_args(),
            state=state,
            chunk=chunk,
            gate_since=gate_since,
        )
        against = f" against {baseline.pool}" if baseline else " (SLO guards only)"
        result = await call(
            JUDGE,
            request,
            summary=f"judge {ref.name}: {canary.pool}{against}" + (" (gate)" if gate_since else ""),
            start_to_close_timeout=chunk * 2 + ref.judge.interval * 2 + timedelta(seconds=30),
            heartbeat_timeout=ANALYSIS_HEARTBEAT + ref.judge.interval,
            retry_policy=ANALYSIS_RETRY,
        )
        self.record_evidence(ref.name, result.evidence)
        return result

    async def judge_gate(self, refs: list[AnalysisRef]) -> None:
        """A gate of comparing judges, each from fresh evidence between :meth:`sides` (the canary
        overrides this to use the judges watching since its first traffic)."""
        canary, baseline = self.sides()
        for ref in refs:
            again = True
            while again:
                result = await self.judge_to_verdict(ref, canary, baseline)
                again = await self.settle_gate(ref.name, result)

    async def judge_to_verdict(self, ref: AnalysisRef, canary: Side, baseline: Side | None) -> JudgeResult:
        """Chunks of one judge from a fresh start until the gate's window gives its verdict."""
        since, state = workflow.now(), JudgeState()
        while True:
            result = await self.guarded(
                functools.partial(self.judge_chunk, ref, state, canary, baseline, gate_since=since)
            )
            if result.phase != "running":
                return result
            state = result.state

    async def settle_gate(self, name: str, result: JudgeResult) -> bool:
        """What a gate's verdict does; True when the gate must be measured again (resumed)."""
        if result.phase == "failed":
            raise Interrupted(f"analysis {name} failed: {result.message}")
        if result.phase == "passed":
            self.decide(f"analysis {name} passed", reason=result.message)
            return False
        self.pause_for_human(f"analysis {name} inconclusive: {result.message}")
        await self.checkpoint()
        return not self._skip_gate(name)

    def record_evidence(self, name: str, evidence: list[Evidence]) -> None:
        """The judge's latest evidence in the status (one entry per template and test)."""
        mine = [e.model_copy(update={"template": name}) for e in evidence]
        others = [e for e in self.status.evidence if e.template != name]
        self.update_status(evidence=others + mine)
