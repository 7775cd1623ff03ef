"""Fixtures for the cloud providers: a real moto server and a real kmock Kubernetes API.

* ``moto``: ``moto_server`` started as a subprocess on a free loopback port, one per
  pytest-xdist worker, stopped at the end of the session; not reset between tests (see
  the fixture).
* ``faults``: a small HTTP proxy in front of moto that answers the next requests with the
  errors a test queues (throttling, 503, access denied) and forwards the rest: the AWS
  providers see real HTTP answers, their retries are real.
* ``kube``: kmock's Kubernetes emulator served over HTTP from a thread, the official
  ``kubernetes`` client configured against it through a kubeconfig file, and a harness that
  plays what kmock does not (the API server's ``metadata.generation``, the Deployment
  controller's status, pods). All of it lives in harness/cloud.py.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from clients import aws
from engine.contracts import AwsSettings
from harness.cloud import (
    REGION,
    FaultProxy,
    KubeCluster,
    MotoError,
    MotoServer,
    aws_test_credentials,
    create_network,
)


@pytest.fixture(scope="session")
def moto_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    server = MotoServer(tmp_path_factory.mktemp("moto") / "moto.log")
    try:
        server.start()
    except MotoError as exc:
        pytest.fail(str(exc))
    try:
        yield server.url
    finally:
        server.stop()


@pytest.fixture(scope="session", autouse=True)
def _dummy_aws_credentials() -> Iterator[None]:
    """The standard credential chain finds these (moto accepts any); no real account is reachable."""
    with aws_test_credentials():
        yield


@pytest.fixture
def moto(moto_url: str) -> str:
    """The worker's moto server. Not reset between tests (resetting EC2 costs seconds): each
    test creates its own resources under names no other test uses (see :func:`harness.cloud.unique`)."""
    aws._session.cache_clear()
    return moto_url


@pytest.fixture(scope="session")
def network(moto_url: str) -> dict[str, Any]:
    """One VPC with two subnets per worker (EC2 in moto is slow to warm up; load balancers are not)."""
    return create_network(moto_url)


@pytest.fixture
def aws_settings(moto: str) -> AwsSettings:
    return AwsSettings(region=REGION, endpoint_url=moto, max_attempts=4)


@pytest.fixture
def faults(moto: str) -> Iterator[FaultProxy]:
    proxy = FaultProxy(moto)
    proxy.start()
    yield proxy
    proxy.stop()


@pytest.fixture
def kube(tmp_path: Path) -> Iterator[KubeCluster]:
    cluster = KubeCluster(tmp_path)
    cluster.start()
    yield cluster
    cluster.stop()
