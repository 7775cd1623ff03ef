"""Platform provider that runs nothing: instances exist only in this process's memory.

For benchmarks (``bench/scale.py``: how many releases one worker holds, with no
I/O under the engine) and dry exercises of a workflow. It is not a test double: it
keeps the same promises as a real platform (idempotent start and stop, a pool runs
one version, counts beyond its slots are refused), it just has nothing to start.

State lives in :mod:`clients.simulated` (shared with the simulated router and smoke
providers), per environment name and per worker process. Never use it for a real environment.
"""

from __future__ import annotations

from activities.interfaces import Progress
from clients import simulated
from clients.simulated import LOCK, MAX_SLOTS
from engine.contracts import ALL_POOLS, EnvironmentSpec, Instance
from engine.errors import BadRequest


class SimulatedPlatform:
    """Start, stop and list instances that are entries in a dict."""

    def __init__(self, env: EnvironmentSpec) -> None:
        self._env = env

    def list_instances(self) -> list[Instance]:
        return simulated.instances_of(self._env)

    def start(self, *, version: str, pool: str, count: int, progress: Progress) -> list[Instance]:
        self._check_pool(pool)
        if count > MAX_SLOTS:
            msg = f"{count} instances asked; the simulated platform has {MAX_SLOTS} slots per pool"
            raise BadRequest(msg)
        with LOCK:
            running = simulated.pools(self._env)[pool]
            other = sorted({i.version for i in running if i.version != version})
            if other:
                msg = f"pool {pool} runs {', '.join(other)}; stop it before starting {version} there"
                raise BadRequest(msg)
            for slot in range(len(running), count):
                running.append(
                    Instance(
                        pool=pool,
                        slot=slot,
                        version=version,
                        address=simulated.address(self._env.name, pool, slot),
                    )
                )
            started = [i.model_copy() for i in running[:count]]
        progress(f"{count} x {version} in {pool}")
        return started

    def stop(self, *, pool: str, slots: list[int] | None = None) -> None:
        self._check_pool(pool)
        with LOCK:
            pools = simulated.pools(self._env)
            if slots is None:
                pools[pool] = []
            else:
                pools[pool] = [i for i in pools[pool] if i.slot not in set(slots)]

    def running_images(self) -> dict[str, set[str]]:
        """Simulated instances run no image: nothing to tell (never reported as verified)."""
        return {}

    @staticmethod
    def _check_pool(pool: str) -> None:
        if pool not in ALL_POOLS:
            msg = f"unknown pool {pool!r} (simulated pools: {', '.join(ALL_POOLS)})"
            raise BadRequest(msg)
