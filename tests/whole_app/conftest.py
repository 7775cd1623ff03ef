"""Fixtures of the whole-app tests: a two-region platform per test module (harness/whole_app.py),
its Temporal dev server, and an engine worker in this process on a task queue of the test's own."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Iterator

import pytest
from temporalio.client import Client

import worker as worker_module
from engine import temporal
from harness import whole_app
from infrastructure.local import platform
from infrastructure.local.regions import PlatformLayout


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PlatformLayout]:
    lay = PlatformLayout.for_tests(tmp_path_factory.mktemp("whole"))
    try:
        whole_app.site_up(lay)
        yield lay
    finally:
        platform.down(lay, purge=True)


@pytest.fixture
async def client(site: PlatformLayout) -> Client:
    return await temporal.connect(target_host=f"127.0.0.1:{site.home_layout.temporal_port}")


@pytest.fixture
async def task_queue(client: Client) -> AsyncIterator[str]:
    queue = f"whole-{uuid.uuid4().hex[:8]}"
    async with worker_module.running(client, queue):
        yield queue
