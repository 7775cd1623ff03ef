"""Kubernetes platform and router against kmock (a real HTTP server speaking the Kubernetes API).

kmock stores objects; it has no controllers, no generation, and ignores label selectors.
The harness (harness/cloud.py) plays the API server's ``metadata.generation`` and the
Deployment controller + kubelet (pods, ``status`` through the status subresource), so the
rollout logic is exercised against status written the way a cluster writes it — but the
pods, readiness and failure reasons are the harness's, not a kubelet's.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from kubernetes import client

from activities.platform.kubernetes import KubernetesPlatform
from activities.router.kubernetes import CANARY_WEIGHT, KubernetesRouter, NoReadyPods
from clients.kube import RolloutFailed
from engine.contracts import EnvironmentSpec, Instance, KubernetesSettings, Providers
from engine.errors import BadRequest
from harness.cloud import KubeCluster, make_routing, service_manifest, wait_for

NS = "shop"


def env_for(kube: KubeCluster, **changes: Any) -> EnvironmentSpec:
    return EnvironmentSpec(
        name="staging",
        providers=Providers(platform="kubernetes", router="kubernetes", analysis="cloudwatch"),
        instances=3,
        kubernetes=KubernetesSettings(
            app="sample-api",
            image="123456789012.dkr.ecr.eu-west-1.amazonaws.com/sample-api",
            namespace=NS,
            kubeconfig=str(kube.kubeconfig),
            rollout_timeout=timedelta(seconds=10),
            **changes,
        ),
    )


def platform_for(kube: KubeCluster) -> KubernetesPlatform:
    platform = KubernetesPlatform(env_for(kube))
    platform.deployments.poll = 0.05
    return platform


def test_start_waits_for_the_rollout_and_heartbeats(kube: KubeCluster) -> None:
    controller = kube.play_controller(delay=0.6)
    platform = platform_for(kube)
    progress: list[str] = []
    instances = platform.start(version="v1.2.0", pool="blue", count=3, progress=progress.append)

    d = kube.apps.read_namespaced_deployment("sample-api-blue", NS)
    assert d.spec.replicas == 3
    assert d.spec.template.spec.containers[0].image.endswith("/sample-api:v1.2.0")
    assert d.spec.selector.match_labels == {"app": "sample-api", "pool": "blue"}
    assert d.status.observed_generation == d.metadata.generation == 1
    assert progress and "generation 0/1" in progress[0]  # it waited (and reported) while the rollout ran
    assert [(i.pool, i.slot, i.version, i.healthy) for i in instances] == [
        ("blue", 0, "v1.2.0", True),
        ("blue", 1, "v1.2.0", True),
        ("blue", 2, "v1.2.0", True),
    ]
    assert all(i.address.endswith(":8080") for i in instances)

    # Patch (more replicas): generation 2, waited for again.
    progress.clear()
    platform.start(version="v1.2.0", pool="blue", count=4, progress=progress.append)
    d = kube.apps.read_namespaced_deployment("sample-api-blue", NS)
    assert (d.metadata.generation, d.status.observed_generation, d.status.ready_replicas) == (2, 2, 4)
    assert progress and "generation 1/2" in progress[0]

    # Scale through the scale subresource.
    platform.deployments.scale(pool="blue", count=2, progress=progress.append)
    assert kube.apps.read_namespaced_deployment("sample-api-blue", NS).status.available_replicas == 2
    assert len(platform.list_instances()) == 2

    # Stop deletes the Deployment; its pods go (the harness's garbage collector); idempotent.
    platform.stop(pool="blue")
    with pytest.raises(client.ApiException) as err:
        kube.apps.read_namespaced_deployment("sample-api-blue", NS)
    assert err.value.status == 404
    platform.stop(pool="blue")
    wait_for(lambda: platform.list_instances() == [])
    assert controller.errors == []


@pytest.mark.parametrize("failure", ["ImagePullBackOff", "CrashLoopBackOff", "ProgressDeadlineExceeded"])
def test_a_broken_rollout_fails_clearly(kube: KubeCluster, failure: str) -> None:
    controller = kube.play_controller()
    controller.failures["sample-api-green"] = failure
    with pytest.raises(RolloutFailed, match=failure.replace("ProgressDeadlineExceeded", "progress deadline")):
        platform_for(kube).start(version="v9.9.9", pool="green", count=2, progress=lambda _: None)


def test_scaling_a_missing_deployment_is_refused_before_any_change(kube: KubeCluster) -> None:
    with pytest.raises(BadRequest, match="no Deployment 'sample-api-green'"):
        platform_for(kube).deployments.scale(pool="green", count=2, progress=lambda _: None)
    assert kube.apps.list_namespaced_deployment(NS).items == []


def test_a_pool_running_another_version_is_refused(kube: KubeCluster) -> None:
    kube.play_controller()
    platform = platform_for(kube)
    platform.start(version="v1.0.0", pool="blue", count=1, progress=lambda _: None)
    with pytest.raises(BadRequest, match=r"runs v1\.0\.0"):
        platform.start(version="v2.0.0", pool="blue", count=1, progress=lambda _: None)
    image = kube.apps.read_namespaced_deployment("sample-api-blue", NS).spec.template.spec.containers[0].image
    assert image.endswith(":v1.0.0")


# ---- router --------------------------------------------------------------------------------------


def _members(*pools: str) -> dict[str, list[Instance]]:
    return {p: [Instance(pool=p, slot=0, version="v1", address="10.0.0.1:8080")] for p in pools}


def observed(kube: KubeCluster) -> tuple[str, str, str]:
    main = kube.core.read_namespaced_service("sample-api", NS).spec.selector["pool"]
    canary = kube.core.read_namespaced_service("sample-api-canary", NS).spec.selector["pool"]
    weight = kube.net.read_namespaced_ingress("sample-api-canary", NS).metadata.annotations[CANARY_WEIGHT]
    return main, canary, weight


def run_pools(kube: KubeCluster, **pools: int) -> dict[str, list[Instance]]:
    """Deployments per pool (pods Ready through the harness's controller)."""
    if kube.controller is None:
        kube.play_controller()
    platform = platform_for(kube)
    return {
        pool: platform.start(version="v1.0.0", pool=pool, count=count, progress=lambda _: None)
        for pool, count in pools.items()
    }


def test_canary_weights_then_blue_green_flip(kube: KubeCluster) -> None:
    make_routing(kube, NS)
    router = KubernetesRouter(env_for(kube))
    members = run_pools(kube, blue=1, green=1)
    for green in (10, 25, 50):
        assert router.set_traffic(weights={"blue": 100 - green, "green": green}, members=members) == {
            "blue": 100.0 - green,
            "green": float(green),
        }
        assert observed(kube) == ("blue", "green", str(green))
        assert router.read().weights == {"blue": 100.0 - green, "green": float(green)}
    router.set_traffic(weights={"blue": 0, "green": 100}, members=members)  # the blue-green flip
    assert observed(kube) == ("green", "green", "0")
    assert router.read().weights == {"green": 100.0}
    # The next release canaries blue against the new stable green.
    router.set_traffic(weights={"blue": 20, "green": 80}, members=members)
    assert observed(kube) == ("green", "blue", "20")


def test_missing_service_is_refused_before_any_change(kube: KubeCluster) -> None:
    kube.core.create_namespaced_service(NS, service_manifest("sample-api", "blue", NS))
    router = KubernetesRouter(env_for(kube))
    with pytest.raises(BadRequest, match="Service 'sample-api-canary' does not exist"):
        router.set_traffic(weights={"blue": 0, "green": 100}, members=_members("blue", "green"))
    assert kube.core.read_namespaced_service("sample-api", NS).spec.selector["pool"] == "blue"


def preview_pool(kube: KubeCluster) -> str:
    return str(kube.core.read_namespaced_service("sample-api-preview", NS).spec.selector["pool"])


def test_blue_green_preview_service_then_switch(kube: KubeCluster) -> None:
    make_routing(kube, NS)
    pods = run_pools(kube, blue=2, green=2)
    router = KubernetesRouter(env_for(kube))
    assert router.read_preview() == []
    router.set_preview(members=pods["green"])
    assert preview_pool(kube) == "green"
    # What it serves: the Ready pods its selector matches, the platform's instance addresses.
    assert router.read_preview() == sorted(i.address for i in pods["green"])
    assert set(router.read_preview()).isdisjoint(i.address for i in pods["blue"])
    assert kube.core.read_namespaced_service("sample-api", NS).spec.selector["pool"] == "blue"  # users
    assert router.preview_url() == "http://sample-api-preview.shop.svc.cluster.local:80"
    # The switch: the main Service's selector flips to green.
    router.set_traffic(weights={"blue": 0, "green": 100}, members={"blue": [], "green": pods["green"]})
    assert observed(kube) == ("green", "green", "0")
    router.set_preview(members=[])
    assert preview_pool(kube) == ""
    assert router.read_preview() == []


def test_no_traffic_to_a_pool_without_ready_pods(kube: KubeCluster) -> None:
    make_routing(kube, NS)
    run_pools(kube, blue=1)
    kube.controller.failures["sample-api-green"] = "CrashLoopBackOff"  # type: ignore[union-attr]
    with pytest.raises(RolloutFailed):
        platform_for(kube).start(version="v2.0.0", pool="green", count=1, progress=lambda _: None)
    router = KubernetesRouter(env_for(kube))
    with pytest.raises(NoReadyPods, match="green"):
        router.set_traffic(weights={"blue": 0, "green": 100}, members=_members("blue", "green"))
    assert kube.core.read_namespaced_service("sample-api", NS).spec.selector["pool"] == "blue"


def test_missing_preview_service_is_refused_before_any_change(kube: KubeCluster) -> None:
    kube.core.create_namespaced_service(NS, service_manifest("sample-api", "blue", NS))
    router = KubernetesRouter(env_for(kube))
    with pytest.raises(BadRequest, match="Service 'sample-api-preview' does not exist"):
        router.set_preview(members=_members("green")["green"])
    with pytest.raises(BadRequest, match="one pool"):
        router.set_preview(members=[*_members("green")["green"], *_members("blue")["blue"]])
    assert kube.core.read_namespaced_service("sample-api", NS).spec.selector["pool"] == "blue"
    with pytest.raises(BadRequest, match="a Service of its own"):
        KubernetesRouter(env_for(kube, preview_service="sample-api"))
