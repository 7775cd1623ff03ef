"""The ``kubernetes`` DR Regions provider against kmock (one cluster here, a Deployment per region).

The harness plays the Deployment controller (harness.cloud.DeploymentController); the
provider only talks to the Kubernetes API.
"""

from __future__ import annotations

import re
import socket
from pathlib import Path
from typing import Any

import pytest
import urllib3

from activities.regions.kubernetes import KubernetesRegions
from clients.kube import RolloutFailed
from engine.contracts import KubernetesSettings
from engine.contracts.dr import (
    DrProviders,
    DrSpec,
    KubernetesDrRegion,
    KubernetesDrSettings,
    KubernetesWorker,
)
from engine.errors import BadRequest
from harness.cloud import KubeCluster, wait_for
from harness.cloud_dr import deployment


def _spec(kube: KubeCluster) -> DrSpec:
    k8s = KubernetesSettings(app="sample-api", image="img", kubeconfig=str(kube.kubeconfig), context="kmock")
    regions = {
        r: KubernetesDrRegion(kubernetes=k8s, pool=pool, database_host=f"db-{r.lower()}:5432")
        for r, pool in (("A", "blue"), ("B", "green"))
    }
    return DrSpec(
        app="sample-api", environment="staging", version="v1.0.0", regions=["A", "B"],
        providers=DrProviders(database="postgres-local", global_entry="haproxy-local", regions="kubernetes"),
        instances=2, standby_instances=1, rpo_budget=5, health_check_interval=1, health_check_failures=3,
        auto_approve=False, synchronous_replication=False, catch_up_timeout=5,
        kubernetes=KubernetesDrSettings(regions=regions),
    )  # fmt: skip


def _names(kube: KubeCluster) -> list[str]:
    return sorted(d.metadata.name for d in kube.apps.list_deployment_for_all_namespaces().items)


def test_regions_scale_point_and_check_a_regions_deployment(kube: KubeCluster) -> None:
    kube.apps.create_namespaced_deployment(
        "default",
        deployment(
            "sample-api", "blue", "img:v1.0.0", 1, {"DATABASE_HOST": "db-a:5432", "DATABASE_NODE": "A"}
        ),
    )
    controller = kube.play_controller()
    regions = KubernetesRegions(_spec(kube))
    regions._cluster("A").poll = 0.05

    # B's Deployment does not exist: refused by name, nothing created or changed.
    with pytest.raises(BadRequest, match="no Deployment 'sample-api-green'"):
        regions.scale("B", 2, progress=lambda _: None)
    with pytest.raises(BadRequest, match="no Deployment 'sample-api-green'"):
        regions.use_database("B", "A")
    assert _names(kube) == ["sample-api-blue"] and regions.writes_to("A") == "A"

    seen: list[str] = []
    assert regions.scale("A", 2, progress=seen.append) == 2
    dep = kube.apps.read_namespaced_deployment("sample-api-blue", "default")
    assert dep.spec.replicas == 2 and dep.status.available_replicas == 2
    assert regions.health("A") == []

    regions.use_database("A", "B")
    env = {e.name: e.value for e in kube.apps.read_namespaced_deployment("sample-api-blue", "default")
           .spec.template.spec.containers[0].env}  # fmt: skip
    assert env == {"DATABASE_HOST": "db-b:5432", "DATABASE_NODE": "B"} and regions.writes_to("A") == "B"
    generation = kube.apps.read_namespaced_deployment("sample-api-blue", "default").metadata.generation
    regions.use_database("A", "B")  # idempotent: no new rollout
    assert (
        kube.apps.read_namespaced_deployment("sample-api-blue", "default").metadata.generation == generation
    )
    regions.use_database("A", None)
    assert regions.writes_to("A") is None

    # A crash-looping rollout: the region is unhealthy, scaling fails at once (not after a timeout).
    controller.failures["sample-api-blue"] = "CrashLoopBackOff"
    failures = wait_for(lambda: len(regions.health("A")) == 2 and regions.health("A"))
    assert "CrashLoopBackOff" in failures[0] and "no available replica" in failures[1]
    with pytest.raises(RolloutFailed, match="CrashLoopBackOff"):
        regions.scale("A", 2, progress=lambda _: None)


def test_a_region_whose_cluster_does_not_answer_does_not_block_a_failover(
    kube: KubeCluster, tmp_path: Path
) -> None:
    """A lost region: its API refuses connections (a closed port), the other region's answers."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        closed = s.getsockname()[1]
    dead = tmp_path / "dead-kubeconfig"
    dead.write_text(kube.kubeconfig.read_text().replace(kube.url, f"http://127.0.0.1:{closed}"))
    spec = _spec(kube)
    assert spec.kubernetes is not None
    b = spec.kubernetes.regions["B"]
    lost = b.model_copy(update={"kubernetes": b.kubernetes.model_copy(update={"kubeconfig": str(dead)})})
    spec = spec.model_copy(
        update={
            "kubernetes": spec.kubernetes.model_copy(
                update={"regions": {"A": spec.kubernetes.regions["A"], "B": lost}}
            )
        }
    )
    regions = KubernetesRegions(spec)
    assert regions.writes_to("B") is None  # observe still works
    regions.use_database("B", None)  # stopping its writes is left to the database fence (logged)
    with pytest.raises(urllib3.exceptions.HTTPError):
        regions.use_database("B", "A")  # pointing it somewhere is not silently skipped
    failures = regions.health("B")
    assert len(failures) == 1 and failures[0].startswith("cluster of B:")


def test_a_drifted_standby_is_converged_to_the_live_version_by_a_rolling_update(kube: KubeCluster) -> None:
    kube.apps.create_namespaced_deployment(
        "default", deployment("sample-api", "green", "img:v1.0.0", 2, {"DATABASE_NODE": "A"})
    )
    kube.play_controller()
    regions = KubernetesRegions(_spec(kube))
    regions._cluster("B").poll = 0.05
    assert regions.versions("B") == {"api": "v1.0.0"}

    seen: list[str] = []
    assert regions.converge("B", {"api": "v1.1.0"}, progress=seen.append) == {"api": "v1.1.0"}
    dep = kube.apps.read_namespaced_deployment("sample-api-green", "default")
    assert dep.spec.template.spec.containers[0].image == "img:v1.1.0"
    assert dep.spec.template.metadata.labels["version"] == "v1.1.0" and dep.status.available_replicas == 2
    assert {e.name: e.value for e in dep.spec.template.spec.containers[0].env} == {"DATABASE_NODE": "A"}
    generation = dep.metadata.generation
    assert regions.converge("B", {"api": "v1.1.0"}, progress=seen.append) == {"api": "v1.1.0"}  # idempotent
    assert (
        kube.apps.read_namespaced_deployment("sample-api-green", "default").metadata.generation == generation
    )
    # A worker where the region names no worker Deployment: refused by field, nothing changed.
    with pytest.raises(
        BadRequest, match=re.escape("region B has no worker Deployment (dr.kubernetes.regions.B.worker)")
    ):
        regions.converge("B", {"api": "v1.2.0", "worker": "v1.2.0"}, progress=seen.append)
    assert regions.versions("B") == {"api": "v1.1.0"}


def worker_deployment(version: str, replicas: int) -> dict[str, Any]:
    """The workers' own Deployment, as k8s/production/deployments.yaml defines it (one container
    named worker among others)."""
    labels = {"app.kubernetes.io/name": "claude-deployment-worker"}
    container = {"name": "worker", "image": f"img:{version}", "args": ["worker"]}
    sidecar = {"name": "log-shipper", "image": "fluent-bit:3"}
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {
            "name": "claude-deployment-worker",
            "namespace": "default",
            "labels": {**labels, "version": version},
        },
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": labels},
            "template": {"metadata": {"labels": labels}, "spec": {"containers": [sidecar, container]}},
        },
    }


def test_a_regions_workers_are_read_converged_and_scaled_by_their_own_deployment(kube: KubeCluster) -> None:
    """The worker Deployment of a region (dr.kubernetes.regions.R.worker): its version read with the
    api's, converged by a rolling update of its worker container only, scaled with the region."""
    for pool in ("blue", "green"):
        kube.apps.create_namespaced_deployment(
            "default", deployment("sample-api", pool, "img:v1.0.0", 1, {"DATABASE_NODE": "A"})
        )
    kube.apps.create_namespaced_deployment("default", worker_deployment("v1.0.0", 1))
    controller = kube.play_controller()
    spec = _spec(kube)
    assert spec.kubernetes is not None
    worker = KubernetesWorker(deployment="claude-deployment-worker", image="img", container="worker")
    with_workers = {r: c.model_copy(update={"worker": worker}) for r, c in spec.kubernetes.regions.items()}
    spec = spec.model_copy(
        update={"kubernetes": spec.kubernetes.model_copy(update={"regions": with_workers}), "workers": 2,
                "standby_workers": 1}
    )  # fmt: skip
    regions = KubernetesRegions(spec)
    regions._cluster("B").poll = 0.05
    assert regions.versions("B") == {"api": "v1.0.0", "worker": "v1.0.0"}

    seen: list[str] = []
    assert regions.converge("B", {"worker": "v1.1.0"}, progress=seen.append) == {
        "api": "v1.0.0",
        "worker": "v1.1.0",
    }
    dep = kube.apps.read_namespaced_deployment("claude-deployment-worker", "default")
    images = {c.name: c.image for c in dep.spec.template.spec.containers}
    assert images == {"log-shipper": "fluent-bit:3", "worker": "img:v1.1.0"}  # the sidecar untouched
    assert dep.metadata.labels["version"] == "v1.1.0" and dep.status.available_replicas == 1
    assert any("claude-deployment-worker" in line for line in seen)

    # The region where users go runs its full worker count; the api's size decides which.
    regions.scale("B", 2, progress=seen.append)
    assert (
        kube.apps.read_namespaced_deployment("claude-deployment-worker", "default").status.available_replicas
        == 2
    )
    regions.scale("B", 1, progress=seen.append)
    assert kube.apps.read_namespaced_deployment("claude-deployment-worker", "default").spec.replicas == 1

    # A worker version that crash-loops fails the converge at once, naming the pod.
    controller.failures["claude-deployment-worker"] = "CrashLoopBackOff"
    with pytest.raises(RolloutFailed, match="CrashLoopBackOff"):
        regions.converge("B", {"worker": "v1.2.0"}, progress=seen.append)


def test_the_home_regions_api_is_found_in_the_pool_a_release_moved_it_to(kube: KubeCluster) -> None:
    """dr.kubernetes.regions.A.pool says blue, but the last canary in A's cluster ended on green (and
    deleted blue): a failback to A scales, reads and checks green, not a Deployment that is gone."""
    kube.apps.create_namespaced_deployment(
        "home", deployment("sample-api", "green", "img:v2.0.0", 1, {"DATABASE_NODE": "A"}, namespace="home")
    )
    kube.play_controller()
    spec = _spec(kube)
    assert spec.kubernetes is not None
    home = spec.kubernetes.regions["A"]
    moved = home.model_copy(update={"kubernetes": home.kubernetes.model_copy(update={"namespace": "home"})})
    regions_conf = {**spec.kubernetes.regions, "A": moved}
    spec = spec.model_copy(
        update={"kubernetes": spec.kubernetes.model_copy(update={"regions": regions_conf})}
    )
    regions = KubernetesRegions(spec)
    regions._cluster("A").poll = 0.05
    assert moved.pool == "blue"
    assert regions.versions("A") == {"api": "v2.0.0"}
    assert regions.scale("A", 2, progress=lambda _: None) == 2
    green = kube.apps.read_namespaced_deployment("sample-api-green", "home")
    assert green.spec.replicas == 2 and green.status.available_replicas == 2
    assert regions.health("A") == [] and regions.writes_to("A") == "A"
    names = sorted(d.metadata.name for d in kube.apps.list_namespaced_deployment("home").items)
    assert names == ["sample-api-green"]  # nothing created in the configured pool
