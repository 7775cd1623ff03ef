"""The local platform's regions: sample instances behind each region's router."""

from __future__ import annotations

import httpx
import psycopg

from activities.interfaces import Progress
from engine.contracts.dr import DrSpec
from engine.errors import BadRequest
from infrastructure.local import dr as local_dr
from infrastructure.local import haproxy as haproxy_mod
from infrastructure.local.haproxy import HAProxy
from infrastructure.local.regions import layout_for


class LocalRegions:
    def __init__(self, spec: DrSpec) -> None:
        self.spec = spec
        self.dr = layout_for(spec)

    def _check(self, region: str | None) -> None:
        if region is not None and region not in self.dr.regions:
            raise BadRequest(f"unknown region {region!r} (regions: {', '.join(self.dr.regions)})")

    def scale(self, region: str, count: int, *, progress: Progress) -> int:
        self._check(region)
        layout = self.dr.region(region)
        layout.ensure_dirs()
        haproxy_mod.write_config(layout)
        HAProxy(layout).start()  # a region that died comes back with its router
        running = len(local_dr.scale_region(self.dr, region, self.spec.version, count, progress))
        workers = self.spec.workers if count >= self.spec.instances else self.spec.standby_workers
        if workers:  # the region's workers follow: at full size where users are, standby size else
            local_dr.scale_workers(self.dr, region, self.spec.version, workers, progress)
        return running

    def use_database(self, region: str, database: str | None) -> None:
        self._check(region)
        self._check(database)
        local_dr.write_database_file(self.dr, region, database)

    def writes_to(self, region: str) -> str | None:
        self._check(region)
        return local_dr.read_database_file(self.dr, region)

    def versions(self, region: str) -> dict[str, str]:
        self._check(region)
        return local_dr.versions(self.dr, region)

    def converge(self, region: str, versions: dict[str, str], *, progress: Progress) -> dict[str, str]:
        self._check(region)
        return local_dr.converge(self.dr, region, versions, progress)

    def health(self, region: str) -> list[str]:
        self._check(region)
        failures = []
        url = self.dr.region(region).router_url + "/healthz"
        try:
            response = httpx.get(url, timeout=1.0)
            if response.status_code != 200:
                failures.append(f"router {url}: HTTP {response.status_code}")
        except httpx.HTTPError as exc:
            failures.append(f"router {url}: {type(exc).__name__}")
        try:
            with local_dr.node(self.dr, region).connect(timeout=1) as conn:
                conn.execute("SELECT 1")
        except psycopg.Error as exc:
            failures.append(f"database {region}: {str(exc).strip().splitlines()[0][:200]}")
        return failures
