"""Kubernetes API clients for the providers: a kubeconfig (file, context) or the in-cluster config."""

from __future__ import annotations

from functools import cache
from typing import Any

from kubernetes import client, config

from activities.interfaces import BadRequest
from engine.contracts import EnvironmentSpec, KubernetesSettings


def settings_for(env: EnvironmentSpec) -> KubernetesSettings:
    if env.kubernetes is None:
        msg = f"environment {env.name!r} has no kubernetes settings (environments.{env.name}.kubernetes)"
        raise BadRequest(msg)
    return env.kubernetes


@cache
def _api_client(in_cluster: bool, kubeconfig: str | None, context: str | None) -> client.ApiClient:
    try:
        if in_cluster:
            cfg = client.Configuration()
            config.load_incluster_config(client_configuration=cfg)
            return client.ApiClient(cfg)
        return config.new_client_from_config(config_file=kubeconfig, context=context)
    except config.ConfigException as exc:
        msg = f"cannot load the Kubernetes configuration: {exc}"
        raise BadRequest(msg) from exc


def api_client(settings: KubernetesSettings) -> client.ApiClient:
    return _api_client(settings.in_cluster, settings.kubeconfig, settings.context)


def status_of(exc: client.ApiException) -> int:
    return int(getattr(exc, "status", 0) or 0)


def selector_matches(labels: dict[str, str] | None, selector: dict[str, Any]) -> bool:
    """Whether ``labels`` carry every ``key: value`` of ``selector`` (matchLabels semantics)."""
    labels = labels or {}
    return all(labels.get(k) == v for k, v in selector.items())
