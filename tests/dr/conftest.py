"""Fixtures for the disaster-recovery tests: a real two-region stack and a Temporal dev server.

One stack per pytest-xdist worker (PostgreSQL primary in A and streaming standby in B,
synchronous replication, a router and sample instances per region, the global entry
point), on its own ports and temp dir, torn down at the end of the session. Every test
starts from the home topology: users and writes in A, B its in-sync standby. The stack
itself is :class:`harness.dr_stack.DrStack`.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Iterator

import pytest
from temporalio.client import Client

import worker as worker_module
from engine import temporal
from harness.dr_stack import DrStack, Writer, running_dr_stack
from harness.support import WorkerProcess


@pytest.fixture(scope="session")
def dr_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DrStack]:
    with running_dr_stack(tmp_path_factory.mktemp("dr")) as running:
        yield running


@pytest.fixture
def stack(dr_stack: DrStack) -> DrStack:
    """The two-region stack, in its home topology."""
    dr_stack.reset()
    return dr_stack


@pytest.fixture
async def client(dr_stack: DrStack) -> Client:
    return await temporal.connect(target_host=dr_stack.temporal_address)


@pytest.fixture
def task_queue() -> str:
    return f"dr-{uuid.uuid4().hex[:10]}"


@pytest.fixture
async def worker(client: Client, task_queue: str) -> AsyncIterator[None]:
    async with worker_module.running(client, task_queue):
        yield


@pytest.fixture
def worker_process(dr_stack: DrStack, task_queue: str) -> Iterator[WorkerProcess]:
    wp = WorkerProcess(dr_stack.env(task_queue), dr_stack.tmp / f"worker-{task_queue}.log", task_queue)
    try:
        yield wp
    finally:
        wp.stop()


@pytest.fixture
def writer(stack: DrStack) -> type[Writer]:
    """The bounded numbered-write client (a class: ``with writer(url) as w: ...``)."""
    return Writer
