"""Canary release: shift traffic to the new version step by step, on evidence.

The runbook this replaces:

1. Find what is live (the stable pool and version). Nothing to do if it is this version.
2. Start the canary instances beside stable, smoke-test them; they take no traffic yet. With a
   comparing judge, start its baseline too: as many fresh instances of the stable version, which
   take the canary's share of traffic with it (``baseline: fresh``, the default).
3. Walk the steps: set a weight, pause (timed, or until an approver approves), analyse.
   From the first traffic on, the judges watch the canary against its baseline (errors and
   latency), and background analysis watches between steps. A failed analysis rolls back at
   once; an inconclusive one pauses for a human, and resume measures again.
4. Promote: scale the canary to full size, send it all traffic, retire the old pool and the
   baseline.

On failure, abort or approval timeout: traffic back to stable (ramped if configured), the
baseline and the canary instances stopped, stable untouched. The result says what happened and
why.
"""

from __future__ import annotations

import asyncio
import contextlib
from datetime import datetime

from temporalio import workflow
from temporalio.exceptions import ActivityError

from workflows.base import ReleaseWorkflow

with workflow.unsafe.imports_passed_through():
    from engine.contracts import (
        BASELINE_POOL,
        AnalysisRef,
        AnalysisStep,
        CanarySpec,
        Instance,
        JudgeResult,
        JudgeState,
        MetricTally,
        Observed,
        PauseStep,
        Phase,
        ReleaseResult,
        ReleaseSpec,
        SetWeightStep,
        Side,
        describe_step,
    )


@workflow.defn(name="CanaryRelease")
class CanaryRelease(ReleaseWorkflow):
    """A canary release of one version into one environment."""

    @workflow.init
    def __init__(self, spec: ReleaseSpec) -> None:
        super().__init__(spec)
        self.stable_pool = ""
        self.canary_pool = ""
        self.stable: list[Instance] = []
        self.canary: list[Instance] = []
        self.baseline: list[Instance] = []
        self.weight = 0
        self.judges: dict[str, JudgeState] = {}
        """Template -> what its judge has read since the canary's first traffic."""
        self._watching: dict[str, asyncio.Task[None]] = {}
        self._gate_since: dict[str, datetime] = {}
        self._gate_result: dict[str, JudgeResult] = {}

    @workflow.run
    async def run(self, spec: ReleaseSpec) -> ReleaseResult:
        return await self.execute()

    @property
    def plan(self) -> CanarySpec:
        assert self.spec.canary is not None  # ReleaseSpec guarantees it for this strategy
        return self.spec.canary

    async def release(self) -> ReleaseResult:
        spec, plan = self.spec, self.plan
        self.update_status(step_count=len(plan.steps))

        # 0. Every analysis query parses (before any side effect).
        await self.check_queries()

        # 1. What is live?
        live = await self.observe()
        stable_version = self.find_stable(live)
        if stable_version == spec.version:
            self.set_phase(Phase.SUCCEEDED)
            self.decide(f"{spec.version} is already live in {self.stable_pool}; nothing to do")
            return self.result("no_change", f"{spec.version} is already live")
        self.set_phase(Phase.PROGRESSING)
        self.decide(f"stable is {stable_version} in {self.stable_pool}; canary goes to {self.canary_pool}")

        # 2. Canary instances beside stable (and its baseline), no traffic yet.
        fresh = self._fresh_baseline()
        await self.clear_leftovers(live)
        if fresh:
            await self._clear_baseline(live)
        self.on_failure_undo("stop the canary instances", lambda: self.stop_pool(self.canary_pool))
        self.canary = await self.start_pool(self.canary_pool, spec.version, plan.canary_instances)
        await self.smoke(self.canary)
        if fresh:
            self.on_failure_undo("stop the baseline instances", lambda: self.stop_pool(BASELINE_POOL))
            self.baseline = await self.start_pool(BASELINE_POOL, stable_version, plan.canary_instances)
            await self.smoke(self.baseline)
            self.update_status(baseline_pool=BASELINE_POOL)
            self.decide(
                f"baseline: {len(self.baseline)} fresh instance(s) of {stable_version} in {BASELINE_POOL}"
            )
        self.on_failure_undo(f"send all traffic back to {stable_version}", self._traffic_back_to_stable)

        # 3. The steps.
        await self._walk_steps()

        # 4. Promote.
        await self._promote(stable_version)
        return self.result("succeeded", f"{spec.version} is live")

    async def _walk_steps(self) -> None:
        """Each step in order; background analysis watches from the first traffic on."""
        plan = self.plan
        background: asyncio.Task[None] | None = None
        try:
            for index, resolved in enumerate(plan.steps, start=1):
                if self._promote_requested:
                    self.decide("remaining steps skipped (promote)")
                    break
                await self.checkpoint()
                step = resolved.step
                self.update_status(step_index=index, step=describe_step(step))
                match step:
                    case SetWeightStep(set_weight=weight):
                        await self._shift(weight)
                        threshold = [r for r in plan.background_analysis if r.judge is None]
                        if background is None and threshold and weight > 0:
                            background = asyncio.ensure_future(self._background_analysis())
                        if weight > 0:
                            for ref in self._judged():
                                self._watch(ref)
                    case PauseStep(pause=pause) if pause.duration is None:
                        await self.wait_for_approval(f"canary at {self.weight}%")
                    case PauseStep(pause=pause) if pause.duration is not None:
                        self.decide(f"pause {pause.duration}")
                        await self.hold(pause.duration)
                    case AnalysisStep():
                        await self.analyse(resolved.analyses)
            await self.checkpoint()
        finally:
            for task in ([background] if background is not None else []) + list(self._watching.values()):
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError, ActivityError):
                    await task

    async def _promote(self, stable_version: str) -> None:
        """Full size, all traffic, then retire the old pool (no way back after the switch)."""
        self.set_phase(Phase.PROMOTING)
        self.update_status(step="promote")
        self.canary = await self.start_pool(self.canary_pool, self.spec.version, self.env.instances)
        await self.smoke(self.canary)
        await self._shift(100)
        self.point_of_no_return(f"promoted {self.spec.version}: {self.canary_pool} takes all traffic")
        await self.set_traffic(
            {self.canary_pool: 100, self.stable_pool: 0},
            {self.canary_pool: self.canary, self.stable_pool: []},
            finish=True,
        )
        await self.stop_pool(self.stable_pool)
        self.decide(f"retired {stable_version} ({self.stable_pool})")
        if self.baseline:
            await self.stop_pool(BASELINE_POOL)
            self.baseline = []
            self.decide(f"stopped the baseline ({BASELINE_POOL})")
        self.update_status(stable_version=self.spec.version, stable_pool=self.canary_pool)
        self.set_phase(Phase.SUCCEEDED)

    # ------------------------------------------------------------------ #

    async def _shift(self, weight: int, *, finish: bool = False) -> None:
        weights = {self.stable_pool: 100 - weight, self.canary_pool: weight}
        members = {self.stable_pool: self.stable, self.canary_pool: self.canary if weight > 0 else []}
        if self.baseline:
            # The baseline takes the canary's share, as long as stable keeps at least as much;
            # past that (a canary above a third) stable and baseline split what is left.
            share = min(weight, (100 - weight) // 2) if weight < 100 else 0
            weights = {self.stable_pool: 100 - weight - share, self.canary_pool: weight, BASELINE_POOL: share}
            members[BASELINE_POOL] = self.baseline if share > 0 else []
        state = await self.set_traffic(weights, members, finish=finish)
        self.weight = weight
        in_force = state.weights.get(self.canary_pool, 0.0)
        self.update_status(canary_weight=in_force)
        self.decide(f"canary weight {weight}% (router reads back {round(in_force, 1):g}%)")

    async def _traffic_back_to_stable(self) -> None:
        plan = self.plan
        for weight in plan.rollback_ramp:
            if 0 < weight < self.weight:
                await self._shift(weight, finish=True)
                await workflow.sleep(plan.rollback_ramp_interval)
        await self._shift(0, finish=True)

    # ---- the baseline and the judges ------------------------------------------------------------

    def _judged(self) -> list[AnalysisRef]:
        """The comparing-judge templates this canary runs (steps and background), once each."""
        return [r for r in self.spec.analysis_refs() if r.judge is not None]

    def _fresh_baseline(self) -> bool:
        """Fresh baseline instances run beside the canary when a judge compares with them."""
        return bool(self._judged()) and self.plan.baseline == "fresh" and workflow.patched("canary-baseline")

    async def _clear_baseline(self, live: Observed) -> None:
        """Instances left in the baseline pool by an interrupted release take no traffic: stop them."""
        left = [i for i in live.instances if i.pool == BASELINE_POOL]
        if left:
            self.decide(f"clearing {len(left)} leftover baseline instance(s) of {left[0].version}")
            await self.stop_pool(BASELINE_POOL)

    def sides(self) -> tuple[Side, Side | None]:
        """The canary against its fresh baseline (or, with ``baseline: stable``, the stable pool)."""
        canary, stable = super().sides()
        if self.baseline:
            return canary, Side(pool=BASELINE_POOL, version=self.status.stable_version or "")
        return canary, stable

    def _watch(self, ref: AnalysisRef) -> None:
        """Start the judge of ``ref`` watching (once): from the canary's first traffic to its end."""
        if ref.name not in self._watching:
            self._watching[ref.name] = asyncio.ensure_future(self._judge_watch(ref))

    async def _judge_watch(self, ref: AnalysisRef) -> None:
        """One judge, chunk after chunk: fails the release the moment its evidence says so, answers
        the gates opened on it, pauses (once) when its evidence goes missing outside a gate."""
        canary, baseline = self.sides()
        while self._interrupt is None:
            since = self._gate_since.get(ref.name)
            result = await self.judge_chunk(
                ref,
                self.judges.get(ref.name, JudgeState()),
                canary,
                baseline,
                gate_since=since,
                chunk=self.plan.background_chunk,
            )
            self.judges[ref.name] = result.state
            if result.phase == "failed":
                self.interrupt(f"analysis {ref.name} failed: {result.message}")
                return
            if result.phase == "running":
                continue
            if since is not None and self._gate_since.get(ref.name) == since:
                del self._gate_since[ref.name]
                self._gate_result[ref.name] = result
            elif since is None and self._pause_reason != (
                why := f"analysis {ref.name} inconclusive: {result.message}"
            ):
                self.pause_for_human(why)

    async def judge_gate(self, refs: list[AnalysisRef]) -> None:
        """A gate on the judges watching since the first traffic: each looks on for its window
        (its evidence so far counts too) and says passed or inconclusive; failed ends it at once."""
        for ref in refs:
            self._watch(ref)
        again = True
        while again:
            since = workflow.now()
            for ref in refs:
                self._gate_since[ref.name] = since
                self._gate_result.pop(ref.name, None)
            await self.guarded(
                lambda: workflow.wait_condition(lambda: all(r.name in self._gate_result for r in refs))
            )
            results = [self._gate_result[r.name] for r in refs]
            unsure = next((r for r in results if r.phase != "passed"), None)
            if unsure is None:
                self.decide("analysis passed: " + "; ".join(f"{r.name} ({r.message})" for r in results))
                return
            again = await self.settle_gate(unsure.name, unsure)

    async def _background_analysis(self) -> None:
        """Watch the canary until the steps end; fail means roll back, inconclusive means pause."""
        plan = self.plan
        tallies: dict[str, dict[str, MetricTally]] = {r.name: {} for r in plan.background_analysis}
        while self._interrupt is None:
            results = await asyncio.gather(
                *(
                    self.run_analysis(r, plan.background_chunk, tallies[r.name])
                    for r in plan.background_analysis
                )
            )
            for result in results:
                self.record_analysis(result.measurements)
                if result.phase == "failed":
                    self.interrupt(f"background analysis {result.name} failed: {result.message}")
                    return
                if result.phase == "inconclusive":
                    why = f"background analysis {result.name} inconclusive: {result.message}"
                    if self._pause_reason != why:  # once while it stays so, not every chunk
                        self.pause_for_human(why)
                    tallies[result.name] = {}
                else:
                    tallies[result.name] = result.tallies
