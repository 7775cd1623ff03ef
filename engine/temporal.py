"""Connecting to Temporal, and the names shared by the worker and the starters.

The connection comes from Temporal's own environment configuration
(``temporalio.envconfig``): ``TEMPORAL_ADDRESS``, ``TEMPORAL_NAMESPACE``,
``TEMPORAL_API_KEY``, ``TEMPORAL_TLS_CLIENT_CERT_PATH`` / ``..._KEY_PATH``,
``TEMPORAL_PROFILE`` and the TOML profile file, exactly as the ``temporal`` CLI
reads them. The same code reaches the local dev server, a self-hosted cluster
with mTLS, or Temporal Cloud with an API key.
"""

from __future__ import annotations

import dataclasses
import os
from typing import Any

from temporalio.client import Client, WorkflowExecutionStatus
from temporalio.common import SearchAttributeKey
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.converter import DataConverter
from temporalio.envconfig import ClientConfig
from temporalio.service import RPCError, RPCStatusCode

from engine import tracing
from engine.codec import codec_from_environment

TASK_QUEUE = os.environ.get("DEPLOY_TASK_QUEUE", "deploy-engine")
UI_URL = os.environ.get("TEMPORAL_UI_URL", "http://localhost:8233")

ENVIRONMENT = SearchAttributeKey.for_keyword("DeployEnvironment")
VERSION = SearchAttributeKey.for_keyword("DeployVersion")
STRATEGY = SearchAttributeKey.for_keyword("DeployStrategy")
PHASE = SearchAttributeKey.for_keyword("DeployPhase")
SEARCH_ATTRIBUTES = (ENVIRONMENT, VERSION, STRATEGY, PHASE)
"""Registered on the dev server by infrastructure/local (``--search-attribute``)."""


class ConnectionSettingsError(ValueError):
    """The Temporal connection settings cannot work (e.g. a TLS file that is not there)."""


def connect_config(**overrides: Any) -> dict[str, Any]:
    """Keyword arguments for ``Client.connect``, from the standard Temporal env config."""
    try:
        config: dict[str, Any] = dict(ClientConfig.load_client_connect_config())
    except OSError as exc:
        msg = (
            f"Temporal connection settings: cannot read {exc.filename} ({exc.strerror}); "
            "check TEMPORAL_TLS_CLIENT_CERT_PATH, TEMPORAL_TLS_CLIENT_KEY_PATH, "
            "TEMPORAL_TLS_SERVER_CA_CERT_PATH and the profile file"
        )
        raise ConnectionSettingsError(msg) from None
    config.setdefault("target_host", "localhost:7233")
    config.update({k: v for k, v in overrides.items() if v is not None})
    return config


def data_converter() -> DataConverter:
    """Pydantic contracts, encrypted when codec keys are configured (see engine/codec.py)."""
    codec = codec_from_environment()
    if codec is None:
        return pydantic_data_converter
    return dataclasses.replace(pydantic_data_converter, payload_codec=codec)


async def connect(**overrides: Any) -> Client:
    """A client with the data converter every contract needs, traced where this process
    configured tracing (``engine/tracing.py``); the worker inherits both."""
    return await Client.connect(
        **connect_config(**overrides), data_converter=data_converter(), interceptors=tracing.interceptors()
    )


def release_workflow_id(app: str, environment: str) -> str:
    """One release per app and environment at a time: the server enforces it through this id."""
    return f"release-{app}-{environment}"


def train_workflow_id(app: str, environments: list[str]) -> str:
    """One promotion train per app and sequence of environments at a time (``train-APP-ENV-ENV``)."""
    return f"train-{app}-" + "-".join(environments)


def dr_workflow_id(app: str, environment: str, kind: str = "failover") -> str:
    """One DR operation of a kind (failover, drill, monitor) per app and environment at a time."""
    return f"dr-{kind}-{app}-{environment}"


def ui_link(workflow_id: str, run_id: str | None, namespace: str = "default") -> str:
    run = f"/{run_id}" if run_id else ""
    return f"{UI_URL}/namespaces/{namespace}/workflows/{workflow_id}{run}/history"


async def is_running(client: Client, workflow_id: str) -> bool:
    """Whether ``workflow_id`` has a running execution (False when there is none at all)."""
    try:
        desc = await client.get_workflow_handle(workflow_id).describe()
    except RPCError as exc:
        if exc.status == RPCStatusCode.NOT_FOUND:
            return False
        raise
    return desc.status == WorkflowExecutionStatus.RUNNING
