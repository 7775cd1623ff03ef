"""Blue-green release: green beside blue, checked on a preview route, then one switch.

The runbook this replaces (Argo Rollouts' blue-green: active and preview services,
auto-promotion, pre/post-promotion analysis, scale-down delay):

1. Find what is live (blue: the pool taking traffic, and its version).
2. Start green, the new version, at the full instance count beside blue; smoke-test it.
3. Point the preview route (the router's own frontend and port) at green; users still
   see only blue. Requests through the preview route must all be answered by green.
4. Pre-promotion analysis of green, with traffic sent through the preview route.
5. Promote: automatically after the configured delay, or when an approver approves.
6. Switch every user from blue to green at once; the router's state is read back.
7. Post-promotion analysis of green on live traffic.
8. Keep blue running for the scale-down delay: a rollback in that window is a flip back
   to instances that never stopped. Then blue is stopped.

Failure or abort before the switch: green is stopped, users never saw it. After it: users
are flipped back to blue, then green is stopped.
"""

from __future__ import annotations

import asyncio
import contextlib
from datetime import timedelta

from temporalio import workflow
from temporalio.exceptions import ActivityError

from workflows.base import ReleaseWorkflow
from workflows.operation import Interrupted

with workflow.unsafe.imports_passed_through():
    from engine.contracts import (
        AnalysisRef,
        BlueGreenSpec,
        Instance,
        Observed,
        Phase,
        ReleaseResult,
        ReleaseSpec,
        Side,
    )

STEPS = (
    "start green",
    "preview",
    "pre-promotion analysis",
    "promotion",
    "switch",
    "post-promotion analysis",
    "scale-down delay",
    "retire blue",
)
PREVIEW_RPS = 10
"""Requests per second through the preview route while the pre-promotion analysis runs."""


@workflow.defn(name="BlueGreenRelease")
class BlueGreenRelease(ReleaseWorkflow):
    """A blue-green release of one version into one environment."""

    @workflow.init
    def __init__(self, spec: ReleaseSpec) -> None:
        super().__init__(spec)
        self.green: list[Instance] = []
        self._switched = False

    @workflow.run
    async def run(self, spec: ReleaseSpec) -> ReleaseResult:
        return await self.execute()

    @property
    def plan(self) -> BlueGreenSpec:
        assert self.spec.blue_green is not None  # ReleaseSpec guarantees it for this strategy
        return self.spec.blue_green

    async def release(self) -> ReleaseResult:
        spec, plan = self.spec, self.plan
        self.update_status(step_count=len(STEPS))

        # 0. Every analysis query parses (before any side effect).
        await self.check_queries()

        # 1. What is live?
        live = await self.observe()
        blue_version = self.find_stable(live)
        if blue_version == spec.version:
            self.set_phase(Phase.SUCCEEDED)
            self.decide(f"{spec.version} is already live in {self.stable_pool}; nothing to do")
            return self.result("no_change", f"{spec.version} is already live")
        self.set_phase(Phase.PROGRESSING)
        self.decide(
            f"blue is {blue_version} in {self.stable_pool}; green ({spec.version}) goes to {self.canary_pool}"
        )

        # 2-4. Green beside blue, on the preview route only, analysed there.
        await self._green_on_preview(live)

        # 5. Promotion: automatic (after a delay) or approved.
        self.step("promotion")
        if not plan.auto_promotion:
            await self.wait_for_approval(f"switch users from {blue_version} to {spec.version}")
        elif plan.auto_promotion_delay:
            self.decide(f"auto-promotion in {plan.auto_promotion_delay}")
            await self.hold(plan.auto_promotion_delay)
        await self.checkpoint()

        # 6. The switch: every user to green at once, read back from the router.
        self.step("switch")
        self.set_phase(Phase.PROMOTING)
        self.on_failure_undo(f"flip users back to blue ({blue_version})", self._flip_back)
        self.decide(f"switching users from {self.stable_pool} to {self.canary_pool}")
        await self._route_users_to(self.canary_pool, self.green)
        switched_at = workflow.now()
        self._switched = True
        self.set_phase(Phase.PROGRESSING)

        # 7. Post-promotion analysis on live traffic.
        if plan.post_promotion_analysis:
            self.step("post-promotion analysis")
            await self.analyse(plan.post_promotion_analysis)

        # 8. Blue stays up for the scale-down delay: a rollback now is a flip.
        self.step("scale-down delay")
        remaining = plan.scale_down_delay - (workflow.now() - switched_at)
        if remaining > timedelta(0):
            self.decide(f"blue ({blue_version}) kept for {remaining}: a rollback until then is a flip back")
            await self._scale_down_window(remaining)
        await self.checkpoint()

        # 9. Retire blue.
        self.step("retire blue")
        self.point_of_no_return(f"promoted {spec.version}: blue ({blue_version}) is retired")
        await self.set_preview([], finish=True)
        await self.stop_pool(self.stable_pool)
        self.decide(f"retired {blue_version} ({self.stable_pool})")
        self.update_status(stable_version=spec.version, stable_pool=self.canary_pool)
        self.set_phase(Phase.SUCCEEDED)
        return self.result("succeeded", f"{spec.version} is live")

    # ------------------------------------------------------------------ #

    async def _green_on_preview(self, live: Observed) -> None:
        spec, plan = self.spec, self.plan
        # 2. Green at full size beside blue.
        self.step("start green")
        await self.clear_leftovers(live)
        self.on_failure_undo(f"stop green ({spec.version})", lambda: self.stop_pool(self.canary_pool))
        self.green = await self.start_pool(self.canary_pool, spec.version, self.env.instances)
        await self.smoke(self.green)

        # 3. The preview route serves green; users still see blue.
        self.step("preview")
        self.on_failure_undo("clear the preview route", lambda: self.set_preview([], finish=True))
        serving = await self.set_preview(self.green)
        self.decide(f"preview route serves green only (router reads back {len(serving)} instances)")
        if plan.preview_requests:
            await self.preview_check(plan.preview_requests)

        # 4. Pre-promotion analysis, on traffic through the preview route.
        if plan.pre_promotion_analysis:
            self.step("pre-promotion analysis")
            await self._analyse_on_preview(plan.pre_promotion_analysis)
        await self.checkpoint()

    def sides(self) -> tuple[Side, Side | None]:
        """Green against blue while blue takes users' traffic; after the switch blue takes none, so a
        comparing judge holds green to its SLO guards alone."""
        green, blue = super().sides()
        return green, None if self._switched else blue

    def step(self, name: str) -> None:
        self.update_status(step_index=STEPS.index(name) + 1, step=name)

    async def _route_users_to(self, pool: str, members: list[Instance], *, finish: bool = False) -> None:
        other = self.stable_pool if pool == self.canary_pool else self.canary_pool
        state = await self.set_traffic({pool: 100, other: 0}, {pool: members, other: []}, finish=finish)
        green_share = state.weights.get(self.canary_pool, 0.0)
        self.update_status(canary_weight=green_share)
        self.decide(f"users on {pool} (router reads back {round(state.weights.get(pool, 0.0), 1):g}%)")

    async def _flip_back(self) -> None:
        """Blue never stopped before the point of no return: the rollback is one router change."""
        await self._route_users_to(self.stable_pool, self.stable, finish=True)

    async def _scale_down_window(self, duration: timedelta) -> None:
        """Wait out the scale-down delay; only an abort (or a failure) ends it early."""
        with contextlib.suppress(TimeoutError):
            await workflow.wait_condition(lambda: self._interrupt is not None, timeout=duration)
        self.check_interrupt()

    async def _analyse_on_preview(self, refs: list[AnalysisRef]) -> None:
        """The analysis gate, while requests go through the preview route (the only traffic green has)."""
        spans = [m.initial_delay + m.interval * (m.count or 1) for r in refs for m in r.metrics]
        spans += [r.judge.window + 2 * r.judge.interval for r in refs if r.judge is not None]
        longest = max(spans)
        requests = max(1, int(longest.total_seconds() * PREVIEW_RPS))
        traffic = asyncio.ensure_future(self.preview_check(requests, longest, judge_codes=False))
        try:
            await self.analyse(refs)
        except BaseException:
            traffic.cancel()
            with contextlib.suppress(asyncio.CancelledError, ActivityError, Interrupted):
                await traffic
            raise
        await traffic
