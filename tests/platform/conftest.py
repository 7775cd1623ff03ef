"""Fixtures for the local-platform tests: an isolated layout per test, torn down even on failure."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from infrastructure.local import platform
from infrastructure.local.haproxy import HAProxy
from infrastructure.local.haproxy import write_config as write_haproxy_config
from infrastructure.local.instances import InstanceManager
from infrastructure.local.layout import Layout


@pytest.fixture
def layout(tmp_path: Path) -> Iterator[Layout]:
    """A state dir and a free port block of its own; everything started in it is stopped afterwards."""
    lay = Layout.for_tests(tmp_path, max_slots=4)
    lay.ensure_dirs()
    try:
        yield lay
    finally:
        platform.down(lay)


@pytest.fixture
def instances(layout: Layout) -> InstanceManager:
    """Instance manager of the test's layout."""
    return InstanceManager(layout)


@pytest.fixture
def router(layout: Layout) -> HAProxy:
    """A running HAProxy for the test's layout."""
    write_haproxy_config(layout)
    hap = HAProxy(layout)
    hap.start()
    return hap


@pytest.fixture
def http() -> Iterator[httpx.Client]:
    """A keep-alive HTTP client."""
    with httpx.Client(timeout=5.0) as client:
        yield client
