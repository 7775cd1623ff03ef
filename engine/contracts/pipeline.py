"""Contracts of the release pipeline (``workflows/release.py``): its plan, and the requests
and results of its activities (checks, image promotion, Terraform, notifications)."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import Field, StringConstraints

from engine.contracts.environment import AwsSettings, EnvironmentSpec
from engine.contracts.release import ReleaseSpec
from engine.contracts.scalars import Strict

STRATEGY_WORKFLOWS: dict[str, str] = {
    "canary": "CanaryRelease",
    "blue-green": "BlueGreenRelease",
    "rolling": "RollingRelease",
}
"""Strategy name (as a release request says it) -> workflow type; the one place this is mapped."""

STAGES = ("pre-validation", "infrastructure", "image promotion", "strategy", "post-deployment", "report")
"""The stages of a release, in order."""

TfValue = str | int | float | bool
CheckKind = Literal["database", "redis", "http"]


class DependencyCheck(Strict):
    kind: CheckKind
    name: str
    target: str


class ImageSpec(Strict):
    registry: str
    ci_repository: str
    production_repository: str
    tag: str
    provider: str = "oci"
    """The ``images`` provider (activities/registry.py): ``oci`` (``registry``'s HTTP API) or ``ecr``."""
    aws: AwsSettings | None = None
    """ECR: the environment's region, role and endpoint."""


class TerraformSpec(Strict):
    root: str
    state_dir: str
    vars: dict[str, TfValue] = Field(default_factory=dict)


class PipelineSpec(Strict):
    """Everything the Release workflow runs, fixed at start."""

    release: ReleaseSpec
    checks: list[DependencyCheck] = Field(default_factory=list)
    image: ImageSpec | None = None
    terraform: TerraformSpec | None = None
    webhook_url: str | None = None

    @property
    def workflow_type(self) -> str:
        return STRATEGY_WORKFLOWS[self.release.strategy]


# --------------------------------------------------------------------------- #
# Activity requests and results
# --------------------------------------------------------------------------- #


class CheckResult(Strict):
    kind: CheckKind | Literal["image"]
    name: str
    target: str
    ok: bool
    message: str
    latency_ms: float | None = None


class ImageLookup(Strict):
    image: ImageSpec
    repository: str


class ImageFound(Strict):
    repository: str
    tag: str
    digest: str | None


class PromoteRequest(Strict):
    image: ImageSpec
    digest: str


class PromoteResult(Strict):
    repository: str
    tag: str
    digest: str
    previous_digest: str | None = None


class LiveImageRequest(Strict):
    environment: EnvironmentSpec
    version: str
    digest: str


class LiveImageResult(Strict):
    ok: bool
    message: str
    pins: dict[str, dict[str, str]] = Field(default_factory=dict)


class TerraformPlanRequest(Strict):
    terraform: TerraformSpec
    plan_id: Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9._-]{1,128}$")]
    dry_run: bool = False


class TerraformPlan(Strict):
    changes: bool
    summary: list[str]
    plan_file: str | None = None
    plan_sha256: str | None = None
    prior_serial: int | None = None
    lineage: str | None = None


class TerraformApplyRequest(Strict):
    terraform: TerraformSpec
    plan: TerraformPlan


class TerraformApplied(Strict):
    serial: int | None
    resumed: bool
    outputs: dict[str, Any] = Field(default_factory=dict)


class Notification(Strict):
    url: str
    event: Literal["started", "approval_needed", "succeeded", "rolled_back", "failed"]
    text: str


# --------------------------------------------------------------------------- #
# Resolving
# --------------------------------------------------------------------------- #
