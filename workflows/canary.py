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

from temporalio import workflow
from temporalio.exceptions import ActivityError

from workflows.base import ReleaseWorkflow

with workflow.unsafe.imports_passed_through():
    from engine.contracts import (
        AnalysisStep,
        CanarySpec,
        Instance,
        MetricTally,
        PauseStep,
        Phase,
        ReleaseResult,
        ReleaseSpec,
        SetWeightStep,
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
        self.weight = 0

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

        # 2. Canary instances beside stable, no traffic yet.
        await self.clear_leftovers(live)
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
                        if background is None and plan.background_analysis and weight > 0:
                            background = asyncio.ensure_future(self._background_analysis())
                    case PauseStep(pause=pause) if pause.duration is None:
                        await self.wait_for_approval(f"canary at {self.weight}%")
                    case PauseStep(pause=pause) if pause.duration is not None:
                        self.decide(f"pause {pause.duration}")
                        await self.hold(pause.duration)
                    case AnalysisStep():
                        await self.analyse(resolved.analyses)
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

    async def _shift(self, weight: int, *, finish: bool = False) -> None:
        state = await self.set_traffic(
            {self.stable_pool: 100 - weight, self.canary_pool: weight},
            {self.stable_pool: self.stable, self.canary_pool: self.canary if weight > 0 else []},
            finish=finish,
        )
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
                    self.pause_for_human(f"background analysis {result.name} inconclusive: {result.message}")
                    tallies[result.name] = {}
                else:
                    tallies[result.name] = result.tallies
