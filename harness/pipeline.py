"""The release pipeline (workflows/release.py) on a :class:`harness.stack.Stack`.

:func:`pipeline_config` is the stack's test config with a ``release:`` section (checks
against the stack's database, Redis and HTTP, its image registry, Terraform on
infrastructure/local/terraform); :func:`pipeline_spec` resolves it, and
:func:`write_pipeline_config` writes it for a starter. :func:`snapshot` is what a failed
pre-check must leave unchanged: instances, router weights and production tags.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from clients.oci import RegistryClient
from engine.config import parse_config, resolve_release
from engine.contracts.pipeline import PipelineSpec
from engine.pipeline import resolve_pipeline
from harness.stack import Stack
from infrastructure.local import images
from infrastructure.local.instances import InstanceManager

FAST_STEPS = "- set_weight: 50"


def pipeline_config(
    stack: Stack,
    *,
    webhook: str | None = None,
    tf_vars: dict[str, Any] | None = None,
    steps: str = FAST_STEPS,
) -> str:
    data = yaml.safe_load(stack.config_text(steps))
    data["environments"]["local"]["release"] = {
        "checks": {"database": "local", "redis": "local", "http": ["local"]},
        "images": {"registry": "local"},
        "terraform": {"root": "infrastructure/local/terraform", "vars": tf_vars or {}},
        **({"webhook_url": webhook} if webhook else {}),
    }
    return yaml.safe_dump(data)


def pipeline_spec(stack: Stack, version: str, **kwargs: Any) -> PipelineSpec:
    config = parse_config(pipeline_config(stack, **kwargs))
    spec = resolve_release(config, version, "canary", "local", requested_by="pytest", local=stack.local)
    return resolve_pipeline(config, spec)


def write_pipeline_config(stack: Stack, name: str, **kwargs: Any) -> Path:
    path = stack.tmp / f"pipeline-{name}.yaml"
    path.write_text(pipeline_config(stack, **kwargs))
    return path


def snapshot(stack: Stack) -> tuple[list[str], dict[str, int], list[str]]:
    """Instances, router weights and production tags: what a failed pre-check must not change."""
    client = RegistryClient(images.registry_url(stack.layout))
    try:
        tags = client.tags(images.PRODUCTION_REPOSITORY)
    finally:
        client.close()
    instances = sorted(
        f"{i.pool}{i.slot}:{i.version}" for i in InstanceManager(stack.layout).list(probe=False)
    )
    return instances, stack.weights(), tags
