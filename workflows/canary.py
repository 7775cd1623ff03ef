"""Canary release: shift traffic to the new version step by step, on evidence.

The runbook this replaces:

1. Find what is live (the stable pool and version). Nothing to do if it is this version.
2. Start the canary instances beside stable, smoke-test them; they take no traffic yet.
3. Walk the steps: set a weight, pause (timed, or until an approver approves), analyse.
   Background analysis watches the canary between steps.
   A failed analysis rolls back; an inconclusive one pauses for a human.
4. Promote: scale the canary to full size, send it all traffic, retire the old pool.

On failure, abort or approval timeout: traffic back to stable (ramped if configured),
canary instances stopped, stable untouched. The result says what happened and why.
"""

from __future__ import annotations

import asyncio
import contextlib
from datetime import timedelta

from temporalio import workflow
from temporalio.exceptions import ActivityError

from workflows.base import ANALYSIS_HEARTBEAT, ANALYSIS_RETRY, Interrupted, ReleaseWorkflow

with workflow.unsafe.imports_passed_through():
    from engine.contracts import (
        AnalysisRef,
        AnalysisRequest,
        AnalysisResult,
        AnalysisStep,
        Instance,
        MetricTally,
        Observed,
        PauseStep,
        Phase,
        ReleaseResult,
        ReleaseSpec,
        SetWeightStep,
        describe_step,
    )

POOLS = ("blue", "green")


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
        self.weight = 0

    @workflow.run
    async def run(self, spec: ReleaseSpec) -> ReleaseResult:
        return await self.execute()

    async def release(self) -> ReleaseResult:
        spec, plan = self.spec, self.spec.canary
        self.update_status(step_count=len(plan.steps))

        # 1. What is live?
        live = await self.observe()
        stable_version = self._find_stable(live)
        if stable_version == spec.version:
            self.set_phase(Phase.SUCCEEDED)
            self.decide(f"{spec.version} is already live in {self.stable_pool}; nothing to do")
            return self.result("no_change", f"{spec.version} is already live")
        self.set_phase(Phase.PROGRESSING)
        self.decide(f"stable is {stable_version} in {self.stable_pool}; canary goes to {self.canary_pool}")

        # 2. Canary instances beside stable, no traffic yet.
        leftovers = [i for i in live.instances if i.pool == self.canary_pool and i.version != spec.version]
        if leftovers:
            self.decide(f"clearing {len(leftovers)} idle leftover instance(s) of {leftovers[0].version}")
            await self.stop_pool(self.canary_pool)
        self.on_failure_undo("stop the canary instances", lambda: self.stop_pool(self.canary_pool))
        self.canary = await self.start_pool(self.canary_pool, spec.version, plan.canary_instances)
        await self.smoke(self.canary)
        self.on_failure_undo(f"send all traffic back to {stable_version}", self._traffic_back_to_stable)

        # 3. The steps.
        await self._walk_steps()

        # 4. Promote.
        await self._promote(stable_version)
        return self.result("succeeded", f"{spec.version} is live")

    async def _walk_steps(self) -> None:
        """Each step in order; background analysis watches from the first traffic on."""
        plan = self.spec.canary
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
                        if background is None and plan.background_analysis and weight > 0:
                            background = asyncio.ensure_future(self._background_analysis())
                    case PauseStep(pause=pause) if pause.duration is None:
                        await self.wait_for_approval(f"canary at {self.weight}%")
                    case PauseStep(pause=pause) if pause.duration is not None:
                        self.decide(f"pause {pause.duration}")
                        await self.hold(pause.duration)
                    case AnalysisStep():
                        await self._analyse(resolved.analyses)
            await self.checkpoint()
        finally:
            if background is not None:
                background.cancel()
                with contextlib.suppress(asyncio.CancelledError, ActivityError):
                    await background

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
        self.update_status(stable_version=self.spec.version, stable_pool=self.canary_pool)
        self.set_phase(Phase.SUCCEEDED)

    # ------------------------------------------------------------------ #

    def _find_stable(self, live: Observed) -> str:
        """The pool taking traffic, and its version; refuse anything ambiguous."""
        serving = [pool for pool, weight in live.router.weights.items() if weight > 0]
        if not serving:
            msg = f"nothing takes traffic in {self.env.name!r}: start the platform first"
            raise Interrupted(msg)
        if len(serving) > 1:
            split = ", ".join(f"{p} {live.router.weights[p]:g}%" for p in serving)
            msg = f"traffic is split ({split}): another release is in progress or was interrupted"
            raise Interrupted(msg)
        self.stable_pool = serving[0]
        self.canary_pool = next(p for p in POOLS if p != self.stable_pool)
        self.stable = [i for i in live.instances if i.pool == self.stable_pool]
        versions = sorted({i.version for i in self.stable})
        if len(versions) != 1:
            msg = f"the stable pool {self.stable_pool} runs {versions or 'nothing'}; expected one version"
            raise Interrupted(msg)
        self.update_status(
            stable_version=versions[0], stable_pool=self.stable_pool, canary_pool=self.canary_pool
        )
        return versions[0]

    async def _shift(self, weight: int, *, finish: bool = False) -> None:
        state = await self.set_traffic(
            {self.stable_pool: 100 - weight, self.canary_pool: weight},
            {self.stable_pool: self.stable, self.canary_pool: self.canary if weight > 0 else []},
            finish=finish,
        )
        self.weight = weight
        self.update_status(canary_weight=state.weights.get(self.canary_pool, 0.0))
        self.decide(
            f"canary weight {weight}% (router reads back {state.weights.get(self.canary_pool, 0.0):g}%)"
        )

    async def _traffic_back_to_stable(self) -> None:
        plan = self.spec.canary
        for weight in plan.rollback_ramp:
            if 0 < weight < self.weight:
                await self._shift(weight, finish=True)
                await workflow.sleep(plan.rollback_ramp_interval)
        await self._shift(0, finish=True)

    def _analysis_args(self) -> dict[str, str]:
        return {
            "app": self.spec.app.name,
            "environment": self.env.name,
            "canary_version": self.spec.version,
            "stable_version": self.status.stable_version or "",
            "canary_pool": self.canary_pool,
            "stable_pool": self.stable_pool,
        }

    async def _run_analysis(
        self, ref: AnalysisRef, chunk: timedelta | None = None, tallies: dict[str, MetricTally] | None = None
    ) -> AnalysisResult:
        """One analysis activity: to its verdict, or for one chunk of a background run."""
        longest = max(m.initial_delay + m.interval * (m.count or 1) for m in ref.metrics)
        request = AnalysisRequest(
            environment=self.env,
            name=ref.name,
            metrics=ref.metrics,
            args=self._analysis_args(),
            chunk=chunk,
            tallies=tallies or {},
        )
        return await workflow.execute_activity(
            "analysis.run",
            request,
            result_type=AnalysisResult,
            summary=f"analysis {ref.name}" + (" (background)" if chunk else ""),
            start_to_close_timeout=(chunk or longest) * 2 + timedelta(seconds=30),
            heartbeat_timeout=ANALYSIS_HEARTBEAT,
            retry_policy=ANALYSIS_RETRY,
        )

    async def _analyse(self, refs: list[AnalysisRef]) -> None:
        """An analysis step: every template must succeed; failed rolls back, inconclusive pauses."""
        results = await self.guarded(lambda: asyncio.gather(*(self._run_analysis(r) for r in refs)))
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

    async def _background_analysis(self) -> None:
        """Watch the canary until the steps end; fail means roll back, inconclusive means pause."""
        plan = self.spec.canary
        tallies: dict[str, dict[str, MetricTally]] = {r.name: {} for r in plan.background_analysis}
        while self._interrupt is None:
            results = await asyncio.gather(
                *(
                    self._run_analysis(r, plan.background_chunk, tallies[r.name])
                    for r in plan.background_analysis
                )
            )
            for result in results:
                self.record_analysis(result.measurements)
                if result.phase == "failed":
                    self.interrupt(f"background analysis {result.name} failed: {result.message}")
                    return
                if result.phase == "inconclusive":
                    self.pause_for_human(f"background analysis {result.name} inconclusive: {result.message}")
                    tallies[result.name] = {}
                else:
                    tallies[result.name] = result.tallies
