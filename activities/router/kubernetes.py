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

Every change is read back from the API. The Services and Ingresses are created by the
application's manifests (k8s/); a missing one is refused with its name before any change.
"""

from __future__ import annotations

from typing import Any

from kubernetes import client

from activities.cloud import kube
from activities.interfaces import BadRequest
from engine.contracts import EnvironmentSpec, Instance, RouterState

CANARY = "nginx.ingress.kubernetes.io/canary"
CANARY_WEIGHT = "nginx.ingress.kubernetes.io/canary-weight"


class SplitNotApplied(RuntimeError):
    """The API accepted a change but reads back something else (retryable)."""


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
        current_stable, _, _ = self._state()  # also: every object exists, before any change
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
