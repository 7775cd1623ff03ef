"""The steps every release strategy is made of: observe, run instances, route traffic, smoke-check.

Each wraps one activity (through its declaration, with the option set that fits it): while
the release can still be undone the call is interruptible (an abort cancels it and goes to
compensation); compensation steps and steps past the point of no return (``finish=True``)
retry until they succeed and cannot be interrupted.
"""

from __future__ import annotations

from datetime import timedelta

from temporalio import workflow

from workflows.controls import ReleaseControls
from workflows.operation import Interrupted
from workflows.options import COMPENSATE, QUICK, SLOW, call

with workflow.unsafe.imports_passed_through():
    from engine.contracts import (
        POOLS,
        DrainRequest,
        EnvironmentRef,
        Instance,
        Observed,
        PoolRequest,
        PreviewCheck,
        PreviewRequest,
        RouterState,
        SmokeRequest,
        StopRequest,
        TrafficRequest,
    )
    from engine.contracts.activities import (
        DRAIN,
        OBSERVE,
        PREVIEW_CHECK,
        SET_PREVIEW,
        SET_TRAFFIC,
        SMOKE_CHECK,
        START_POOL,
        STOP_POOL,
    )


class ReleaseSteps(ReleaseControls):
    """Activity steps of a release, and finding what is live."""

    async def observe(self) -> Observed:
        request = EnvironmentRef(environment=self.env)
        return await self.guarded(
            lambda: call(OBSERVE, request, summary="observe instances and traffic", **QUICK)
        )

    async def start_pool(
        self, pool: str, version: str, count: int, *, finish: bool = False
    ) -> list[Instance]:
        request = PoolRequest(environment=self.env, pool=pool, version=version, count=count)
        summary = f"run {count} x {version} in {pool}"
        if finish:
            return await call(START_POOL, request, summary=summary, **COMPENSATE)
        return await self.guarded(lambda: call(START_POOL, request, summary=summary, **SLOW))

    async def stop_pool(self, pool: str, slots: list[int] | None = None) -> None:
        summary = f"stop {pool}" + (f" slots {slots}" if slots is not None else "")
        request = StopRequest(environment=self.env, pool=pool, slots=slots)
        await call(STOP_POOL, request, summary=summary, **COMPENSATE)

    async def set_preview(self, members: list[Instance], *, finish: bool = False) -> list[str]:
        """Point the preview route at ``members`` (none: it serves nothing); read back."""
        summary = f"preview -> {len(members)} instance(s)" if members else "preview serves nothing"
        request = PreviewRequest(environment=self.env, members=members)
        if finish:
            return await call(SET_PREVIEW, request, summary=summary, **COMPENSATE)
        return await self.guarded(lambda: call(SET_PREVIEW, request, summary=summary, **QUICK))

    async def drain(self, instances: list[Instance], within: timedelta) -> dict[str, int]:
        """No new requests to ``instances`` at the router; returns once none has one in flight."""
        request = DrainRequest(environment=self.env, instances=instances, timeout=within)
        summary = f"drain {', '.join(f'{i.pool}{i.slot}' for i in instances)}"
        return await call(DRAIN, request, summary=summary, **COMPENSATE)

    async def preview_check(
        self, requests: int, duration: timedelta | None = None, *, judge_codes: bool = True
    ) -> None:
        """Requests through the preview route: all answered by this release (and 2xx)."""
        request = PreviewCheck(
            environment=self.env,
            requests=requests,
            version=self.spec.version,
            duration=duration,
            judge_codes=judge_codes,
        )
        result = await self.guarded(
            lambda: call(
                PREVIEW_CHECK,
                request,
                summary=f"{requests} requests through the preview route",
                start_to_close_timeout=(duration or timedelta(0)) + timedelta(seconds=30),
                retry_policy=QUICK["retry_policy"],
            )
        )
        if not result.ok:
            raise Interrupted("preview check failed: " + "; ".join(result.failures[:3]))
        self.decide(f"preview check passed: {result.checked} requests answered by {self.spec.version}")

    async def set_traffic(
        self, weights: dict[str, int], members: dict[str, list[Instance]], *, finish: bool = False
    ) -> RouterState:
        request = TrafficRequest(environment=self.env, weights=weights, members=members)
        summary = "traffic " + ", ".join(f"{p} {w}%" for p, w in weights.items())
        if finish:
            state = await call(SET_TRAFFIC, request, summary=summary, **COMPENSATE)
        else:
            state = await self.guarded(lambda: call(SET_TRAFFIC, request, summary=summary, **QUICK))
        self._gauge_weights(state)
        return state

    async def smoke(self, instances: list[Instance]) -> None:
        request = SmokeRequest(environment=self.env, instances=instances, path=self.spec.app.health_path)
        summary = f"smoke {len(instances)} instances"
        result = await self.guarded(lambda: call(SMOKE_CHECK, request, summary=summary, **QUICK))
        if not result.ok:
            raise Interrupted("smoke check failed: " + "; ".join(result.failures))
        self.decide(f"smoke check passed on {result.checked} instances")

    # ---- what is live ---------------------------------------------------------------------------
    def find_stable(self, live: Observed) -> str:
        """The pool taking traffic, and its version; refuse anything ambiguous.

        Sets ``stable_pool``, ``stable`` (its instances) and ``canary_pool`` (the other pool,
        where the new version goes).
        """
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

    async def clear_leftovers(self, live: Observed) -> None:
        """Stop idle instances of another version left in the pool this release goes to."""
        leftovers = [
            i for i in live.instances if i.pool == self.canary_pool and i.version != self.spec.version
        ]
        if leftovers:
            self.decide(f"clearing {len(leftovers)} idle leftover instance(s) of {leftovers[0].version}")
            await self.stop_pool(self.canary_pool)

    def _gauge_weights(self, state: RouterState) -> None:
        gauge = workflow.metric_meter().create_gauge_float(
            "deploy_traffic_weight_percent", "share of traffic per pool", "%"
        )
        for pool, weight in state.weights.items():
            gauge.set(weight, {"environment": self.env.name, "pool": pool})
