"""Router provider that routes nothing: the split is a number in this process's memory.

For benchmarks (``bench/scale.py``: how many releases one worker holds, with no
I/O under the engine) and dry exercises of a workflow. It keeps a real router's
promises (a pool asked for traffic must have instances behind it, instances not in
``members`` take no traffic, drained instances take no new requests, the preview
route serves exactly its members), and reads back exactly what was set.

State is per environment name and per worker process; a new process starts every
environment with all traffic on ``blue`` (where :mod:`activities.platform.simulated`
runs its seed version). Never use it for a real environment.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field

from activities.interfaces import BadRequest
from engine.contracts import EnvironmentSpec, Instance, RouterState

POOLS = ("blue", "green")
SEED_POOL = "blue"


@dataclass
class _Routes:
    servers: dict[str, tuple[str, float]] = field(default_factory=dict)
    """Address -> (pool, weight) of every instance taking traffic (seed: one server per pool)."""
    draining: set[str] = field(default_factory=set)
    preview: list[str] = field(default_factory=list)


_lock = threading.Lock()
_routes: dict[str, _Routes] = {}


def _state(env: EnvironmentSpec) -> _Routes:
    """The environment's routes, created on first use with all traffic on the seed pool; hold _lock."""
    routes = _routes.get(env.name)
    if routes is None:
        seed = {
            f"simulated://{env.name}/{SEED_POOL}/{slot}": (SEED_POOL, 100.0 / env.instances)
            for slot in range(env.instances)
        }  # the addresses activities.platform.simulated gives its seed instances
        routes = _routes[env.name] = _Routes(servers=seed)
    return routes


def preview_members(env: EnvironmentSpec) -> list[str]:
    """Addresses the preview route serves (also read by the simulated smoke provider)."""
    with _lock:
        return list(_state(env).preview)


class SimulatedRouter:
    """Weights per pool, split evenly over each pool's members."""

    def __init__(self, env: EnvironmentSpec) -> None:
        self._env = env

    def set_traffic(self, *, weights: dict[str, int], members: dict[str, list[Instance]]) -> dict[str, float]:
        unknown = set(weights) - set(POOLS)
        if unknown:
            msg = f"unknown pool(s) {sorted(unknown)} (simulated pools: {', '.join(POOLS)})"
            raise BadRequest(msg)
        if not any(w > 0 for w in weights.values()):
            raise BadRequest("a split must send traffic somewhere")
        for pool, weight in weights.items():
            if weight > 0 and not members.get(pool):
                msg = f"pool {pool!r} is asked {weight}% but has no instances behind it"
                raise BadRequest(msg)
        total = sum(weights.values())
        servers = {
            i.address: (pool, 100.0 * weights.get(pool, 0) / total / len(instances))
            for pool, instances in members.items()
            for i in instances
        }
        with _lock:
            routes = _state(self._env)
            routes.servers = {a: s for a, s in servers.items() if s[1] > 0}
            routes.draining -= set(servers)
        return {pool: 100.0 * w / total for pool, w in weights.items()}

    def read(self) -> RouterState:
        with _lock:
            routes = _state(self._env)
            shares = dict.fromkeys(POOLS, 0.0)
            for address, (pool, weight) in routes.servers.items():
                if address not in routes.draining:
                    shares[pool] += weight
        total = sum(shares.values())
        weights = {p: (100.0 * s / total if total else 0.0) for p, s in shares.items()}
        return RouterState(weights=weights, detail={"provider": "simulated (no I/O)"})

    def set_preview(self, *, members: list[Instance]) -> None:
        with _lock:
            _state(self._env).preview = sorted(i.address for i in members)

    def read_preview(self) -> list[str]:
        return preview_members(self._env)

    def preview_url(self) -> str:
        return f"simulated://{self._env.name}/preview"

    def drain(self, *, instances: list[Instance]) -> dict[str, int]:
        with _lock:
            routes = _state(self._env)
            names = {i.address for i in instances} & set(routes.servers)
            routes.draining |= names
        return dict.fromkeys(sorted(names), 0)  # nothing is ever in flight
