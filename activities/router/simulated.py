"""Router provider that routes nothing: the split is a number in this process's memory.

For benchmarks (``bench/scale.py``: how many releases one worker holds, with no
I/O under the engine) and dry exercises of a workflow. It keeps a real router's
promises (a pool asked for traffic must have instances behind it, instances not in
``members`` take no traffic, drained instances take no new requests, the preview
route serves exactly its members), and reads back exactly what was set.

State lives in :mod:`clients.simulated` (shared with the simulated platform and smoke
providers), per environment name and per worker process. Never use it for a real environment.
"""

from __future__ import annotations

from activities.splits import check_split
from clients import simulated
from clients.simulated import LOCK
from engine.contracts import ALL_POOLS, EnvironmentSpec, Instance, RouterState, without_idle_baseline


class SimulatedRouter:
    """Weights per pool, split evenly over each pool's members."""

    def __init__(self, env: EnvironmentSpec) -> None:
        self._env = env

    def set_traffic(self, *, weights: dict[str, int], members: dict[str, list[Instance]]) -> dict[str, float]:
        check_split(weights, members, ALL_POOLS, kind="instances")
        total = sum(weights.values())
        servers = {
            i.address: (pool, 100.0 * weights.get(pool, 0) / total / len(instances))
            for pool, instances in members.items()
            for i in instances
        }
        with LOCK:
            routes = simulated.routes(self._env)
            routes.servers = {a: s for a, s in servers.items() if s[1] > 0}
            routes.draining -= set(servers)
        return {pool: 100.0 * w / total for pool, w in weights.items()}

    def read(self) -> RouterState:
        with LOCK:
            routes = simulated.routes(self._env)
            shares = dict.fromkeys(ALL_POOLS, 0.0)
            for address, (pool, weight) in routes.servers.items():
                if address not in routes.draining:
                    shares[pool] += weight
        total = sum(shares.values())
        weights = {p: (100.0 * s / total if total else 0.0) for p, s in shares.items()}
        return RouterState(weights=without_idle_baseline(weights), detail={"provider": "simulated (no I/O)"})

    def set_preview(self, *, members: list[Instance]) -> None:
        with LOCK:
            simulated.routes(self._env).preview = sorted(i.address for i in members)

    def read_preview(self) -> list[str]:
        return simulated.preview_members(self._env)

    def preview_url(self) -> str:
        return simulated.preview_url(self._env)

    def drain(self, *, instances: list[Instance]) -> dict[str, int]:
        with LOCK:
            routes = simulated.routes(self._env)
            names = {i.address for i in instances} & set(routes.servers)
            routes.draining |= names
        return dict.fromkeys(sorted(names), 0)  # nothing is ever in flight
