"""The pydantic contracts of disaster recovery: failover, failback, drills, the monitor.

Kept beside :mod:`engine.contracts` (same rules: ``Strict``, imports nothing heavy) so
the release contracts and the DR ones can change independently.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Annotated, Literal

from pydantic import Field, StringConstraints, model_validator

from engine.contracts.aws_dr import AwsDrSettings
from engine.contracts.environment import ApprovalPolicy, KubernetesSettings
from engine.contracts.scalars import Duration, Identity, Pool, Strict
from engine.contracts.status import Approval, Decision, Phase

RegionName = Annotated[str, StringConstraints(pattern=r"^[A-Za-z][A-Za-z0-9-]{0,31}$")]
Trigger = Literal["manual", "monitor", "drill", "schedule"]
DrOutcome = Literal["succeeded", "rolled_back", "failed", "refused"]
Mode = Literal["failover", "failback"]


# --------------------------------------------------------------------------- #
# Configuration (deploy-code.yaml: environments.NAME.dr) and its resolved form
# --------------------------------------------------------------------------- #


class DrProviders(Strict):
    database: str = "postgres-local"
    global_entry: str = "haproxy-local"
    regions: str = "local"


class DrLocal(Strict):
    """Where the local platform lives (the environment's ``local`` settings): its regions are the
    DR regions."""

    state_dir: str
    port_base: Annotated[int, Field(ge=1024, le=65000)]


class KubernetesWorker(Strict):
    """A region's worker Deployment (takes jobs, no traffic), as ``k8s/production`` defines it: a release
    sets its image tag and ``version`` label and waits for Kubernetes' rolling update of it."""

    deployment: str
    """Its name in the region's namespace (e.g. ``claude-deployment-worker``)."""
    image: str
    """The image repository; the tag is the version."""
    container: str | None = None
    """The container that runs the worker (default: the Deployment's first)."""


class KubernetesDrRegion(Strict):
    """One region's cluster and the Deployment that runs the service there (EKS: one cluster per region)."""

    kubernetes: KubernetesSettings
    """Kubeconfig/context (or in-cluster), namespace, app; the Deployment is ``{app}-{pool}``."""
    pool: Pool = "blue"
    health_url: str | None = None
    """The region's own entry (its ALB), e.g. ``https://alb-dns/healthz``: must answer 200 for the
    region to be healthy. None: only the Deployment is checked."""
    database_host: str | None = None
    """``DATABASE_HOST`` for instances writing to this region's database when it is not RDS
    (with ``dr.aws`` the RDS endpoint of the region's instance is used)."""
    worker: KubernetesWorker | None = None
    """The region's workers (``app.components`` of kind worker), released with the api."""


class KubernetesDrSettings(Strict):
    """``environments.NAME.dr.kubernetes``: the ``kubernetes`` Regions provider's clusters."""

    regions: Annotated[dict[str, KubernetesDrRegion], Field(min_length=2, max_length=2)]
    """Keyed by DR region name (the names of ``dr.regions``)."""
    host_env: str = "DATABASE_HOST"
    """Container env var with the database host the instances write to (empty: writes refused)."""
    node_env: str = "DATABASE_NODE"
    """Container env var with the DR region whose database that is (read back by ``writes_to``)."""


def _same_regions(
    regions: list[str], settings: AwsDrSettings | KubernetesDrSettings | None, what: str
) -> None:
    if settings is not None and set(settings.regions) != set(regions):
        msg = f"{what}.regions names {sorted(settings.regions)}, but the DR regions are {regions}"
        raise ValueError(msg)


class DrConfig(Strict):
    """Disaster recovery of one environment."""

    regions: Annotated[list[RegionName], Field(min_length=2, max_length=2)]
    """The home (normally primary) region first, then the standby region."""
    providers: DrProviders = DrProviders()
    instances: Annotated[int, Field(ge=1, le=4)] = 2
    standby_instances: Annotated[int, Field(ge=1, le=4)] = 1
    rpo_budget: Duration = timedelta(seconds=5)
    """Replication lag above which a failover refuses unless forced."""
    health_check_interval: Duration = timedelta(seconds=1)
    health_check_failures: Annotated[int, Field(ge=1, le=100)] = 3
    """Consecutive failed health checks of the primary region before the monitor fails over."""
    auto_approve: bool = False
    """Whether a failover started by the monitor proceeds without a human."""
    monitor_force: bool = False
    """Whether the monitor's failover accepts an unknown lag (asynchronous replication, primary lost)."""
    synchronous_replication: bool = True
    catch_up_timeout: Duration = timedelta(seconds=30)
    drill_cron: str = "0 4 * * 1"
    version_drift: Literal["converge", "refuse"] = "converge"
    """When the target region serves other versions than the source: start the source's versions
    there first (converge), or refuse naming the drift unless forced."""
    aws: AwsDrSettings | None = None
    """RDS instances and Route53 records per region (providers ``rds`` and ``route53``)."""
    kubernetes: KubernetesDrSettings | None = None
    """One cluster per region (Regions provider ``kubernetes``)."""

    @model_validator(mode="after")
    def _distinct(self) -> DrConfig:
        if len(set(self.regions)) != len(self.regions):
            msg = f"regions must be distinct, got {self.regions}"
            raise ValueError(msg)
        _same_regions(self.regions, self.aws, "aws")
        _same_regions(self.regions, self.kubernetes, "kubernetes")
        if self.health_check_interval < timedelta(milliseconds=200):
            msg = "health_check_interval is below the 200ms minimum"
            raise ValueError(msg)
        return self


class DrSpec(Strict):
    """Everything a DR workflow needs about an environment, fixed at start."""

    app: str
    environment: str
    version: str
    """The version the standby region's instances run."""
    regions: list[RegionName]
    providers: DrProviders
    instances: int
    standby_instances: int
    rpo_budget: Duration
    health_check_interval: Duration
    health_check_failures: int
    auto_approve: bool
    monitor_force: bool = False
    synchronous_replication: bool
    catch_up_timeout: Duration
    version_drift: Literal["converge", "refuse"] = "converge"
    workers: Annotated[int, Field(ge=0, le=5)] = 0
    """Workers a region runs where users are (``app.components``' worker, released in this
    environment): scaling a region to ``instances`` scales its workers to this many."""
    standby_workers: Annotated[int, Field(ge=0, le=5)] = 0
    approvers: list[Identity] = Field(default_factory=list)
    approval_timeout: Duration = timedelta(hours=1)
    policy: ApprovalPolicy = Field(default_factory=ApprovalPolicy)
    local: DrLocal | None = None
    aws: AwsDrSettings | None = None
    kubernetes: KubernetesDrSettings | None = None

    @property
    def home(self) -> str:
        return self.regions[0]


# --------------------------------------------------------------------------- #
# Workflow inputs
# --------------------------------------------------------------------------- #


class FailoverRequest(Strict):
    dr: DrSpec
    to_region: RegionName
    mode: Mode = "failover"
    """failback: first rebuild the target as a standby of the current primary, and afterwards the
    old primary as a standby of the new one."""
    drill: bool = False
    force: bool = False
    trigger: Trigger = "manual"
    requested_by: str = "unknown"
    approved_by: Identity | None = None
    outage_started_at: datetime | None = None
    """When the monitor saw the first failed health check (the start of the outage)."""
    detected_at: datetime | None = None
    """When the monitor decided the region had failed."""


class DrillRequest(Strict):
    dr: DrSpec
    to_region: RegionName | None = None
    trigger: Trigger = "manual"
    requested_by: str = "unknown"


class MonitorRequest(Strict):
    dr: DrSpec
    checks_per_run: Annotated[int, Field(ge=1)] = 300
    """Checks before the monitor continues as new (keeps its history short)."""


# --------------------------------------------------------------------------- #
# Activity inputs and outputs
# --------------------------------------------------------------------------- #


class DrRef(Strict):
    dr: DrSpec


class RegionRef(Strict):
    dr: DrSpec
    region: RegionName


class RebuildRequest(Strict):
    dr: DrSpec
    region: RegionName
    primary: RegionName


class ReplicationRequest(Strict):
    dr: DrSpec
    primary: RegionName
    standby: RegionName | None
    synchronous: bool


class CatchUpRequest(Strict):
    dr: DrSpec
    standby: RegionName
    primary: RegionName
    timeout: Duration


class ScaleRequest(Strict):
    dr: DrSpec
    region: RegionName
    count: Annotated[int, Field(ge=0, le=4)]


class ConvergeRequest(Strict):
    dr: DrSpec
    region: RegionName
    versions: dict[str, str]
    """Component -> the version it must serve in ``region``."""


class PointRequest(Strict):
    dr: DrSpec
    region: RegionName
    database: RegionName | None


class SwitchRequest(Strict):
    dr: DrSpec
    region: RegionName


class BusyRequest(Strict):
    workflow_ids: list[str]


class Replica(Strict):
    region: str
    state: str
    sync: str
    lag_bytes: int
    lag_seconds: float | None = None


class DbNode(Strict):
    region: str
    reachable: bool
    role: Literal["primary", "standby", "unknown"] = "unknown"
    fenced: bool = False
    lsn: str | None = None
    replicas: list[Replica] = Field(default_factory=list)
    error: str = ""


class Topology(Strict):
    """The databases, where users go and where each region writes, observed at one moment."""

    databases: dict[str, DbNode]
    active_region: str | None
    writes_to: dict[str, str | None]
    at: datetime
    versions: dict[str, dict[str, str]] = Field(default_factory=dict)
    """Region -> component -> the version it serves there (a region that does not answer is absent)."""

    def drift(self, source: str, target: str) -> dict[str, tuple[str, str | None]]:
        """Component -> (source's version, target's) where they differ; empty when either is unknown."""
        if source not in self.versions or target not in self.versions:
            return {}
        there = self.versions[target]
        return {c: (v, there.get(c)) for c, v in sorted(self.versions[source].items()) if there.get(c) != v}

    def primaries(self) -> list[str]:
        return [r for r, n in self.databases.items() if n.reachable and n.role == "primary" and not n.fenced]

    def replica_of(self, primary: str, standby: str) -> Replica | None:
        node = self.databases.get(primary)
        return next((r for r in node.replicas if r.region == standby), None) if node else None


class Fenced(Strict):
    region: str
    reachable: bool
    at: datetime
    lsn: str | None = None


class Promoted(Strict):
    region: str
    already_primary: bool
    at: datetime


class CatchUp(Strict):
    lag_bytes: int
    seconds: float


class Probe(Strict):
    """A health check and a numbered write through the global entry point."""

    ok: bool
    region: str | None = None
    at: datetime
    attempts: int = 1
    failures: list[str] = Field(default_factory=list)


class Health(Strict):
    region: str
    ok: bool
    at: datetime
    failures: list[str] = Field(default_factory=list)


# --------------------------------------------------------------------------- #
# Status and report
# --------------------------------------------------------------------------- #


class StepTiming(Strict):
    step: str
    seconds: float


class DrReport(Strict):
    """What a failover, failback or drill measured; kept in the status query and the result."""

    kind: Literal["failover", "failback", "drill"]
    from_region: str | None = None
    to_region: str | None = None
    drill: bool = False
    trigger: Trigger = "manual"
    outcome: DrOutcome | None = None
    reason: str = ""
    started_at: datetime
    finished_at: datetime | None = None
    detection_seconds: float | None = None
    """First failed health check -> failover decided (monitor-triggered runs only)."""
    rto_seconds: float | None = None
    """Outage start (first failed check, else the fence) -> first write through the global entry."""
    rpo_bytes: int | None = None
    """WAL the promoted standby had not replayed when it was promoted (None: primary unreachable)."""
    rpo_seconds: float | None = None
    """Replication lag last observed before the fence."""
    steps: list[StepTiming] = Field(default_factory=list)
    parts: list[DrReport] = Field(default_factory=list)
    versions: dict[str, dict[str, str]] = Field(default_factory=dict)
    """Region -> component -> version, as observed before (and, converged, after) the failover."""


class DrStatus(Strict):
    operation: str
    phase: Phase
    step: str = ""
    awaiting_approval: bool = False
    decisions: list[Decision] = Field(default_factory=list)
    refused: list[Decision] = Field(default_factory=list)
    approvals: list[Approval] = Field(default_factory=list)
    approvals_needed: int = 0
    report: DrReport | None = None


class DrResult(Strict):
    outcome: DrOutcome
    reason: str
    report: DrReport
    status: DrStatus


class MonitorStatus(Strict):
    primary: str | None = None
    consecutive_failures: int = 0
    checks: int = 0
    last_failures: list[str] = Field(default_factory=list)
    failovers_started: list[str] = Field(default_factory=list)
