"""Where every file and port of one local stack lives.

A :class:`Layout` is computed from a state directory and a port base only, so two
stacks with different state dirs and port bases never collide (tests run several
in parallel).  Port map, relative to ``port_base``::

    +0  router (HAProxy frontend "public")     +5  Temporal web UI
    +1  preview (HAProxy frontend "preview")   +6  worker metrics
    +2  Prometheus                             +7  Temporal HTTP API
    +3  HAProxy prometheus-exporter            +8  Temporal server metrics
    +4  Temporal gRPC frontend                 +9  PostgreSQL (the region's database)
    +10 .. +10+max_slots-1   api pool "blue" instances
    +20 .. +24               worker pool "blue" instances
    +25 .. +29               worker pool "green" instances
    +30 .. +30+max_slots-1   api pool "green" instances
    +40 .. +40+max_slots-1   api pool "baseline" instances (a canary's baseline: the stable version)
    +55 registry  +56 Redis  +58 external HTTP dependency (release pipeline)

A two-region platform (:class:`~infrastructure.local.regions.PlatformLayout`) is one such
block per region: the home region's is this layout itself (Temporal, Prometheus and the
release services live there), the others follow it, 60 ports each.

Two components run on it: ``api`` (the sample service, behind the router) and ``worker``
(the sample worker, taking jobs from the region's database); their records, logs and
behaviour files are named ``{pool}-{slot}`` and ``worker-{pool}-{slot}``.
"""

from __future__ import annotations

import hashlib
import os
import random
import socket
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from engine.contracts import ALL_POOLS, POOLS, EnvironmentSpec
from engine.errors import BadRequest

APP_LABEL = "sample-api"
"""The `app` label of every instance's series."""
API, WORKER = "api", "worker"
COMPONENTS = (API, WORKER)
"""What runs on the local platform: the API (takes traffic) and the worker (takes jobs)."""
_POOL_OFFSET: dict[str, dict[str, int]] = {
    API: {"blue": 10, "green": 30, "baseline": 40},
    WORKER: {"blue": 20, "green": 25},
}
MAX_SLOTS = 10
"""Slots per API pool: the offsets above leave room for 10 (and +55.. for the release services)."""
WORKER_SLOTS = 5
"""Slots per worker pool."""
_DB_OFFSET = 9
PORT_BLOCK = 60
REPO_ROOT = Path(__file__).resolve().parents[2]
DEFAULT_PORT_BASE = 18000
# A unix socket path must fit in sun_path (108 bytes); longer ones move to the temp dir.
_MAX_SOCKET_PATH = 100


@dataclass(frozen=True)
class Layout:
    """Every path and port of one local stack, derived from ``state_dir`` and ``port_base``."""

    state_dir: Path
    port_base: int
    max_slots: int = 8

    def __post_init__(self) -> None:
        """Normalise the state dir and check the slot count fits the port map."""
        object.__setattr__(self, "state_dir", Path(self.state_dir).resolve())
        if not 1 <= self.max_slots <= MAX_SLOTS:
            raise ValueError(f"max_slots must be 1..{MAX_SLOTS}, got {self.max_slots}")
        if not 1024 <= self.port_base <= 65535 - PORT_BLOCK:
            raise ValueError(f"port_base out of range: {self.port_base}")

    # ---- construction -------------------------------------------------------------------------
    @classmethod
    def from_env(cls, *, state_dir: Path | str | None = None, port_base: int | None = None) -> Layout:
        """Build from ``DEPLOY_STATE_DIR`` / ``DEPLOY_PORT_BASE`` (explicit arguments win)."""
        sd = state_dir or os.environ.get("DEPLOY_STATE_DIR") or REPO_ROOT / ".state" / "local"
        pb = (
            port_base if port_base is not None else int(os.environ.get("DEPLOY_PORT_BASE", DEFAULT_PORT_BASE))
        )
        return cls(state_dir=Path(sd), port_base=pb)

    @classmethod
    def for_tests(cls, tmp_path: Path, *, max_slots: int = 8) -> Layout:
        """A layout in ``tmp_path`` on a free block of 60 ports (each port bind-tested).

        Blocks are drawn at random below the Linux ephemeral range, so parallel
        pytest-xdist workers practically never pick the same one.
        """
        rng = random.Random(os.getpid() ^ hash(str(tmp_path)))  # noqa: S311 - not crypto
        for _ in range(200):
            base = rng.randrange(20000, 32000 - PORT_BLOCK, PORT_BLOCK)
            if all(port_is_free(p) for p in range(base, base + PORT_BLOCK)):
                return cls(state_dir=tmp_path / "state", port_base=base, max_slots=max_slots)
        raise RuntimeError("no free block of 60 ports found")

    # ---- ports ---------------------------------------------------------------------------------
    @property
    def router_port(self) -> int:
        """HAProxy frontend ``public`` (backend ``app``)."""
        return self.port_base

    @property
    def preview_port(self) -> int:
        """HAProxy frontend ``preview`` (backend ``preview``)."""
        return self.port_base + 1

    @property
    def prometheus_port(self) -> int:
        """Prometheus web/API port."""
        return self.port_base + 2

    @property
    def haproxy_metrics_port(self) -> int:
        """HAProxy's built-in prometheus-exporter."""
        return self.port_base + 3

    @property
    def temporal_port(self) -> int:
        """Temporal dev server gRPC frontend."""
        return self.port_base + 4

    @property
    def temporal_ui_port(self) -> int:
        """Temporal web UI."""
        return self.port_base + 5

    @property
    def worker_metrics_port(self) -> int:
        """Where the engine's worker serves its SDK metrics."""
        return self.port_base + 6

    @property
    def temporal_http_port(self) -> int:
        """Temporal HTTP API (pinned so it never lands on a random port of another stack)."""
        return self.port_base + 7

    @property
    def temporal_metrics_port(self) -> int:
        """Temporal server /metrics (pinned for the same reason)."""
        return self.port_base + 8

    @property
    def registry_port(self) -> int:
        """OCI registry (docker-registry) of the release pipeline."""
        return self.port_base + 55

    @property
    def redis_port(self) -> int:
        """Redis the pre-deployment checks ping."""
        return self.port_base + 56

    @property
    def postgres_port(self) -> int:
        """The region's PostgreSQL (a primary or a streaming standby; the pre-deployment checks
        connect to the home region's)."""
        return self.port_base + _DB_OFFSET

    @property
    def dependency_port(self) -> int:
        """The local stand-in for an external HTTP dependency."""
        return self.port_base + 58

    def slots(self, component: str = API) -> int:
        """Slots per pool of ``component``."""
        return self.max_slots if component == API else min(self.max_slots, WORKER_SLOTS)

    def instance_port(self, pool: str, slot: int, component: str = API) -> int:
        """Fixed port of ``slot`` in ``pool`` of ``component``."""
        offsets = _POOL_OFFSET.get(component)
        if offsets is None:
            raise ValueError(f"unknown component {component!r} (expected one of {COMPONENTS})")
        if pool not in offsets:
            raise ValueError(f"unknown pool {pool!r} of {component} (expected one of {tuple(offsets)})")
        if not 0 <= slot < self.slots(component):
            raise ValueError(f"slot {slot} out of range 0..{self.slots(component) - 1}")
        return self.port_base + offsets[pool] + slot

    @property
    def router_url(self) -> str:
        """Public URL of the router."""
        return f"http://127.0.0.1:{self.router_port}"

    @property
    def preview_url(self) -> str:
        """Preview URL of the router."""
        return f"http://127.0.0.1:{self.preview_port}"

    @property
    def prometheus_url(self) -> str:
        """Prometheus base URL."""
        return f"http://127.0.0.1:{self.prometheus_port}"

    # ---- paths ---------------------------------------------------------------------------------
    @property
    def haproxy_dir(self) -> Path:
        """HAProxy config/state directory."""
        return self.state_dir / "haproxy"

    @property
    def haproxy_cfg(self) -> Path:
        """Generated HAProxy config."""
        return self.haproxy_dir / "haproxy.cfg"

    @property
    def haproxy_sock(self) -> Path:
        """HAProxy runtime API socket (moved to the temp dir if the path is too long)."""
        path = self.haproxy_dir / "admin.sock"
        if len(str(path)) <= _MAX_SOCKET_PATH:
            return path
        digest = hashlib.sha1(str(self.state_dir).encode(), usedforsecurity=False).hexdigest()[:12]
        return Path(tempfile.gettempdir()) / f"deploy-haproxy-{digest}.sock"

    @property
    def haproxy_pidfile(self) -> Path:
        """HAProxy daemon pidfile."""
        return self.haproxy_dir / "haproxy.pid"

    @property
    def haproxy_state_file(self) -> Path:
        """server-state-file used across reloads (cleared at cold start)."""
        return self.haproxy_dir / "server-state"

    @property
    def prometheus_dir(self) -> Path:
        """Prometheus config directory."""
        return self.state_dir / "prometheus"

    @property
    def prometheus_yml(self) -> Path:
        """Generated Prometheus config."""
        return self.prometheus_dir / "prometheus.yml"

    @property
    def prometheus_data(self) -> Path:
        """Prometheus TSDB directory."""
        return self.prometheus_dir / "data"

    @property
    def instances_dir(self) -> Path:
        """Directory of instance records."""
        return self.state_dir / "instances"

    def instance_record(self, pool: str, slot: int, component: str = API) -> Path:
        """Record of one instance: ``instances/{name}.json`` (:func:`instance_name`)."""
        return self.instances_dir / f"{instance_name(pool, slot, component)}.json"

    @property
    def behaviour_dir(self) -> Path:
        """Directory of behaviour files."""
        return self.state_dir / "behaviour"

    def behaviour_file(self, version: str, component: str = API) -> Path:
        """Behaviour of every instance of ``version`` (of ``component``)."""
        return self.behaviour_dir / f"{component_prefix(component)}{version}.json"

    @property
    def database_file(self) -> Path:
        """Which database the region's instances write to (``{"conninfo", "node"}``; read by them)."""
        return self.state_dir / "database.json"

    @property
    def logs_dir(self) -> Path:
        """Process logs."""
        return self.state_dir / "logs"

    def log_file(self, name: str) -> Path:
        """``logs/NAME.log``."""
        return self.logs_dir / f"{name}.log"

    @property
    def temporal_dir(self) -> Path:
        """Temporal dev server state."""
        return self.state_dir / "temporal"

    @property
    def temporal_db(self) -> Path:
        """Temporal dev server sqlite file."""
        return self.temporal_dir / "temporal.db"

    @property
    def pids_dir(self) -> Path:
        """Pidfiles of detached components."""
        return self.state_dir / "pids"

    def pidfile(self, name: str) -> Path:
        """``pids/NAME.pid``."""
        return self.pids_dir / f"{name}.pid"

    def ensure_dirs(self) -> None:
        """Create every directory of the layout."""
        for d in (
            self.haproxy_dir,
            self.prometheus_dir,
            self.prometheus_data,
            self.instances_dir,
            self.behaviour_dir,
            self.logs_dir,
            self.temporal_dir,
            self.pids_dir,
        ):
            d.mkdir(parents=True, exist_ok=True)

    def env(self) -> dict[str, str]:
        """Environment variables that make a child process find this same layout."""
        return {"DEPLOY_STATE_DIR": str(self.state_dir), "DEPLOY_PORT_BASE": str(self.port_base)}


def component_prefix(component: str) -> str:
    """What names of ``component``'s files start with: nothing for the API (as ever), else ``NAME-``."""
    return "" if component == API else f"{component}-"


def instance_name(pool: str, slot: int, component: str = API) -> str:
    """``blue-0`` (the API), ``worker-blue-0`` (the worker): records, logs, pins."""
    return f"{component_prefix(component)}{pool}-{slot}"


def pools_of(component: str) -> tuple[str, ...]:
    """The pools ``component`` runs in: the API has a canary's baseline pool too."""
    return ALL_POOLS if component == API else POOLS


def port_is_free(port: int, host: str = "127.0.0.1") -> bool:
    """True if ``host:port`` can be bound right now (TCP), as our servers bind it.

    SO_REUSEADDR, as the servers set it: connections in TIME_WAIT after a stopped
    instance must not make its port look taken.
    """
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind((host, port))
        except OSError:
            return False
    return True


def region_layout(
    state_dir: Path | str, port_base: int, regions: Sequence[str], name: str, max_slots: int = 8
) -> Layout:
    """The layout of region ``name`` of a platform: the home region (the first) is the platform's
    own block and state dir, the ``i``-th region the ``i``-th block after it, under ``regions/NAME``."""
    index = list(regions).index(name)
    if index == 0:
        return Layout(state_dir=Path(state_dir), port_base=port_base, max_slots=max_slots)
    return Layout(
        state_dir=Path(state_dir) / "regions" / name,
        port_base=port_base + PORT_BLOCK * index,
        max_slots=max_slots,
    )


def layout_for(env: EnvironmentSpec) -> Layout:
    """The local platform of an environment (its ``local`` settings), for the local providers: the
    region the environment is aimed at (``local.region``; the home region when None)."""
    if env.local is None:
        msg = f"environment {env.name!r} has no local platform settings"
        raise BadRequest(msg)
    local = env.local
    region = local.region or local.regions[0]
    if region not in local.regions:
        msg = f"unknown region {region!r} of the local platform (regions: {', '.join(local.regions)})"
        raise BadRequest(msg)
    return region_layout(local.state_dir, local.port_base, local.regions, region, local.max_slots)
