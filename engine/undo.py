"""Undo: an environment back to the previous live version of every component (``control.py undo``).

In deploy-code.yaml, per environment::

    environments:
      local:
        rollback_window: {versions: 3}    # or {within: 24h}, or both (both must hold)

The previous live version is the newest earlier release run of the environment (its workflow id,
``release-APP-ENV``) that succeeded with a version other than the live one; the live one is what
the newest finished run left live (its result's ``live_version``). :func:`plan_undo` finds both
from the runs ``engine.client.release_runs`` reads (visibility and each run's result), or refuses
naming why (nothing to go back to). Within the window the undo skips analysis and steps:
:func:`resolve_undo` makes the release of the previous version the fast path, the previous version
started at full size beside the live one and every user moved at once (a blue-green switch without
preview requests, analysis or promotion delay; one rolling batch where the router has no preview
route), and every other component and region one batch without its gate or bake. Outside the
window it is a normal release of the previous version, its analysis and steps included.

The window, like Argo Rollouts' ``rollbackWindow``: ``versions: N``, the previous version is one of
the N versions released most recently before the live one (distinct versions of the environment's
release runs, newest first, whatever their outcome: a version tried and rolled back since counts,
one refused before any change does not);
``within: 24h``, the previous version was live within that time (the live version went live no
longer ago). ``versions: 0`` turns the fast path off. Without ``rollback_window`` an undo is a
normal release.

Either way the undo's run carries its approval (:class:`~engine.contracts.pipeline.UndoSpec`),
verified by the Release workflow before any change: named, or signed over the run it undoes and
the version it returns to. Undo ignores deploy windows. Imports nothing heavy.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Annotated

from pydantic import Field, model_validator

from engine import catalog
from engine.contracts import BlueGreenSpec, Control, LocalSettings, ReleaseSpec, RollingSpec, Strict
from engine.contracts.pipeline import PipelineSpec, ReleaseTarget, UndoSpec
from engine.contracts.scalars import Duration
from engine.errors import InputError

if TYPE_CHECKING:
    from engine.config import DeployConfig

OK = ("succeeded", "no_change")


class RollbackWindow(Strict):
    """``environments.NAME.rollback_window``: how recent a version must be for a fast undo."""

    versions: Annotated[int, Field(ge=0, le=100)] | None = Field(
        default=None, description="the previous version is one of the N released most recently (0: never)"
    )
    within: Duration | None = Field(default=None, description="the previous version was live within this")

    @model_validator(mode="after")
    def _one(self) -> RollbackWindow:
        if self.versions is None and self.within is None:
            raise ValueError("rollback_window needs versions (a number) or within (a duration), or both")
        return self


@dataclass(frozen=True)
class ReleaseRun:
    """One run of the environment's release workflow, as visibility and its result tell it."""

    run_id: str
    version: str
    strategy: str
    started: datetime
    closed: datetime | None
    outcome: str | None
    """The result's outcome; None without a result (running, failed, terminated, timed out)."""
    live_version: str | None = None
    running: bool = False


@dataclass(frozen=True)
class UndoPlan:
    """What an undo does: from the live version (``current``'s) back to ``previous``'s."""

    environment: str
    live: str
    current: ReleaseRun
    previous: ReleaseRun
    fast: bool
    why: str


def plan_undo(
    environment: str, runs: list[ReleaseRun], window: RollbackWindow | None, now: datetime
) -> UndoPlan:
    """The undo of ``environment`` from its release ``runs`` (newest first), or InputError naming why
    there is nothing to go back to."""
    finished = [r for r in runs if r.outcome is not None]
    newest = next((r for r in finished if r.live_version is not None), None)
    if newest is None or newest.live_version is None:  # a run refused before any change has none
        msg = f"no release of {environment!r} has finished with a live version yet: nothing to undo"
        raise InputError(msg)
    live = newest.live_version
    released = [r for r in finished if r.outcome in OK and r.version == live]
    current = next((r for r in released if r.outcome == "succeeded"), released[0] if released else None)
    if current is None:
        msg = (
            f"{live} is live in {environment!r}, but no release run of it is in the history: nothing to undo"
        )
        raise InputError(msg)
    older = runs[runs.index(current) + 1 :]
    previous = next((r for r in older if r.outcome in OK and r.version != live), None)
    if previous is None:
        msg = (
            f"no release of {environment!r} before {live} (run {current.run_id}) succeeded with another "
            "version: there is no previous version to go back to"
        )
        raise InputError(msg)
    fast, why = _in_window(runs, live=live, current=current, previous=previous, window=window, now=now)
    return UndoPlan(environment, live, current, previous, fast, why)


def _in_window(
    runs: list[ReleaseRun],
    *,
    live: str,
    current: ReleaseRun,
    previous: ReleaseRun,
    window: RollbackWindow | None,
    now: datetime,
) -> tuple[bool, str]:
    if window is None:
        return False, "no rollback_window configured: a normal release of the previous version"
    reasons, fast = [], True
    if window.versions is not None:
        distinct: list[str] = []
        for run in runs[: runs.index(previous) + 1]:
            tried = run.live_version is not None  # a run refused before any change tried nothing
            if tried and run.version != live and run.version not in distinct:
                distinct.append(run.version)
        rank = distinct.index(previous.version) + 1
        fast = fast and rank <= window.versions
        reasons.append(
            f"{previous.version} is {_nth(rank)} of the versions before {live} (window {window.versions})"
        )
    if window.within is not None:
        since = current.closed or current.started
        age = now - since
        fast = fast and age <= window.within
        ago = timedelta(seconds=round(age.total_seconds()))
        reasons.append(f"{previous.version} was live {ago} ago (window {window.within})")
    verdict = "within the rollback window" if fast else "outside the rollback window"
    return fast, f"{verdict}: " + "; ".join(reasons)


def _nth(n: int) -> str:
    return {1: "the newest", 2: "the 2nd newest", 3: "the 3rd newest"}.get(n, f"the {n}th newest")


def resolve_undo(
    config: DeployConfig,
    plan: UndoPlan,
    *,
    strategy: str,
    approval: Control,
    local: LocalSettings | None = None,
) -> PipelineSpec:
    """The Release run of an undo: the previous version, by the fast path within the window, else by
    ``strategy`` with its analysis; its approval travels in the input and is verified before any
    change. Terraform is left out (an undo returns the app's version, not the infrastructure's), and
    deploy windows are ignored (``ignore_windows``)."""
    # engine.config imports this module's RollbackWindow: resolved at call time.
    from engine.config import BlueGreenConfig, resolve_release  # noqa: PLC0415
    from engine.pipeline import resolve_pipeline  # noqa: PLC0415

    name = plan.environment
    requested_by = f"undo by {approval.identity}"
    spec = resolve_release(
        config, plan.previous.version, strategy, name, requested_by=requested_by, local=local
    )
    fast = plan.fast
    why = plan.why
    if fast:
        own = config.environments[name].strategies
        bg = (own and own.blue_green) or config.strategies.blue_green or BlueGreenConfig()
        quick = fast_path(spec, bg.scale_down_delay)
        if quick is None:
            fast, why = False, f"{why}; but router {spec.environment.providers.router!r} has no fast path"
        else:
            spec = quick
    pipeline = resolve_pipeline(config, spec)
    undo = UndoSpec(
        of_run_id=plan.current.run_id,
        from_version=plan.live,
        to_version=plan.previous.version,
        fast=fast,
        window=why,
        approval=approval,
    )
    targets = fast_targets(pipeline.targets) if fast else pipeline.targets
    changes: dict[str, object] = {"targets": targets, "terraform": None, "undo": undo, "ignore_windows": True}
    if fast:  # an emergency way back to what ran: no dependency gate holds it (the image is still checked)
        changes["checks"] = []
    return pipeline.model_copy(update=changes)


def fast_path(spec: ReleaseSpec, scale_down_delay: timedelta) -> ReleaseSpec | None:
    """``spec`` as the fast path: the version at full size beside the live one, every user moved at
    once (blue-green with no preview requests, analysis or delay), then the live one stopped after
    ``scale_down_delay`` (a flip back until then); one rolling batch where the router has no preview
    route but drains; None where it has neither."""
    env = spec.environment
    router = env.providers.router
    preview = catalog.router_has(router, "preview") and (
        router != "alb" or (env.aws is not None and env.aws.preview_listener_arn is not None)
    )
    plan: dict[str, object] = {"canary": None, "blue_green": None, "rolling": None}
    if preview:
        switch = BlueGreenSpec(
            preview_requests=0,
            auto_promotion=True,
            auto_promotion_delay=timedelta(0),
            scale_down_delay=scale_down_delay,
        )
        return spec.model_copy(update={**plan, "strategy": "blue-green", "blue_green": switch})
    if catalog.router_has(router, "drain"):
        batch = RollingSpec(max_surge=env.instances, max_unavailable=0)
        return spec.model_copy(update={**plan, "strategy": "rolling", "rolling": batch})
    return None


def fast_targets(targets: list[ReleaseTarget]) -> list[ReleaseTarget]:
    """A whole-app undo within the window: every other component and region in one batch, without
    its gate and without the waves' bake (a converge is a rolling update of its Deployment as ever)."""
    out = []
    for target in targets:
        changes: dict[str, object] = {"bake_before": timedelta(0)}
        release = target.release
        if release is not None and release.rolling is not None:
            batch = release.rolling.model_copy(
                update={
                    "max_surge": release.environment.instances,
                    "max_unavailable": 0,
                    "analysis": [],
                    "batch_pause": timedelta(0),
                }
            )
            changes["release"] = release.model_copy(update={"rolling": batch})
        out.append(target.model_copy(update=changes))
    return out
