"""An environment, resolved: which provider serves each capability, and their settings."""

from __future__ import annotations

from datetime import timedelta
from typing import Annotated, Literal

from pydantic import Field, StringConstraints, model_validator

from engine.contracts.scalars import Duration, Identity, Pool, Strict


class Providers(Strict):
    """Which implementation serves each capability in an environment."""

    platform: str
    router: str
    analysis: str
    smoke: str = "http"


class LocalSettings(Strict):
    """Where the local platform of an environment lives, and which of its regions is meant."""

    state_dir: str
    port_base: Annotated[int, Field(ge=1024, le=65000)]
    max_slots: Annotated[int, Field(ge=1, le=10)] = 8
    regions: Annotated[list[str], Field(min_length=1, max_length=4)] = Field(default_factory=lambda: ["A"])
    """The platform's regions, home first (each its own block of 60 ports after the home's)."""
    region: str | None = None
    """The region a release step is aimed at (None: the home region)."""


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


class SignerKey(Strict):
    """One line of an environment's allowed_signers: who may sign approvals, with which SSH key."""

    principals: list[str]
    key_type: str
    key: str
    fingerprint: str


class ApprovalPolicy(Strict):
    """Who may move a release (or a failover) forward, and what proves it was them.

    ``named``: the identity sent is trusted (anyone who reaches the namespace can type a name);
    ``signed``: approve, promote, resume, a Terraform approval and a failover approval carry an SSH
    signature (engine/approvals.py) by a key of ``signers`` whose principal is the identity.
    """

    approvals: Literal["named", "signed"] = "named"
    signers: list[SignerKey] = Field(default_factory=list)
    required_approvals: Annotated[int, Field(ge=1, le=10)] = 1
    """Distinct approvers (distinct keys when signed) an approval needs: the two-person rule."""
    signature_validity: Duration = timedelta(minutes=15)


class EnvironmentSpec(Strict):
    """One environment, resolved: providers and their settings."""

    name: str
    providers: Providers
    instances: Annotated[int, Field(ge=1, le=64)]
    component: Annotated[str, StringConstraints(pattern=r"^[a-z][a-z0-9-]{0,30}$")] = "api"
    """The component of the app a release step is aimed at (``app.components``): ``api`` takes
    the traffic; a ``worker`` takes jobs (its router says which of its instances may)."""
    approvers: list[Identity] = Field(default_factory=list)
    approval_timeout: Duration = timedelta(hours=24)
    policy: ApprovalPolicy = Field(default_factory=ApprovalPolicy)
    prometheus_url: str | None = None
    local: LocalSettings | None = None
    aws: AwsSettings | None = None
    kubernetes: KubernetesSettings | None = None


class AppSpec(Strict):
    name: str
    health_path: str = "/healthz"
    metrics_path: str = "/metrics"
