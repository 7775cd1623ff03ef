"""Controls, the status query, the audit log and the result of a release."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Annotated, Literal

from pydantic import Field, StringConstraints

from engine.contracts.analysis import Evidence, Measurement
from engine.contracts.scalars import Identity, Strict, Version


class Phase(StrEnum):
    PENDING = "Pending"
    PROGRESSING = "Progressing"
    PAUSED = "Paused"
    AWAITING_APPROVAL = "AwaitingApproval"
    PROMOTING = "Promoting"
    ROLLING_BACK = "RollingBack"
    SUCCEEDED = "Succeeded"
    ROLLED_BACK = "RolledBack"
    FAILED = "Failed"


class Signature(Strict):
    """An approver's SSH signature over what they approve (engine/approvals.py: ``message``)."""

    issued_at: datetime
    nonce: Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9_-]{16,128}$")]
    armored: Annotated[str, StringConstraints(max_length=8192)]
    """``-----BEGIN SSH SIGNATURE-----`` ... as ``ssh-keygen -Y sign -n deploy-code`` prints it."""


class Control(Strict):
    """Payload of approve / promote / resume / pause / abort."""

    identity: Identity
    reason: Annotated[str, StringConstraints(max_length=1024)] = ""
    version: Version | None = Field(default=None, description="refuse unless this is the running release")
    signature: Signature | None = Field(
        default=None, description="required where approvals are signed (approve, promote, resume)"
    )


class Approval(Strict):
    """One accepted approval: who, with which key (signed), when, for what."""

    action: str
    by: str
    fingerprint: str | None = None
    at: datetime
    reason: str = ""


class Decision(Strict):
    """One line of the release's audit log."""

    at: datetime
    what: str
    by: str = "engine"
    reason: str = ""


class StageReport(Strict):
    """One stage of the release pipeline (workflows/release.py), as its report shows it."""

    name: str
    verdict: Literal["pending", "running", "waiting", "passed", "failed", "skipped"] = "pending"
    duration_s: float | None = None
    approver: str | None = None
    detail: str = ""
    measurements: dict[str, str | float | int | bool | None] = Field(default_factory=dict)


TargetVerdict = Literal["pending", "running", "released", "no_change", "failed", "restored", "restore failed"]


class TargetReport(Strict):
    """One component in one region of a whole-app release: what ran before, and how it went."""

    component: str
    region: str
    role: Literal["primary", "standby"]
    previous: str | None = None
    """The version it ran before this release (None: not observed yet)."""
    verdict: TargetVerdict = "pending"
    detail: str = ""
    workflow_id: str | None = None


class ReleaseStatus(Strict):
    """What the status query answers."""

    release: str
    version: str
    strategy: str
    environment: str
    phase: Phase
    step_index: int = 0
    step_count: int = 0
    step: str = ""
    canary_weight: float = 0.0
    stable_version: str | None = None
    stable_pool: str | None = None
    canary_pool: str | None = None
    paused: bool = False
    pause_reason: str = ""
    awaiting_approval: bool = False
    last_analysis: list[Measurement] = Field(default_factory=list)
    evidence: list[Evidence] = Field(
        default_factory=list, description="the comparing judges' latest evidence, per template and test"
    )
    baseline_pool: str | None = None
    decisions: list[Decision] = Field(default_factory=list)
    refused: list[Decision] = Field(default_factory=list)
    approvals: list[Approval] = Field(default_factory=list, description="accepted approvals, in order")
    approvals_needed: int = Field(
        default=0, description="distinct approvers still needed by the current wait"
    )
    stages: list[StageReport] = Field(default_factory=list, description="release pipeline report")
    targets: list[TargetReport] = Field(
        default_factory=list, description="whole-app release: each component in each region, in order"
    )
    child_workflow_id: str | None = Field(
        default=None, description="the strategy's workflow while it runs; controls go there"
    )


Outcome = Literal["succeeded", "rolled_back", "failed", "no_change"]


class ReleaseResult(Strict):
    outcome: Outcome
    reason: str
    version: str
    live_version: str | None
    status: ReleaseStatus
