"""Resolving a promotion train: which environments, in which order, each soak and its analysis.

The stages come from ``deploy.py ... --through staging:30m,production`` (``ENV[:SOAK]`` items) or
from ``promotion.stages`` in deploy-code.yaml (``engine/contracts/promotion.py``); ``--through``
takes each stage's soak and analysis from the section where it names no soak of its own. Every
stage is resolved like a release to that environment (``resolve_release``, ``resolve_pipeline``),
so bad input is refused here, before anything starts, naming the field: an unknown environment, an
environment named twice, a soak that is not a duration, a stage without an image registry (the
train carries the image digest from stage to stage), soak analysis naming an unknown or a
comparing template.
"""

from __future__ import annotations

from datetime import timedelta
from typing import TYPE_CHECKING

from pydantic import TypeAdapter, ValidationError

from engine.config import resolve_release
from engine.contracts import AnalysisRef, LocalSettings
from engine.contracts.promotion import (
    SOAK_CHUNK,
    PromotionConfig,
    PromotionStageConfig,
    SoakAnalysisConfig,
    TrainSpec,
    TrainStage,
)
from engine.contracts.scalars import Duration
from engine.errors import InputError
from engine.pipeline import resolve_pipeline

if TYPE_CHECKING:
    from engine.config import DeployConfig

_DURATION: TypeAdapter[timedelta] = TypeAdapter(Duration)


def parse_through(text: str) -> list[PromotionStageConfig]:
    """``--through staging:30m,production``: the stages, each ``ENV`` or ``ENV:SOAK``."""
    stages: list[PromotionStageConfig] = []
    for i, item in enumerate(text.split(",")):
        name, _, soak = item.strip().partition(":")
        if not name:
            msg = f"--through: stage {i + 1} names no environment (got {text!r}; e.g. staging:30m,production)"
            raise InputError(msg)
        stage = PromotionStageConfig(environment=name)
        if soak:
            try:
                stage = stage.model_copy(update={"soak": _DURATION.validate_python(soak)})
            except ValidationError as exc:
                why = exc.errors()[0]["msg"].removeprefix("Value error, ")
                msg = f"--through: the soak of {name!r}: {soak!r} is not a duration ({why}; e.g. 30m, 2h)"
                raise InputError(msg) from None
        stages.append(stage)
    try:
        return PromotionConfig(stages=stages).stages
    except ValidationError as exc:
        msg = f"--through: {exc.errors()[0]['msg'].removeprefix('Value error, ')}"
        raise InputError(msg) from None


def train_stages(config: DeployConfig, through: str | None) -> list[tuple[str, PromotionStageConfig]]:
    """The train's stages, each with the field it came from (for messages)."""
    section = config.promotion
    if through is None:
        if section is None:
            msg = "no promotion train: deploy-code.yaml has no promotion section (or pass --through ENV,ENV)"
            raise InputError(msg)
        return [(f"promotion.stages.{i}", s) for i, s in enumerate(section.stages)]
    configured = {s.environment: s for s in section.stages} if section else {}
    stages = []
    for given in parse_through(through):
        stage = given
        if given.soak.total_seconds() == 0 and given.environment in configured:
            stage = given.model_copy(update={"soak": configured[given.environment].soak})
        if given.environment in configured:
            stage = stage.model_copy(update={"analysis": configured[given.environment].analysis})
        stages.append((f"--through {given.environment}", stage))
    return stages


def resolve_train(
    config: DeployConfig,
    version: str,
    strategy: str,
    *,
    through: str | None = None,
    requested_by: str = "unknown",
    local: dict[str, LocalSettings] | None = None,
) -> TrainSpec:
    """The train's plan: every stage's release pipeline, soak and soak analysis, checked now.

    ``local`` gives an environment its local platform's settings (tests: each stack's port base).
    """
    stages = []
    for where, stage in train_stages(config, through):
        name = stage.environment
        if name not in config.environments:
            known = ", ".join(config.environments)
            msg = f"{where}.environment: unknown environment {name!r} (deploy-code.yaml defines: {known})"
            raise InputError(msg)
        spec = resolve_release(
            config, version, strategy, name, requested_by=requested_by, local=(local or {}).get(name)
        )
        pipeline = resolve_pipeline(config, spec)
        if pipeline.image is None:
            msg = (
                f"environments.{name}.release.images: not configured, but a promotion train carries the "
                "image digest from stage to stage (every stage promotes and verifies it)"
            )
            raise InputError(msg)
        refs, chunk = _soak_analysis(config, name, stage.analysis, f"{where}.analysis.templates")
        stages.append(TrainStage(pipeline=pipeline, soak=stage.soak, analysis=refs, chunk=chunk))
    return TrainSpec(
        app=config.app.name, version=version, strategy=strategy, requested_by=requested_by, stages=stages
    )


def _soak_analysis(
    config: DeployConfig, env: str, analysis: SoakAnalysisConfig | None, where: str
) -> tuple[list[AnalysisRef], timedelta]:
    """The templates a soak measures and its chunk: the stage's own, else the environment's canary
    background analysis and chunk (its threshold templates: during a soak one version serves,
    nothing to compare with)."""
    if analysis is not None:
        refs = []
        for name in analysis.templates:
            if name not in config.analysis_templates:
                known = ", ".join(sorted(config.analysis_templates)) or "none"
                msg = f"{where}: unknown analysis template {name!r} (defined: {known})"
                raise InputError(msg)
            ref = config.template_ref(name)
            if ref.judge is not None:
                msg = (
                    f"{where}: {name!r} is a comparing judge; a soak watches the one live version: "
                    "name threshold templates"
                )
                raise InputError(msg)
            refs.append(ref)
        return refs, analysis.chunk
    strategies = config.environments[env].strategies or config.strategies
    background = strategies.canary.background_analysis
    names = background.templates if background else []
    refs = [r for r in (config.template_ref(n) for n in names) if r.judge is None]
    return refs, background.chunk if background else SOAK_CHUNK
