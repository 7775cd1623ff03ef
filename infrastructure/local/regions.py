"""Where every file and port of the local platform's regions lives.

A :class:`PlatformLayout` is computed from a state directory and a port base only, like
:class:`~infrastructure.local.layout.Layout`. Each region is a full ``Layout`` of its own
(router, API and worker instances, its PostgreSQL node on +9) on its own block of 60
ports; the home region's block and state dir are the platform's own (Temporal, Prometheus
and the release services live there), so a one-region platform is exactly the single
``Layout``. The global entry point (standing for DNS) listens after the region blocks::

    port_base + 0   .. +59     region A, the home region (router +0, PostgreSQL +9, instances +10..)
    port_base + 60  .. +119    region B (same map, state under regions/B)
    port_base + 120            global entry (HAProxy frontend, backend = a region's router)

PostgreSQL refuses to run as root, so its data directories must be reachable by
the ``postgres`` user: under the state dir when every parent directory is
world-traversable, else under the temp dir (named after the state dir).
"""

from __future__ import annotations

import hashlib
import os
import random
import stat
import tempfile
from dataclasses import dataclass
from pathlib import Path

from engine.contracts.dr import DrSpec
from engine.errors import BadRequest
from infrastructure.local.layout import PORT_BLOCK, Layout, port_is_free, region_layout

REGIONS = ("A", "B")


def _world_traversable(path: Path) -> bool:
    for parent in [path, *path.parents]:
        if parent.exists() and not parent.stat().st_mode & stat.S_IXOTH:
            return False
    return True


@dataclass(frozen=True)
class PlatformLayout:
    """Every path and port of one local platform: its regions (home first) and the global entry."""

    state_dir: Path
    port_base: int
    regions: tuple[str, ...] = REGIONS
    max_slots: int = 8

    def __post_init__(self) -> None:
        object.__setattr__(self, "state_dir", Path(self.state_dir).resolve())
        object.__setattr__(self, "regions", tuple(self.regions))
        if not self.regions or len(set(self.regions)) != len(self.regions):
            raise ValueError(f"regions must be distinct and at least one, got {self.regions}")
        if not 1024 <= self.port_base <= 65535 - self.span:
            raise ValueError(f"port_base out of range: {self.port_base}")

    @property
    def span(self) -> int:
        """Ports used, from ``port_base`` on."""
        return PORT_BLOCK * len(self.regions) + 10

    @classmethod
    def from_env(
        cls,
        *,
        state_dir: Path | str | None = None,
        port_base: int | None = None,
        regions: tuple[str, ...] = REGIONS,
    ) -> PlatformLayout:
        """From ``DEPLOY_STATE_DIR`` / ``DEPLOY_PORT_BASE`` (explicit arguments win), like ``Layout``."""
        home = Layout.from_env(state_dir=state_dir, port_base=port_base)
        return cls(state_dir=home.state_dir, port_base=home.port_base, regions=regions)

    @classmethod
    def of(cls, layout: Layout, regions: tuple[str, ...] = ("A",)) -> PlatformLayout:
        """The platform whose home region is ``layout`` (one region unless told otherwise)."""
        return cls(layout.state_dir, layout.port_base, regions=regions, max_slots=layout.max_slots)

    @classmethod
    def for_tests(cls, tmp_path: Path, regions: tuple[str, ...] = REGIONS) -> PlatformLayout:
        """A layout in ``tmp_path`` on a free run of ports (each bind-tested)."""
        rng = random.Random(os.getpid() ^ hash(str(tmp_path)))  # noqa: S311 - not crypto
        span = PORT_BLOCK * len(regions) + 10
        for _ in range(200):
            base = rng.randrange(20000, 32000 - span, PORT_BLOCK)
            if all(port_is_free(p) for p in range(base, base + span)):
                return cls(state_dir=tmp_path / "state", port_base=base, regions=regions)
        raise RuntimeError("no free run of ports found")

    # ---- regions -----------------------------------------------------------------------------
    @property
    def home(self) -> str:
        """The home region (normally the primary): its block holds Temporal and Prometheus too."""
        return self.regions[0]

    @property
    def home_layout(self) -> Layout:
        return self.region(self.home)

    def check_region(self, name: str) -> str:
        if name not in self.regions:
            raise ValueError(f"unknown region {name!r} (regions: {', '.join(self.regions)})")
        return name

    def region(self, name: str) -> Layout:
        """The region's own layout: router, instances, logs."""
        return region_layout(
            self.state_dir, self.port_base, self.regions, self.check_region(name), self.max_slots
        )

    def layouts(self) -> dict[str, Layout]:
        """Every region's layout, home first."""
        return {name: self.region(name) for name in self.regions}

    def db_port(self, name: str) -> int:
        return self.region(name).postgres_port

    def db_application_name(self, name: str) -> str:
        """The node's ``cluster_name``: its name in ``pg_stat_replication`` and synchronous_standby_names."""
        return f"region_{self.check_region(name).lower()}"

    def database_file(self, name: str) -> Path:
        """Which database the region's instances write to (read by the sample service per request)."""
        return self.region(name).database_file

    @property
    def pg_root(self) -> Path:
        if _world_traversable(self.state_dir.parent):
            return self.state_dir / "postgres"
        digest = hashlib.sha1(str(self.state_dir).encode(), usedforsecurity=False).hexdigest()[:12]
        return Path(tempfile.gettempdir()) / f"deploy-pg-{digest}"

    def pg_data(self, name: str) -> Path:
        return self.pg_root / self.check_region(name)

    def pg_log(self, name: str) -> Path:
        return self.pg_root / f"{name}.log"

    # ---- global entry ------------------------------------------------------------------------
    @property
    def global_port(self) -> int:
        return self.port_base + PORT_BLOCK * len(self.regions)

    @property
    def global_url(self) -> str:
        return f"http://127.0.0.1:{self.global_port}"

    @property
    def global_dir(self) -> Path:
        return self.state_dir / "global"

    def env(self) -> dict[str, str]:
        """Environment variables that make a child process find this same platform."""
        return self.home_layout.env()


def layout_for(spec: DrSpec) -> PlatformLayout:
    """The local platform of a DR spec (its ``local`` settings), for the local DR providers."""
    if spec.local is None:
        msg = f"environment {spec.environment!r} has no local platform settings"
        raise BadRequest(msg)
    return PlatformLayout(
        state_dir=Path(spec.local.state_dir), port_base=spec.local.port_base, regions=tuple(spec.regions)
    )
