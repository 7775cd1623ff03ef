"""Platform provider: one Kubernetes Deployment per pool (``clients.kube.Deployments``).

``{app}-{pool}`` runs the version's image (``kubernetes.image:VERSION``) with the labels
``app``, ``pool`` and ``version``; the pods are the instances (address: pod IP and
container port, slot: the pod's index in name order). ``start`` creates or patches the
Deployment and waits for its rollout (``Deployments.wait_for_rollout``: observed
generation caught up, updated/ready/available = replicas; fails at once on a broken pod
or a passed progress deadline), reporting progress (the activity heartbeats).
"""

from __future__ import annotations

from typing import Any

from activities.interfaces import Progress
from clients import kube
from engine.contracts import EnvironmentSpec, Instance


class KubernetesPlatform:
    """Start, scale, stop and list the pods of a version per pool."""

    def __init__(self, env: EnvironmentSpec) -> None:
        self._settings = kube.settings_for(env)
        self.deployments = kube.Deployments(self._settings)

    def list_instances(self) -> list[Instance]:
        out = []
        by_pool: dict[str, int] = {}
        for pod in self.deployments.pods({"app": self._settings.app}):
            labels = pod.metadata.labels or {}
            pool = labels.get("pool")
            if not pool or pod.metadata.deletion_timestamp or not (pod.status and pod.status.pod_ip):
                continue
            slot = by_pool[pool] = by_pool.get(pool, -1) + 1
            out.append(
                Instance(
                    pool=pool,
                    slot=slot,
                    version=labels.get("version", "unknown"),
                    address=f"{pod.status.pod_ip}:{self._settings.container_port}",
                    healthy=_ready(pod),
                )
            )
        return out

    def running_images(self) -> dict[str, set[str]]:
        """Per pool, the digests in the ``imageID`` of its pods' running containers (``repo@sha256:...``,
        as the kubelet reports what it pulled); pods not yet running report nothing."""
        out: dict[str, set[str]] = {}
        for pod in self.deployments.pods({"app": self._settings.app}):
            pool = (pod.metadata.labels or {}).get("pool")
            if not pool or pod.metadata.deletion_timestamp:
                continue
            for status in (pod.status and pod.status.container_statuses) or []:
                _, at, digest = (status.image_id or "").rpartition("@")
                if at and digest.startswith("sha256:"):
                    out.setdefault(pool, set()).add(digest)
        return out

    def start(self, *, version: str, pool: str, count: int, progress: Progress) -> list[Instance]:
        self.deployments.apply(version=version, pool=pool, count=count, progress=progress)
        return [i for i in self.list_instances() if i.pool == pool]

    def stop(self, *, pool: str, slots: list[int] | None = None) -> None:
        self.deployments.stop(pool=pool, slots=slots)


def _ready(pod: Any) -> bool:
    return any(c.type == "Ready" and c.status == "True" for c in (pod.status and pod.status.conditions) or [])
