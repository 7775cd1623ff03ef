"""Providers built from the catalog (``engine/catalog.py``), one per capability and spec.

A provider is built on first use from its spec (an ``EnvironmentSpec``, a ``DrSpec`` or an
``ImageSpec``) and cached by that spec's JSON: providers hold clients (HTTP pools, boto3,
the Kubernetes API) worth reusing across activities. Modules are imported on first use, so a
worker without boto3 or the kubernetes client still serves the local providers. Each accessor
returns its capability's Protocol; ``tests/unit/test_provider_types.py`` has mypy prove that
every catalog entry really is one.
"""

from __future__ import annotations

import importlib
from functools import cache
from typing import cast

from activities.interfaces import (
    Database,
    DrainRouter,
    GlobalEntry,
    Metrics,
    Platform,
    PreviewRouter,
    Regions,
    Router,
    Smoke,
)
from clients.images import ImageRegistry, open_registry
from engine import catalog
from engine.contracts import EnvironmentSpec
from engine.contracts.dr import DrSpec
from engine.contracts.pipeline import ImageSpec
from engine.errors import BadRequest


def provider_class(capability: str, name: str) -> type:
    """The class that implements ``name`` for ``capability`` (imported now)."""
    entry = catalog.CATALOG[capability].get(name)
    if entry is None:
        known = ", ".join(catalog.CATALOG[capability])
        msg = f"no {capability} provider named {name!r} (known: {known})"
        raise BadRequest(msg)
    module, cls = entry.target.split(":")
    found: type = getattr(importlib.import_module(module), cls)
    return found


@cache
def _env_provider(capability: str, name: str, env_json: str) -> object:
    return provider_class(capability, name)(EnvironmentSpec.model_validate_json(env_json))


@cache
def _dr_provider(capability: str, name: str, spec_json: str) -> object:
    return provider_class(capability, name)(DrSpec.model_validate_json(spec_json))


def platform(env: EnvironmentSpec) -> Platform:
    return cast(Platform, _env_provider("platform", env.providers.platform, env.model_dump_json()))


def router(env: EnvironmentSpec) -> Router:
    return cast(Router, _env_provider("router", env.providers.router, env.model_dump_json()))


def _router_with(env: EnvironmentSpec, extra: str, what: str) -> Router:
    name = env.providers.router
    if not catalog.router_has(name, extra):
        msg = f"router {name!r} of environment {env.name!r} has no {what}"
        raise BadRequest(msg)
    return router(env)


def preview_router(env: EnvironmentSpec) -> PreviewRouter:
    """The environment's router, which must have a preview route (blue-green)."""
    return cast(PreviewRouter, _router_with(env, "preview", "preview route"))


def drain_router(env: EnvironmentSpec) -> DrainRouter:
    """The environment's router, which must drain single instances (rolling)."""
    return cast(DrainRouter, _router_with(env, "drain", "way to drain single instances"))


def metrics(env: EnvironmentSpec) -> Metrics:
    return cast(Metrics, _env_provider("analysis", env.providers.analysis, env.model_dump_json()))


def smoke(env: EnvironmentSpec) -> Smoke:
    return cast(Smoke, _env_provider("smoke", env.providers.smoke, env.model_dump_json()))


def images(spec: ImageSpec) -> ImageRegistry:
    """A fresh client of the release's image registry (not cached: the caller closes it)."""
    return open_registry(spec)


def database(spec: DrSpec) -> Database:
    return cast(Database, _dr_provider("database", spec.providers.database, spec.model_dump_json()))


def global_entry(spec: DrSpec) -> GlobalEntry:
    return cast(
        GlobalEntry, _dr_provider("global_entry", spec.providers.global_entry, spec.model_dump_json())
    )


def regions(spec: DrSpec) -> Regions:
    return cast(Regions, _dr_provider("regions", spec.providers.regions, spec.model_dump_json()))
