"""The local platform's global entry point (an HAProxy in front of the region routers)."""

from __future__ import annotations

from engine.contracts.dr import DrSpec
from engine.errors import BadRequest
from infrastructure.local.global_entry import GlobalEntry
from infrastructure.local.regions import layout_for


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
