"""Contracts of the release pipeline (``workflows/release.py``): its plan, and the requests
and results of its activities (checks, image promotion, Terraform, notifications)."""

from __future__ import annotations

from datetime import timedelta
from typing import Annotated, Any, Literal

from pydantic import Field, StringConstraints

from engine.contracts.dr import ConvergeRequest
from engine.contracts.environment import AwsSettings, EnvironmentSpec
from engine.contracts.release import ReleaseSpec
from engine.contracts.scalars import Duration, Strict, Version
from engine.contracts.status import Control
from engine.contracts.windows import DeployWindows

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


class ReleaseTarget(Strict):
    """One component in one region of a whole-app release, in the order the release goes.

    The ``main`` target is the api in the primary region, released by the chosen strategy
    (``PipelineSpec.release``); every other one is either a rolling replacement (``release``)
    aimed at its component and region (the local platform: a worker's batches pass its health
    gate, a standby region's instances are replaced at its standby size after their smoke test)
    or a ``converge`` through the DR Regions provider (Kubernetes: a rolling update of the
    component's Deployment in that region's cluster, at its size, waited for until healthy).
    """

    component: str
    region: str
    role: Literal["primary", "standby"]
    wave: int = 0
    """Which wave of the release (``environments.NAME.waves``) the region is in; 0: the first."""
    bake_before: Duration = timedelta(0)
    """Wait this long before this target (the previous wave's bake; abort ends the release, promote
    ends the wait)."""
    main: bool = False
    release: ReleaseSpec | None = None
    """The targeted rolling release (None for the main target and a converge)."""
    converge: ConvergeRequest | None = None
    """The component's version set in the region (``versions``: this one component); restored the
    same way to the version it ran before."""
    restore: Literal["rolling", "blue-green"] = "rolling"
    """How the main target goes back to the version it ran: one rolling batch where the router can
    drain single instances (HAProxy), else the previous version beside it and one switch (ALB)."""

    @property
    def name(self) -> str:
        return f"{self.component} in {self.region}"


class UndoSpec(Strict):
    """An undo (``control.py undo``, ``engine/undo.py``): the run it undoes, the version it returns
    to, whether it takes the fast path (within ``rollback_window``) and why, and its approval, which
    the Release workflow verifies before any change (signed: over ``of_run_id`` and ``to_version``)."""

    of_run_id: str
    from_version: Version
    to_version: Version
    fast: bool
    window: str = ""
    approval: Control


class PipelineSpec(Strict):
    """Everything the Release workflow runs, fixed at start."""

    release: ReleaseSpec
    targets: list[ReleaseTarget] = Field(default_factory=list)
    """A whole-app release: every component in every region, in order (empty: the api alone, in
    the environment's one region, as releases before components were)."""
    checks: list[DependencyCheck] = Field(default_factory=list)
    image: ImageSpec | None = None
    terraform: TerraformSpec | None = None
    windows: DeployWindows | None = None
    """The environment's deploy windows (``environments.NAME.deploy_windows``): a release started outside
    them waits until one opens; one running when they close pauses after its current step."""
    ignore_windows: bool = False
    """Run whatever the windows say (an undo, a rollback to a known version): the hook for what must not
    wait for office hours."""
    webhook_url: str | None = None
    expected_digest: str | None = None
    """A promotion train's later stage: the digest its first stage promoted. The image stage refuses
    (before promoting anything) when the CI tag now points at another digest: not re-resolved by tag."""
    undo: UndoSpec | None = None
    """An undo's run (``control.py undo``): its approval is verified before any change."""

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
