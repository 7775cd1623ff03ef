"""Router provider: a Kubernetes Service's selector, and NGINX ingress canary annotations.

Two Services select pods by ``app`` and ``pool``: the main Service (``kubernetes.service``,
default the app's name), behind the main Ingress, and the canary Service
(``{app}-canary``) behind the canary Ingress (``{app}-canary``), which carries
``nginx.ingress.kubernetes.io/canary: "true"`` and ``canary-weight``.

* Blue-green: a split of 100/0 flips the main Service's selector to that pool and sets the
  canary weight to 0.
* Canary: the main Service keeps selecting the stable pool (the one it selects now, if it
  keeps traffic), the canary Service selects the other pool and the canary Ingress gets
  its percentage as ``canary-weight``.

* Preview route (blue-green, Argo Rollouts' preview service): the preview Service
  (``kubernetes.preview_service``, default ``{app}-preview``) selects the pool being
  previewed; an empty ``pool`` selects no pod while nothing is. The switch is the main
  Service's selector flip above. What the preview route serves is read back as the Ready
  pods its selector matches (what the endpoints controller would publish).

Before a pool takes more traffic, it must have Ready pods. Every change is read back from
the API. The Services and Ingresses are created by the application's manifests (k8s/); a
missing one is refused with its name before any change.
"""

from __future__ import annotations

from typing import Any

from kubernetes import client

from clients import kube
from engine.contracts import EnvironmentSpec, Instance, RouterState
from engine.errors import BadRequest

CANARY = "nginx.ingress.kubernetes.io/canary"
CANARY_WEIGHT = "nginx.ingress.kubernetes.io/canary-weight"


class SplitNotApplied(RuntimeError):
    """The API accepted a change but reads back something else (retryable)."""


class NoReadyPods(RuntimeError):
    """A pool about to take traffic has no Ready pod yet (retryable: pods become ready)."""


class KubernetesRouter:
    def __init__(self, env: EnvironmentSpec) -> None:
        s = self._settings = kube.settings_for(env)
        api = kube.api_client(s)
        self._core = client.CoreV1Api(api)
        self._net = client.NetworkingV1Api(api)
        self._ns = s.namespace
        self.service = s.service or s.app
        self.canary_service = s.canary_service or f"{s.app}-canary"
        self.canary_ingress = s.canary_ingress or f"{s.app}-canary"
        self.preview_service = s.preview_service or f"{s.app}-preview"
        if self.preview_service in (self.service, self.canary_service):
            msg = f"kubernetes.preview_service {self.preview_service!r} must be a Service of its own"
            raise BadRequest(msg)

    def _get(self, kind: str, name: str) -> Any:
        try:
            if kind == "Service":
                return self._core.read_namespaced_service(name, self._ns)
            return self._net.read_namespaced_ingress(name, self._ns)
        except client.ApiException as exc:
            if kube.status_of(exc) == 404:
                msg = f"{kind} {name!r} does not exist in namespace {self._ns!r} (apply the app's manifests)"
                raise BadRequest(msg) from exc
            raise

    def _state(self) -> tuple[str | None, str | None, int]:
        main = self._get("Service", self.service)
        canary = self._get("Service", self.canary_service)
        ingress = self._get("Ingress", self.canary_ingress)
        notes = ingress.metadata.annotations or {}
        weight = int(notes.get(CANARY_WEIGHT) or 0) if notes.get(CANARY) == "true" else 0
        return (main.spec.selector or {}).get("pool"), (canary.spec.selector or {}).get("pool"), weight

    def read(self) -> RouterState:
        stable, canary, weight = self._state()
        weights: dict[str, float] = {}
        if stable:
            weights[stable] = 100.0 - (weight if canary and canary != stable else 0)
        if canary and canary != stable and weight:
            weights[canary] = float(weight)
        return RouterState(
            weights=weights,
            detail={
                "service": self.service,
                "stable_pool": stable,
                "canary_pool": canary,
                "canary_weight": weight,
            },
        )

    def set_traffic(self, *, weights: dict[str, int], members: dict[str, list[Instance]]) -> dict[str, float]:
        live = {p: w for p, w in weights.items() if w > 0}
        if not live:
            raise BadRequest("a split must send traffic somewhere")
        if len(live) > 2:
            msg = f"the NGINX canary splits between two pools, not {sorted(live)}"
            raise BadRequest(msg)
        for pool in live:
            if not members.get(pool):
                msg = f"pool {pool!r} is asked {weights[pool]}% but has no instances behind it"
                raise BadRequest(msg)
        current_stable, current_canary, current_weight = self._state()  # every object exists
        before = {current_stable: 100 - current_weight}
        if current_canary and current_canary != current_stable:
            before[current_canary] = current_weight
        for pool, weight in live.items():
            if weight > before.get(pool, 0) and not self._ready_pods(pool):
                msg = f"pool {pool!r} has no Ready pod; not shifting traffic to it"
                raise NoReadyPods(msg)
        if len(live) == 1:
            stable, canary, weight = next(iter(live)), None, 0
        else:
            stable = current_stable if current_stable in live else max(live, key=lambda p: live[p])
            canary = next(p for p in live if p != stable)
            weight = live[canary]
        app = self._settings.app
        # Order: canary Service, its weight, then the main selector; each step is a valid split.
        if canary:
            self._core.patch_namespaced_service(
                self.canary_service, self._ns, {"spec": {"selector": {"app": app, "pool": canary}}}
            )
        self._net.patch_namespaced_ingress(
            self.canary_ingress,
            self._ns,
            {"metadata": {"annotations": {CANARY: "true", CANARY_WEIGHT: str(weight)}}},
        )
        self._core.patch_namespaced_service(
            self.service, self._ns, {"spec": {"selector": {"app": app, "pool": stable}}}
        )
        intended = {stable: 100.0 - weight, **({canary: float(weight)} if canary else {})}
        got = self.read().weights
        if {p: v for p, v in got.items() if v} != {p: v for p, v in intended.items() if v}:
            msg = f"the cluster reads back the split {got}, not {intended}"
            raise SplitNotApplied(msg)
        return {p: intended.get(p, 0.0) for p in weights}

    # ---- Ready pods; preview route (blue-green) --------------------------------------------------
    def _ready_pods(self, pool: str) -> list[Any]:
        """Ready, running pods of ``pool`` with an IP, in name order (client-side filter as well)."""
        selector = {"app": self._settings.app, "pool": pool}
        text = ",".join(f"{k}={v}" for k, v in selector.items())
        pods = self._core.list_namespaced_pod(self._ns, label_selector=text).items
        return sorted(
            (
                p
                for p in pods
                if kube.selector_matches(p.metadata.labels, selector)
                and not p.metadata.deletion_timestamp
                and p.status
                and p.status.pod_ip
                and any(c.type == "Ready" and c.status == "True" for c in p.status.conditions or [])
            ),
            key=lambda p: p.metadata.name,
        )

    def _preview_pool(self) -> str | None:
        selector = self._get("Service", self.preview_service).spec.selector or {}
        return selector.get("pool") or None

    def set_preview(self, *, members: list[Instance]) -> None:
        pools = sorted({m.pool for m in members})
        if len(pools) > 1:
            msg = f"the preview Service selects one pool, not {pools}"
            raise BadRequest(msg)
        wanted = pools[0] if pools else None
        if self._preview_pool() == wanted:  # also: the preview Service exists, before any change
            return
        selector = {"app": self._settings.app, "pool": wanted or ""}
        self._core.patch_namespaced_service(self.preview_service, self._ns, {"spec": {"selector": selector}})
        got = self._preview_pool()
        if got != wanted:
            msg = f"the preview Service reads back pool {got}, not {wanted}"
            raise SplitNotApplied(msg)

    def read_preview(self) -> list[str]:
        pool = self._preview_pool()
        if pool is None:
            return []
        port = self._settings.container_port
        return sorted(f"{p.status.pod_ip}:{port}" for p in self._ready_pods(pool))

    def preview_url(self) -> str:
        if self._settings.preview_url:
            return self._settings.preview_url
        service = self._get("Service", self.preview_service)
        ports = service.spec.ports or []
        port = ports[0].port if ports else 80
        return f"http://{self.preview_service}.{self._ns}.svc.cluster.local:{port}"
