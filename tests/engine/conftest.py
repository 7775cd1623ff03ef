"""Fixtures for the engine's tests: a real local platform and a real Temporal dev server.

One platform stack (HAProxy, Prometheus, sample instances, load generator, Temporal
dev server) per pytest-xdist worker, on its own port block and temp dir, torn
down at the end of the session. Each test gets its own task queue and worker,
starts from one stable pool, and deploys versions no other test uses. The stack
itself is :class:`harness.stack.Stack`.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Iterator

import pytest
from temporalio.client import Client

import worker as worker_module
from engine import temporal
from harness.stack import Stack, abort_leftover_release, running_stack
from harness.support import WorkerProcess


@pytest.fixture(scope="session")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    with running_stack(tmp_path_factory.mktemp("stack")) as running:
        yield running


@pytest.fixture
async def client(stack: Stack) -> Client:
    return await temporal.connect(target_host=stack.temporal_address)


@pytest.fixture
def task_queue() -> str:
    return f"test-{uuid.uuid4().hex[:10]}"


@pytest.fixture
async def worker(client: Client, task_queue: str) -> AsyncIterator[None]:
    """An in-process worker of the engine on the test's own task queue."""
    async with worker_module.running(client, task_queue):
        yield


@pytest.fixture(autouse=True)
async def clean_release(request: pytest.FixtureRequest) -> AsyncIterator[None]:
    """No release left running by an earlier test; traffic on one stable pool."""
    if "stack" not in request.fixturenames:
        yield
        return
    stack: Stack = request.getfixturevalue("stack")
    yield
    await abort_leftover_release(stack)


@pytest.fixture
def worker_process(stack: Stack, task_queue: str) -> Iterator[WorkerProcess]:
    wp = WorkerProcess(stack.env(task_queue), stack.tmp / f"worker-{task_queue}.log", task_queue)
    try:
        yield wp
    finally:
        wp.stop()
