"""Configuration of the release pipeline (``workflows/release.py``) and its resolution.

The pipeline wraps a strategy (canary, blue-green, rolling) in the stages a release
needs around it: pre-deployment checks, Terraform, image promotion, the strategy as a
child workflow, post-deployment smoke tests, notifications. Its contracts live in
``engine/contracts/pipeline.py`` (re-exported here); like them, this module imports
nothing heavy.

In deploy-code.yaml each environment may have a ``release`` section; ``local`` as a
value means "the local platform's own service" (ports from the environment's port base)::

    release:
      checks: {database: local, redis: local, http: [local]}
      images: {registry: local}      # or {provider: ecr}: region and role from environments.NAME.aws
      terraform: {root: infrastructure/local/terraform, vars: {cache_size_mb: 64}}
      webhook_url: https://hooks.slack.com/services/...   # or DEPLOY_WEBHOOK_URL

Without a ``release`` section every pipeline stage but the strategy is skipped (and
says so in the report).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

from pydantic import Field, StringConstraints

from engine import catalog
from engine.components import resolve_targets
from engine.contracts import EnvironmentSpec, ReleaseSpec, Strict
from engine.contracts.pipeline import DependencyCheck, ImageSpec, PipelineSpec, TerraformSpec, TfValue
from engine.errors import InputError

if TYPE_CHECKING:
    from engine.config import DeployConfig

REPO_ROOT = Path(__file__).resolve().parent.parent


Url = Annotated[str, StringConstraints(pattern=r"^(local|[a-z][a-z0-9+.-]*://\S+)$", max_length=2048)]

# --------------------------------------------------------------------------- #
# deploy-code.yaml: environments.NAME.release
# --------------------------------------------------------------------------- #


class ChecksConfig(Strict):
    database: Url | None = Field(default=None, description="postgresql://user@host:port/db, or local")
    redis: Url | None = Field(default=None, description="redis://host:port, or local")
    http: list[Url] = Field(default_factory=list, description="URLs that must answer 2xx, or local")


class ImagesConfig(Strict):
    provider: str = Field(
        default="oci", description="oci: an OCI registry's HTTP API at `registry`; ecr: Amazon ECR"
    )
    registry: Url | None = Field(
        default=None, description="http(s)://registry, or local (oci); ECR: only named in messages"
    )
    ci_repository: str = "ci/{app}"
    production_repository: str = "production/{app}"


class TerraformConfig(Strict):
    root: str = Field(description="directory of the Terraform root (relative to the repository)")
    vars: dict[str, TfValue] = Field(default_factory=dict)


class PipelineConfig(Strict):
    checks: ChecksConfig = Field(default_factory=ChecksConfig)
    images: ImagesConfig = Field(default_factory=ImagesConfig)
    terraform: TerraformConfig | None = None
    webhook_url: Url | None = None


# --------------------------------------------------------------------------- #
# The resolved pipeline: the Release workflow's input
# --------------------------------------------------------------------------- #


def _local_port(env: EnvironmentSpec, offset: int, what: str) -> int:
    if env.local is None:
        msg = f"environments.{env.name}.release: {what} 'local' needs the local platform"
        raise InputError(msg)
    return env.local.port_base + offset


def resolve_pipeline(config: DeployConfig, spec: ReleaseSpec) -> PipelineSpec:
    """The pipeline of a resolved release, from its environment's ``release`` section."""
    env = spec.environment
    section: PipelineConfig | None = config.environments[env.name].release
    windows = config.environments[env.name].deploy_windows
    webhook = os.environ.get("DEPLOY_WEBHOOK_URL") or (section.webhook_url if section else None)
    targets = resolve_targets(config, spec)
    if section is None:
        return PipelineSpec(release=spec, targets=targets, webhook_url=webhook, windows=windows)
    checks: list[DependencyCheck] = []
    c = section.checks
    if c.database:
        target = c.database
        if target == "local":
            target = f"postgresql://postgres@127.0.0.1:{_local_port(env, 9, 'database')}/app"
        checks.append(DependencyCheck(kind="database", name="database", target=target))
    if c.redis:
        target = c.redis
        if target == "local":
            target = f"redis://127.0.0.1:{_local_port(env, 56, 'redis')}"
        checks.append(DependencyCheck(kind="redis", name="redis", target=target))
    for i, url in enumerate(c.http):
        target = url
        if url == "local":
            target = f"http://127.0.0.1:{_local_port(env, 58, 'http')}/healthz"
        checks.append(DependencyCheck(kind="http", name=f"http dependency {i + 1}", target=target))
    image = _image(section.images, spec)
    terraform = None
    if section.terraform:
        root = (REPO_ROOT / section.terraform.root).resolve()
        if not (root / "main.tf").exists() and not any(root.glob("*.tf")):
            msg = f"environments.{env.name}.release.terraform.root: no .tf files in {root}"
            raise InputError(msg)
        state_base = env.local.state_dir if env.local else str(REPO_ROOT / ".state" / env.name)
        terraform = TerraformSpec(
            root=str(root),
            state_dir=str(Path(state_base).resolve() / "terraform"),
            vars=section.terraform.vars,
        )
    return PipelineSpec(
        release=spec,
        targets=targets,
        checks=checks,
        image=image,
        terraform=terraform,
        webhook_url=webhook,
        windows=windows,
    )


def _image(images: ImagesConfig, spec: ReleaseSpec) -> ImageSpec | None:
    """The image stage's plan (None: no registry configured), refused early when it cannot work."""
    env, where = spec.environment, f"environments.{spec.environment.name}.release.images"
    catalog.require("images", images.provider, f"{where}.provider")
    app = spec.app.name
    ci, production = images.ci_repository.format(app=app), images.production_repository.format(app=app)
    if images.provider == "ecr":
        if env.aws is None:
            msg = f"{where}: provider ecr takes region and role from environments.{env.name}.aws (not set)"
            raise InputError(msg)
        registry = images.registry or f"ECR {env.aws.region}"
        return ImageSpec(
            provider="ecr",
            registry=registry,
            aws=env.aws,
            ci_repository=ci,
            production_repository=production,
            tag=spec.version,
        )
    if not images.registry:
        return None
    registry = images.registry
    if registry == "local":
        registry = f"http://127.0.0.1:{_local_port(env, 55, 'registry')}"
    return ImageSpec(
        provider=images.provider,
        registry=registry,
        ci_repository=ci,
        production_repository=production,
        tag=spec.version,
    )
