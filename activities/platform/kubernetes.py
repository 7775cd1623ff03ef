"""Platform provider: one Kubernetes Deployment per pool.

``{app}-{pool}`` runs the version's image (``kubernetes.image:VERSION``) with the labels
``app``, ``pool`` and ``version``; the pods are the instances (address: pod IP and
container port, slot: the pod's index in name order). ``start`` creates or patches the
Deployment and waits for its rollout the way ``kubectl rollout status`` does:
``status.observedGeneration`` has caught up with ``metadata.generation`` and the updated,
ready and available replica counts equal the replicas asked. While it waits it reports
progress (the activity heartbeats); it fails at once, without waiting for the timeout, when
a pod of the Deployment is in ImagePullBackOff / ErrImagePull / CrashLoopBackOff or the
Deployment's Progressing condition says ProgressDeadlineExceeded.
"""

from __future__ import annotations

import time
from typing import Any

from kubernetes import client

from activities.cloud import kube
from activities.interfaces import BadRequest, Progress
from engine.contracts import EnvironmentSpec, Instance

POLL = 0.5
"""Seconds between two reads of a rollout."""
BROKEN_REASONS = frozenset(
    {"ImagePullBackOff", "ErrImagePull", "InvalidImageName", "CrashLoopBackOff", "CreateContainerConfigError"}
)


class RolloutFailed(BadRequest):
    """A rollout that cannot finish by waiting longer (bad image, crashing container, deadline):
    not retried; the release rolls back."""


class RolloutTimeout(RuntimeError):
    """The rollout has not finished within ``kubernetes.rollout_timeout`` (retryable)."""


class KubernetesPlatform:
    """Start, scale, stop and list the pods of a version per pool."""

    def __init__(self, env: EnvironmentSpec) -> None:
        self._settings = kube.settings_for(env)
        api = kube.api_client(self._settings)
        self._apps = client.AppsV1Api(api)
        self._core = client.CoreV1Api(api)
        self._ns = self._settings.namespace
        self.poll = POLL

    def name(self, pool: str) -> str:
        return f"{self._settings.app}-{pool}"

    def _labels(self, pool: str) -> dict[str, str]:
        return {"app": self._settings.app, "pool": pool}

    # ---- reading -------------------------------------------------------------------------------
    def _pods(self, selector: dict[str, str]) -> list[Any]:
        text = ",".join(f"{k}={v}" for k, v in selector.items())
        pods = self._core.list_namespaced_pod(self._ns, label_selector=text).items
        # Filter here too: the selector is the server's job, but a pod we list must match it.
        return sorted(
            (p for p in pods if kube.selector_matches(p.metadata.labels, selector)),
            key=lambda p: p.metadata.name,
        )

    def list_instances(self) -> list[Instance]:
        out = []
        by_pool: dict[str, int] = {}
        for pod in self._pods({"app": self._settings.app}):
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
        for pod in self._pods({"app": self._settings.app}):
            pool = (pod.metadata.labels or {}).get("pool")
            if not pool or pod.metadata.deletion_timestamp:
                continue
            for status in (pod.status and pod.status.container_statuses) or []:
                _, at, digest = (status.image_id or "").rpartition("@")
                if at and digest.startswith("sha256:"):
                    out.setdefault(pool, set()).add(digest)
        return out

    def _read(self, pool: str) -> Any | None:
        try:
            return self._apps.read_namespaced_deployment(self.name(pool), self._ns)
        except client.ApiException as exc:
            if kube.status_of(exc) == 404:
                return None
            raise

    # ---- writing -------------------------------------------------------------------------------
    def _deployment(self, version: str, pool: str, count: int) -> dict[str, Any]:
        labels = {**self._labels(pool), "version": version}
        s = self._settings
        return {
            "apiVersion": "apps/v1",
            "kind": "Deployment",
            "metadata": {"name": self.name(pool), "namespace": self._ns, "labels": labels},
            "spec": {
                "replicas": count,
                "progressDeadlineSeconds": s.progress_deadline_seconds,
                "selector": {"matchLabels": self._labels(pool)},
                "template": {
                    "metadata": {"labels": labels},
                    "spec": {
                        "containers": [
                            {
                                "name": s.app,
                                "image": f"{s.image}:{version}",
                                "ports": [{"containerPort": s.container_port}],
                            }
                        ]
                    },
                },
            },
        }

    def start(self, *, version: str, pool: str, count: int, progress: Progress) -> list[Instance]:
        body = self._deployment(version, pool, count)
        current = self._read(pool)
        if current is None:
            self._apps.create_namespaced_deployment(self._ns, body)
        else:
            running = (current.metadata.labels or {}).get("version")
            if running not in (None, version) and (current.spec.replicas or 0) > 0:
                msg = f"pool {pool!r} runs {running}; stop it before starting {version} there"
                raise BadRequest(msg)
            self._apps.patch_namespaced_deployment(self.name(pool), self._ns, body)
        self.wait_for_rollout(pool, count, progress)
        return [i for i in self.list_instances() if i.pool == pool]

    def scale(self, *, pool: str, count: int, progress: Progress) -> list[Instance]:
        """Scale an existing pool's Deployment and wait for it."""
        if self._read(pool) is None:
            msg = f"no Deployment {self.name(pool)!r} in namespace {self._ns!r} to scale"
            raise BadRequest(msg)
        self._apps.patch_namespaced_deployment_scale(self.name(pool), self._ns, {"spec": {"replicas": count}})
        self.wait_for_rollout(pool, count, progress)
        return [i for i in self.list_instances() if i.pool == pool]

    def stop(self, *, pool: str, slots: list[int] | None = None) -> None:
        current = self._read(pool)
        if current is None:
            return
        if slots is None:
            try:
                self._apps.delete_namespaced_deployment(self.name(pool), self._ns)
            except client.ApiException as exc:
                if kube.status_of(exc) != 404:
                    raise
            return
        # A Deployment removes pods, not chosen ones: keep the count of the slots that stay.
        keep = max(0, (current.spec.replicas or 0) - len(set(slots)))
        self._apps.patch_namespaced_deployment_scale(self.name(pool), self._ns, {"spec": {"replicas": keep}})

    # ---- waiting -------------------------------------------------------------------------------
    def rollout_state(self, pool: str, count: int) -> tuple[bool, str]:
        """(done, what we see); raises :class:`RolloutFailed` when waiting cannot help."""
        d = self._read(pool)
        if d is None:
            msg = f"Deployment {self.name(pool)!r} does not exist in namespace {self._ns!r}"
            raise BadRequest(msg)
        st = d.status or client.V1DeploymentStatus()
        for cond in st.conditions or []:
            if cond.type == "Progressing" and cond.reason == "ProgressDeadlineExceeded":
                msg = f"Deployment {self.name(pool)!r}: progress deadline exceeded ({cond.message or ''})"
                raise RolloutFailed(msg)
        for pod in self._pods(self._labels(pool)):
            for cs in (pod.status and pod.status.container_statuses) or []:
                waiting = cs.state and cs.state.waiting
                if waiting and waiting.reason in BROKEN_REASONS:
                    msg = f"pod {pod.metadata.name}: {waiting.reason} ({waiting.message or cs.image})"
                    raise RolloutFailed(msg)
        generation, observed = d.metadata.generation or 0, st.observed_generation or 0
        counts = {
            "updated": st.updated_replicas or 0,
            "ready": st.ready_replicas or 0,
            "available": st.available_replicas or 0,
            "total": st.replicas or 0,
        }
        seen = f"generation {observed}/{generation}, " + ", ".join(
            f"{k} {v}/{count}" for k, v in counts.items()
        )
        done = observed >= generation and all(v == count for v in counts.values())
        return done, seen

    def wait_for_rollout(self, pool: str, count: int, progress: Progress) -> None:
        deadline = time.monotonic() + self._settings.rollout_timeout.total_seconds()
        while True:
            done, seen = self.rollout_state(pool, count)
            if done:
                return
            if time.monotonic() > deadline:
                msg = f"rollout of {self.name(pool)} not done after {self._settings.rollout_timeout}: {seen}"
                raise RolloutTimeout(msg)
            progress(f"rollout of {self.name(pool)}: {seen}")
            time.sleep(self.poll)


def _ready(pod: Any) -> bool:
    return any(c.type == "Ready" and c.status == "True" for c in (pod.status and pod.status.conditions) or [])
