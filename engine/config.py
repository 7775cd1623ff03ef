"""deploy-code.yaml: the user's configuration, validated, and resolved into a release plan.

``load_config`` turns the YAML into :class:`DeployConfig` or raises one
:class:`ConfigError` whose message names the field path and the offending value.
``resolve_release`` checks a request (version, strategy, environment) against it
and returns the :class:`~engine.contracts.ReleaseSpec` a workflow runs: the whole
plan, fixed at start, so the history shows exactly what was asked.
"""

from __future__ import annotations

import itertools
import json
import os
import re
from datetime import timedelta
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import Discriminator, Field, StringConstraints, Tag, ValidationError, model_validator

from engine import approvals, catalog
from engine.components import ComponentConfig, ComponentName, WaveConfig, check_components, default_components
from engine.contracts import (
    POOLS,
    STRATEGIES,
    VERSION_PATTERN,
    AnalysisRef,
    AnalysisStep,
    AnalysisTemplate,
    ApprovalPolicy,
    AppSpec,
    AwsSettings,
    BlueGreenSpec,
    CanarySpec,
    Duration,
    EnvironmentSpec,
    Identity,
    KubernetesSettings,
    LocalSettings,
    PauseStep,
    Percent,
    Providers,
    ReleaseSpec,
    ResolvedStep,
    RollingSpec,
    SetWeightStep,
    SignerKey,
    Strict,
)
from engine.contracts.dr import DrConfig
from engine.contracts.promotion import PromotionConfig
from engine.contracts.windows import DeployWindows
from engine.errors import ConfigError, InputError
from engine.pipeline import PipelineConfig
from engine.undo import RollbackWindow

REPO_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_CONFIG = REPO_ROOT / "deploy-code.yaml"
DEFAULT_STATE_DIR = REPO_ROOT / ".state" / "local"
DEFAULT_PORT_BASE = 18000
LOCAL_MAX_INSTANCES = 8
"""Slots per pool on the local platform's router."""

# --------------------------------------------------------------------------- #
# The file's schema
# --------------------------------------------------------------------------- #


def _step_kind(value: Any) -> str | None:
    if isinstance(value, dict) and len(value) == 1:
        return next(iter(value))
    if isinstance(value, SetWeightStep | PauseStep | AnalysisStep):
        return next(iter(type(value).model_fields))
    return None


StepConfig = Annotated[
    Annotated[SetWeightStep, Tag("set_weight")]
    | Annotated[PauseStep, Tag("pause")]
    | Annotated[AnalysisStep, Tag("analysis")],
    Discriminator(
        _step_kind,
        custom_error_type="step_kind",
        custom_error_message="a step has exactly one key: set_weight, pause or analysis",
    ),
]


class AppConfig(Strict):
    name: Annotated[str, StringConstraints(pattern=r"^[a-z][a-z0-9-]{0,40}$")]
    health_path: Annotated[str, StringConstraints(pattern=r"^/[\w./-]*$")] = "/healthz"
    metrics_path: Annotated[str, StringConstraints(pattern=r"^/[\w./-]*$")] = "/metrics"
    initial_version: Annotated[str, StringConstraints(pattern=VERSION_PATTERN)] = "v1.0.0"
    components: dict[ComponentName, ComponentConfig] = Field(
        default_factory=default_components,
        description="what the app is made of (engine/components.py); default: the api alone",
    )

    @model_validator(mode="after")
    def _check_components(self) -> AppConfig:
        check_components(self.components)
        return self


class LocalConfig(Strict):
    state_dir: str | None = None
    port_base: Annotated[int, Field(ge=1024, le=65000)] | None = None


class BackgroundAnalysisConfig(Strict):
    templates: Annotated[list[str], Field(min_length=1)]
    chunk: Duration = timedelta(seconds=5)


class CanaryConfig(Strict):
    steps: Annotated[list[StepConfig], Field(min_length=1)]
    baseline: Literal["fresh", "stable"] = Field(
        default="fresh",
        description="what a comparing judge compares the canary with: fresh instances of the stable "
        "version beside it (the default), or the stable pool itself",
    )
    background_analysis: BackgroundAnalysisConfig | None = None
    canary_instances: Annotated[int, Field(ge=1, le=64)] = 1
    rollback_ramp: list[Percent] = Field(default_factory=list)
    rollback_ramp_interval: Duration = timedelta(seconds=2)

    @model_validator(mode="after")
    def _check_order(self) -> CanaryConfig:
        weights = [s.set_weight for s in self.steps if isinstance(s, SetWeightStep)]
        for before, after in itertools.pairwise(weights):
            if after <= before:
                msg = f"set_weight steps must increase: {after} follows {before} (weights {weights})"
                raise ValueError(msg)
        ramp = self.rollback_ramp
        if any(b >= a for a, b in itertools.pairwise(ramp)):
            msg = f"rollback_ramp must decrease towards 0, got {ramp}"
            raise ValueError(msg)
        return self


class AnalysisRefsConfig(Strict):
    templates: Annotated[list[str], Field(min_length=1)]


class BlueGreenConfig(Strict):
    """Argo Rollouts' blue-green: autoPromotionEnabled/Seconds, pre/post analysis, scaleDownDelay."""

    auto_promotion_enabled: bool = True
    auto_promotion_delay: Duration = timedelta(0)
    scale_down_delay: Duration = timedelta(seconds=30)
    preview_requests: Annotated[int, Field(ge=0, le=100_000)] = 20
    pre_promotion_analysis: AnalysisRefsConfig | None = None
    post_promotion_analysis: AnalysisRefsConfig | None = None


class RollingConfig(Strict):
    """A Kubernetes-style rolling update; a health gate (analysis templates) after every batch."""

    max_surge: Annotated[int, Field(ge=0, le=64)] = 1
    max_unavailable: Annotated[int, Field(ge=0, le=64)] = 0
    analysis: AnalysisRefsConfig | None = None
    batch_pause: Duration = timedelta(0)
    drain_timeout: Duration = timedelta(seconds=30)

    @model_validator(mode="after")
    def _check_progress(self) -> RollingConfig:
        if self.max_surge == 0 and self.max_unavailable == 0:
            msg = "max_surge and max_unavailable are both 0: no batch could ever make progress"
            raise ValueError(msg)
        return self


class StrategiesConfig(Strict):
    canary: CanaryConfig
    blue_green: BlueGreenConfig | None = None
    rolling: RollingConfig | None = None

    def analysis_refs(self) -> list[tuple[str, str]]:
        """``(strategy, template)`` for every analysis template these strategies name."""
        canary = self.canary
        refs = [
            ("canary", t) for s in canary.steps if isinstance(s, AnalysisStep) for t in s.analysis.templates
        ]
        refs += [
            ("canary", t)
            for t in (canary.background_analysis.templates if canary.background_analysis else [])
        ]
        bg, rolling = self.blue_green, self.rolling
        for gate in (bg.pre_promotion_analysis, bg.post_promotion_analysis) if bg else ():
            refs += [("blue_green", t) for t in (gate.templates if gate else [])]
        if rolling and rolling.analysis:
            refs += [("rolling", t) for t in rolling.analysis.templates]
        return refs


class EnvironmentConfig(Strict):
    providers: Providers
    instances: Annotated[int, Field(ge=1, le=64)]
    approvers: list[Identity] = Field(default_factory=list)
    approval_timeout: Duration = timedelta(hours=24)
    approvals: Literal["named", "signed"] = Field(
        default="named",
        description="signed: approve, promote, resume, Terraform and failover approvals are SSH-signed",
    )
    allowed_signers: str | None = Field(
        default=None,
        description="the approvers' public keys, git's allowed_signers format (path from the repo)",
    )
    required_approvals: Annotated[int, Field(ge=1, le=10)] = 1
    signature_validity: Duration = timedelta(minutes=15)
    prometheus_url: str | None = None
    local: LocalConfig | None = None
    strategies: StrategiesConfig | None = Field(
        default=None, description="overrides the top-level strategies for this environment"
    )
    aws: AwsSettings | None = Field(default=None, description="region, role, ALB/CloudWatch resources")
    kubernetes: KubernetesSettings | None = Field(default=None, description="cluster, namespace, image")
    dr: DrConfig | None = Field(default=None, description="disaster recovery: regions, RPO budget, trigger")
    release: PipelineConfig | None = Field(
        default=None, description="the release pipeline around the strategy (engine/pipeline.py)"
    )
    deploy_windows: DeployWindows | None = Field(
        default=None,
        description="when releases may run: allowed hours in a time zone, and freezes "
        "(engine/contracts/windows.py); a release started outside them waits",
    )
    components: list[ComponentName] | None = Field(
        default=None, description="the components this environment releases (default: all of app.components)"
    )
    waves: list[WaveConfig] | None = Field(
        default=None,
        description="regions released together, in order, with a bake time after each "
        "(default: the primary region, then each standby region)",
    )
    rollback_window: RollbackWindow | None = Field(
        default=None,
        description="control.py undo within it skips analysis and steps: {versions: N} and/or {within: 24h} "
        "(engine/undo.py); without it an undo is a normal release of the previous version",
    )


class DeployConfig(Strict):
    app: AppConfig
    default_environment: str = "local"
    environments: Annotated[dict[str, EnvironmentConfig], Field(min_length=1)]
    analysis_templates: dict[str, AnalysisTemplate] = Field(default_factory=dict)
    strategies: StrategiesConfig
    promotion: PromotionConfig | None = Field(
        default=None,
        description="a promotion train's stages: environments in order, each soak (engine/promotion.py)",
    )

    @model_validator(mode="after")
    def _check_references(self) -> DeployConfig:
        if self.default_environment not in self.environments:
            msg = f"default_environment {self.default_environment!r} is not one of the environments"
            raise ValueError(msg)
        sets = [("strategies", self.strategies)] + [
            (f"environments.{n}.strategies", e.strategies) for n, e in self.environments.items()
        ]
        for where, strategies in sets:
            if strategies is None:
                continue
            for strategy, name in strategies.analysis_refs():
                if name not in self.analysis_templates:
                    known = ", ".join(sorted(self.analysis_templates)) or "none"
                    msg = (
                        f"{where}.{strategy} names analysis template {name!r}, which is not defined ({known})"
                    )
                    raise ValueError(msg)
        for name, env in self.environments.items():
            unknown = [c for c in env.components or [] if c not in self.app.components]
            if unknown:
                known = ", ".join(self.app.components)
                msg = f"environments.{name}.components names {unknown}, not components of the app ({known})"
                raise ValueError(msg)
        for name, component in self.app.components.items():
            if component.gate is not None:
                for template in component.gate.templates:
                    if template not in self.analysis_templates:
                        msg = f"app.components.{name}.gate names analysis template {template!r}, not defined"
                        raise ValueError(msg)
        return self

    def template_ref(self, name: str) -> AnalysisRef:
        """A template by name: its threshold metrics, or its comparing judge."""
        template = self.analysis_templates[name]
        if template.kind == "threshold":
            return AnalysisRef(name=name, metrics=template.metrics)
        return AnalysisRef(name=name, judge=template.judge_spec())


# --------------------------------------------------------------------------- #
# Loading
# --------------------------------------------------------------------------- #


def _format_errors(source: str, exc: ValidationError) -> str:
    lines = []
    for err in exc.errors():
        path: list[str] = []
        for part in err["loc"]:
            text = str(part)
            if not path or path[-1] != text:  # the step tag repeats the field name
                path.append(text)
        where = ".".join(path) or "(top level)"
        value = err.get("input")
        shown = repr(value) if not isinstance(value, dict) else "{" + ", ".join(map(str, value)) + "}"
        message = err["msg"].removeprefix("Value error, ")
        lines.append(f"{where}: {message} (got {shown[:120]})")
    return f"{source} is invalid:\n  " + "\n  ".join(lines)


class _UniqueKeys(yaml.SafeLoader):
    """``yaml.safe_load`` that refuses a key given twice in one mapping: YAML says keys are unique,
    PyYAML silently keeps the last one (``canary_instances: 1`` then ``2`` would start 2)."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        first: dict[Any, int] = {}
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=deep)
            if isinstance(key, str | int | float | bool) and key in first:
                problem = f"key {key!r} is given twice (first at line {first[key] + 1}); say it once"
                raise yaml.constructor.ConstructorError(None, None, problem, key_node.start_mark)
            if isinstance(key, str | int | float | bool):
                first[key] = key_node.start_mark.line
        return super().construct_mapping(node, deep=deep)


def parse_config(text: str, source: str = "deploy-code.yaml") -> DeployConfig:
    """Parse and validate configuration text."""
    try:
        data = yaml.load(text, Loader=_UniqueKeys)  # noqa: S506  # nosec B506
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problem = getattr(exc, "problem", None) or str(exc)
        msg = f"{source} is not valid YAML{where}: {problem}"
        raise ConfigError(msg) from None
    if not isinstance(data, dict):
        msg = f"{source} must be a mapping with app, environments and strategies (got {type(data).__name__})"
        raise ConfigError(msg)
    try:
        return DeployConfig.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(_format_errors(source, exc)) from None


def load_config(path: str | Path | None = None) -> DeployConfig:
    """Load deploy-code.yaml (or ``path``)."""
    file = Path(path) if path else DEFAULT_CONFIG
    try:
        text = file.read_text()
    except OSError as exc:
        msg = f"cannot read configuration {file}: {exc.strerror}"
        raise ConfigError(msg) from None
    return parse_config(text, source=file.name)


# --------------------------------------------------------------------------- #
# Resolving a request into a release plan
# --------------------------------------------------------------------------- #


def check_version(version: str) -> str:
    if isinstance(version, str) and "+" in version:
        core, _, build = version.partition("+")
        if re.fullmatch(VERSION_PATTERN, core) and re.fullmatch(r"[0-9A-Za-z.-]+", build):
            msg = (
                f"version {version!r} carries build metadata (+{build}): a valid semantic version, but an "
                f"image tag cannot hold '+' (OCI tags are [A-Za-z0-9_.-]); release {core!r}, the version "
                "the image is tagged with (build metadata does not order versions anyway)"
            )
            raise InputError(msg)
    if not isinstance(version, str) or not re.fullmatch(VERSION_PATTERN, version) or len(version) > 64:
        msg = f"version {version!r} is malformed: expected a semantic version such as v1.2.3 or 1.2.3-rc.1"
        raise InputError(msg)
    return version


def check_strategy(strategy: str) -> str:
    if strategy not in STRATEGIES:
        hint = " (strategy names are lower case)" if strategy.lower() in STRATEGIES else ""
        msg = f"unknown strategy {strategy!r}{hint}; this engine ships: {', '.join(STRATEGIES)}"
        raise InputError(msg)
    return strategy


def resolve_environment(
    config: DeployConfig, name: str | None = None, *, local: LocalSettings | None = None
) -> EnvironmentSpec:
    """Resolve one environment: providers available, settings filled in."""
    name = name or config.default_environment
    env = config.environments.get(name)
    if env is None:
        hint = " (environment names are case-sensitive)" if name.lower() in config.environments else ""
        msg = (
            f"unknown environment {name!r}{hint}; deploy-code.yaml defines: {', '.join(config.environments)}"
        )
        raise InputError(msg)
    for capability, provider in env.providers.model_dump().items():
        catalog.require(capability, provider, f"environments.{name}.providers.{capability}")
    _check_provider_settings(name, env)
    prometheus_url = env.prometheus_url
    if env.providers.platform == "local":
        if env.instances > LOCAL_MAX_INSTANCES:
            msg = f"environments.{name}.instances: {env.instances} is over {LOCAL_MAX_INSTANCES} local slots"
            raise InputError(msg)
        local = local or LocalSettings(
            state_dir=(env.local and env.local.state_dir)
            or os.environ.get("DEPLOY_STATE_DIR")
            or str(DEFAULT_STATE_DIR),
            port_base=(env.local and env.local.port_base)
            or int(os.environ.get("DEPLOY_PORT_BASE", DEFAULT_PORT_BASE)),
        )
        if env.dr is not None and env.dr.providers.regions == "local" and local.regions != env.dr.regions:
            local = local.model_copy(update={"regions": list(env.dr.regions)})  # its regions are the DR's
        prometheus_url = prometheus_url or f"http://127.0.0.1:{local.port_base + 2}"
    return EnvironmentSpec(
        name=name,
        providers=env.providers,
        instances=env.instances,
        approvers=env.approvers,
        approval_timeout=env.approval_timeout,
        policy=_approval_policy(name, env),
        prometheus_url=prometheus_url,
        local=local if env.providers.platform == "local" else None,
        aws=env.aws,
        kubernetes=env.kubernetes,
    )


def _approval_policy(name: str, env: EnvironmentConfig) -> ApprovalPolicy:
    """Who approves and how it is proved: refused here (naming the field) when it cannot work."""
    where = f"environments.{name}"
    if env.required_approvals > max(1, len(env.approvers)):
        msg = (
            f"{where}.required_approvals: {env.required_approvals} distinct approvers needed, but "
            f"{where}.approvers lists {len(env.approvers)}"
        )
        raise InputError(msg)
    if env.approvals == "named":
        return ApprovalPolicy(required_approvals=env.required_approvals)
    if not env.approvers:
        raise InputError(f"{where}.approvers: approvals are signed, so name who may sign them")
    if not env.allowed_signers:
        msg = f"{where}.allowed_signers: approvals are signed, so the approvers' public keys are needed"
        raise InputError(msg)
    path = (REPO_ROOT / env.allowed_signers).resolve()
    try:
        text = path.read_text()
    except OSError as exc:
        msg = f"{where}.allowed_signers: cannot read {path}: {exc.strerror}"
        raise InputError(msg) from None
    try:
        signers = approvals.parse_allowed_signers(text, where=env.allowed_signers)
    except ValueError as exc:
        raise InputError(f"{where}.allowed_signers: {exc}") from None
    keyed = {p for s in signers for p in s.principals}
    missing = [a for a in env.approvers if a not in keyed]
    if missing:
        verb = "has" if len(missing) == 1 else "have"
        msg = f"{where}.approvers: {', '.join(missing)} {verb} no key in {env.allowed_signers}"
        raise InputError(msg)
    return ApprovalPolicy(
        approvals="signed",
        signers=[
            SignerKey(
                principals=list(s.principals), key_type=s.key_type, key=s.key, fingerprint=s.fingerprint
            )
            for s in signers
            if set(s.principals) & set(env.approvers)
        ],
        required_approvals=env.required_approvals,
        signature_validity=env.signature_validity,
    )


def _check_provider_settings(name: str, env: EnvironmentConfig) -> None:
    """Providers that talk to AWS or Kubernetes need their settings: refused here, not at the first call."""
    providers, where = env.providers, f"environments.{name}"
    needs_aws = [c for c, p in (("router", providers.router), ("analysis", providers.analysis)) if p in _AWS]
    if needs_aws and env.aws is None:
        msg = f"{where}: {' and '.join(needs_aws)} on AWS need {where}.aws (region, listener, target groups)"
        raise InputError(msg)
    if providers.router == "alb" and env.aws is not None:
        missing = [p for p in POOLS if p not in env.aws.target_groups]
        if not (env.aws.listener_arn or env.aws.rule_arn) or missing:
            msg = (
                f"{where}.aws: the ALB router needs listener_arn (or rule_arn) and target_groups for blue "
                f"and green (Terraform outputs alb_listener_arn, blue/green_target_group_arn)"
            )
            raise InputError(msg)
    needs_kube = [
        c for c, p in (("platform", providers.platform), ("router", providers.router)) if p == "kubernetes"
    ]
    if needs_kube and env.kubernetes is None:
        msg = f"{where}: {' and '.join(needs_kube)} on Kubernetes need {where}.kubernetes (namespace, image)"
        raise InputError(msg)


_AWS = frozenset({"alb", "cloudwatch"})


def _resolve_ref(config: DeployConfig, name: str) -> AnalysisRef:
    return config.template_ref(name)


def _queries(ref: AnalysisRef) -> list[tuple[str, str]]:
    """(metric, query) of every query a template runs."""
    if ref.judge is not None:
        return list(ref.judge.queries().items())
    return [(m.name, m.query) for m in ref.metrics]


def _check_query_language(spec: ReleaseSpec) -> None:
    """Every analysis query is written for the environment's analysis provider (PromQL for Prometheus,
    the JSON of MetricDataQueries for CloudWatch): a mismatch could never measure anything."""
    provider = spec.environment.providers.analysis
    for ref in spec.analysis_refs():
        for metric, query in _queries(ref):
            try:
                parsed = json.loads(query)
            except json.JSONDecodeError:
                parsed = None
            is_json = isinstance(parsed, dict | list)
            if provider == "cloudwatch" and not is_json:
                msg = (
                    f"analysis template {ref.name!r} (metric {metric!r}) is not a CloudWatch query, and "
                    f"environment {spec.environment.name!r} analyses with cloudwatch: write the JSON of "
                    "GetMetricData's MetricDataQueries"
                )
                raise InputError(msg)
            if provider == "prometheus" and is_json:
                msg = (
                    f"analysis template {ref.name!r} (metric {metric!r}) is a CloudWatch query, but "
                    f"environment {spec.environment.name!r} analyses with prometheus: write PromQL"
                )
                raise InputError(msg)


def resolve_release(
    config: DeployConfig,
    version: str,
    strategy: str,
    environment: str | None = None,
    *,
    requested_by: str = "unknown",
    local: LocalSettings | None = None,
) -> ReleaseSpec:
    """Check a release request against the configuration and return its plan."""
    check_version(version)
    check_strategy(strategy)
    env_spec = resolve_environment(config, environment, local=local)
    if strategy == "blue-green":
        spec = _release(config, env_spec, version, requested_by, blue_green=_blue_green(config, env_spec))
    elif strategy == "rolling":
        spec = _release(config, env_spec, version, requested_by, rolling=_rolling(config, env_spec))
    else:
        spec = _canary(config, env_spec, version, requested_by)
    _check_query_language(spec)
    return spec


def with_first_weight(config: DeployConfig, weight: int, environment: str | None = None) -> DeployConfig:
    """The configuration with the canary of ``environment`` starting at ``weight`` percent.

    What ``CANARY_WEIGHT=25 deploy-production.sh canary ...`` (``deploy.py --first-weight 25``)
    asks for: the first ``set_weight`` step becomes ``weight``, later ``set_weight`` steps at or
    below it are dropped (a canary only goes up), analyses and pauses stay where they are.
    """
    if not 1 <= weight <= 99:
        msg = f"first canary weight {weight}: expected 1 to 99 (percent of traffic the canary gets first)"
        raise InputError(msg)
    name = environment or config.default_environment
    env = config.environments.get(name)
    if env is None:
        return config  # resolve_release refuses the unknown environment, naming the known ones
    strategies = env.strategies or config.strategies
    steps: list[Any] = []
    first = True
    for step in strategies.canary.steps:
        if isinstance(step, SetWeightStep):
            if first:
                steps.append(SetWeightStep(set_weight=weight))
                first = False
                continue
            if step.set_weight <= weight:
                continue
        steps.append(step)
    if first:
        msg = f"the canary of {name!r} has no set_weight step to start at {weight}%"
        raise InputError(msg)
    changed = strategies.model_copy(update={"canary": strategies.canary.model_copy(update={"steps": steps})})
    if env.strategies is None:
        return config.model_copy(update={"strategies": changed})
    environments = {**config.environments, name: env.model_copy(update={"strategies": changed})}
    return config.model_copy(update={"environments": environments})


def _canary(config: DeployConfig, env_spec: EnvironmentSpec, version: str, requested_by: str) -> ReleaseSpec:
    env_config = config.environments[env_spec.name]
    canary = (env_config.strategies or config.strategies).canary

    def refs(names: list[str]) -> list[AnalysisRef]:
        return [_resolve_ref(config, n) for n in names]

    steps = []
    for step in canary.steps:
        if isinstance(step, PauseStep) and step.pause.duration is None and not env_spec.approvers:
            msg = f"the canary pauses for approval, but environments.{env_spec.name}.approvers is empty"
            raise InputError(msg)
        if isinstance(step, AnalysisStep):
            for ref in refs(step.analysis.templates):
                if any(m.count is None for m in ref.metrics):
                    msg = f"analysis template {ref.name!r} is used as a step, so each metric needs a count"
                    raise InputError(msg)
        steps.append(
            ResolvedStep(
                step=step, analyses=refs(step.analysis.templates) if isinstance(step, AnalysisStep) else []
            )
        )
    if canary.canary_instances > env_spec.instances:
        msg = f"canary_instances ({canary.canary_instances}) exceeds the environment's {env_spec.instances}"
        raise InputError(msg)
    background = canary.background_analysis
    plan_refs = [r for s in steps for r in s.analyses] + (refs(background.templates) if background else [])
    if canary.baseline == "fresh" and any(r.judge is not None for r in plan_refs):
        _require_router(
            env_spec,
            "baseline",
            "a comparing judge with baseline: fresh sends a third pool (the baseline) traffic",
            "cannot split traffic three ways",
            "strategies.canary.baseline: stable",
        )
    return ReleaseSpec(
        app=AppSpec(
            name=config.app.name, health_path=config.app.health_path, metrics_path=config.app.metrics_path
        ),
        environment=env_spec,
        version=version,
        strategy="canary",
        canary=CanarySpec(
            steps=steps,
            background_analysis=refs(background.templates) if background else [],
            background_chunk=background.chunk if background else timedelta(seconds=5),
            canary_instances=canary.canary_instances,
            rollback_ramp=canary.rollback_ramp,
            rollback_ramp_interval=canary.rollback_ramp_interval,
            baseline=canary.baseline,
        ),
        requested_by=requested_by,
    )


def _release(
    config: DeployConfig, env_spec: EnvironmentSpec, version: str, requested_by: str, **plan: Any
) -> ReleaseSpec:
    strategy: Literal["blue-green", "rolling"] = "blue-green" if "blue_green" in plan else "rolling"
    app = AppSpec(
        name=config.app.name, health_path=config.app.health_path, metrics_path=config.app.metrics_path
    )
    return ReleaseSpec(
        app=app, environment=env_spec, version=version, strategy=strategy, requested_by=requested_by, **plan
    )


def _strategy_config(config: DeployConfig, env: str, name: str) -> Any:
    """The environment's own settings of a strategy, else the top-level ones (None if neither)."""
    own = config.environments[env].strategies
    return (own and getattr(own, name)) or getattr(config.strategies, name)


def _gates(config: DeployConfig, refs: AnalysisRefsConfig | None, where: str) -> list[AnalysisRef]:
    """Analysis templates used as gates: each metric needs a count, so the gate ends."""
    out = [_resolve_ref(config, n) for n in (refs.templates if refs else [])]
    for ref in out:
        if any(m.count is None for m in ref.metrics):
            msg = f"analysis template {ref.name!r} is used as {where}, so each metric needs a count"
            raise InputError(msg)
    return out


def _require_router(env: EnvironmentSpec, capability: str, need: str, lacks: str, instead: str) -> None:
    """Refuse a strategy whose router lacks ``capability`` (its catalog entry), naming what to use."""
    router = env.providers.router
    if not catalog.router_has(router, capability):
        msg = (
            f"{need}, and environment {env.name!r} routes with {router!r}, which {lacks}; use {instead} there"
        )
        raise InputError(msg)


def _blue_green(config: DeployConfig, env: EnvironmentSpec) -> BlueGreenSpec:
    _require_router(env, "preview", "blue-green needs a preview route", "has none", "canary or rolling")
    if env.providers.router == "alb" and not (env.aws and env.aws.preview_listener_arn):
        msg = (
            f"blue-green on the ALB needs a preview listener: set environments.{env.name}.aws."
            "preview_listener_arn (Terraform output alb_preview_listener_arn)"
        )
        raise InputError(msg)
    bg: BlueGreenConfig = _strategy_config(config, env.name, "blue_green") or BlueGreenConfig()
    if not bg.auto_promotion_enabled and not env.approvers:
        msg = f"blue-green waits for approval to promote, but environments.{env.name}.approvers is empty"
        raise InputError(msg)
    return BlueGreenSpec(
        pre_promotion_analysis=_gates(config, bg.pre_promotion_analysis, "pre-promotion analysis"),
        post_promotion_analysis=_gates(config, bg.post_promotion_analysis, "post-promotion analysis"),
        preview_requests=bg.preview_requests,
        auto_promotion=bg.auto_promotion_enabled,
        auto_promotion_delay=bg.auto_promotion_delay,
        scale_down_delay=bg.scale_down_delay,
    )


def _rolling(config: DeployConfig, env: EnvironmentSpec) -> RollingSpec:
    _require_router(
        env,
        "drain",
        "rolling drains instances at the router",
        "cannot drain single instances",
        "canary or blue-green",
    )
    rolling: RollingConfig = _strategy_config(config, env.name, "rolling") or RollingConfig()
    for name in ("max_surge", "max_unavailable"):
        batch = getattr(rolling, name)
        if batch > env.instances:
            msg = (
                f"rolling.{name} ({batch}) is a batch larger than environment {env.name!r}'s "
                f"{env.instances} instances"
            )
            raise InputError(msg)
    if rolling.max_unavailable >= env.instances:
        msg = (
            f"rolling.max_unavailable ({rolling.max_unavailable}) would take all {env.instances} "
            f"instances of environment {env.name!r} out of service at once"
        )
        raise InputError(msg)
    return RollingSpec(
        max_surge=rolling.max_surge,
        max_unavailable=rolling.max_unavailable,
        analysis=_gates(config, rolling.analysis, "a rolling batch gate"),
        batch_pause=rolling.batch_pause,
        drain_timeout=rolling.drain_timeout,
    )
