"""Connecting to Temporal, and the names shared by the worker and the starters.

The connection comes from Temporal's own environment configuration
(``temporalio.envconfig``): ``TEMPORAL_ADDRESS``, ``TEMPORAL_NAMESPACE``,
``TEMPORAL_API_KEY``, ``TEMPORAL_TLS_CLIENT_CERT_PATH`` / ``..._KEY_PATH``,
``TEMPORAL_PROFILE`` and the TOML profile file, exactly as the ``temporal`` CLI
reads them. The same code reaches the local dev server, a self-hosted cluster
with mTLS, or Temporal Cloud with an API key.
"""

from __future__ import annotations

import os
from typing import Any

from temporalio.client import Client
from temporalio.common import SearchAttributeKey
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.envconfig import ClientConfig

TASK_QUEUE = os.environ.get("DEPLOY_TASK_QUEUE", "deploy-engine")
UI_URL = os.environ.get("TEMPORAL_UI_URL", "http://localhost:8233")

ENVIRONMENT = SearchAttributeKey.for_keyword("DeployEnvironment")
VERSION = SearchAttributeKey.for_keyword("DeployVersion")
STRATEGY = SearchAttributeKey.for_keyword("DeployStrategy")
PHASE = SearchAttributeKey.for_keyword("DeployPhase")
SEARCH_ATTRIBUTES = (ENVIRONMENT, VERSION, STRATEGY, PHASE)
"""Registered on the dev server by infrastructure/local (``--search-attribute``)."""


def connect_config(**overrides: Any) -> dict[str, Any]:
    """Keyword arguments for ``Client.connect``, from the standard Temporal env config."""
    config: dict[str, Any] = dict(ClientConfig.load_client_connect_config())
    config.setdefault("target_host", "localhost:7233")
    config.update({k: v for k, v in overrides.items() if v is not None})
    return config


async def connect(**overrides: Any) -> Client:
    """A client with the pydantic data converter every contract needs."""
    return await Client.connect(**connect_config(**overrides), data_converter=pydantic_data_converter)


def release_workflow_id(app: str, environment: str) -> str:
    """One release per app and environment at a time: the server enforces it through this id."""
    return f"release-{app}-{environment}"


def ui_link(workflow_id: str, run_id: str | None, namespace: str = "default") -> str:
    run = f"/{run_id}" if run_id else ""
    return f"{UI_URL}/namespaces/{namespace}/workflows/{workflow_id}{run}/history"
