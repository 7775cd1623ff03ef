"""Fixtures for the cloud providers: a real moto server and a real kmock Kubernetes API.

* ``moto``: ``moto_server`` started as a subprocess on a free loopback port, one per
  pytest-xdist worker, stopped at the end of the session; every test starts from a reset
  server (``POST /moto-api/reset``).
* ``faults``: a small HTTP proxy in front of moto that answers the next requests with the
  errors a test queues (throttling, 503, access denied) and forwards the rest: the AWS
  providers see real HTTP answers, their retries are real.
* ``kube``: kmock's Kubernetes emulator served over HTTP from a thread, the official
  ``kubernetes`` client configured against it through a kubeconfig file, and a harness that
  plays what kmock does not (the API server's ``metadata.generation``, the Deployment
  controller's status, pods). See cloud_harness.py.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from cloud_harness import FaultProxy, KubeCluster

from engine.contracts import AwsSettings
from harness.support import stop_process

REGION = "eu-west-1"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="session")
def moto_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    binary = Path(sys.executable).parent / "moto_server"
    if not binary.exists():
        pytest.fail(
            f"moto_server is not installed next to {sys.executable}: pip install 'moto[server]==5.2.5'"
        )
    log = tmp_path_factory.mktemp("moto") / "moto.log"
    for _ in range(3):
        port = free_port()
        with log.open("w") as out:
            proc = subprocess.Popen(
                [str(binary), "-H", "127.0.0.1", "-p", str(port)], stdout=out, stderr=subprocess.STDOUT
            )
        url = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and proc.poll() is None:
            try:
                httpx.get(f"{url}/moto-api/", timeout=1).raise_for_status()
                break
            except httpx.HTTPError:
                time.sleep(0.1)
        else:
            proc.kill()
            proc.wait()
            continue
        try:
            yield url
        finally:
            stop_process(proc)
        return
    pytest.fail(f"moto_server did not start: {log.read_text()[-2000:]}")


@pytest.fixture(scope="session", autouse=True)
def _dummy_aws_credentials() -> Iterator[None]:
    """The standard credential chain finds these (moto accepts any); no real account is reachable."""
    saved = {
        k: os.environ.get(k) for k in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN")
    }
    os.environ.update(AWS_ACCESS_KEY_ID="testing", AWS_SECRET_ACCESS_KEY="testing")
    os.environ.pop("AWS_SESSION_TOKEN", None)
    os.environ["AWS_CONFIG_FILE"] = os.environ["AWS_SHARED_CREDENTIALS_FILE"] = os.devnull
    yield
    for k, v in saved.items():
        if v is None:
            os.environ.pop(k, None)
        else:
            os.environ[k] = v


@pytest.fixture
def moto(moto_url: str) -> str:
    """The worker's moto server. Not reset between tests (resetting EC2 costs seconds): each
    test creates its own resources under names no other test uses (see :func:`unique`)."""
    from activities.cloud import aws

    aws._session.cache_clear()
    return moto_url


@pytest.fixture(scope="session")
def network(moto_url: str) -> dict[str, Any]:
    """One VPC with two subnets per worker (EC2 in moto is slow to warm up; load balancers are not)."""
    from activities.cloud import aws

    ec2 = aws.client(AwsSettings(region=REGION, endpoint_url=moto_url), "ec2")
    vpc = ec2.create_vpc(CidrBlock="10.0.0.0/16")["Vpc"]["VpcId"]
    subnets = [
        ec2.create_subnet(VpcId=vpc, CidrBlock=f"10.0.{i}.0/24", AvailabilityZone=f"{REGION}{az}")["Subnet"][
            "SubnetId"
        ]
        for i, az in enumerate("ab")
    ]
    return {"vpc": vpc, "subnets": subnets}


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
