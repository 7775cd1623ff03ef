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

from activities.interfaces import BadRequest
from activities.platform.local import layout_for
from engine.contracts import EnvironmentSpec, Instance, RouterState
from infrastructure.local.haproxy import HAProxy, ServerState, server_name
from infrastructure.local.layout import POOLS

MAX_WEIGHT = 256


def server_weights(weights: dict[str, int], members: dict[str, int]) -> dict[str, int]:
    """Per-server weight for each pool so that pool totals split exactly as asked.

    ``members`` is the number of servers behind each pool. With L the least common
    multiple of the member counts, a server of pool p gets ``percent_p * L / n_p``;
    the result is reduced by the common divisor and, if still above HAProxy's
    maximum of 256, scaled down (rounding, never to zero for a non-zero share).
    """
    live = {p: w for p, w in weights.items() if w > 0}
    for pool in live:
        if members.get(pool, 0) == 0:
            msg = f"pool {pool!r} is asked {weights[pool]}% but has no instances behind it"
            raise BadRequest(msg)
    if not live:
        msg = "a split must send traffic somewhere"
        raise BadRequest(msg)
    lcm = reduce(math.lcm, (members[p] for p in live), 1)
    raw = {p: w * lcm // members[p] for p, w in live.items()}
    divisor = reduce(math.gcd, raw.values())
    per_server = {p: v // divisor for p, v in raw.items()}
    top = max(per_server.values())
    if top > MAX_WEIGHT:
        per_server = {p: max(1, round(v * MAX_WEIGHT / top)) for p, v in per_server.items()}
    return {p: per_server.get(p, 0) for p in weights}


class HAProxyRouter:
    """Traffic split between the blue and green pools of the local router."""

    backend = "app"

    def __init__(self, env: EnvironmentSpec) -> None:
        self._haproxy = HAProxy(layout_for(env))

    def set_traffic(self, *, weights: dict[str, int], members: dict[str, list[Instance]]) -> None:
        unknown = set(weights) - set(POOLS)
        if unknown:
            msg = f"unknown pool(s) {sorted(unknown)} (local pools: {', '.join(POOLS)})"
            raise BadRequest(msg)
        slots = {p: {i.slot for i in members.get(p, [])} for p in POOLS}
        per_server = server_weights(weights, {p: len(s) for p, s in slots.items()})
        current = {s.name: s for s in self._haproxy.servers(self.backend)}
        missing = [server_name(p, i) for p in POOLS for i in slots[p] if server_name(p, i) not in current]
        if missing:
            msg = f"the router has no server slot(s) {missing} in backend {self.backend!r}"
            raise BadRequest(msg)
        enable, disable = [], []
        for name, now in current.items():
            pool, slot = _pool_and_slot(name)
            if slot in slots.get(pool, set()):
                weight = per_server.get(pool, 0)
                if now.weight != weight:
                    enable.append(f"set server {self.backend}/{name} weight {weight}")
                if now.admin != "ready":
                    enable.append(f"set server {self.backend}/{name} state ready")
            elif now.admin != "maint" or now.weight != 0:
                disable += [
                    f"set server {self.backend}/{name} state maint",
                    f"set server {self.backend}/{name} weight 0",
                ]
        if enable or disable:
            self._haproxy.command("; ".join(enable + disable))

    def read(self) -> RouterState:
        servers = self._haproxy.servers(self.backend)
        totals = dict.fromkeys(POOLS, 0)
        detail: dict[str, dict[str, object]] = {}
        for s in servers:
            pool, _ = _pool_and_slot(s.name)
            if _serving(s):
                totals[pool] += s.weight
            if s.admin != "maint":
                detail[s.name] = {"weight": s.weight, "admin": s.admin, "status": s.status, "port": s.port}
        total = sum(totals.values())
        shares = {p: (100.0 * t / total if total else 0.0) for p, t in totals.items()}
        return RouterState(weights=shares, detail=detail)


def _pool_and_slot(name: str) -> tuple[str, int]:
    """``green3`` -> ("green", 3)."""
    pool = name.rstrip("0123456789")
    return pool, int(name[len(pool) :])


def _serving(s: ServerState) -> bool:
    """Takes new requests: enabled, passing its health check, weight above zero."""
    return s.admin == "ready" and s.status.startswith("UP") and s.weight > 0
