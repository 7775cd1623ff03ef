"""Fixtures of the promotion train's tests: two local platforms (staging, production), one Temporal.

One pair of platforms per pytest-xdist worker (``harness/train.py``), torn down at the end of the
session; each test has its own task queue and in-process worker and deploys versions no other
test uses.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Iterator

import pytest
from temporalio.client import Client

import worker as worker_module
from engine import temporal
from harness.train import Stacks, running_stacks


@pytest.fixture(scope="session")
def stacks(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stacks]:
    with running_stacks(tmp_path_factory.mktemp("train")) as running:
        yield running


@pytest.fixture
async def client(stacks: Stacks) -> Client:
    return await temporal.connect(target_host=stacks.staging.temporal_address)


@pytest.fixture
def task_queue() -> str:
    return f"test-{uuid.uuid4().hex[:10]}"


@pytest.fixture
async def worker(client: Client, task_queue: str) -> AsyncIterator[None]:
    """An in-process worker of the engine on the test's own task queue."""
    async with worker_module.running(client, task_queue):
        yield
