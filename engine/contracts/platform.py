"""Requests and results of the platform, router and smoke activities."""

from __future__ import annotations

from datetime import timedelta
from typing import Annotated, Any

from pydantic import Field, model_validator

from engine.contracts.environment import EnvironmentSpec
from engine.contracts.scalars import BASELINE_POOL, Duration, Percent, Pool, Strict, Version


class Instance(Strict):
    """One running instance of the service."""

    pool: Pool
    slot: int
    version: str
    address: str
    healthy: bool = True


class PoolRequest(Strict):
    """Start (or make sure there run) ``count`` instances of a version in a pool."""

    environment: EnvironmentSpec
    pool: Pool
    version: Version
    count: Annotated[int, Field(ge=1, le=64)]


class StopRequest(Strict):
    environment: EnvironmentSpec
    pool: Pool
    slots: list[int] | None = Field(default=None, description="only these slots (all when None)")


class PreviewRequest(Strict):
    """Point the preview route at ``members`` only (none: the preview route serves nothing)."""

    environment: EnvironmentSpec
    members: list[Instance]


class PreviewCheck(Strict):
    """Send ``requests`` GETs of ``path`` through the preview route; each must be 2xx from ``version``."""

    environment: EnvironmentSpec
    path: str = "/"
    requests: Annotated[int, Field(ge=1, le=100_000)]
    version: str
    duration: Duration | None = None
    """Spread the requests over this long (traffic for a pre-promotion analysis)."""
    judge_codes: bool = True
    """False: only transport errors and wrong versions fail (the analysis judges the codes)."""


class DrainRequest(Strict):
    """Stop sending new requests to ``instances``, then wait until none is in flight."""

    environment: EnvironmentSpec
    instances: list[Instance]
    timeout: Duration = timedelta(seconds=30)


class TrafficRequest(Strict):
    """Set the share of traffic per pool; ``members`` are the instances behind each pool."""

    environment: EnvironmentSpec
    weights: dict[Pool, Percent]
    members: dict[Pool, list[Instance]]

    @model_validator(mode="after")
    def _sum_to_100(self) -> TrafficRequest:
        total = sum(self.weights.values())
        if total != 100:
            msg = f"weights must add up to 100, got {self.weights} ({total})"
            raise ValueError(msg)
        return self


def without_idle_baseline(weights: dict[str, float]) -> dict[str, float]:
    """A router's read-back split: both release pools always, the baseline pool only while it takes
    traffic (so a split without a canary baseline reads as it always has)."""
    return {p: w for p, w in weights.items() if p != BASELINE_POOL or w > 0}


class RouterState(Strict):
    """The traffic split actually in force, read back from the router."""

    weights: dict[str, float]
    detail: dict[str, Any] = Field(default_factory=dict)


class Observed(Strict):
    """What runs and where traffic goes, as observed at one moment."""

    instances: list[Instance]
    router: RouterState


class EnvironmentRef(Strict):
    environment: EnvironmentSpec


class SmokeRequest(Strict):
    environment: EnvironmentSpec
    instances: list[Instance]
    path: str
    expect_version: str | None = None


class SmokeResult(Strict):
    ok: bool
    checked: int
    failures: list[str] = Field(default_factory=list)
