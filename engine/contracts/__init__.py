"""The pydantic contracts shared by starters, workflows and activities.

Everything that crosses a Temporal boundary (workflow input, activity input and
output, update payloads, query results) is defined in this package and nowhere
else, one module per section, all re-exported here:

- ``scalars``: durations, versions, identities, pools, percentages, ``Strict``;
- ``conditions``: the condition language of analysis metrics (a vetted ``ast`` walk);
- ``analysis``: metrics, templates, measurements, analysis requests and verdicts;
- ``steps``: canary steps; ``environment``: providers and their settings;
- ``release``: the resolved release (strategy plans); ``platform``: platform, router
  and smoke requests and results; ``status``: controls, status, decisions, results;
- per feature: ``dr`` (failover, drills), ``aws_dr`` (the AWS side of DR), ``pipeline``
  (the release pipeline's stages), ``activities`` (every activity's name and types).

The package imports nothing heavy so that the workflow sandbox and the starters load
it quickly.
"""

from __future__ import annotations

from engine.analysis.conditions import (
    Condition,
    evaluate_condition,
    parse_condition,
)
from engine.contracts.analysis import (
    SIDE_ARGS,
    TEMPLATE_ARGS,
    AnalysisPhase,
    AnalysisRef,
    AnalysisRequest,
    AnalysisResult,
    AnalysisTemplate,
    CompareMetric,
    Evidence,
    Judge,
    JudgePhase,
    JudgeRequest,
    JudgeResult,
    JudgeSpec,
    JudgeState,
    LatencySlo,
    Measurement,
    MeasurementPhase,
    Metric,
    MetricTally,
    Query,
    QueryCheckRequest,
    Side,
    Slo,
    Verdict,
    render_query,
)
from engine.contracts.environment import (
    AppSpec,
    AwsSettings,
    EnvironmentSpec,
    KubernetesSettings,
    LocalSettings,
    Providers,
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
    without_idle_baseline,
)
from engine.contracts.release import (
    BlueGreenSpec,
    CanarySpec,
    ReleaseSpec,
    ResolvedStep,
    RollingSpec,
    rolling_batches,
)
from engine.contracts.scalars import (
    ALL_POOLS,
    BASELINE_POOL,
    MAX_DURATION,
    POOLS,
    STRATEGIES,
    VERSION_PATTERN,
    Duration,
    Identity,
    Percent,
    Pool,
    Strict,
    Version,
)
from engine.contracts.status import (
    Control,
    Decision,
    Outcome,
    Phase,
    ReleaseResult,
    ReleaseStatus,
    StageReport,
)
from engine.contracts.steps import (
    AnalysisStep,
    AnalysisStepSpec,
    CanaryStep,
    PauseSpec,
    PauseStep,
    SetWeightStep,
    describe_step,
)

__all__ = [
    "ALL_POOLS",
    "BASELINE_POOL",
    "MAX_DURATION",
    "POOLS",
    "SIDE_ARGS",
    "STRATEGIES",
    "TEMPLATE_ARGS",
    "VERSION_PATTERN",
    "AnalysisPhase",
    "AnalysisRef",
    "AnalysisRequest",
    "AnalysisResult",
    "AnalysisStep",
    "AnalysisStepSpec",
    "AnalysisTemplate",
    "AppSpec",
    "AwsSettings",
    "BlueGreenSpec",
    "CanarySpec",
    "CanaryStep",
    "CompareMetric",
    "Condition",
    "Control",
    "Decision",
    "DrainRequest",
    "Duration",
    "EnvironmentRef",
    "EnvironmentSpec",
    "Evidence",
    "Identity",
    "Instance",
    "Judge",
    "JudgePhase",
    "JudgeRequest",
    "JudgeResult",
    "JudgeSpec",
    "JudgeState",
    "KubernetesSettings",
    "LatencySlo",
    "LocalSettings",
    "Measurement",
    "MeasurementPhase",
    "Metric",
    "MetricTally",
    "Observed",
    "Outcome",
    "PauseSpec",
    "PauseStep",
    "Percent",
    "Phase",
    "Pool",
    "PoolRequest",
    "PreviewCheck",
    "PreviewRequest",
    "Providers",
    "Query",
    "QueryCheckRequest",
    "ReleaseResult",
    "ReleaseSpec",
    "ReleaseStatus",
    "ResolvedStep",
    "RollingSpec",
    "RouterState",
    "SetWeightStep",
    "Side",
    "Slo",
    "SmokeRequest",
    "SmokeResult",
    "StageReport",
    "StopRequest",
    "Strict",
    "TrafficRequest",
    "Verdict",
    "Version",
    "describe_step",
    "evaluate_condition",
    "parse_condition",
    "render_query",
    "rolling_batches",
    "without_idle_baseline",
]
