"""Platform provider that runs nothing: instances exist only in this process's memory.

For benchmarks (``bench/scale.py``: how many releases one worker holds, with no
I/O under the engine) and dry exercises of a workflow. It is not a test double: it
keeps the same promises as a real platform (idempotent start and stop, a pool runs
one version, counts beyond its slots are refused), it just has nothing to start.

State is per environment name and per worker process: a new process starts every
environment afresh with ``SEED_INSTANCES`` of ``SEED_VERSION`` in the ``blue`` pool
(what :mod:`activities.router.simulated` sends all traffic to), so a worker restart
or a second replica does not share it. Never use it for a real environment.
"""

from __future__ import annotations

import threading

from activities.interfaces import BadRequest, Progress
from engine.contracts import EnvironmentSpec, Instance

POOLS = ("blue", "green")
SEED_POOL = "blue"
SEED_VERSION = "v0.0.0"
"""What every simulated environment runs before its first release."""
MAX_SLOTS = 64

_lock = threading.Lock()
_pools: dict[str, dict[str, list[Instance]]] = {}
"""environment name -> pool -> instances (slot order)."""


def _address(env: str, pool: str, slot: int) -> str:
    return f"simulated://{env}/{pool}/{slot}"


def _seeded(env: EnvironmentSpec) -> dict[str, list[Instance]]:
    """The environment's pools (created on first use, with the seed release live); hold _lock."""
    pools = _pools.get(env.name)
    if pools is None:
        seed = [
            Instance(pool=SEED_POOL, slot=s, version=SEED_VERSION, address=_address(env.name, SEED_POOL, s))
            for s in range(env.instances)
        ]
        pools = _pools[env.name] = {pool: (seed if pool == SEED_POOL else []) for pool in POOLS}
    return pools


def instances_of(env: EnvironmentSpec) -> list[Instance]:
    """Every simulated instance of ``env`` (also read by the simulated smoke provider)."""
    with _lock:
        return [i.model_copy() for pool in _seeded(env).values() for i in pool]


class SimulatedPlatform:
    """Start, stop and list instances that are entries in a dict."""

    def __init__(self, env: EnvironmentSpec) -> None:
        self._env = env

    def list_instances(self) -> list[Instance]:
        return instances_of(self._env)

    def start(self, *, version: str, pool: str, count: int, progress: Progress) -> list[Instance]:
        self._check_pool(pool)
        if count > MAX_SLOTS:
            msg = f"{count} instances asked; the simulated platform has {MAX_SLOTS} slots per pool"
            raise BadRequest(msg)
        with _lock:
            running = _seeded(self._env)[pool]
            other = sorted({i.version for i in running if i.version != version})
            if other:
                msg = f"pool {pool} runs {', '.join(other)}; stop it before starting {version} there"
                raise BadRequest(msg)
            for slot in range(len(running), count):
                running.append(
                    Instance(
                        pool=pool, slot=slot, version=version, address=_address(self._env.name, pool, slot)
                    )
                )
            started = [i.model_copy() for i in running[:count]]
        progress(f"{count} x {version} in {pool}")
        return started

    def stop(self, *, pool: str, slots: list[int] | None = None) -> None:
        self._check_pool(pool)
        with _lock:
            pools = _seeded(self._env)
            if slots is None:
                pools[pool] = []
            else:
                pools[pool] = [i for i in pools[pool] if i.slot not in set(slots)]

    def running_images(self) -> dict[str, set[str]]:
        """Simulated instances run no image: nothing to tell (never reported as verified)."""
        return {}

    @staticmethod
    def _check_pool(pool: str) -> None:
        if pool not in POOLS:
            msg = f"unknown pool {pool!r} (simulated pools: {', '.join(POOLS)})"
            raise BadRequest(msg)
