"""Platform provider: instances of the sample service as local processes.

Backed by ``infrastructure.local``: each pool has fixed slots with fixed ports, and
instances outlive the worker (a killed worker does not take production with it). The
environment's ``component`` says which processes: the API (``sample_service``) or the
workers (``sample_worker``); ``local.region`` says in which region.
"""

from __future__ import annotations

from activities.interfaces import Progress
from engine.contracts import ALL_POOLS, EnvironmentSpec, Instance
from engine.errors import BadRequest
from infrastructure.local import images
from infrastructure.local.instances import InstanceInfo, InstanceManager, VersionConflictError
from infrastructure.local.layout import component_prefix, layout_for, pools_of


def _instance(info: InstanceInfo) -> Instance:
    return Instance(
        pool=info.pool,
        slot=info.slot,
        version=info.version,
        address=f"127.0.0.1:{info.port}",
        healthy=info.healthy,
    )


class LocalPlatform:
    """Start, stop and list sample-service processes per pool."""

    def __init__(self, env: EnvironmentSpec) -> None:
        self._layout = layout_for(env)
        self._component = env.component
        self._pools = pools_of(env.component)
        self._manager = InstanceManager(self._layout, env.component)

    def list_instances(self) -> list[Instance]:
        return [_instance(i) for i in self._manager.list()]

    def start(self, *, version: str, pool: str, count: int, progress: Progress) -> list[Instance]:
        self._check_pool(pool)
        if count > self._layout.slots(self._component):
            slots = self._layout.slots(self._component)
            msg = f"{count} instances asked; the local {self._component} has {slots} slots per pool"
            raise BadRequest(msg)
        try:
            # Run what the production repository holds when the release pipeline promoted it.
            images.pin(self._layout, self._pin(pool), version)
            started = self._manager.start(version, pool, count, on_progress=progress)
        except (VersionConflictError, images.ImageError) as exc:
            raise BadRequest(str(exc)) from exc
        return [_instance(i) for i in started]

    def stop(self, *, pool: str, slots: list[int] | None = None) -> None:
        self._check_pool(pool)
        self._manager.stop(pool, slots)
        if slots is None:
            images.unpin(self._layout, self._pin(pool))

    def running_images(self) -> dict[str, set[str]]:
        """The digest each pool was pinned to when its instances started from the production repository."""
        pins = images.pins(self._layout)
        return {
            pool: {pin["digest"]}
            for pool in ALL_POOLS
            if (pin := pins.get(self._pin(pool))) is not None and pin.get("digest")
        }

    def _pin(self, pool: str) -> str:
        """The pin's name: the pool (the API, as ever) or ``worker-POOL``."""
        return f"{component_prefix(self._component)}{pool}"

    def _check_pool(self, pool: str) -> None:
        if pool not in self._pools:
            msg = f"unknown pool {pool!r} (local {self._component} pools: {', '.join(self._pools)})"
            raise BadRequest(msg)
