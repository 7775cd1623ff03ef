"""Rolling release: replace the live instances batch by batch, never below the allowed capacity.

The runbook this replaces (a Kubernetes Deployment's rolling update, with a gate):

1. Find what is live (the pool taking traffic, its version and instances).
2. Plan the batches: each starts at most ``max_surge`` instances above the count and
   leaves at most ``max_unavailable`` below it.
3. Per batch: start the new instances and smoke-test them; only then do they take
   traffic. The batch's health gate (analysis templates) must pass. Then the old
   instances of the batch are drained at the router (no new requests; the ones in
   flight finish) before they are stopped.
4. When every old instance is replaced, the new version is live.

On failure or abort: the batches are undone in reverse, one by one: the old instances
of a batch come back and take traffic, then its new ones are drained and stopped.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from temporalio import workflow

from workflows.base import ReleaseWorkflow
from workflows.operation import Interrupted

with workflow.unsafe.imports_passed_through():
    from engine.contracts import Instance, Phase, ReleaseResult, ReleaseSpec, RollingSpec, rolling_batches


@dataclass
class Batch:
    """What one batch changed, so that it can be undone."""

    index: int
    started_slots: list[int] = field(default_factory=list)
    stopped: list[Instance] = field(default_factory=list)


@workflow.defn(name="RollingRelease")
class RollingRelease(ReleaseWorkflow):
    """A rolling release of one version into one environment."""

    @workflow.init
    def __init__(self, spec: ReleaseSpec) -> None:
        super().__init__(spec)
        self.old: list[Instance] = []
        self.new: list[Instance] = []
        self.old_version = ""

    @workflow.run
    async def run(self, spec: ReleaseSpec) -> ReleaseResult:
        return await self.execute()

    @property
    def plan(self) -> RollingSpec:
        assert self.spec.rolling is not None  # ReleaseSpec guarantees it for this strategy
        return self.spec.rolling

    async def release(self) -> ReleaseResult:
        spec, plan = self.spec, self.plan

        # 0. Every analysis query parses (before any side effect).
        await self.check_queries()

        # 1. What is live?
        live = await self.observe()
        self.old_version = self.find_stable(live)
        if self.old_version == spec.version:
            self.set_phase(Phase.SUCCEEDED)
            self.decide(f"{spec.version} is already live in {self.stable_pool}; nothing to do")
            return self.result("no_change", f"{spec.version} is already live")
        self.old = sorted(self.stable, key=lambda i: i.slot)
        if [i.slot for i in self.old] != list(range(len(self.old))):
            msg = (
                f"{self.stable_pool} runs slots {[i.slot for i in self.old]}; expected 0..{len(self.old) - 1}"
            )
            raise Interrupted(msg)

        # 2. The batches.
        try:
            batches = rolling_batches(len(self.old), self.env.instances, plan.max_surge, plan.max_unavailable)
        except ValueError as exc:
            raise Interrupted(str(exc)) from None
        self.update_status(step_count=len(batches))
        self.set_phase(Phase.PROGRESSING)
        self.decide(
            f"replacing {len(self.old)} x {self.old_version} ({self.stable_pool}) with "
            f"{self.env.instances} x {spec.version} ({self.canary_pool}) in {len(batches)} batches, "
            f"max surge {plan.max_surge}, "
            f"max unavailable {plan.max_unavailable}"
        )
        await self.clear_leftovers(live)

        # 3. Batch by batch.
        for index, (start, stop) in enumerate(batches, start=1):
            await self.checkpoint()
            self.update_status(
                step_index=index, step=f"batch {index}/{len(batches)}: +{start} new, -{stop} old"
            )
            await self._batch(Batch(index), start, stop)
            self.decide(f"batch {index}/{len(batches)} passed its health gate")
            if plan.batch_pause and index < len(batches):
                self.decide(f"pause {plan.batch_pause} before the next batch")
                await self.hold(plan.batch_pause)

        # 4. Done.
        await self.checkpoint()
        self.point_of_no_return(f"{spec.version} replaced every instance of {self.old_version}")
        await self.stop_pool(self.stable_pool)
        self.update_status(stable_version=spec.version, stable_pool=self.canary_pool)
        self.set_phase(Phase.SUCCEEDED)
        return self.result("succeeded", f"{spec.version} is live")

    async def _batch(self, batch: Batch, start: int, stop: int) -> None:
        """New instances in (after their health check), gate, then old ones drained and out."""
        self.on_failure_undo(f"restore batch {batch.index}", lambda: self._restore(batch))
        if start:
            count = len(self.new) + start
            batch.started_slots = list(range(len(self.new), count))
            running = await self.start_pool(self.canary_pool, self.spec.version, count)
            fresh = [i for i in running if i.slot in batch.started_slots]
            await self.smoke(fresh)
            self.new = sorted(running, key=lambda i: i.slot)
            await self._route()
            if self.plan.analysis:
                await self.analyse(self.plan.analysis)
        if stop:
            victims = self.old[-stop:]
            drained = await self.drain(victims, self.plan.drain_timeout)
            self.old, batch.stopped = self.old[:-stop], victims
            self.decide(f"drained {', '.join(sorted(drained))} (requests in flight when drained: {drained})")
            await self._route()
            await self.stop_pool(self.stable_pool, [i.slot for i in victims])

    async def _restore(self, batch: Batch) -> None:
        """Undo one batch: its old instances back first, then its new ones drained and stopped."""
        if batch.stopped:
            count = len(self.old) + len(batch.stopped)
            running = await self.start_pool(self.stable_pool, self.old_version, count, finish=True)
            self.old = sorted(running, key=lambda i: i.slot)
            await self._route(finish=True)
        routed = [i for i in self.new if i.slot in batch.started_slots]
        if routed:
            await self.drain(routed, self.plan.drain_timeout)
            self.new = [i for i in self.new if i.slot not in batch.started_slots]
            await self._route(finish=True)
        if batch.started_slots:
            await self.stop_pool(self.canary_pool, batch.started_slots)

    async def _route(self, *, finish: bool = False) -> None:
        """Every running instance takes an equal share of the traffic (as near as whole percents go)."""
        old, new = len(self.old), len(self.new)
        share = round(100 * new / (old + new))
        if old and new:
            share = min(99, max(1, share))
        state = await self.set_traffic(
            {self.stable_pool: 100 - share, self.canary_pool: share},
            {self.stable_pool: self.old if share < 100 else [], self.canary_pool: self.new if share else []},
            finish=finish,
        )
        in_force = state.weights.get(self.canary_pool, 0.0)
        self.update_status(canary_weight=in_force)
        self.decide(
            f"traffic on {old} x {self.old_version} and {new} x {self.spec.version} ({in_force:.0f}% new)"
        )
