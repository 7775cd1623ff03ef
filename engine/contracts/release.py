"""The resolved release: everything a strategy workflow needs, fixed at start."""

from __future__ import annotations

from datetime import timedelta
from typing import Annotated, Literal

from pydantic import Field, model_validator

from engine.contracts.analysis import AnalysisRef
from engine.contracts.environment import AppSpec, EnvironmentSpec
from engine.contracts.scalars import Duration, Percent, Strict, Version
from engine.contracts.steps import CanaryStep


class ResolvedStep(Strict):
    """A canary step with its analysis templates resolved."""

    step: CanaryStep
    analyses: list[AnalysisRef] = Field(default_factory=list)


class CanarySpec(Strict):
    steps: list[ResolvedStep]
    baseline: Literal["fresh", "stable"] = "fresh"
    """What a comparing judge compares the canary with: ``fresh`` instances of the stable version
    started beside it (as many as the canary, the same traffic share while it can), or the
    ``stable`` pool itself (warm, full size: a weaker comparison, no extra instances)."""
    background_analysis: list[AnalysisRef] = Field(default_factory=list)
    background_chunk: Duration = timedelta(seconds=5)
    canary_instances: Annotated[int, Field(ge=1, le=64)] = 1
    rollback_ramp: list[Percent] = Field(default_factory=list)
    rollback_ramp_interval: Duration = timedelta(seconds=2)


class BlueGreenSpec(Strict):
    """Blue-green (Argo's activeService/previewService): green beside blue, one switch."""

    pre_promotion_analysis: list[AnalysisRef] = Field(default_factory=list)
    post_promotion_analysis: list[AnalysisRef] = Field(default_factory=list)
    preview_requests: Annotated[int, Field(ge=0, le=100_000)] = 20
    """Requests sent through the preview route as its smoke check (each must be green, 2xx)."""
    auto_promotion: bool = True
    auto_promotion_delay: Duration = timedelta(0)
    scale_down_delay: Duration = timedelta(seconds=30)


class RollingSpec(Strict):
    """Rolling: replace instances in batches bounded by max_surge and max_unavailable."""

    max_surge: Annotated[int, Field(ge=0, le=64)] = 1
    max_unavailable: Annotated[int, Field(ge=0, le=64)] = 0
    analysis: list[AnalysisRef] = Field(default_factory=list)
    batch_pause: Duration = timedelta(0)
    drain_timeout: Duration = timedelta(seconds=30)


def rolling_batches(old: int, target: int, max_surge: int, max_unavailable: int) -> list[tuple[int, int]]:
    """The batches of a rolling update as ``(start, stop)`` instance counts, in order.

    Each batch starts as many new instances as ``max_surge`` allows, then stops as many
    old ones as ``max_unavailable`` allows (counting the new ones that passed health),
    like a Kubernetes Deployment's rolling update.
    """
    if max_surge == 0 and max_unavailable == 0:
        msg = "max_surge and max_unavailable cannot both be 0: no batch could make progress"
        raise ValueError(msg)
    batches, new = [], 0
    while old > 0 or new < target:
        up = max(0, min(target - new, target + max_surge - old - new))
        new += up
        down = max(0, min(old, old + new - (target - max_unavailable)))
        old -= down
        if up == 0 and down == 0:
            msg = f"a rolling update of {target} instances cannot progress (surge {max_surge})"
            raise ValueError(msg)
        batches.append((up, down))
    return batches


class ReleaseSpec(Strict):
    """The input of a release workflow: the whole plan, fixed when it starts.

    ``strategy`` names the workflow; the plan of that strategy is set (``canary``,
    ``blue_green`` or ``rolling``), the others are None.
    """

    app: AppSpec
    environment: EnvironmentSpec
    version: Version
    strategy: Literal["canary", "blue-green", "rolling"]
    canary: CanarySpec | None = None
    blue_green: BlueGreenSpec | None = None
    rolling: RollingSpec | None = None
    requested_by: str = "unknown"

    @model_validator(mode="after")
    def _plan_present(self) -> ReleaseSpec:
        field = self.strategy.replace("-", "_")
        if getattr(self, field) is None:
            msg = f"a {self.strategy} release needs its {field} plan"
            raise ValueError(msg)
        return self

    @property
    def release_id(self) -> str:
        return f"{self.app.name}/{self.environment.name}@{self.version}"

    def analysis_refs(self) -> list[AnalysisRef]:
        """Every analysis template this release may run, once each, in the order its plan names them."""
        refs: list[AnalysisRef] = []
        if self.canary is not None:
            refs += [r for s in self.canary.steps for r in s.analyses] + self.canary.background_analysis
        if self.blue_green is not None:
            refs += self.blue_green.pre_promotion_analysis + self.blue_green.post_promotion_analysis
        if self.rolling is not None:
            refs += self.rolling.analysis
        return list({r.name: r for r in refs}.values())
