"""Fixtures of the dashboard's tests: a real local platform and Temporal dev server (harness/stack.py),
an engine worker in this process on the test's own task queue, headless Chromium, and the dashboard
(starters/dashboard.py) served in this process on a free port, stopped after the test."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator

import pytest
from temporalio.client import Client

import worker as worker_module
from engine import temporal
from engine.config import parse_config
from harness.browser import Chromium, chromium_binary
from harness.pipeline import pipeline_config
from harness.stack import Stack, abort_leftover_release, running_stack
from harness.support import free_port
from starters import dashboard


@pytest.fixture(scope="session")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    with running_stack(tmp_path_factory.mktemp("stack")) as running:
        yield running


@pytest.fixture
async def client(stack: Stack) -> Client:
    return await temporal.connect(target_host=stack.temporal_address)


@pytest.fixture
def task_queue() -> str:
    return f"dash-{uuid.uuid4().hex[:10]}"


@pytest.fixture
async def worker(client: Client, task_queue: str) -> AsyncIterator[None]:
    async with worker_module.running(client, task_queue):
        yield


@pytest.fixture(autouse=True)
async def clean_release(request: pytest.FixtureRequest) -> AsyncIterator[None]:
    """No release left running by a test on the stack; traffic back on one stable pool."""
    yield
    if "stack" in request.fixturenames:
        await abort_leftover_release(request.getfixturevalue("stack"))


@pytest.fixture
def chromium() -> Chromium:
    binary = chromium_binary()
    if binary is None:
        pytest.fail("chromium is not installed: bash scripts/dev.sh install (Debian package chromium)")
    return Chromium(binary)


Serve = Callable[[Client], Awaitable[str]]


@pytest.fixture
async def serve_dashboard(stack: Stack) -> AsyncIterator[Serve]:
    """Serves the dashboard of this stack's ``local`` environment through a given client, on a free
    port; returns its URL. Every dashboard it started stops after the test."""
    config = parse_config(pipeline_config(stack))
    runners = []

    async def serve(client: Client) -> str:
        port = free_port()
        runners.append(
            await dashboard.serve(dashboard.Dashboard(client, config, ["local"]), "127.0.0.1", port)
        )
        return f"http://127.0.0.1:{port}"

    try:
        yield serve
    finally:
        for runner in runners:
            await runner.cleanup()


@pytest.fixture
async def dashboard_url(client: Client, serve_dashboard: Serve) -> str:
    """The dashboard, reading through the test's client."""
    return await serve_dashboard(client)
