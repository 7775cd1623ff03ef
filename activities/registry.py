"""Provider names (as written in deploy-code.yaml) mapped to their classes.

Modules are imported on first use, so a worker without boto3 or the kubernetes
client still serves the local providers. Add a provider: one file, one line here,
and its name in ``engine.config.AVAILABLE_PROVIDERS``.
"""

from __future__ import annotations

import importlib
from functools import cache
from typing import Any

from activities.interfaces import Metrics, Platform, Router, Smoke
from engine.contracts import EnvironmentSpec

_PROVIDERS: dict[str, dict[str, str]] = {
    "platform": {"local": "activities.platform.local:LocalPlatform"},
    "router": {"haproxy": "activities.router.haproxy:HAProxyRouter"},
    "analysis": {"prometheus": "activities.analysis.prometheus:PrometheusMetrics"},
    "smoke": {"http": "activities.smoke.http:HttpSmoke"},
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
