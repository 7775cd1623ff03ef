"""Contracts of a promotion train (``workflows/train.py``): one version through environments.

The train releases a version to its first environment (that environment's Release pipeline, a
child workflow), requires it to succeed, soaks it there for the stage's time with the stage's
analysis still passing, then releases the SAME image digest to the next environment, whose image
stage refuses a tag that now points at another digest. ``deploy-code.yaml`` may name the stages::

    promotion:
      stages:
        - {environment: staging, soak: 30m, analysis: {templates: [error-rate-background]}}
        - {environment: production}

or ``deploy.py VERSION STRATEGY --through staging:30m,production`` does. This module holds the
configuration section (validated where it is read: ``engine/promotion.py`` resolves it) and the
workflow's input, status and result.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Annotated, Literal

from pydantic import Field, model_validator

from engine.contracts.analysis import AnalysisRef, Measurement
from engine.contracts.pipeline import PipelineSpec
from engine.contracts.scalars import Duration, Strict
from engine.contracts.status import Decision

SOAK_CHUNK = timedelta(seconds=10)
"""How long one analysis activity of a soak measures before the train hears from it."""

# --------------------------------------------------------------------------- #
# deploy-code.yaml: promotion
# --------------------------------------------------------------------------- #


class SoakAnalysisConfig(Strict):
    templates: Annotated[list[str], Field(min_length=1)]
    chunk: Duration = SOAK_CHUNK


class PromotionStageConfig(Strict):
    environment: str
    soak: Duration = Field(
        default=timedelta(0), description="how long the release soaks here before the next stage"
    )
    analysis: SoakAnalysisConfig | None = Field(
        default=None,
        description="threshold templates run against the live version during the soak "
        "(default: the environment's canary background analysis, its threshold templates)",
    )


class PromotionConfig(Strict):
    stages: Annotated[list[PromotionStageConfig], Field(min_length=1)]

    @model_validator(mode="after")
    def _check_once(self) -> PromotionConfig:
        names = [s.environment for s in self.stages]
        twice = sorted({n for n in names if names.count(n) > 1})
        if twice:
            msg = f"environment {', '.join(map(repr, twice))} named twice (a train goes through each once)"
            raise ValueError(msg)
        return self


# --------------------------------------------------------------------------- #
# The workflow's input
# --------------------------------------------------------------------------- #


class TrainStage(Strict):
    """One environment of the train: its release pipeline, and the soak after it."""

    pipeline: PipelineSpec
    soak: Duration = timedelta(0)
    analysis: list[AnalysisRef] = Field(default_factory=list)
    """Threshold templates measured against the live version during the soak."""
    chunk: Duration = SOAK_CHUNK

    @property
    def environment(self) -> str:
        return self.pipeline.release.environment.name


class TrainSpec(Strict):
    """Everything the PromotionTrain workflow runs, fixed at start."""

    app: str
    version: str
    strategy: str
    requested_by: str
    stages: Annotated[list[TrainStage], Field(min_length=1)]

    @property
    def train_id(self) -> str:
        return f"{self.app}@{self.version}: " + " -> ".join(s.environment for s in self.stages)


# --------------------------------------------------------------------------- #
# Status and result
# --------------------------------------------------------------------------- #

StageVerdict = Literal[
    "pending", "releasing", "soaking", "passed", "failed", "rolled_back", "soak_failed", "aborted"
]
TrainPhase = Literal["running", "succeeded", "stopped", "aborted"]


class TrainStageReport(Strict):
    environment: str
    workflow_id: str
    """The stage's Release workflow (``release-APP-ENV``): ``control.py --env ENV`` reaches it."""
    verdict: StageVerdict = "pending"
    detail: str = ""
    run_id: str | None = None
    digest: str | None = None
    """The digest the stage's image promotion promoted (and, after the first, verified)."""
    expected_digest: str | None = None
    soak: Duration = timedelta(0)
    soak_started: datetime | None = None
    soak_until: datetime | None = None
    soaked_s: float | None = None
    analysis: list[str] = Field(default_factory=list)
    measurements: list[Measurement] = Field(default_factory=list)
    """The soak analysis's latest measurements."""


class TrainStatus(Strict):
    train: str
    version: str
    strategy: str
    phase: TrainPhase = "running"
    current: int | None = None
    """Index of the stage running now (releasing or soaking)."""
    digest: str | None = None
    """The digest the train carries: what its first stage promoted."""
    stages: list[TrainStageReport]
    decisions: list[Decision] = Field(default_factory=list)
    soak_remaining_s: float | None = None
    """While a stage soaks: seconds left (as of the train's last workflow task)."""
    child_workflow_id: str | None = None
    """The stage's Release while it runs; its controls (approve, ...) go there."""


class TrainResult(Strict):
    outcome: Literal["succeeded", "stopped", "aborted"]
    reason: str
    version: str
    digest: str | None
    status: TrainStatus
