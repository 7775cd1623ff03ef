"""Tracing of the cloud clients: one span per AWS call (moto) and per Kubernetes API call (kmock).

A child process turns tracing on (engine/tracing.py, exporting to a local OTLP/HTTP receiver,
harness/otlp.py), makes a few calls through ``clients.aws`` and ``clients.kube`` inside one span
of its own, and flushes; the spans received are checked: names, attributes, failures, parents.
The tracer provider lives and dies with that process.
"""

from __future__ import annotations

import asyncio
import os
import sys
import textwrap
from collections.abc import AsyncIterator

import pytest

from engine.contracts import AwsSettings, KubernetesSettings
from harness.cloud import KubeCluster
from harness.otlp import OtlpReceiver
from harness.support import REPO

CALLS = textwrap.dedent(
    """
    import sys

    from clients import aws, kube
    from engine import tracing
    from engine.contracts import AwsSettings, KubernetesSettings

    assert tracing.configure("cloud-calls")
    with tracing.span("calls"):
        elb = aws.client(AwsSettings.model_validate_json(sys.argv[1]), "elbv2")
        elb.describe_load_balancers()
        try:
            elb.describe_target_groups(Names=["tracing-no-such-group"])
        except elb.exceptions.TargetGroupNotFoundException:
            pass
        deployments = kube.Deployments(KubernetesSettings.model_validate_json(sys.argv[2]))
        assert deployments.read("blue") is None
        deployments.pods({"app": "sample-api"})
    tracing.shutdown()
    """
)


@pytest.fixture
async def receiver() -> AsyncIterator[OtlpReceiver]:
    r = OtlpReceiver()
    await r.start()
    try:
        yield r
    finally:
        await r.stop()


async def test_aws_and_kubernetes_calls_are_spans_of_the_caller(
    aws_settings: AwsSettings, kube: KubeCluster, receiver: OtlpReceiver
) -> None:
    k8s = KubernetesSettings(
        app="sample-api", image="img", namespace="tracing", kubeconfig=str(kube.kubeconfig)
    )
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-c",
        CALLS,
        aws_settings.model_dump_json(),
        k8s.model_dump_json(),
        cwd=REPO,
        env={**os.environ, **receiver.env(), "OTEL_SERVICE_NAME": "tracing-test"},
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    out, _ = await asyncio.wait_for(proc.communicate(), timeout=60)
    assert proc.returncode == 0, out.decode()

    spans = {s.name: s for s in receiver.spans}
    assert {s.service for s in receiver.spans} == {"tracing-test"}  # OTEL_SERVICE_NAME wins
    root = spans["calls"]
    assert all(s.parent_id == root.span_id for s in receiver.spans if s is not root)

    listed = spans["aws elbv2.DescribeLoadBalancers"]
    assert listed.attributes["rpc.service"] == "elbv2"
    assert listed.attributes["cloud.region"] == aws_settings.region
    assert listed.attributes["http.response.status_code"] == 200
    assert not listed.failed
    missing = spans["aws elbv2.DescribeTargetGroups"]
    assert missing.failed and missing.attributes["http.response.status_code"] == 400

    read = spans["kubernetes GET /apis/apps/v1/namespaces/{namespace}/deployments/{name}"]
    assert (read.attributes["k8s.namespace"], read.attributes["k8s.name"]) == ("tracing", "sample-api-blue")
    assert read.failed  # 404: the Deployment is not there (read() says None)
    pods = spans["kubernetes GET /api/v1/namespaces/{namespace}/pods"]
    assert pods.attributes["k8s.namespace"] == "tracing" and not pods.failed
    assert len(receiver.spans) == 5
