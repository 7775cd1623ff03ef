"""Provider names (as written in deploy-code.yaml) mapped to their classes.

Modules are imported on first use, so a worker without boto3 or the kubernetes
client still serves the local providers. Add a provider: one file, one line here,
and its name in ``engine.config.AVAILABLE_PROVIDERS``.
"""

from __future__ import annotations

import importlib
from functools import cache
from typing import Any

from activities.interfaces import (
    Database,
    GlobalEntry,
    ImageRegistry,
    Metrics,
    Platform,
    Regions,
    Router,
    Smoke,
)
from engine.contracts import EnvironmentSpec
from engine.contracts.dr import DrSpec
from engine.contracts.pipeline import ImageSpec

_PROVIDERS: dict[str, dict[str, str]] = {
    "platform": {
        "local": "activities.platform.local:LocalPlatform",
        "kubernetes": "activities.platform.kubernetes:KubernetesPlatform",
        "simulated": "activities.platform.simulated:SimulatedPlatform",  # no I/O: benchmarks
    },
    "router": {
        "haproxy": "activities.router.haproxy:HAProxyRouter",
        "alb": "activities.router.alb:AlbRouter",
        "kubernetes": "activities.router.kubernetes:KubernetesRouter",
        "simulated": "activities.router.simulated:SimulatedRouter",  # no I/O: benchmarks
    },
    "analysis": {
        "prometheus": "activities.analysis.prometheus:PrometheusMetrics",
        "cloudwatch": "activities.analysis.cloudwatch:CloudWatchMetrics",
        "simulated": "activities.analysis.simulated:SimulatedMetrics",  # no I/O: benchmarks
    },
    "smoke": {
        "http": "activities.smoke.http:HttpSmoke",
        "simulated": "activities.smoke.simulated:SimulatedSmoke",  # no I/O: benchmarks
    },
    "database": {
        "postgres-local": "activities.database.postgres_local:LocalPostgres",
        "rds": "activities.database.rds:RdsDatabase",  # reads DrSpec.aws
    },
    "global_entry": {
        "haproxy-local": "activities.global_entry.haproxy_local:LocalGlobalEntry",
        "route53": "activities.global_entry.route53:Route53GlobalEntry",  # reads DrSpec.aws
    },
    "images": {  # built from an ImageSpec (release pipeline), see images()
        "oci": "activities.images.oci:RegistryClient",
        "ecr": "activities.images.ecr:EcrImages",
    },
    "regions": {
        "local": "activities.regions.local:LocalRegions",
        "kubernetes": "activities.regions.kubernetes:KubernetesRegions",  # reads DrSpec.kubernetes
    },
}


def _build(capability: str, name: str, env: EnvironmentSpec) -> Any:
    return _cached(capability, name, env.model_dump_json())


@cache
def _cached(capability: str, name: str, env_json: str) -> Any:
    target = _PROVIDERS[capability].get(name)
    if target is None:
        msg = f"no {capability} provider named {name!r} (known: {', '.join(_PROVIDERS[capability])})"
        raise LookupError(msg)
    module, cls = target.split(":")
    return getattr(importlib.import_module(module), cls)(EnvironmentSpec.model_validate_json(env_json))


def platform(env: EnvironmentSpec) -> Platform:
    return _build("platform", env.providers.platform, env)


def router(env: EnvironmentSpec) -> Router:
    return _build("router", env.providers.router, env)


def metrics(env: EnvironmentSpec) -> Metrics:
    return _build("analysis", env.providers.analysis, env)


def smoke(env: EnvironmentSpec) -> Smoke:
    return _build("smoke", env.providers.smoke, env)


def images(spec: ImageSpec) -> ImageRegistry:
    """A fresh client of the release's image registry (not cached: the caller closes it)."""
    target = _PROVIDERS["images"].get(spec.provider)
    if target is None:
        msg = f"no images provider named {spec.provider!r} (known: {', '.join(_PROVIDERS['images'])})"
        raise LookupError(msg)
    module, cls = target.split(":")
    return getattr(importlib.import_module(module), cls).from_spec(spec)  # type: ignore[no-any-return]


@cache
def _dr_cached(capability: str, spec_json: str) -> Any:
    spec = DrSpec.model_validate_json(spec_json)
    name = getattr(spec.providers, capability)
    target = _PROVIDERS[capability].get(name)
    if target is None:
        msg = f"no {capability} provider named {name!r} (known: {', '.join(_PROVIDERS[capability])})"
        raise LookupError(msg)
    module, cls = target.split(":")
    return getattr(importlib.import_module(module), cls)(spec)


def database(spec: DrSpec) -> Database:
    return _dr_cached("database", spec.model_dump_json())


def global_entry(spec: DrSpec) -> GlobalEntry:
    return _dr_cached("global_entry", spec.model_dump_json())


def regions(spec: DrSpec) -> Regions:
    return _dr_cached("regions", spec.model_dump_json())
