"""The simulated world: every simulated environment's instances and routes, in this process's memory.

The ``simulated`` platform, router and smoke providers (benchmarks and dry exercises, no I/O)
all read and write this one state, the way the real ones share a cluster and a load balancer.
State is per environment name and per worker process: a new process starts every environment
afresh with ``env.instances`` of ``SEED_VERSION`` in ``SEED_POOL`` taking all traffic, so a
worker restart or a second replica does not share it. Hold :data:`LOCK` while touching it.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field

from engine.contracts import ALL_POOLS, EnvironmentSpec, Instance

SEED_POOL = "blue"
SEED_VERSION = "v0.0.0"
"""What every simulated environment runs before its first release."""
MAX_SLOTS = 64

LOCK = threading.Lock()


@dataclass
class Routes:
    servers: dict[str, tuple[str, float]] = field(default_factory=dict)
    """Address -> (pool, weight) of every instance taking traffic (seed: one server per pool)."""
    draining: set[str] = field(default_factory=set)
    preview: list[str] = field(default_factory=list)


_pools: dict[str, dict[str, list[Instance]]] = {}
"""environment name -> pool -> instances (slot order)."""
_routes: dict[str, Routes] = {}


def address(env: str, pool: str, slot: int) -> str:
    return f"simulated://{env}/{pool}/{slot}"


def pools(env: EnvironmentSpec) -> dict[str, list[Instance]]:
    """The environment's pools (created on first use, with the seed release live); hold LOCK."""
    found = _pools.get(env.name)
    if found is None:
        seed = [
            Instance(pool=SEED_POOL, slot=s, version=SEED_VERSION, address=address(env.name, SEED_POOL, s))
            for s in range(env.instances)
        ]
        found = _pools[env.name] = {pool: (seed if pool == SEED_POOL else []) for pool in ALL_POOLS}
    return found


def routes(env: EnvironmentSpec) -> Routes:
    """The environment's routes, created on first use with all traffic on the seed pool; hold LOCK."""
    found = _routes.get(env.name)
    if found is None:
        seed = {
            address(env.name, SEED_POOL, s): (SEED_POOL, 100.0 / env.instances) for s in range(env.instances)
        }
        found = _routes[env.name] = Routes(servers=seed)
    return found


def instances_of(env: EnvironmentSpec) -> list[Instance]:
    """Every simulated instance of ``env``."""
    with LOCK:
        return [i.model_copy() for pool in pools(env).values() for i in pool]


def preview_members(env: EnvironmentSpec) -> list[str]:
    """Addresses the preview route serves."""
    with LOCK:
        return list(routes(env).preview)


def preview_url(env: EnvironmentSpec) -> str:
    return f"simulated://{env.name}/preview"
