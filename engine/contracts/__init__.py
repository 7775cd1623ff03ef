"""The pydantic contracts shared by starters, workflows and activities.

Everything that crosses a Temporal boundary (workflow input, activity input and
output, update payloads, query results) is defined in this package and nowhere
else: releases here, and per feature ``dr`` (failover, drills), ``aws_dr`` (the
AWS side of DR) and ``pipeline`` (the release pipeline's stages). The
module imports nothing heavy so that the workflow sandbox and the starters load
it quickly.
"""

from __future__ import annotations

import ast
import re
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    StringConstraints,
    model_validator,
)

# --------------------------------------------------------------------------- #
# Scalars
# --------------------------------------------------------------------------- #

_DURATION_PART = re.compile(r"(\d+(?:\.\d+)?)(ms|s|m|h|d)")
_DURATION_UNITS = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400}
MAX_DURATION = timedelta(days=30)


def _parse_duration(value: Any) -> Any:
    """Accept "500ms", "10s", "5m", "1h30m", "2d" (and "-10s", to refuse it clearly)."""
    if not isinstance(value, str):
        return value
    text = value.strip()
    sign = -1 if text.startswith("-") else 1
    body = text.lstrip("-")
    parts = _DURATION_PART.findall(body)
    if parts and "".join(n + u for n, u in parts) == body:
        return sign * timedelta(seconds=sum(float(n) * _DURATION_UNITS[u] for n, u in parts))
    return value  # numbers of seconds and ISO 8601 are pydantic's own forms


def _check_duration(value: timedelta) -> timedelta:
    if value < timedelta(0):
        msg = f"a duration cannot be negative ({value.total_seconds():g}s)"
        raise ValueError(msg)
    if value > MAX_DURATION:
        msg = f"duration {value.total_seconds():g}s is longer than the {MAX_DURATION.days}-day maximum"
        raise ValueError(msg)
    return value


Duration = Annotated[timedelta, BeforeValidator(_parse_duration), AfterValidator(_check_duration)]
"""A non-negative duration of at most 30 days; "10s"-style strings accepted."""

VERSION_PATTERN = r"^v?\d{1,6}\.\d{1,6}\.\d{1,6}(?:-[0-9A-Za-z][0-9A-Za-z.-]{0,40})?$"
Version = Annotated[str, StringConstraints(pattern=VERSION_PATTERN, max_length=64)]
"""A release version: semantic version, optional leading v and pre-release suffix."""

Identity = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=128)]
Pool = Annotated[str, StringConstraints(pattern=r"^[a-z][a-z0-9-]{0,31}$")]
Percent = Annotated[int, Field(ge=0, le=100)]

STRATEGIES = ("canary", "blue-green", "rolling")
"""Strategies this engine ships (the names a release request uses)."""


class Strict(BaseModel):
    """Base for every contract: unknown fields are errors, instances are frozen."""

    model_config = ConfigDict(extra="forbid", frozen=True)


# --------------------------------------------------------------------------- #
# Analysis (Argo Rollouts' vocabulary)
# --------------------------------------------------------------------------- #

_ALLOWED_NODES = (
    ast.Expression,
    ast.Compare,
    ast.BoolOp,
    ast.And,
    ast.Or,
    ast.UnaryOp,
    ast.Not,
    ast.USub,
    ast.Name,
    ast.Load,
    ast.Constant,
    ast.Lt,
    ast.LtE,
    ast.Gt,
    ast.GtE,
    ast.Eq,
    ast.NotEq,
)


def parse_condition(text: str) -> ast.Expression:
    """Parse a condition such as ``result < 0.05`` into a vetted syntax tree.

    Only comparisons of ``result`` with numbers, joined by and/or/not, are allowed.
    """
    try:
        tree = ast.parse(text, mode="eval")
    except SyntaxError as exc:
        msg = f"condition {text!r} does not parse: {exc.msg}"
        raise ValueError(msg) from None
    for node in ast.walk(tree):
        if not isinstance(node, _ALLOWED_NODES):
            msg = f"condition {text!r} may only compare `result` with numbers (found {type(node).__name__})"
            raise ValueError(msg)
        if isinstance(node, ast.Name) and node.id != "result":
            msg = f"condition {text!r} names {node.id!r}; only `result` is known"
            raise ValueError(msg)
        if isinstance(node, ast.Constant) and (
            isinstance(node.value, bool) or not isinstance(node.value, int | float)
        ):
            msg = f"condition {text!r} compares with {node.value!r}; only numbers are allowed"
            raise ValueError(msg)
    return tree


def evaluate_condition(text: str, result: float) -> bool:
    """Evaluate a condition accepted by :func:`parse_condition` for one value."""
    return bool(_eval(parse_condition(text).body, result))


def _eval(node: ast.AST, result: float) -> Any:  # noqa: PLR0911 - one branch per node kind
    match node:
        case ast.Constant(value=v):
            return v
        case ast.Name():
            return result
        case ast.UnaryOp(op=ast.USub(), operand=o):
            return -_eval(o, result)
        case ast.UnaryOp(op=ast.Not(), operand=o):
            return not _eval(o, result)
        case ast.BoolOp(op=ast.And(), values=vs):
            return all(_eval(v, result) for v in vs)
        case ast.BoolOp(op=ast.Or(), values=vs):
            return any(_eval(v, result) for v in vs)
        case ast.Compare(left=left, ops=ops, comparators=rights):
            lhs = _eval(left, result)
            for op, right in zip(ops, rights, strict=True):
                rhs = _eval(right, result)
                if not _COMPARE[type(op)](lhs, rhs):
                    return False
                lhs = rhs
            return True
    msg = f"unsupported node {type(node).__name__}"
    raise ValueError(msg)


_COMPARE = {
    ast.Lt: lambda a, b: a < b,
    ast.LtE: lambda a, b: a <= b,
    ast.Gt: lambda a, b: a > b,
    ast.GtE: lambda a, b: a >= b,
    ast.Eq: lambda a, b: a == b,
    ast.NotEq: lambda a, b: a != b,
}


def _valid_condition(text: str | None) -> str | None:
    if text is not None:
        parse_condition(text)
    return text


Condition = Annotated[str | None, AfterValidator(_valid_condition)]

TEMPLATE_ARGS = ("app", "environment", "canary_version", "stable_version", "canary_pool", "stable_pool")
_TEMPLATE_REF = re.compile(r"\{\{\s*([a-z_]+)\s*\}\}")


def render_query(query: str, args: dict[str, str]) -> str:
    """Replace ``{{name}}`` placeholders (Argo's args) in a query."""
    return _TEMPLATE_REF.sub(lambda m: args[m.group(1)], query)


class Metric(Strict):
    """One metric of an analysis: a query, how to judge it, and how often."""

    name: Annotated[str, StringConstraints(pattern=r"^[a-z][a-z0-9_-]{0,62}$")]
    query: Annotated[str, StringConstraints(min_length=1, max_length=4096)]
    success_condition: Condition = None
    failure_condition: Condition = None
    interval: Duration = timedelta(seconds=1)
    count: Annotated[int, Field(ge=1, le=100_000)] | None = None
    initial_delay: Duration = timedelta(0)
    failure_limit: Annotated[int, Field(ge=0)] = 0
    inconclusive_limit: Annotated[int, Field(ge=0)] = 0
    consecutive_error_limit: Annotated[int, Field(ge=0)] = 4

    @model_validator(mode="after")
    def _check(self) -> Metric:
        if self.success_condition is None and self.failure_condition is None:
            msg = f"metric {self.name!r} needs a success_condition or a failure_condition"
            raise ValueError(msg)
        if self.interval < timedelta(milliseconds=100):
            msg = f"metric {self.name!r}: interval {self.interval} is below the 100ms minimum"
            raise ValueError(msg)
        for ref in _TEMPLATE_REF.findall(self.query):
            if ref not in TEMPLATE_ARGS:
                known = ", ".join(TEMPLATE_ARGS)
                msg = f"metric {self.name!r}: unknown placeholder {{{{{ref}}}}}; known: {known}"
                raise ValueError(msg)
        return self


class AnalysisTemplate(Strict):
    """A named set of metrics, referenced by canary steps and background analysis."""

    metrics: Annotated[list[Metric], Field(min_length=1)]


MeasurementPhase = Literal["successful", "failed", "inconclusive", "error"]
AnalysisPhase = Literal["successful", "failed", "inconclusive", "running"]


class Measurement(Strict):
    """One evaluation of one metric."""

    metric: str
    phase: MeasurementPhase
    value: float | None = None
    at: datetime
    message: str = ""


class MetricTally(Strict):
    """Counts carried across chunks of a long-running (background) analysis."""

    measured: int = 0
    failed: int = 0
    inconclusive: int = 0
    consecutive_errors: int = 0


class AnalysisRequest(Strict):
    """Input of the analysis activity.

    With ``chunk`` unset every metric is measured ``count`` times (foreground
    analysis). With ``chunk`` set the activity returns phase ``running`` after
    that long unless a limit was crossed first (background analysis).
    """

    environment: EnvironmentSpec
    name: str
    metrics: list[Metric]
    args: dict[str, str]
    chunk: Duration | None = None
    tallies: dict[str, MetricTally] = Field(default_factory=dict)


class QueryCheckRequest(Strict):
    """Input of ``analysis.check_queries``: every query a release's analyses will run."""

    environment: EnvironmentSpec
    analyses: list[AnalysisRef]
    args: dict[str, str]


class AnalysisResult(Strict):
    """The verdict of an analysis run (or of one chunk of a background one)."""

    name: str
    phase: AnalysisPhase
    message: str = ""
    measurements: list[Measurement] = Field(default_factory=list)
    tallies: dict[str, MetricTally] = Field(default_factory=dict)


# --------------------------------------------------------------------------- #
# Canary steps
# --------------------------------------------------------------------------- #


class SetWeightStep(Strict):
    """Send this percentage of traffic to the canary."""

    set_weight: Percent


class PauseSpec(Strict):
    duration: Duration | None = None


class PauseStep(Strict):
    """Hold for a duration, or (without one) until an approver approves."""

    pause: PauseSpec


class AnalysisStepSpec(Strict):
    templates: Annotated[list[str], Field(min_length=1)]


class AnalysisStep(Strict):
    """Run the named analysis templates to a verdict before going on."""

    analysis: AnalysisStepSpec


CanaryStep = SetWeightStep | PauseStep | AnalysisStep


def describe_step(step: CanaryStep) -> str:
    """A one-line, human description of a canary step."""
    match step:
        case SetWeightStep(set_weight=w):
            return f"set weight {w}%"
        case PauseStep(pause=PauseSpec(duration=None)):
            return "pause for approval"
        case PauseStep(pause=PauseSpec(duration=d)):
            return f"pause {d}"
        case AnalysisStep(analysis=a):
            return f"analysis {', '.join(a.templates)}"
    return repr(step)


# --------------------------------------------------------------------------- #
# The resolved release: everything a workflow needs, fixed at start
# --------------------------------------------------------------------------- #


class Providers(Strict):
    """Which implementation serves each capability in an environment."""

    platform: str
    router: str
    analysis: str
    smoke: str = "http"


class LocalSettings(Strict):
    """Where the local platform of an environment lives."""

    state_dir: str
    port_base: Annotated[int, Field(ge=1024, le=65000)]
    max_slots: Annotated[int, Field(ge=1, le=20)] = 8


class AwsSettings(Strict):
    """``environments.NAME.aws``: credentials, region and the resources the AWS providers use.

    Credentials come from the standard boto3 chain (environment, profile, instance/IRSA role);
    ``role_arn``, when set, is assumed (sts:AssumeRole) on top of them. The resource names are
    the Terraform outputs of ``infrastructure/terraform`` (alb_listener_arn, *_target_group_arn).
    """

    region: Annotated[str, StringConstraints(pattern=r"^[a-z]{2}(-[a-z]+)+-\d$")]
    role_arn: Annotated[str, StringConstraints(pattern=r"^arn:aws[a-z-]*:iam::\d{12}:role/.+$")] | None = None
    role_session_name: Annotated[str, StringConstraints(pattern=r"^[\w+=,.@-]{2,64}$")] = "deploy-code"
    endpoint_url: str | None = Field(
        default=None, description="an AWS-compatible endpoint instead of AWS's own (VPC endpoint, moto)"
    )
    max_attempts: Annotated[int, Field(ge=1, le=20)] = 8
    """Attempts per call (botocore's adaptive retry mode: throttling and 5xx, never access denied)."""
    listener_arn: str | None = None
    """alb_listener_arn: the listener whose forward action the ALB router rewrites."""
    rule_arn: str | None = None
    """A listener rule to rewrite instead of the listener's default action."""
    target_groups: dict[Pool, str] = Field(default_factory=dict)
    """Pool -> target group ARN (blue_target_group_arn, green_target_group_arn)."""
    preview_listener_arn: str | None = None
    """alb_preview_listener_arn: a second listener (its own port) that forwards to the pool being
    previewed (blue-green's preview route); a fixed 503 while nothing is previewed."""
    preview_url: str | None = None
    """Where the preview listener answers (default: http(s)://ALB DNS name:listener port)."""
    metrics_period: Annotated[int, Field(ge=1, le=86400)] = 60
    """CloudWatch period (s) of a metric query."""
    metrics_window: Duration = timedelta(minutes=5)
    """How far back a CloudWatch metric query looks; the newest datapoint is the answer."""

    @model_validator(mode="after")
    def _check_preview(self) -> AwsSettings:
        if self.preview_listener_arn is not None and self.preview_listener_arn == self.listener_arn:
            msg = "preview_listener_arn must be another listener than listener_arn (users would see green)"
            raise ValueError(msg)
        return self


class KubernetesSettings(Strict):
    """``environments.NAME.kubernetes``: the cluster and the objects the Kubernetes providers use.

    One Deployment per pool, ``{app}-{pool}``, labelled ``app``, ``pool`` and ``version``.
    """

    app: Annotated[str, StringConstraints(pattern=r"^[a-z][a-z0-9-]{0,40}$")]
    image: Annotated[str, StringConstraints(min_length=1)]
    """Repository of the image (ecr_prod_repository_url); the version is the tag."""
    namespace: Annotated[str, StringConstraints(pattern=r"^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$")] = "default"
    kubeconfig: str | None = None
    context: str | None = None
    in_cluster: bool = False
    """Use the pod's service account instead of a kubeconfig (the engine runs in the cluster)."""
    container_port: Annotated[int, Field(ge=1, le=65535)] = 8080
    service: str | None = None
    """Service the router flips between pools (default: the app's name)."""
    canary_service: str | None = None
    """Service behind the canary Ingress (default: ``{app}-canary``)."""
    canary_ingress: str | None = None
    """NGINX canary Ingress (default: ``{app}-canary``)."""
    preview_service: str | None = None
    """Service of blue-green's preview route, flipped to the pool being previewed (default:
    ``{app}-preview``)."""
    preview_url: str | None = None
    """Where the preview Service answers (default: its cluster DNS name and first port)."""
    rollout_timeout: Duration = timedelta(minutes=10)
    progress_deadline_seconds: Annotated[int, Field(ge=10, le=86400)] = 600


class EnvironmentSpec(Strict):
    """One environment, resolved: providers and their settings."""

    name: str
    providers: Providers
    instances: Annotated[int, Field(ge=1, le=64)]
    approvers: list[Identity] = Field(default_factory=list)
    approval_timeout: Duration = timedelta(hours=24)
    prometheus_url: str | None = None
    local: LocalSettings | None = None
    aws: AwsSettings | None = None
    kubernetes: KubernetesSettings | None = None


class AppSpec(Strict):
    name: str
    health_path: str = "/healthz"
    metrics_path: str = "/metrics"


class AnalysisRef(Strict):
    """An analysis template, resolved by name into its metrics."""

    name: str
    metrics: list[Metric]


class ResolvedStep(Strict):
    """A canary step with its analysis templates resolved."""

    step: CanaryStep
    analyses: list[AnalysisRef] = Field(default_factory=list)


class CanarySpec(Strict):
    steps: list[ResolvedStep]
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


# --------------------------------------------------------------------------- #
# Platform and router
# --------------------------------------------------------------------------- #


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


# --------------------------------------------------------------------------- #
# Controls, status and results
# --------------------------------------------------------------------------- #


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


class Control(Strict):
    """Payload of approve / promote / resume / pause / abort."""

    identity: Identity
    reason: Annotated[str, StringConstraints(max_length=1024)] = ""
    version: Version | None = Field(default=None, description="refuse unless this is the running release")


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
    decisions: list[Decision] = Field(default_factory=list)
    refused: list[Decision] = Field(default_factory=list)
    stages: list[StageReport] = Field(default_factory=list, description="release pipeline report")
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


# AnalysisRequest refers to EnvironmentSpec, defined after it.
AnalysisRequest.model_rebuild()
QueryCheckRequest.model_rebuild()
