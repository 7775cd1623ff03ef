"""The app as components, and the order a whole-app release reaches them in every region.

In deploy-code.yaml::

    app:
      components:
        api: {kind: service}                  # takes traffic: the chosen strategy releases it
        worker:
          kind: worker                        # takes jobs: replaced in batches behind a health gate
          depends_on: [api]                   # released after the api; rolled back before it
          instances: 2                        # in the primary region
          standby_instances: 1                # in each standby region
          gate: {templates: [worker-jobs-vs-old]}   # every batch: new workers against the old

    environments:
      local:
        components: [api, worker]             # which components this environment releases (all)

A release goes region by region, the primary first (the environment's home region, which the
global entry sends users to), then each standby region; in each, the components in
dependency order. In the primary region the service is released by the chosen strategy and a
worker in batches behind its gate; in a standby region every component is replaced at its
standby size after a smoke test of the new instances (no traffic reaches a standby to judge).
When anything fails, everything already released goes back, latest first: one undo stack for
the whole release (``workflows/release.py``).

On the local platform each component in each region is a rolling release aimed at it. On
Kubernetes (``dr.providers.regions: kubernetes``: one cluster per region) the service in the
home region is released by the strategy as ever, and everything else (the workers' Deployment
in every region, the service's Deployment in each standby region) is converged: its image and
``version`` label set, then Kubernetes' rolling update waited for until healthy, at the size it
runs (a standby stays at its standby size). Without such regions an environment on another
platform releases its service in its one cluster, and asking for a worker is refused naming
the fields to set.
"""

from __future__ import annotations

from datetime import timedelta
from typing import TYPE_CHECKING, Annotated, Literal

from pydantic import Field, StringConstraints, model_validator

from engine import catalog
from engine.contracts import AnalysisRef, EnvironmentSpec, ReleaseSpec, RollingSpec, Strict
from engine.contracts.dr import ConvergeRequest, DrSpec
from engine.contracts.pipeline import ReleaseTarget
from engine.contracts.scalars import Duration
from engine.errors import InputError

if TYPE_CHECKING:
    from engine.config import DeployConfig

ComponentName = Annotated[str, StringConstraints(pattern=r"^[a-z][a-z0-9-]{0,30}$")]
PLATFORM_COMPONENTS = {"service": "api", "worker": "worker"}
"""What a platform runs of each kind: the local platform's API and worker (``infrastructure/local``),
a Kubernetes region's api and worker Deployments (``KubernetesDrRegion``)."""
SERVICE_DRAIN = timedelta(seconds=30)
"""How long a standby region's drained api instance may take with the requests in flight."""
WORKER_ROUTER = "dispatch-local"
"""The local workers' router: which of them take jobs (activities/router/dispatch_local.py)."""


class ComponentGate(Strict):
    templates: Annotated[list[str], Field(min_length=1)]


class ComponentConfig(Strict):
    """``app.components.NAME``."""

    kind: Literal["service", "worker"]
    depends_on: list[ComponentName] = Field(default_factory=list)
    instances: Annotated[int, Field(ge=1, le=64)] | None = Field(
        default=None, description="in the primary region (a service: the environment's instances)"
    )
    standby_instances: Annotated[int, Field(ge=1, le=64)] | None = Field(
        default=None, description="in each standby region (a service: dr.standby_instances; a worker: 1)"
    )
    max_surge: Annotated[int, Field(ge=1, le=64)] = 1
    """A worker's batch size in the primary region."""
    gate: ComponentGate | None = Field(
        default=None, description="a worker's health gate after every batch (analysis templates)"
    )
    drain_timeout: Duration = timedelta(seconds=60)
    """How long a drained worker may take to finish the job in hand."""

    @model_validator(mode="after")
    def _check(self) -> ComponentConfig:
        if self.kind == "worker" and self.instances is None:
            raise ValueError("a worker needs instances (how many run in the primary region)")
        if self.kind == "service" and self.gate is not None:
            raise ValueError("a service is judged by its strategy's analysis; gate is for workers")
        return self


class WaveConfig(Strict):
    """``environments.NAME.waves[i]``: regions released together, and how long to bake after."""

    regions: Annotated[list[str], Field(min_length=1)]
    bake: Duration = timedelta(0)
    """Wait this long after the wave before the next one (promote ends the wait, abort the release)."""


def default_components() -> dict[str, ComponentConfig]:
    return {"api": ComponentConfig(kind="service")}


def dependency_order(components: dict[str, ComponentConfig]) -> list[str]:
    """Components so that each comes after what it depends on (declaration order among equals).

    Raises ValueError naming an unknown dependency or the components of a cycle.
    """
    for name, c in components.items():
        unknown = [d for d in c.depends_on if d not in components]
        if unknown:
            msg = f"{name}.depends_on names {unknown}, not components ({', '.join(components)})"
            raise ValueError(msg)
    order: list[str] = []
    pending = dict(components)
    while pending:
        ready = [n for n, c in pending.items() if all(d in order for d in c.depends_on)]
        if not ready:
            msg = f"depends_on has a cycle among {sorted(pending)}"
            raise ValueError(msg)
        order.append(ready[0])
        del pending[ready[0]]
    return order


def check_components(components: dict[str, ComponentConfig]) -> None:
    """``app.components`` as a whole: exactly one service, dependencies that resolve."""
    services = [n for n, c in components.items() if c.kind == "service"]
    if len(services) != 1:
        msg = f"exactly one component is a service (takes the traffic), got {services or 'none'}"
        raise ValueError(msg)
    dependency_order(components)


def resolve_targets(config: DeployConfig, spec: ReleaseSpec) -> list[ReleaseTarget]:
    """Every component in every region, in the order a release reaches them; empty when the
    release is the service alone in one region (the pipeline then runs as it always has)."""
    env = spec.environment
    where = f"environments.{env.name}"
    components = config.app.components
    chosen = config.environments[env.name].components
    names = [n for n in dependency_order(components) if chosen is None or n in chosen]
    service = next(n for n, c in components.items() if c.kind == "service")
    if service not in names:
        msg = f"{where}.components: the service component {service!r} must be released"
        raise InputError(msg)
    if env.local is not None:
        regions: list[str] = list(env.local.regions)
        dr: DrSpec | None = None
    else:
        dr = _kubernetes_regions(config, env, names, service)
        if dr is None:
            return []
        regions = list(dr.regions)
    for name in names:
        expected = PLATFORM_COMPONENTS[components[name].kind]
        if name != expected:
            kind = components[name].kind
            platform = env.providers.platform
            msg = f"app.components.{name}: the {platform} platform runs its {kind} as {expected!r}"
            raise InputError(msg)
    if len(names) == 1 and len(regions) == 1:
        return []
    targets: list[ReleaseTarget] = []
    waves = _waves(config, env.name, regions)
    for index, region in enumerate(r for wave in waves for r in wave.regions):
        role: Literal["primary", "standby"] = "primary" if index == 0 else "standby"
        wave_index = next(i for i, w in enumerate(waves) if region in w.regions)
        first_of_wave = waves[wave_index].regions[0] == region
        bake = waves[wave_index - 1].bake if wave_index > 0 and first_of_wave else timedelta(0)
        for position, name in enumerate(names):
            placed = {
                "component": name,
                "region": region,
                "role": role,
                "wave": wave_index,
                "bake_before": bake if position == 0 else timedelta(0),
            }
            component = components[name]
            if role == "primary" and component.kind == "service":
                drains = catalog.router_has(env.providers.router, "drain")
                targets.append(
                    ReleaseTarget(main=True, restore="rolling" if drains else "blue-green", **placed)
                )
            elif dr is not None:
                versions = {name: spec.version}
                targets.append(
                    ReleaseTarget(converge=ConvergeRequest(dr=dr, region=region, versions=versions), **placed)
                )
            else:
                targets.append(
                    ReleaseTarget(
                        release=_rolling(config, spec, name, component, region=region, role=role), **placed
                    )
                )
    return targets


def _rolling(
    config: DeployConfig, spec: ReleaseSpec, name: str, component: ComponentConfig, *, region: str, role: str
) -> ReleaseSpec:
    """The local platform: a rolling release of one component in one region (a worker in batches
    behind its gate in the primary region; anything in a standby region at once, at its size)."""
    size = _size(config, spec.environment, name, component, role)
    surge = component.max_surge if role == "primary" else size
    gate = _gate(config, component) if role == "primary" else []
    rolling = RollingSpec(
        max_surge=min(surge, size),
        max_unavailable=0,
        analysis=gate,
        drain_timeout=component.drain_timeout if component.kind == "worker" else SERVICE_DRAIN,
    )
    return aimed(spec, name, component.kind, region=region, instances=size, rolling=rolling)


def _kubernetes_regions(
    config: DeployConfig, env: EnvironmentSpec, names: list[str], service: str
) -> DrSpec | None:
    """Another platform than local: the environment's DR regions on Kubernetes (one cluster each),
    where the workers and every standby region are released; None when it releases only its service
    in its own cluster (no such regions)."""
    where = f"environments.{env.name}"
    others = [n for n in names if n != service]
    section = config.environments[env.name].dr
    if section is None or section.providers.regions != "kubernetes":
        if others:
            msg = (
                f"{where}.components: {others} are released on {env.providers.platform} through the "
                f"DR regions' clusters ({where}.dr.providers.regions: kubernetes, each region's "
                f"worker Deployment in {where}.dr.kubernetes.regions.REGION.worker); "
                f"or set components: [{service}]"
            )
            raise InputError(msg)
        return None
    # engine.dr_config imports engine.config, which imports this module: resolved at call time.
    from engine.dr_config import resolve_dr  # noqa: PLC0415

    dr = resolve_dr(config, env.name)
    assert dr.kubernetes is not None  # resolve_dr requires it for regions: kubernetes
    if any(config.app.components[n].kind == "worker" for n in names):
        missing = [r for r in dr.regions if dr.kubernetes.regions[r].worker is None]
        if missing:
            field = f"{where}.dr.kubernetes.regions.{missing[0]}.worker"
            msg = (
                f"{field}: the worker is released in every region; name its Deployment (missing in {missing})"
            )
            raise InputError(msg)
    return dr


def _waves(config: DeployConfig, env: str, regions: list[str]) -> list[WaveConfig]:
    """The environment's waves (default: the primary region, then each standby region alone);
    every region in exactly one wave, the primary in the first (the strategy runs there)."""
    where = f"environments.{env}.waves"
    waves = config.environments[env].waves or [WaveConfig(regions=[r]) for r in regions]
    named = [r for w in waves for r in w.regions]
    unknown = [r for r in named if r not in regions]
    if unknown:
        msg = f"{where} names region(s) {unknown}, not regions of {env} ({', '.join(regions)})"
        raise InputError(msg)
    twice = sorted({r for r in named if named.count(r) > 1})
    missing = [r for r in regions if r not in named]
    if twice or missing:
        msg = (
            f"{where}: every region in exactly one wave "
            f"(twice: {twice or 'none'}, in none: {missing or 'none'})"
        )
        raise InputError(msg)
    if regions[0] not in waves[0].regions:
        msg = f"{where}: the first wave must hold the primary region {regions[0]!r} (the strategy runs there)"
        raise InputError(msg)
    # The primary first within its wave: what the other regions get is what passed there.
    first = [regions[0], *(r for r in waves[0].regions if r != regions[0])]
    return [waves[0].model_copy(update={"regions": first}), *waves[1:]]


def aimed(
    spec: ReleaseSpec, component: str, kind: str, *, region: str, instances: int, rolling: RollingSpec
) -> ReleaseSpec:
    """``spec`` as a rolling release of one component in one region (also how it is restored)."""
    env = spec.environment
    assert env.local is not None  # resolve_targets only aims local environments
    changes: dict[str, object] = {
        "component": component,
        "instances": instances,
        "local": env.local.model_copy(update={"region": region}),
    }
    if kind == "worker":
        changes["providers"] = env.providers.model_copy(update={"router": WORKER_ROUTER})
    return ReleaseSpec(
        app=spec.app,
        environment=EnvironmentSpec.model_validate(env.model_copy(update=changes).model_dump()),
        version=spec.version,
        strategy="rolling",
        rolling=rolling,
        requested_by=spec.requested_by,
    )


def _size(config: DeployConfig, env: EnvironmentSpec, name: str, c: ComponentConfig, role: str) -> int:
    """Instances of a component in a primary or a standby region; a standby never above the primary."""
    dr = config.environments[env.name].dr
    primary = c.instances or env.instances
    standby = c.standby_instances or (dr.standby_instances if dr is not None and c.kind == "service" else 1)
    if standby > primary:
        field = (
            f"app.components.{name}.standby_instances"
            if c.standby_instances
            else f"environments.{env.name}.dr.standby_instances"
        )
        msg = f"{field}: {standby} is above the primary region's {primary} instances of {name}"
        raise InputError(msg)
    return primary if role == "primary" else standby


def _gate(config: DeployConfig, c: ComponentConfig) -> list[AnalysisRef]:
    return [config.template_ref(t) for t in (c.gate.templates if c.gate else [])]
