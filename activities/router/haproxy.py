"""Router provider: HAProxy's runtime API (weights change without a reload).

Each pool is a set of fixed server slots in the ``app`` backend. A split of
``{pool: percent}`` becomes integer per-server weights whose pool totals are in
exactly that ratio; servers outside ``members`` go to maintenance. Only servers
whose state changes are touched, in one batched runtime-API round trip, with
gaining servers enabled before losing ones are disabled, so the backend never has
zero capacity.
"""

from __future__ import annotations

import math
from functools import reduce

from engine.contracts import ALL_POOLS, EnvironmentSpec, Instance, RouterState, without_idle_baseline
from engine.errors import BadRequest
from infrastructure.local.haproxy import HAProxy, ServerState, server_name
from infrastructure.local.layout import layout_for

MAX_WEIGHT = 256


def server_weights(weights: dict[str, int], members: dict[str, int]) -> dict[str, int]:
    """Per-server weight for each pool so that pool totals split as asked.

    ``members`` is the number of servers behind each pool. With L the least common
    multiple of the member counts, a server of pool p gets ``percent_p * L / n_p``
    times one scale factor that depends only on the member counts (so it shrinks
    weights under HAProxy's maximum of 256 the same way for every split). The scale
    never changes between steps: HAProxy applies a batch one command at a time, and
    with a fixed scale every half-applied state lies between the old split and the
    new one, never beyond it.
    """
    live = {p: w for p, w in weights.items() if w > 0}
    for pool in live:
        if members.get(pool, 0) == 0:
            msg = f"pool {pool!r} is asked {weights[pool]}% but has no instances behind it"
            raise BadRequest(msg)
    if not live:
        msg = "a split must send traffic somewhere"
        raise BadRequest(msg)
    counts = [n for n in members.values() if n > 0]
    lcm = reduce(math.lcm, counts, 1)
    scale = min(1.0, MAX_WEIGHT * min(counts) / (100 * lcm))
    return {p: (max(1, round(w * lcm / members[p] * scale)) if w > 0 else 0) for p, w in weights.items()}


class HAProxyRouter:
    """Traffic split between the blue and green pools of the local router.

    The ``preview`` frontend (its own port) has a backend with the same server slots:
    :meth:`set_preview` points it at the instances of a release before they take users'
    traffic (blue-green). :meth:`drain` puts servers of ``app`` in HAProxy's ``drain``
    state: no new requests, in-flight ones finish (rolling).
    """

    backend = "app"
    preview_backend = "preview"

    def __init__(self, env: EnvironmentSpec) -> None:
        self._layout = layout_for(env)
        self._haproxy = HAProxy(self._layout)

    def set_traffic(self, *, weights: dict[str, int], members: dict[str, list[Instance]]) -> dict[str, float]:
        unknown = set(weights) - set(ALL_POOLS)
        if unknown:
            msg = f"unknown pool(s) {sorted(unknown)} (local pools: {', '.join(ALL_POOLS)})"
            raise BadRequest(msg)
        slots = {p: {i.slot for i in members.get(p, [])} for p in ALL_POOLS}
        per_server = server_weights(weights, {p: len(s) for p, s in slots.items()})
        current = {s.name: s for s in self._haproxy.servers(self.backend)}
        missing = [server_name(p, i) for p in ALL_POOLS for i in slots[p] if server_name(p, i) not in current]
        if missing:
            msg = f"the router has no server slot(s) {missing} in backend {self.backend!r}"
            raise BadRequest(msg)
        wanted = {server_name(p, i): per_server.get(p, 0) for p in ALL_POOLS for i in slots[p]}
        self._apply(self.backend, current, wanted)
        totals = {p: per_server[p] * len(slots[p]) for p in per_server}
        return {p: 100.0 * t / sum(totals.values()) for p, t in totals.items()}

    def _apply(self, backend: str, current: dict[str, ServerState], wanted: dict[str, int]) -> None:
        """Servers in ``wanted`` ready at their weight, every other one in maintenance.

        One runtime-API round trip; gaining servers are enabled before losing ones are
        disabled, so the backend never has zero capacity.
        """
        enable, disable = [], []
        for name, now in current.items():
            if name in wanted:
                if now.weight != wanted[name]:
                    enable.append(f"set server {backend}/{name} weight {wanted[name]}")
                if now.admin != "ready":
                    enable.append(f"set server {backend}/{name} state ready")
            elif now.admin != "maint" or now.weight != 0:
                disable += [
                    f"set server {backend}/{name} state maint",
                    f"set server {backend}/{name} weight 0",
                ]
        if enable or disable:
            self._haproxy.command("; ".join(enable + disable))

    def set_preview(self, *, members: list[Instance]) -> None:
        current = {s.name: s for s in self._haproxy.servers(self.preview_backend)}
        wanted = {server_name(i.pool, i.slot): 1 for i in members}
        missing = sorted(set(wanted) - set(current))
        if missing:
            msg = f"the router has no server slot(s) {missing} in backend {self.preview_backend!r}"
            raise BadRequest(msg)
        self._apply(self.preview_backend, current, wanted)

    def read_preview(self) -> list[str]:
        return sorted(
            f"{s.address}:{s.port}" for s in self._haproxy.servers(self.preview_backend) if _serving(s)
        )

    def preview_url(self) -> str:
        return self._layout.preview_url

    def drain(self, *, instances: list[Instance]) -> dict[str, int]:
        names = {server_name(i.pool, i.slot) for i in instances}
        current = {s.name: s for s in self._haproxy.servers(self.backend) if s.name in names}
        ready = [n for n, s in current.items() if s.admin == "ready"]
        if ready:
            self._haproxy.command("; ".join(f"set server {self.backend}/{n} state drain" for n in ready))
        return {n: v for n, v in self._in_flight().items() if n in current}

    def _in_flight(self) -> dict[str, int]:
        """Requests each server of ``app`` is serving or has queued (``show stat`` scur + qcur)."""
        lines = self._haproxy.command("show stat -1 4 -1").strip().splitlines()
        header = lines[0].removeprefix("# ").split(",")
        rows = [dict(zip(header, line.split(","), strict=False)) for line in lines[1:]]
        return {
            r["svname"]: int(r.get("scur") or 0) + int(r.get("qcur") or 0)
            for r in rows
            if r.get("pxname") == self.backend
        }

    def read(self) -> RouterState:
        servers = self._haproxy.servers(self.backend)
        totals = dict.fromkeys(ALL_POOLS, 0)
        detail: dict[str, dict[str, object]] = {}
        for s in servers:
            pool, _ = _pool_and_slot(s.name)
            if _serving(s):
                totals[pool] += s.weight
            if s.admin != "maint":
                detail[s.name] = {"weight": s.weight, "admin": s.admin, "status": s.status, "port": s.port}
        total = sum(totals.values())
        shares = {p: (100.0 * t / total if total else 0.0) for p, t in totals.items()}
        return RouterState(weights=without_idle_baseline(shares), detail=detail)


def _pool_and_slot(name: str) -> tuple[str, int]:
    """``green3`` -> ("green", 3)."""
    pool = name.rstrip("0123456789")
    return pool, int(name[len(pool) :])


def _serving(s: ServerState) -> bool:
    """Takes new requests: enabled, passing its health check, weight above zero."""
    return s.admin == "ready" and s.status.startswith("UP") and s.weight > 0
