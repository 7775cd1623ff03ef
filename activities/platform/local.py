"""Platform provider: instances of the sample service as local processes.

Backed by ``infrastructure.local``: each pool has fixed slots with fixed ports, and
instances outlive the worker (a killed worker does not take production with it).
"""

from __future__ import annotations

from activities.interfaces import Progress
from engine.contracts import ALL_POOLS, EnvironmentSpec, Instance
from engine.errors import BadRequest
from infrastructure.local import images
from infrastructure.local.instances import InstanceInfo, InstanceManager, VersionConflictError
from infrastructure.local.layout import layout_for


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
        self._manager = InstanceManager(self._layout)

    def list_instances(self) -> list[Instance]:
        return [_instance(i) for i in self._manager.list()]

    def start(self, *, version: str, pool: str, count: int, progress: Progress) -> list[Instance]:
        self._check_pool(pool)
        if count > self._layout.max_slots:
            msg = f"{count} instances asked; the local router has {self._layout.max_slots} slots per pool"
            raise BadRequest(msg)
        try:
            # Run what the production repository holds when the release pipeline promoted it.
            images.pin(self._layout, pool, version)
            started = self._manager.start(version, pool, count, on_progress=progress)
        except (VersionConflictError, images.ImageError) as exc:
            raise BadRequest(str(exc)) from exc
        return [_instance(i) for i in started]

    def stop(self, *, pool: str, slots: list[int] | None = None) -> None:
        self._check_pool(pool)
        self._manager.stop(pool, slots)
        if slots is None:
            images.unpin(self._layout, pool)

    def running_images(self) -> dict[str, set[str]]:
        """The digest each pool was pinned to when its instances started from the production repository."""
        return {pool: {pin["digest"]} for pool, pin in images.pins(self._layout).items() if pin.get("digest")}

    @staticmethod
    def _check_pool(pool: str) -> None:
        if pool not in ALL_POOLS:
            msg = f"unknown pool {pool!r} (local pools: {', '.join(ALL_POOLS)})"
            raise BadRequest(msg)
