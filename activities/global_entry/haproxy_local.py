"""The local platform's global entry point (an HAProxy in front of the region routers)."""

from __future__ import annotations

from activities.database.postgres_local import layout_for
from activities.interfaces import BadRequest
from engine.contracts.dr import DrSpec
from infrastructure.local.global_entry import GlobalEntry


class LocalGlobalEntry:
    def __init__(self, spec: DrSpec) -> None:
        self.dr = layout_for(spec)
        self.entry = GlobalEntry(self.dr)

    def active(self) -> str | None:
        return self.entry.active() if self.entry.running() else None

    def switch(self, region: str) -> None:
        if region not in self.dr.regions:
            raise BadRequest(f"unknown region {region!r} (regions: {', '.join(self.dr.regions)})")
        self.entry.start()
        self.entry.point_to(region)

    def url(self) -> str:
        return self.dr.global_url
