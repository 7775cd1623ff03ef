"""Where every file and port of the two-region (disaster recovery) local stack lives.

A :class:`DrLayout` is computed from a state directory and a port base only, like
:class:`~infrastructure.local.layout.Layout`. Each region is a full ``Layout`` of
its own (router, sample instances in pool ``blue``) on its own block of 60 ports,
plus a PostgreSQL node on the region block's +9; the global entry point (standing
for DNS) listens after the region blocks::

    port_base + 0   .. +59     region A (router +0, PostgreSQL +9, instances +10..)
    port_base + 60  .. +119    region B (same map)
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
from infrastructure.local.layout import PORT_BLOCK, REPO_ROOT, Layout, port_is_free

REGIONS = ("A", "B")
DEFAULT_DR_PORT_BASE = 19000
REGION_SLOTS = 4
_DB_OFFSET = 9


def _world_traversable(path: Path) -> bool:
    for parent in [path, *path.parents]:
        if parent.exists() and not parent.stat().st_mode & stat.S_IXOTH:
            return False
    return True


@dataclass(frozen=True)
class DrLayout:
    """Every path and port of one two-region stack."""

    state_dir: Path
    port_base: int
    regions: tuple[str, ...] = REGIONS

    def __post_init__(self) -> None:
        object.__setattr__(self, "state_dir", Path(self.state_dir).resolve())
        if not 1024 <= self.port_base <= 65535 - self.span:
            raise ValueError(f"port_base out of range: {self.port_base}")

    @property
    def span(self) -> int:
        """Ports used, from ``port_base`` on."""
        return PORT_BLOCK * len(self.regions) + 10

    @classmethod
    def from_env(cls, *, state_dir: Path | str | None = None, port_base: int | None = None) -> DrLayout:
        """From ``DEPLOY_DR_STATE_DIR`` / ``DEPLOY_DR_PORT_BASE`` (explicit arguments win)."""
        sd = state_dir or os.environ.get("DEPLOY_DR_STATE_DIR") or REPO_ROOT / ".state" / "dr"
        pb = port_base or int(os.environ.get("DEPLOY_DR_PORT_BASE", DEFAULT_DR_PORT_BASE))
        return cls(state_dir=Path(sd), port_base=pb)

    @classmethod
    def for_tests(cls, tmp_path: Path) -> DrLayout:
        """A layout in ``tmp_path`` on a free run of ports (each bind-tested)."""
        rng = random.Random(os.getpid() ^ hash(str(tmp_path)))  # noqa: S311 - not crypto
        span = PORT_BLOCK * len(REGIONS) + 10
        for _ in range(200):
            base = rng.randrange(32000 - 12000, 32000 - span, PORT_BLOCK)
            if all(port_is_free(p) for p in range(base, base + span)):
                return cls(state_dir=tmp_path / "dr", port_base=base)
        raise RuntimeError("no free run of ports found")

    # ---- regions -----------------------------------------------------------------------------
    def check_region(self, name: str) -> str:
        if name not in self.regions:
            raise ValueError(f"unknown region {name!r} (regions: {', '.join(self.regions)})")
        return name

    def region(self, name: str) -> Layout:
        """The region's own layout: router, instances, logs."""
        index = self.regions.index(self.check_region(name))
        return Layout(
            state_dir=self.state_dir / "regions" / name,
            port_base=self.port_base + PORT_BLOCK * index,
            max_slots=REGION_SLOTS,
        )

    def db_port(self, name: str) -> int:
        return self.region(name).port_base + _DB_OFFSET

    def db_application_name(self, name: str) -> str:
        """The node's ``cluster_name``: its name in ``pg_stat_replication`` and synchronous_standby_names."""
        return f"region_{self.check_region(name).lower()}"

    def database_file(self, name: str) -> Path:
        """Which database the region's instances write to (read by the sample service per request)."""
        return self.region(name).state_dir / "database.json"

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
        return {"DEPLOY_DR_STATE_DIR": str(self.state_dir), "DEPLOY_DR_PORT_BASE": str(self.port_base)}


def layout_for(spec: DrSpec) -> DrLayout:
    """The local two-region stack of a DR spec (its ``local`` settings), for the local DR providers."""
    if spec.local is None:
        msg = f"environment {spec.environment!r} has no local DR settings"
        raise BadRequest(msg)
    return DrLayout(
        state_dir=Path(spec.local.state_dir), port_base=spec.local.port_base, regions=tuple(spec.regions)
    )
