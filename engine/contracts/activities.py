"""Every activity the workflows call, declared once: its registered name, request and result.

The activity side registers a function under a declaration (``activities.common.implements``,
which mypy checks against the declared request and result types); the workflow side calls
through the same declaration (``workflows.options.call``), so neither side writes the name
again and a wrong argument is a type error, not a runtime surprise. Names are part of
stored histories: never rename one.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Generic, TypeVar

from engine.contracts.analysis import (
    AnalysisRequest,
    AnalysisResult,
    JudgeRequest,
    JudgeResult,
    QueryCheckRequest,
)
from engine.contracts.dr import (
    BusyRequest,
    CatchUp,
    CatchUpRequest,
    ConvergeRequest,
    DrRef,
    Fenced,
    Health,
    PointRequest,
    Probe,
    Promoted,
    RebuildRequest,
    RegionRef,
    ReplicationRequest,
    ScaleRequest,
    SwitchRequest,
    Topology,
)
from engine.contracts.pipeline import (
    CheckResult,
    DependencyCheck,
    ImageFound,
    ImageLookup,
    LiveImageRequest,
    LiveImageResult,
    Notification,
    PromoteRequest,
    PromoteResult,
    TerraformApplied,
    TerraformApplyRequest,
    TerraformPlan,
    TerraformPlanRequest,
)
from engine.contracts.platform import (
    DrainRequest,
    EnvironmentRef,
    Instance,
    Observed,
    PoolRequest,
    PreviewCheck,
    PreviewRequest,
    RouterState,
    SmokeRequest,
    SmokeResult,
    StopRequest,
    TrafficRequest,
)

Req = TypeVar("Req")
Res = TypeVar("Res")


@dataclass(frozen=True)
class Activity(Generic[Req, Res]):
    """One activity: the name it is registered under, what it takes and what it returns."""

    name: str
    request: type[Req]
    result: type[Res]


NONE = type(None)

# The release strategies (activities/definitions.py)
OBSERVE = Activity("platform.observe", EnvironmentRef, Observed)
START_POOL = Activity("platform.start_pool", PoolRequest, list[Instance])
STOP_POOL = Activity("platform.stop_pool", StopRequest, NONE)
SET_TRAFFIC = Activity("router.set_traffic", TrafficRequest, RouterState)
SET_PREVIEW = Activity("router.set_preview", PreviewRequest, list[str])
DRAIN = Activity("router.drain", DrainRequest, dict[str, int])
PREVIEW_CHECK = Activity("smoke.preview", PreviewCheck, SmokeResult)
SMOKE_CHECK = Activity("smoke.check", SmokeRequest, SmokeResult)
RUN_ANALYSIS = Activity("analysis.run", AnalysisRequest, AnalysisResult)
CHECK_QUERIES = Activity("analysis.check_queries", QueryCheckRequest, int)
JUDGE = Activity("analysis.judge", JudgeRequest, JudgeResult)

# Disaster recovery (activities/dr_definitions.py)
DR_OBSERVE = Activity("dr.observe", DrRef, Topology)
DR_REGION_HEALTH = Activity("dr.region_health", RegionRef, Health)
DR_FENCE = Activity("dr.fence", RegionRef, Fenced)
DR_UNFENCE = Activity("dr.unfence", RegionRef, NONE)
DR_CATCH_UP = Activity("dr.catch_up", CatchUpRequest, CatchUp)
DR_PROMOTE = Activity("dr.promote", RegionRef, Promoted)
DR_REBUILD_STANDBY = Activity("dr.rebuild_standby", RebuildRequest, NONE)
DR_SET_REPLICATION = Activity("dr.set_replication", ReplicationRequest, NONE)
DR_USE_DATABASE = Activity("dr.use_database", PointRequest, NONE)
DR_SCALE_REGION = Activity("dr.scale_region", ScaleRequest, int)
DR_CONVERGE = Activity("dr.converge", ConvergeRequest, dict[str, str])
DR_VERSIONS = Activity("dr.versions", RegionRef, dict[str, str])
DR_SWITCH_ENTRY = Activity("dr.switch_entry", SwitchRequest, str)
DR_PROBE = Activity("dr.probe", SwitchRequest, Probe)
DR_RUNNING_WORKFLOWS = Activity("dr.running_workflows", BusyRequest, list[str])

# The release pipeline (activities/pipeline_definitions.py)
CHECK_DEPENDENCY = Activity("check.dependency", DependencyCheck, CheckResult)
IMAGE_RESOLVE = Activity("image.resolve", ImageLookup, ImageFound)
IMAGE_PROMOTE = Activity("image.promote", PromoteRequest, PromoteResult)
IMAGE_VERIFY_LIVE = Activity("image.verify_live", LiveImageRequest, LiveImageResult)
TERRAFORM_PLAN = Activity("terraform.plan", TerraformPlanRequest, TerraformPlan)
TERRAFORM_APPLY = Activity("terraform.apply", TerraformApplyRequest, TerraformApplied)
NOTIFY = Activity("notify.webhook", Notification, NONE)
