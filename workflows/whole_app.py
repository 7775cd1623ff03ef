"""A whole-app release: every component in every region, with one undo stack.

The runbook this replaces (an operator shipping an API and its workers to a primary and a
standby region):

1. Region by region, the primary first (in waves: a bake time after a wave, before the next);
   in each, the components in dependency order.
2. Before touching a component in a region, note the version it runs (what "back" means).
3. The api in the primary region: the chosen strategy (canary, blue-green, rolling), as ever.
   Any other component or region: on the local platform a rolling replacement aimed at it
   (workers: batches behind their gate; a standby region: its standby size, smoke-tested), as a
   child workflow; on Kubernetes a rolling update of its Deployment in that region's cluster,
   waited for until every pod is ready (a crash-looping or unpullable version fails it at once).
4. Something fails or is aborted: the component that failed undoes itself (its strategy
   does); then everything released before it goes back to the version noted, latest first,
   each as a fast rolling replacement (one batch, no analysis) or a rolling update back.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import timedelta

from temporalio import workflow
from temporalio.common import SearchAttributePair, TypedSearchAttributes
from temporalio.exceptions import ActivityError, ApplicationError, ChildWorkflowError

from workflows.base import ReleaseWorkflow
from workflows.operation import cause
from workflows.options import DR_SLOW, DR_UNDO, QUICK, call

with workflow.unsafe.imports_passed_through():
    from engine import temporal as names
    from engine.contracts import (
        BlueGreenSpec,
        EnvironmentRef,
        Observed,
        Phase,
        ReleaseResult,
        ReleaseSpec,
        RollingSpec,
        TargetReport,
    )
    from engine.contracts.activities import DR_CONVERGE, DR_VERSIONS, OBSERVE
    from engine.contracts.dr import ConvergeRequest, RegionRef
    from engine.contracts.pipeline import STRATEGY_WORKFLOWS, ReleaseTarget

OK = ("succeeded", "no_change")
SETTLE = timedelta(seconds=5)
"""After a restore's switch, how long the release's instances keep serving the requests in flight."""


def serving_version(live: Observed) -> str | None:
    """The one version the serving pools run (None when nothing serves or versions are mixed)."""
    serving = {pool for pool, weight in live.router.weights.items() if weight > 0}
    versions = {i.version for i in live.instances if i.pool in serving}
    return versions.pop() if len(versions) == 1 else None


class WholeApp(ReleaseWorkflow):
    """The targets of a whole-app release, run in order; the Release workflow mixes this in."""

    targets: list[ReleaseTarget]

    async def run_strategy(self) -> ReleaseResult:
        raise NotImplementedError

    async def follow_child(
        self, handle: workflow.ChildWorkflowHandle, child_id: str, *, forward_abort: bool = True
    ) -> ReleaseResult:
        raise NotImplementedError

    async def window_checkpoint(self) -> None:
        """Hold while a deploy window's pause lasts (the Release workflow's; nothing here)."""

    def init_targets(self, targets: list[ReleaseTarget]) -> None:
        self.targets = targets
        if targets:
            self.update_status(
                targets=[TargetReport(component=t.component, region=t.region, role=t.role) for t in targets]
            )

    def report_target(self, index: int, **changes: object) -> None:
        reports = list(self.status.targets)
        reports[index] = reports[index].model_copy(update=changes)
        self.update_status(targets=reports)

    async def release_targets(self) -> ReleaseResult:
        """Every target in order; the first that does not succeed ends the release (its undo follows)."""
        outcome: ReleaseResult | None = None
        for index, target in enumerate(self.targets):
            self.check_interrupt()
            if target.bake_before:
                await self._bake(target)
            await self.window_checkpoint()  # after a bake too: the window may close during it
            previous = await self._running(target)
            self.report_target(index, previous=previous, verdict="running")
            runs = previous or "nothing"
            self.decide(f"{target.name} ({target.role}) runs {runs}; releasing {self.spec.version}")
            changes = previous is not None and previous != self.spec.version
            if target.main:
                outcome = await self.run_strategy()
            elif target.converge is not None:
                if changes:  # registered first: a rolling update that fails half-way goes back too
                    self._undo_target(index, target, previous)
                outcome = await self._converge(target, target.converge)
            else:
                assert target.release is not None  # ReleaseTarget: a release, a converge, or the main
                outcome = await self._run_target(index, target, target.release)
            if outcome.outcome not in OK:
                self.report_target(index, verdict="failed", detail=f"{outcome.outcome}: {outcome.reason}")
                ended = outcome.outcome
                if ended == "failed" and self._compensations and not _undo_failed(outcome):
                    ended = "rolled_back"  # it changed nothing (or undid itself); the rest goes back now
                return outcome.model_copy(
                    update={
                        "outcome": ended,
                        "reason": f"{target.name}: {outcome.reason}",
                        "live_version": previous,
                    }
                )
            verdict = "released" if outcome.outcome == "succeeded" else "no_change"
            self.report_target(index, verdict=verdict, detail=outcome.reason)
            if outcome.outcome == "succeeded" and changes and target.converge is None:
                self._undo_target(index, target, previous)
        assert outcome is not None  # resolve_targets never returns an empty list here
        released = ", ".join(f"{t.name}" for t in self.targets)
        self.decide(f"{self.spec.version} released to {released}")
        main = next(t for t in self.targets if t.main)
        more = len(self.targets) - 1
        return self.result("succeeded", f"{self.spec.version} is live ({main.name} and {more} more)")

    async def _bake(self, target: ReleaseTarget) -> None:
        """The previous wave bakes: a wait in which an alert or an operator can still abort the whole
        release (promote ends the wait early)."""
        what = f"bake {target.bake_before} before wave {target.wave + 1} ({target.region})"
        self.decide(f"wave {target.wave} released; {what}: promote skips the rest, abort rolls back")
        self.update_status(step=what)
        await self.hold(target.bake_before)
        self.decide(f"baked: wave {target.wave + 1} goes on")

    async def _running(self, target: ReleaseTarget) -> str | None:
        """The version the target runs before the release touches it (what "back" means)."""
        if target.converge is not None:
            ref = RegionRef(dr=target.converge.dr, region=target.region)
            summary = f"read the versions in {target.region} before the release"
            return (await call(DR_VERSIONS, ref, summary=summary, **QUICK)).get(target.component)
        spec = self.spec if target.main else target.release
        assert spec is not None
        ref_env = EnvironmentRef(environment=spec.environment)
        live = await call(OBSERVE, ref_env, summary=f"observe {target.name} before the release", **QUICK)
        return serving_version(live)

    async def _converge(self, target: ReleaseTarget, request: ConvergeRequest) -> ReleaseResult:
        """A rolling update of the component's Deployment in the region, waited for until healthy."""
        want = request.versions[target.component]
        try:
            after = await call(
                DR_CONVERGE, request, summary=f"{target.name}: rolling update to {want}", **DR_SLOW
            )
        except ActivityError as exc:
            return self.result("failed", f"the rolling update of {target.name} failed: {cause(exc)}")
        if after.get(target.component) != want:
            return self.result("failed", f"{target.name} runs {after.get(target.component)}, not {want}")
        self.decide(f"{target.name} runs {want} (rolling update done, every pod ready)")
        return self.result("succeeded", f"{target.name} runs {want}")

    async def _run_target(self, index: int, target: ReleaseTarget, spec: ReleaseSpec) -> ReleaseResult:
        child_id = f"{workflow.info().workflow_id}-{target.component}-{target.region}"
        self.report_target(index, workflow_id=child_id)
        try:
            return await self._child(child_id, spec, f"{target.name}: {spec.version} ({target.role})")
        except ChildWorkflowError as exc:
            return self.result("failed", f"the rolling release of {target.name} failed: {cause(exc)}")

    def _undo_target(self, index: int, target: ReleaseTarget, previous: str | None) -> None:
        assert previous is not None
        self.on_failure_undo(f"restore {target.name} to {previous}", self._restorer(index, target, previous))

    def _restorer(self, index: int, target: ReleaseTarget, previous: str) -> Callable[[], Awaitable[None]]:
        if target.converge is not None:
            back = target.converge.model_copy(update={"versions": {target.component: previous}})
            return lambda: self._converge_back(index, target, back, previous)
        spec = self.spec if target.main else target.release
        assert spec is not None
        return lambda: self._restore(index, target, spec, previous)

    async def _converge_back(
        self, index: int, target: ReleaseTarget, request: ConvergeRequest, previous: str
    ) -> None:
        """Back to ``previous`` by a rolling update of the component's Deployment (retried until done)."""
        try:
            await call(DR_CONVERGE, request, summary=f"restore {target.name} to {previous}", **DR_UNDO)
        except ActivityError as exc:
            self.report_target(index, verdict="restore failed", detail=cause(exc))
            raise ApplicationError(f"restoring {target.name} to {previous} failed: {cause(exc)}") from exc
        self.report_target(index, verdict="restored", detail=f"back on {previous}")

    async def _restore(self, index: int, target: ReleaseTarget, spec: ReleaseSpec, previous: str) -> None:
        """Back to ``previous``: start it beside the release's version, move traffic (or jobs), stop
        the release's instances; one batch, no analysis (it ran before)."""
        plan = spec.rolling or RollingSpec()
        back = spec.model_copy(
            update={
                "strategy": "rolling",
                "version": previous,
                "canary": None,
                "blue_green": None,
                "rolling": RollingSpec(
                    max_surge=spec.environment.instances, max_unavailable=0, drain_timeout=plan.drain_timeout
                ),
            }
        )
        if target.restore == "blue-green":  # a router that cannot drain single instances: one switch
            switch = BlueGreenSpec(
                preview_requests=0, auto_promotion_delay=timedelta(0), scale_down_delay=SETTLE
            )
            back = back.model_copy(update={"strategy": "blue-green", "rolling": None, "blue_green": switch})
        child_id = f"{workflow.info().workflow_id}-restore-{target.component}-{target.region}"
        try:
            outcome = await self._child(child_id, back, f"restore {target.name} to {previous}", undoing=True)
        except ChildWorkflowError as exc:
            self.report_target(index, verdict="restore failed", detail=cause(exc))
            raise ApplicationError(f"restoring {target.name} to {previous} failed: {cause(exc)}") from exc
        if outcome.outcome not in OK:
            self.report_target(index, verdict="restore failed", detail=outcome.reason)
            msg = f"restoring {target.name} to {previous}: {outcome.outcome}: {outcome.reason}"
            raise ApplicationError(msg)
        self.report_target(index, verdict="restored", detail=f"back on {previous}")

    async def _child(
        self, child_id: str, spec: ReleaseSpec, summary: str, *, undoing: bool = False
    ) -> ReleaseResult:
        handle = await workflow.start_child_workflow(
            STRATEGY_WORKFLOWS[spec.strategy],
            spec,
            id=child_id,
            result_type=ReleaseResult,
            static_summary=summary,
            search_attributes=TypedSearchAttributes(
                [
                    SearchAttributePair(names.ENVIRONMENT, self.env.name),
                    SearchAttributePair(names.VERSION, spec.version),
                    SearchAttributePair(names.STRATEGY, spec.strategy),
                    SearchAttributePair(names.PHASE, Phase.PENDING.value),
                ]
            ),
        )
        self.decide(f"{summary} runs as child workflow {child_id}")
        result = await self.follow_child(handle, child_id, forward_abort=not undoing)
        child = result.status
        where = f"[{spec.environment.component} {_region(spec)}]"
        tagged = [d.model_copy(update={"what": f"{where} {d.what}"}) for d in child.decisions]
        self.update_status(decisions=[*self.status.decisions, *tagged])
        return result


def _undo_failed(outcome: ReleaseResult) -> bool:
    """Whether the child's own undo failed (``Operation.undo_all`` records "rollback failed")."""
    return any(d.what == "rollback failed" for d in outcome.status.decisions)


def _region(spec: ReleaseSpec) -> str:
    local = spec.environment.local
    return (local.region or local.regions[0]) if local is not None else spec.environment.name
