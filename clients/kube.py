"""Kubernetes for the providers: API clients (a kubeconfig file and context, or the in-cluster
config) and :class:`Deployments`, the Deployment handling the ``kubernetes`` platform and the
DR ``kubernetes`` regions provider share.

A pool's Deployment is ``{app}-{pool}``, labelled ``app``, ``pool`` and ``version``. Its rollout
is waited for the way ``kubectl rollout status`` does: ``status.observedGeneration`` has caught
up with ``metadata.generation`` and the updated, ready and available replica counts equal the
replicas asked. It fails at once, without waiting for the timeout, when a pod of the
Deployment's current template is in ImagePullBackOff / ErrImagePull / CrashLoopBackOff (a
broken pod of an earlier template is being replaced: going back from a broken version must
not fail on it) or the Deployment's Progressing condition says ProgressDeadlineExceeded.
"""

from __future__ import annotations

import time
from functools import cache
from typing import Any

from kubernetes import client, config

from clients import Progress
from engine import tracing
from engine.contracts import EnvironmentSpec, KubernetesSettings
from engine.errors import BadRequest


def settings_for(env: EnvironmentSpec) -> KubernetesSettings:
    if env.kubernetes is None:
        msg = f"environment {env.name!r} has no kubernetes settings (environments.{env.name}.kubernetes)"
        raise BadRequest(msg)
    return env.kubernetes


class _TracedApiClient(client.ApiClient):
    """The API client with every Kubernetes API call in a span (method, path, namespace, name)."""

    def call_api(
        self, resource_path: str, method: str, path_params: Any = None, *args: Any, **kwargs: Any
    ) -> Any:
        params = dict(path_params or {})
        attrs: dict[str, object] = {"k8s.method": method, "k8s.path": resource_path}
        attrs |= {"k8s.namespace": params.get("namespace"), "k8s.name": params.get("name")}
        with tracing.span(f"kubernetes {method} {resource_path}", **attrs):
            return super().call_api(resource_path, method, path_params, *args, **kwargs)


@cache
def _api_client(in_cluster: bool, kubeconfig: str | None, context: str | None) -> client.ApiClient:
    try:
        cfg = type.__call__(client.Configuration)  # a fresh one, as new_client_from_config makes
        if in_cluster:
            config.load_incluster_config(client_configuration=cfg)
        else:
            config.load_kube_config(config_file=kubeconfig, context=context, client_configuration=cfg)
        return _TracedApiClient(cfg)
    except config.ConfigException as exc:
        msg = f"cannot load the Kubernetes configuration: {exc}"
        raise BadRequest(msg) from exc


def api_client(settings: KubernetesSettings) -> client.ApiClient:
    return _api_client(settings.in_cluster, settings.kubeconfig, settings.context)


def status_of(exc: client.ApiException) -> int:
    return int(getattr(exc, "status", 0) or 0)


def selector_matches(labels: dict[str, str] | None, selector: dict[str, Any]) -> bool:
    """Whether ``labels`` carry every ``key: value`` of ``selector`` (matchLabels semantics)."""
    labels = labels or {}
    return all(labels.get(k) == v for k, v in selector.items())


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


class Deployments:
    """The Deployments of one app in one namespace of one cluster, one per pool."""

    def __init__(self, settings: KubernetesSettings) -> None:
        self.settings = settings
        api = api_client(settings)
        self.apps = client.AppsV1Api(api)
        self.core = client.CoreV1Api(api)
        self.namespace = settings.namespace
        self.poll = POLL

    def name(self, pool: str) -> str:
        return f"{self.settings.app}-{pool}"

    def labels(self, pool: str) -> dict[str, str]:
        return {"app": self.settings.app, "pool": pool}

    # ---- reading -------------------------------------------------------------------------------
    def pods(self, selector: dict[str, str]) -> list[Any]:
        text = ",".join(f"{k}={v}" for k, v in selector.items())
        pods = self.core.list_namespaced_pod(self.namespace, label_selector=text).items
        # Filter here too: the selector is the server's job, but a pod we list must match it.
        return sorted(
            (p for p in pods if selector_matches(p.metadata.labels, selector)),
            key=lambda p: p.metadata.name,
        )

    def read(self, pool: str) -> Any | None:
        return self.read_named(self.name(pool))

    def read_named(self, name: str) -> Any | None:
        """A Deployment of the namespace by name (one that is not a pool's, such as the workers')."""
        try:
            return self.apps.read_namespaced_deployment(name, self.namespace)
        except client.ApiException as exc:
            if status_of(exc) == 404:
                return None
            raise

    # ---- writing -------------------------------------------------------------------------------
    def body(self, version: str, pool: str, count: int) -> dict[str, Any]:
        labels = {**self.labels(pool), "version": version}
        s = self.settings
        return {
            "apiVersion": "apps/v1",
            "kind": "Deployment",
            "metadata": {"name": self.name(pool), "namespace": self.namespace, "labels": labels},
            "spec": {
                "replicas": count,
                "progressDeadlineSeconds": s.progress_deadline_seconds,
                "selector": {"matchLabels": self.labels(pool)},
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

    def apply(self, *, version: str, pool: str, count: int, progress: Progress) -> None:
        """Create or patch the pool's Deployment to ``count`` x ``version``; wait for its rollout."""
        body = self.body(version, pool, count)
        current = self.read(pool)
        if current is None:
            self.apps.create_namespaced_deployment(self.namespace, body)
        else:
            running = (current.metadata.labels or {}).get("version")
            if running not in (None, version) and (current.spec.replicas or 0) > 0:
                msg = f"pool {pool!r} runs {running}; stop it before starting {version} there"
                raise BadRequest(msg)
            self.apps.patch_namespaced_deployment(self.name(pool), self.namespace, body)
        self.wait_for_rollout(pool, count, progress)

    def scale(self, *, pool: str, count: int, progress: Progress) -> None:
        """Scale an existing pool's Deployment and wait for it."""
        if self.read(pool) is None:
            msg = f"no Deployment {self.name(pool)!r} in namespace {self.namespace!r} to scale"
            raise BadRequest(msg)
        self.apps.patch_namespaced_deployment_scale(
            self.name(pool), self.namespace, {"spec": {"replicas": count}}
        )
        self.wait_for_rollout(pool, count, progress)

    def stop(self, *, pool: str, slots: list[int] | None = None) -> None:
        current = self.read(pool)
        if current is None:
            return
        if slots is None:
            try:
                self.apps.delete_namespaced_deployment(self.name(pool), self.namespace)
            except client.ApiException as exc:
                if status_of(exc) != 404:
                    raise
            return
        # A Deployment removes pods, not chosen ones: keep the count of the slots that stay.
        keep = max(0, (current.spec.replicas or 0) - len(set(slots)))
        self.apps.patch_namespaced_deployment_scale(
            self.name(pool), self.namespace, {"spec": {"replicas": keep}}
        )

    # ---- waiting -------------------------------------------------------------------------------
    def rollout_state(self, pool: str, count: int) -> tuple[bool, str]:
        """(done, what we see) of a pool's Deployment; raises :class:`RolloutFailed` if waiting can't help."""
        return self.named_rollout_state(self.name(pool), count)

    def named_rollout_state(self, name: str, count: int) -> tuple[bool, str]:
        """(done, what we see) of the Deployment ``name``; its pods are those its selector matches."""
        d = self.read_named(name)
        if d is None:
            msg = f"Deployment {name!r} does not exist in namespace {self.namespace!r}"
            raise BadRequest(msg)
        st = d.status or client.V1DeploymentStatus()
        for cond in st.conditions or []:
            if cond.type == "Progressing" and cond.reason == "ProgressDeadlineExceeded":
                msg = f"Deployment {name!r}: progress deadline exceeded ({cond.message or ''})"
                raise RolloutFailed(msg)
        selector = dict((d.spec.selector and d.spec.selector.match_labels) or {})
        template = {c.name: c.image for c in d.spec.template.spec.containers}
        for pod in self.pods(selector) if selector else []:
            containers = (pod.spec and pod.spec.containers) or []
            if any(template.get(c.name, c.image) != c.image for c in containers):
                continue  # a pod of an earlier template, on its way out (going back from a broken version)
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
        self.wait_for_named(self.name(pool), count, progress)

    def wait_for_named(self, name: str, count: int, progress: Progress) -> None:
        deadline = time.monotonic() + self.settings.rollout_timeout.total_seconds()
        while True:
            done, seen = self.named_rollout_state(name, count)
            if done:
                return
            if time.monotonic() > deadline:
                msg = f"rollout of {name} not done after {self.settings.rollout_timeout}: {seen}"
                raise RolloutTimeout(msg)
            progress(f"rollout of {name}: {seen}")
            time.sleep(self.poll)
