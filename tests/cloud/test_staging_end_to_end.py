"""End to end on ``environment: staging``: the real CanaryRelease and BlueGreenRelease workflows
(the first canary as the child of the Release pipeline, which finds and promotes the image in
ECR), on a real Temporal dev server with an in-process worker, against the AWS and Kubernetes
providers.

The release spec comes from the repository's deploy-code.yaml through ``engine.config``
(``load_config`` / ``resolve_release``); only what points at real AWS and a real cluster is
overridden (moto's endpoint and the test's ALB/target group ARNs, kmock's kubeconfig, the
namespace and container port), and the analysis timings (CloudWatch's minute intervals
shrunk to fractions of a second). The workflows do not know they run on AWS: that is the point.

* platform ``kubernetes`` against kmock; the harness plays the Deployment controller and the
  kubelet with real processes: every pod is a sample-service process of the Deployment's
  image tag on its own loopback IP, so the smoke tests (``HttpSmoke``) really talk to the
  version the Deployment asked for; it also plays the AWS Load Balancer Controller
  (Ready pods registered in their pool's target group in moto);
* router ``alb`` against moto: weights are read back from moto by a watcher thread,
  independently of the router's own read-back (one blue-green runs with router
  ``kubernetes`` instead: Service selectors in kmock, recorded the same way);
* analysis ``cloudwatch`` against moto: the test publishes the canary version's 5xx ratio
  with ``put_metric_data`` (playing the service's metrics pipeline);
* smoke ``http``;
* images ``ecr`` against moto (``release.images`` of staging): CI's image put by the test;
  the Deployments' image is the production repository's URL, and the harness's kubelet pulls
  the tag from it (the pod's ``imageID`` is its digest; ImagePullBackOff while it is missing).
  Tests that run a strategy alone put the version there first, as a Release would have.

Not real here: moto's ALB serves no traffic, so blue-green's preview route cannot be
requested; the test sets ``preview_requests: 0`` and no pre-promotion analysis (which sends
traffic through the preview route). The preview route itself is still set and read back
(the previewed target group's registered targets must be green's pods) before the switch.
"""

from __future__ import annotations

import hashlib
import json
import os
import threading
import time
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from kubernetes import client as k8s
from temporalio.client import Client

import worker as worker_module
from activities.platform.kubernetes import KubernetesPlatform
from clients import aws
from engine import temporal
from engine.client import start_or_attach
from engine.config import REPO_ROOT, DeployConfig, load_config, resolve_release
from engine.contracts import AwsSettings, Phase, ReleaseResult, ReleaseSpec
from engine.contracts.pipeline import PipelineSpec
from engine.pipeline import resolve_pipeline
from harness.cloud import (
    KubeCluster,
    PodProcesses,
    TargetGroupBinding,
    create_network,
    make_routing,
    unique,
    wait_for,
)
from harness.cloud_dr import deployment
from harness.support import free_port
from infrastructure.local.layout import Layout
from infrastructure.local.temporal_server import TemporalServer

NS = "staging-e2e"
ACCOUNT = "123456789012"
"""moto's account: the repository URLs of its ECR."""
STABLE = "v1.0.0"
PRIMARY, STANDBY = "us-west-2", "us-east-1"
"""deploy-code.yaml's staging DR regions: the ALB and the strategy are in the primary's cluster."""
WORKER = "claude-deployment-worker"


def worker_deployment(image: str, version: str, replicas: int) -> dict[str, Any]:
    """The workers as k8s/production/deployments.yaml runs them (the api's image, args: worker)."""
    labels = {"app.kubernetes.io/name": WORKER}
    worker = {"name": "worker", "image": f"{image}:{version}", "args": ["worker"]}
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": WORKER, "namespace": NS, "labels": {**labels, "version": version}},
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": labels},
            "template": {"metadata": {"labels": labels}, "spec": {"containers": [worker]}},
        },
    }


# --------------------------------------------------------------------------- #
# Temporal and the worker
# --------------------------------------------------------------------------- #


@pytest.fixture(scope="module")
def temporal_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TemporalServer]:
    server = TemporalServer(Layout.for_tests(tmp_path_factory.mktemp("temporal")))
    try:
        server.start()
        yield server
    finally:
        server.stop()


@pytest.fixture
async def client(temporal_server: TemporalServer) -> Client:
    return await temporal.connect(target_host=temporal_server.address)


@pytest.fixture
async def task_queue(client: Client) -> AsyncIterator[str]:
    """A worker of the engine, in process, on the test's own task queue."""
    queue = f"staging-{uuid.uuid4().hex[:10]}"
    async with worker_module.running(client, queue):
        yield queue


# --------------------------------------------------------------------------- #
# The staging environment: an ALB in moto, a cluster in kmock, pods as processes
# --------------------------------------------------------------------------- #


class Watcher(threading.Thread):
    """Polls moto for the listeners' actions; keeps each change with its time (monotonic)."""

    def __init__(self, elb: Any, listener: str, preview: str, groups: dict[str, str]) -> None:
        super().__init__(daemon=True, name="alb-watcher")
        self.elb, self.listener, self.preview = elb, listener, preview
        self.by_arn = {arn: pool for pool, arn in groups.items()}
        self.weights: list[tuple[float, dict[str, int]]] = []
        self.previews: list[tuple[float, str | None]] = []
        self._done = threading.Event()

    def _read(self, arn: str) -> dict[str, Any]:
        return dict(self.elb.describe_listeners(ListenerArns=[arn])["Listeners"][0]["DefaultActions"][0])

    def run(self) -> None:
        while not self._done.wait(0.03):
            action = self._read(self.listener)
            weights = {
                self.by_arn[g["TargetGroupArn"]]: g["Weight"] for g in action["ForwardConfig"]["TargetGroups"]
            }
            if not self.weights or self.weights[-1][1] != weights:
                self.weights.append((time.monotonic(), weights))
            preview = self._read(self.preview)
            pool = None
            if preview["Type"] == "forward":
                pool = self.by_arn[preview["ForwardConfig"]["TargetGroups"][0]["TargetGroupArn"]]
            if not self.previews or self.previews[-1][1] != pool:
                self.previews.append((time.monotonic(), pool))

    def stop(self) -> None:
        self._done.set()
        self.join(10)

    def green_share(self) -> list[int]:
        return [w.get("green", 0) for _, w in self.weights]


class MetricsPipeline(threading.Thread):
    """Publishes a version's 5xx ratio to CloudWatch every 0.2 s, as the service's EMF logs would."""

    def __init__(self, cloudwatch: Any, app: str) -> None:
        super().__init__(daemon=True, name="metrics-pipeline")
        self.cloudwatch, self.app = cloudwatch, app
        self.ratios: dict[str, float] = {}
        self._done = threading.Event()

    def run(self) -> None:
        while not self._done.wait(0.2):
            for version, ratio in list(self.ratios.items()):
                self.cloudwatch.put_metric_data(
                    Namespace=self.app,
                    MetricData=[
                        {
                            "MetricName": "http_5xx_ratio",
                            "Dimensions": [{"Name": "Version", "Value": version}],
                            "Value": ratio,
                            "Timestamp": datetime.now(UTC),
                        }
                    ],
                )

    def stop(self) -> None:
        self._done.set()
        self.join(10)


@dataclass
class Staging:
    config: DeployConfig
    elb: Any
    ecr: Any
    groups: dict[str, str]
    listener: str
    preview: str
    kube: KubeCluster
    standby: KubeCluster
    """The standby region's cluster (us-east-1): its api's Deployment and its workers', no traffic."""
    pods: PodProcesses
    watcher: Watcher
    metrics: MetricsPipeline
    port: int
    repositories: dict[str, str]
    versions: list[str] = field(default_factory=list)

    def spec(self, version: str, strategy: str) -> ReleaseSpec:
        return resolve_release(self.config, version, strategy, "staging", requested_by="pytest")

    def pipeline(self, version: str, strategy: str) -> PipelineSpec:
        """The release pipeline around the strategy, as ``starters/deploy.py --pipeline`` resolves it."""
        return resolve_pipeline(self.config, self.spec(version, strategy))

    def platform(self) -> KubernetesPlatform:
        return KubernetesPlatform(self.spec(STABLE, "canary").environment)

    def weights(self) -> dict[str, int]:
        action = self.elb.describe_listeners(ListenerArns=[self.listener])["Listeners"][0]["DefaultActions"][
            0
        ]
        by_arn = {arn: pool for pool, arn in self.groups.items()}
        return {by_arn[g["TargetGroupArn"]]: g["Weight"] for g in action["ForwardConfig"]["TargetGroups"]}

    def put_image(self, repository: str, version: str) -> str:
        """A build of ``version`` under its tag in an ECR repository; its digest."""
        manifest = json.dumps(
            {
                "schemaVersion": 2,
                "mediaType": "application/vnd.docker.distribution.manifest.v2+json",
                "config": {
                    "mediaType": "application/vnd.docker.container.image.v1+json",
                    "size": len(version),
                    "digest": "sha256:" + hashlib.sha256(version.encode()).hexdigest(),
                },
                "layers": [],
            }
        )
        digest = "sha256:" + hashlib.sha256(manifest.encode()).hexdigest()
        self.ecr.put_image(
            repositoryName=repository, imageManifest=manifest, imageTag=version, imageDigest=digest
        )
        return digest

    def promoted(self, version: str) -> str:
        """``version`` in the production repository, as an earlier Release pipeline left it."""
        return self.put_image(self.repositories["production"], version)

    def pull(self, image: str) -> str | None:
        """The kubelet's pull from ECR: ``ACCOUNT.dkr.ecr.REGION.amazonaws.com/REPO:TAG`` -> digest."""
        reference, tag = image.rsplit(":", 1)
        repository = reference.split("/", 1)[1]
        found = self.ecr.batch_get_image(repositoryName=repository, imageIds=[{"imageTag": tag}])["images"]
        return str(found[0]["imageId"]["imageDigest"]) if found else None

    def targets(self, pool: str) -> list[str]:
        health = self.elb.describe_target_health(TargetGroupArn=self.groups[pool])["TargetHealthDescriptions"]
        return sorted(f"{t['Target']['Id']}:{t['Target']['Port']}" for t in health)

    def deployment(self, pool: str) -> Any | None:
        try:
            return self.kube.apps.read_namespaced_deployment(f"sample-api-{pool}", NS)
        except k8s.ApiException as exc:
            if exc.status == 404:
                return None
            raise

    def only(self, pool: str) -> list[Any]:
        """The instances, once every pod left is ``pool``'s (garbage collection is asynchronous)."""

        def settled() -> list[Any]:
            instances = self.platform().list_instances()
            return instances if {i.pool for i in instances} == {pool} else []

        return list(wait_for(settled))

    def running(self, region: str, deployment: str) -> tuple[str, str, int]:
        """(image tag, version label, ready replicas) of a Deployment in a region's cluster."""
        cluster = self.kube if region == PRIMARY else self.standby
        d = cluster.apps.read_namespaced_deployment(deployment, NS)
        containers = {c.name: c.image for c in d.spec.template.spec.containers}
        image = containers.get("worker", containers.get("sample-api", ""))
        ready = int((d.status and d.status.ready_replicas) or 0)
        return image.rsplit(":", 1)[-1], d.metadata.labels["version"], ready

    def answers(self, address: str) -> str | None:
        """The version a pod's process answers with (None when nothing answers there)."""
        try:
            return httpx.get(f"http://{address}/", timeout=2).headers.get("x-version")
        except httpx.HTTPError:
            return None


def staging_config(
    moto: str,
    alb: dict[str, Any],
    kubeconfigs: dict[str, Path],
    port: int,
    repositories: dict[str, str],
) -> DeployConfig:
    """deploy-code.yaml's staging environment, aimed at moto and a kmock per region (the DR
    regions' clusters: the primary's is the environment's own), analysis timings shrunk."""
    data = load_config().model_dump()
    env = data["environments"]["staging"]
    kubeconfig = kubeconfigs[PRIMARY]
    for region, conf in env["dr"]["kubernetes"]["regions"].items():
        # Each region's ECR repository of the production images (the kubelet of the primary pulls).
        image = f"{ACCOUNT}.dkr.ecr.{region}.amazonaws.com/{repositories['production']}"
        conf["worker"]["image"] = image
        conf["kubernetes"].update(
            image=image,
            kubeconfig=str(kubeconfigs[region]),
            context="kmock",
            namespace=NS,
            rollout_timeout=timedelta(seconds=60),
        )
    env["aws"].update(
        endpoint_url=moto,
        listener_arn=alb["listener"],
        preview_listener_arn=alb["preview"],
        target_groups=alb["groups"],
        max_attempts=4,
    )
    env["kubernetes"].update(
        kubeconfig=str(kubeconfig),
        in_cluster=False,
        namespace=NS,
        container_port=port,
        image=f"{ACCOUNT}.dkr.ecr.{env['aws']['region']}.amazonaws.com/{repositories['production']}",
        rollout_timeout=timedelta(seconds=60),
    )
    env["release"]["images"].update(
        ci_repository=repositories["ci"], production_repository=repositories["production"]
    )
    strategies = env["strategies"]
    strategies["canary"]["background_analysis"]["chunk"] = timedelta(seconds=2)
    # moto's ALB answers no requests: nothing can be sent through the preview listener.
    strategies["blue_green"].update(
        preview_requests=0,
        pre_promotion_analysis=None,
        auto_promotion_delay=timedelta(seconds=1),
        scale_down_delay=timedelta(seconds=1),
    )
    for name, template in data["analysis_templates"].items():
        if name.startswith("cloudwatch-"):
            for metric in template["metrics"]:
                metric["interval"] = timedelta(seconds=0.4)
                metric["initial_delay"] = timedelta(seconds=0.4) if metric["count"] is None else timedelta(0)
    return DeployConfig.model_validate(data)


@pytest.fixture(scope="module")
def region_network(moto_url: str) -> dict[str, Any]:
    """A VPC and two subnets in the staging region of deploy-code.yaml."""
    region = load_config().environments["staging"].aws.region  # type: ignore[union-attr]
    return create_network(moto_url, region, block=1)


@pytest.fixture
def staging(
    moto: str, region_network: dict[str, Any], kube: KubeCluster, tmp_path: Path
) -> Iterator[Staging]:
    settings = AwsSettings(region=region_network["region"], endpoint_url=moto)
    elb = aws.client(settings, "elbv2")
    port = free_port()
    name = unique("stg")
    lb = elb.create_load_balancer(Name=name, Subnets=region_network["subnets"])["LoadBalancers"][0][
        "LoadBalancerArn"
    ]
    groups = {
        pool: elb.create_target_group(
            Name=f"{name}-{pool}", Protocol="HTTP", Port=port, VpcId=region_network["vpc"], TargetType="ip"
        )["TargetGroups"][0]["TargetGroupArn"]
        for pool in ("blue", "green")
    }
    forward = {
        "Type": "forward",
        "ForwardConfig": {
            "TargetGroups": [
                {"TargetGroupArn": groups["blue"], "Weight": 100},
                {"TargetGroupArn": groups["green"], "Weight": 0},
            ]
        },
    }
    listener = elb.create_listener(LoadBalancerArn=lb, Protocol="HTTP", Port=80, DefaultActions=[forward])[
        "Listeners"
    ][0]["ListenerArn"]
    nothing = {
        "Type": "fixed-response",
        "FixedResponseConfig": {"StatusCode": "503", "ContentType": "text/plain"},
    }
    preview = elb.create_listener(LoadBalancerArn=lb, Protocol="HTTP", Port=8443, DefaultActions=[nothing])[
        "Listeners"
    ][0]["ListenerArn"]
    alb = {"listener": listener, "preview": preview, "groups": groups}

    ecr = aws.client(settings, "ecr")
    repositories = {"ci": unique("ci/sample-api"), "production": unique("sample-api")}
    ecr.create_repository(repositoryName=repositories["ci"], imageTagMutability="MUTABLE")
    ecr.create_repository(repositoryName=repositories["production"], imageTagMutability="IMMUTABLE")
    pods = PodProcesses(tmp_path, port)
    watcher = Watcher(aws.client(settings, "elbv2"), listener, preview, groups)
    metrics = MetricsPipeline(aws.client(settings, "cloudwatch"), "sample-api")
    (tmp_path / "standby").mkdir()
    standby = KubeCluster(tmp_path / "standby")
    standby.start()
    kubeconfigs = {PRIMARY: kube.kubeconfig, STANDBY: standby.kubeconfig}
    config = staging_config(moto, alb, kubeconfigs, port, repositories)
    s = Staging(
        config, elb, ecr, groups, listener, preview, kube, standby, pods, watcher, metrics, port, repositories
    )
    bindings = TargetGroupBinding(elb, groups, app="sample-api", port=port)
    kube.play_controller(pods=pods, bindings=bindings, pull=s.pull)
    s.promoted(STABLE)
    # The release before this one: STABLE in blue (as a previous release left it), registered.
    s.platform().start(version=STABLE, pool="blue", count=3, progress=lambda _: None)
    wait_for(lambda: len(s.targets("blue")) == 3)
    # The workers in both regions (k8s/production's claude-deployment-worker), and the standby's api
    # at its standby size: all on STABLE, as the previous release left them.
    dr = config.environments["staging"].dr
    assert dr is not None and dr.kubernetes is not None
    standby.play_controller()
    for region, cluster, workers in ((PRIMARY, kube, 2), (STANDBY, standby, 1)):
        conf = dr.kubernetes.regions[region]
        assert conf.worker is not None
        cluster.apps.create_namespaced_deployment(NS, worker_deployment(conf.worker.image, STABLE, workers))
    standby_api = dr.kubernetes.regions[STANDBY].kubernetes.image
    standby.apps.create_namespaced_deployment(
        NS, deployment("sample-api", "blue", f"{standby_api}:{STABLE}", 1, {}, namespace=NS)
    )
    for region in (PRIMARY, STANDBY):
        wait_for(lambda region=region: s.running(region, WORKER)[2] == (2 if region == PRIMARY else 1))
    metrics.start()
    watcher.start()
    try:
        yield s
    finally:
        watcher.stop()
        metrics.stop()
        standby.stop()
        kube.stop()  # stops the controller, which stops every pod process
        assert pods.alive() == []


async def run(client: Client, spec: ReleaseSpec | PipelineSpec, task_queue: str) -> ReleaseResult:
    handle, attached = await start_or_attach(client, spec, task_queue=task_queue)
    assert not attached
    return await handle.result()


def decisions(result: ReleaseResult) -> list[str]:
    return [d.what for d in result.status.decisions]


# --------------------------------------------------------------------------- #
# The tests
# --------------------------------------------------------------------------- #


async def test_release_pipeline_on_staging_promotes_in_ecr_then_canaries_on_the_alb(
    staging: Staging, client: Client, task_queue: str
) -> None:
    """The Release workflow: image found in ECR's CI repository, promoted by digest, the canary
    (CanaryRelease, as its child) shifts the ALB step by step, post-deployment smoke passes."""
    version = f"v2.{uuid.uuid4().int % 1000}.0"
    pipeline = staging.pipeline(version, "canary")
    image = pipeline.image
    assert image is not None and image.provider == "ecr"
    digest = staging.put_image(image.ci_repository, version)  # CI's build; production has no such tag yet
    staging.metrics.ratios[version] = 0.0  # healthy canary
    blue_addresses = [i.address for i in staging.platform().list_instances() if i.pool == "blue"]
    assert {staging.answers(a) for a in blue_addresses} == {STABLE}

    result = await run(client, pipeline, task_queue)

    assert result.outcome == "succeeded", decisions(result)
    assert result.status.phase == Phase.SUCCEEDED
    stages = {st.name: st.verdict for st in result.status.stages}
    assert stages["image promotion"] == stages["strategy"] == stages["post-deployment"] == "passed", stages
    # The pipeline verified the live image from the pods' imageID (not "not verified").
    post = next(st for st in result.status.stages if st.name == "post-deployment")
    assert post.measurements["live_image"] == f"3 instance(s) of {version} run {digest}", post.measurements
    # ECR: the production tag is CI's digest, read back from moto.
    stored = staging.ecr.batch_get_image(
        repositoryName=image.production_repository, imageIds=[{"imageTag": version}]
    )["images"]
    assert [i["imageId"]["imageDigest"] for i in stored] == [digest]
    # Every step of deploy-code.yaml's staging canary, read back from moto as it happened.
    assert staging.watcher.green_share() == [0, 10, 50, 100]
    assert staging.weights() == {"blue": 0, "green": 100}
    # The analysis really read CloudWatch (values published by the test).
    assert any("analysis passed" in d for d in decisions(result))
    # Kubernetes: green runs the version at full size; blue's Deployment is deleted.
    green = staging.deployment("green")
    assert green is not None
    repository_url = staging.config.environments["staging"].kubernetes.image  # type: ignore[union-attr]
    assert green.spec.template.spec.containers[0].image == f"{repository_url}:{version}"
    assert (green.spec.replicas, green.status.ready_replicas) == (3, 3)
    assert staging.deployment("blue") is None
    # Its pods run the promoted digest: the (played) kubelet pulled the tag from production ECR.
    pods = [
        p for p in staging.kube.core.list_namespaced_pod(NS).items if p.metadata.labels.get("pool") == "green"
    ]
    assert len(pods) == 3  # kmock ignores label selectors: filtered here
    assert {p.status.container_statuses[0].image_id for p in pods} == {f"{repository_url}@{digest}"}
    # The pods are processes of that version; blue's processes are gone and deregistered.
    instances = staging.only("green")
    assert {staging.answers(i.address) for i in instances} == {version}
    wait_for(lambda: staging.targets("blue") == [])
    assert staging.targets("green") == sorted(i.address for i in instances)
    assert {staging.answers(a) for a in blue_addresses} == {None}
    # The whole app: after the api here, the workers here, then the standby region's api and workers,
    # each by a rolling update of its Deployment (the standby stays at its standby size).
    assert [(t.component, t.region, t.verdict) for t in result.status.targets] == [
        ("api", PRIMARY, "released"),
        ("worker", PRIMARY, "released"),
        ("api", STANDBY, "released"),
        ("worker", STANDBY, "released"),
    ]
    assert staging.running(PRIMARY, WORKER) == (version, version, 2)
    assert staging.running(STANDBY, "sample-api-blue") == (version, version, 1)
    assert staging.running(STANDBY, WORKER) == (version, version, 1)


async def test_a_worker_crash_looping_in_the_standby_region_rolls_the_whole_app_back(
    staging: Staging, client: Client, task_queue: str
) -> None:
    """The last target fails (the standby's workers crash-loop on the new version): it goes back,
    then everything released before it, latest first; users end on the previous version."""
    version = f"v4.{uuid.uuid4().int % 1000}.0"
    staging.put_image(staging.repositories["ci"], version)
    staging.metrics.ratios[version] = 0.0
    assert staging.standby.controller is not None
    staging.standby.controller.failures[f"{WORKER}@{version}"] = "CrashLoopBackOff"

    result = await run(client, staging.pipeline(version, "canary"), task_queue)

    assert result.outcome == "rolled_back", decisions(result)
    assert result.reason.startswith(f"worker in {STANDBY}: ") and "CrashLoopBackOff" in result.reason
    assert [(t.component, t.region, t.verdict) for t in result.status.targets] == [
        ("api", PRIMARY, "restored"),
        ("worker", PRIMARY, "restored"),
        ("api", STANDBY, "restored"),
        ("worker", STANDBY, "restored"),
    ]
    restores = [d for d in decisions(result) if d.startswith("restore ") or " restore " in d]
    order = [f"worker in {STANDBY}", f"api in {STANDBY}", f"worker in {PRIMARY}", f"api in {PRIMARY}"]
    firsts = [next(i for i, d in enumerate(restores) if what in d) for what in order]
    assert firsts == sorted(firsts), restores  # latest first
    assert staging.running(STANDBY, WORKER) == (STABLE, STABLE, 1)
    assert staging.running(STANDBY, "sample-api-blue") == (STABLE, STABLE, 1)
    assert staging.running(PRIMARY, WORKER) == (STABLE, STABLE, 2)
    # Users: the ALB sends everything to one pool, whose pods answer with the previous version.
    live = next(pool for pool, weight in staging.weights().items() if weight == 100)
    assert {staging.answers(i.address) for i in staging.only(live)} == {STABLE}
    if os.environ.get("DEPLOY_RECORD_HISTORIES"):  # tests/engine/test_replay.py replays it
        history = await client.get_workflow_handle(
            temporal.release_workflow_id("sample-api", "staging")
        ).fetch_history()
        stored = REPO_ROOT / "tests" / "engine" / "histories" / "release_kubernetes_rolled_back"
        stored.with_suffix(".json").write_text(history.to_json())
        stored.with_suffix(".workflow-id").write_text(history.workflow_id + "\n")


async def test_failing_cloudwatch_analysis_rolls_the_canary_back(
    staging: Staging, client: Client, task_queue: str
) -> None:
    version = f"v3.{uuid.uuid4().int % 1000}.0"
    staging.promoted(version)
    staging.metrics.ratios[version] = 0.25  # a quarter of the canary's requests fail

    result = await run(client, staging.spec(version, "canary"), task_queue)

    assert result.outcome == "rolled_back", decisions(result)
    assert "analysis cloudwatch-5xx-ratio failed" in result.reason
    assert staging.watcher.green_share() == [0, 10, 0]  # never past the first step, then back
    assert staging.weights() == {"blue": 100, "green": 0}
    assert staging.deployment("green") is None
    blue = staging.deployment("blue")
    assert blue is not None and blue.status.ready_replicas == 3
    instances = staging.only("blue")
    assert len(instances) == 3
    assert {staging.answers(i.address) for i in instances} == {STABLE}
    wait_for(lambda: staging.targets("green") == [])


async def test_blue_green_on_staging_switches_after_the_preview_is_verified(
    staging: Staging, client: Client, task_queue: str
) -> None:
    version = f"v4.{uuid.uuid4().int % 1000}.0"
    staging.promoted(version)
    staging.metrics.ratios[version] = 0.0

    result = await run(client, staging.spec(version, "blue-green"), task_queue)

    assert result.outcome == "succeeded", decisions(result)
    # One switch, no split in between; read back from moto.
    assert staging.watcher.green_share() == [0, 100]
    switched_at = staging.watcher.weights[1][0]
    # The preview listener forwarded to green before the switch, and serves nothing afterwards.
    assert [pool for _, pool in staging.watcher.previews] == [None, "green", None]
    previewed_at = staging.watcher.previews[1][0]
    assert previewed_at < switched_at
    steps = decisions(result)
    preview = next(i for i, d in enumerate(steps) if d.startswith("preview route serves green only"))
    smoke = next(i for i, d in enumerate(steps) if d.startswith("smoke check passed on 3"))
    switch = next(i for i, d in enumerate(steps) if d.startswith("switching users"))
    assert smoke < preview < switch
    assert "router reads back 3 instances" in steps[preview]
    assert any(d.startswith("analysis passed") for d in steps[switch:])  # post-promotion, CloudWatch
    # Green at full size answers with the version; blue is retired.
    instances = staging.only("green")
    assert {staging.answers(i.address) for i in instances} == {version}
    assert staging.deployment("blue") is None
    wait_for(lambda: staging.targets("blue") == [])


class Recorder(threading.Thread):
    """Polls ``read`` every 30 ms; keeps each change of its value with its time (monotonic)."""

    def __init__(self, read: Callable[[], Any]) -> None:
        super().__init__(daemon=True, name="recorder")
        self.read = read
        self.changes: list[tuple[float, Any]] = []
        self._done = threading.Event()

    def run(self) -> None:
        while not self._done.wait(0.03):
            value = self.read()
            if not self.changes or self.changes[-1][1] != value:
                self.changes.append((time.monotonic(), value))

    def __enter__(self) -> Recorder:
        self.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._done.set()
        self.join(10)

    def values(self) -> list[Any]:
        return [v for _, v in self.changes]


async def test_blue_green_on_staging_with_the_kubernetes_router_flips_the_service_selector(
    staging: Staging, client: Client, task_queue: str
) -> None:
    """The same workflow, the same staging environment, another router: Services instead of the ALB."""
    kube = staging.kube
    make_routing(kube, NS)
    data = staging.config.model_dump()
    data["environments"]["staging"]["providers"]["router"] = "kubernetes"
    config = DeployConfig.model_validate(data)
    version = f"v5.{uuid.uuid4().int % 1000}.0"
    staging.promoted(version)
    staging.metrics.ratios[version] = 0.0

    def selector(name: str) -> str:
        return str(kube.core.read_namespaced_service(name, NS).spec.selector["pool"])

    with (
        Recorder(lambda: selector("sample-api")) as main,
        Recorder(lambda: selector("sample-api-preview")) as pre,
    ):
        spec = resolve_release(config, version, "blue-green", "staging", requested_by="pytest")
        result = await run(client, spec, task_queue)

    assert result.outcome == "succeeded", decisions(result)
    assert main.values() == ["blue", "green"]  # one flip of the users' Service
    assert pre.values() == ["", "green", ""]  # the preview Service selected green, then nothing
    assert pre.changes[1][0] < main.changes[1][0]  # green was previewed before the flip
    steps = decisions(result)
    preview = next(i for i, d in enumerate(steps) if d.startswith("preview route serves green only"))
    assert "router reads back 3 instances" in steps[preview]
    assert preview < next(i for i, d in enumerate(steps) if d.startswith("switching users"))
    assert staging.watcher.green_share() == [0]  # the ALB was never touched
    instances = staging.only("green")
    assert {staging.answers(i.address) for i in instances} == {version}
    assert staging.deployment("blue") is None


async def test_blue_green_with_a_missing_preview_listener_fails_before_any_change(
    staging: Staging, client: Client, task_queue: str
) -> None:
    """A preview listener that does not exist is refused when the release observes, not after
    green has started."""
    data = staging.config.model_dump()
    data["environments"]["staging"]["aws"]["preview_listener_arn"] = staging.preview[:-4] + "dead"
    config = DeployConfig.model_validate(data)
    version = f"v6.{uuid.uuid4().int % 1000}.0"

    spec = resolve_release(config, version, "blue-green", "staging", requested_by="pytest")
    result = await run(client, spec, task_queue)

    assert result.outcome == "failed", decisions(result)
    assert "ListenerNotFound" in result.reason
    assert "failed before any change" in decisions(result)
    assert staging.deployment("green") is None
    assert [pool for _, pool in staging.watcher.previews] == [None]
    assert staging.watcher.green_share() == [0]
    # No process of the new version ran (3 api pods and the 2 workers of the fixture, all STABLE).
    assert [v for _, _, v in staging.pods.started] == [STABLE] * 5


async def test_a_version_missing_from_production_ecr_cannot_start_and_is_rolled_back(
    staging: Staging, client: Client, task_queue: str
) -> None:
    """The strategy alone, for a version CI built but nobody promoted: its pods cannot pull the
    image from the production repository (ImagePullBackOff), the rollout fails at once."""
    version = f"v7.{uuid.uuid4().int % 1000}.0"
    staging.put_image(staging.repositories["ci"], version)  # built, not promoted

    result = await run(client, staging.spec(version, "canary"), task_queue)

    assert result.outcome == "rolled_back", decisions(result)
    assert "ImagePullBackOff" in result.reason
    assert staging.watcher.green_share() == [0]  # no traffic ever moved
    assert staging.deployment("green") is None
    assert version not in {v for _, _, v in staging.pods.started}  # no process of it ever ran
    assert {staging.answers(i.address) for i in staging.only("blue")} == {STABLE}
