"""What a release pipeline needs around the service: registry, Redis, a dependency.

Each runs detached with a pidfile on its own loopback port of the layout, with its
data under the state dir, exactly like HAProxy and Prometheus:

- ``registry``: Debian's ``docker-registry`` (distribution 2.8) with our own config
  (filesystem storage, no auth), holding the CI and production repositories;
- ``redis``: Debian's ``redis-server``, no persistence;
- ``dependency``: a tiny HTTP endpoint standing in for an external API (``/healthz``).
"""

from __future__ import annotations

import shutil
import socket
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import structlog

from infrastructure.local import processes
from infrastructure.local.layout import REPO_ROOT, Layout

log = structlog.get_logger(__name__)


class ServiceError(RuntimeError):
    """A release service did not start."""


def _binary(name: str, *candidates: str) -> str:
    found = shutil.which(name) or next((c for c in candidates if Path(c).exists()), None)
    if found is None:
        msg = f"{name} is not installed (apt-get install docker-registry redis-server; see scripts/dev.sh)"
        raise ServiceError(msg)
    return found


def _port_open(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.3):
            return True
    except OSError:
        return False


@dataclass
class Service:
    """One detached process on one loopback port."""

    layout: Layout
    name: str
    port: int

    @property
    def pidfile(self) -> Path:
        return self.layout.pidfile(self.name)

    @property
    def dir(self) -> Path:
        return self.layout.state_dir / self.name

    def marker(self) -> list[str]:
        raise NotImplementedError

    def argv(self) -> list[str]:
        raise NotImplementedError

    def prepare(self) -> None:
        """Write configs, create data directories."""

    def ready(self) -> bool:
        return _port_open(self.port)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def pid(self) -> int | None:
        return processes.running_pid(self.pidfile, self.marker())

    def start(self, timeout: float = 30.0) -> int:
        """Start unless running (idempotent); wait until it answers."""
        pid = self.pid()
        if pid is not None:
            return pid
        self.dir.mkdir(parents=True, exist_ok=True)
        self.prepare()
        pid = processes.spawn(
            self.argv(), log_file=self.layout.log_file(self.name), pidfile=self.pidfile, cwd=REPO_ROOT
        )
        deadline = time.monotonic() + timeout
        while not self.ready():
            if not processes.is_alive(pid):
                msg = f"{self.name} exited:\n" + processes.tail(self.layout.log_file(self.name))
                raise ServiceError(msg)
            if time.monotonic() > deadline:
                msg = f"{self.name} not ready after {timeout}s"
                raise ServiceError(msg)
            time.sleep(0.05)
        log.info(f"{self.name}_started", pid=pid, port=self.port)
        return pid

    def stop(self, timeout: float = 10.0) -> None:
        processes.stop_pidfile(self.pidfile, self.marker(), timeout=timeout)

    def status(self) -> dict[str, Any]:
        pid = self.pid()
        return {"pid": pid, "port": self.port, "url": self.url, "running": pid is not None}


class Registry(Service):
    """docker-registry with filesystem storage under ``STATE/registry/data``."""

    def __init__(self, layout: Layout) -> None:
        super().__init__(layout, "registry", layout.registry_port)

    @property
    def config(self) -> Path:
        return self.dir / "config.yml"

    def prepare(self) -> None:
        (self.dir / "data").mkdir(parents=True, exist_ok=True)
        self.config.write_text(
            "version: 0.1\nlog: {level: warn}\n"
            f"storage:\n  filesystem: {{rootdirectory: {self.dir / 'data'}}}\n  delete: {{enabled: true}}\n"
            f"http:\n  addr: 127.0.0.1:{self.port}\n"
        )

    def marker(self) -> list[str]:
        return ["registry", str(self.config)]

    def argv(self) -> list[str]:
        return [_binary("docker-registry", "/usr/bin/docker-registry"), "serve", str(self.config)]

    def ready(self) -> bool:
        try:
            return httpx.get(f"{self.url}/v2/", timeout=0.5).status_code == 200
        except httpx.HTTPError:
            return False


class Redis(Service):
    """redis-server without persistence."""

    def __init__(self, layout: Layout) -> None:
        super().__init__(layout, "redis", layout.redis_port)

    def marker(self) -> list[str]:
        return ["redis-server", f"127.0.0.1:{self.port}"]  # redis rewrites its title to this

    def argv(self) -> list[str]:
        return [
            _binary("redis-server", "/usr/bin/redis-server"),
            "--port",
            str(self.port),
            "--bind",
            "127.0.0.1",
            "--save",
            "",
            "--appendonly",
            "no",
            "--dir",
            str(self.dir),
            "--loglevel",
            "warning",
        ]

    def ready(self) -> bool:
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=0.5) as s:
                s.sendall(b"PING\r\n")
                return s.recv(16).startswith(b"+PONG")
        except OSError:
            return False

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}"


class Dependency(Service):
    """The external HTTP dependency the pre-checks call (``/healthz``)."""

    def __init__(self, layout: Layout) -> None:
        super().__init__(layout, "dependency", layout.dependency_port)

    def marker(self) -> list[str]:
        return ["infrastructure.local.dependency", f"--port {self.port}"]

    def argv(self) -> list[str]:
        return [sys.executable, "-m", "infrastructure.local.dependency", "--port", str(self.port)]


def services(layout: Layout) -> dict[str, Any]:
    return {
        "registry": Registry(layout),
        "redis": Redis(layout),
        "dependency": Dependency(layout),
    }


def start_all(layout: Layout) -> None:
    for svc in services(layout).values():
        svc.start()


def stop_all(layout: Layout) -> None:
    for svc in services(layout).values():
        svc.stop()


def status_all(layout: Layout) -> dict[str, dict[str, Any]]:
    return {name: svc.status() for name, svc in services(layout).items()}


DEMO_VERSION = "v1.2.3"
"""The version the README's demo releases: its CI image is pushed by ``up``."""
TERRAFORM_ROOT = REPO_ROOT / "infrastructure" / "local" / "terraform"


def up(layout: Layout, stable_version: str) -> dict[str, float]:
    """Start the services, seed the CI images (stable + demo) and production (stable),
    and apply the Terraform baseline; idempotent. Returns timings."""
    from clients.terraform import Terraform  # noqa: PLC0415 - heavy-ish, only for up
    from engine.contracts.pipeline import TerraformSpec  # noqa: PLC0415
    from infrastructure.local import images  # noqa: PLC0415 - images imports this package

    timings: dict[str, float] = {}
    t0 = time.monotonic()
    start_all(layout)
    timings["services"] = round(time.monotonic() - t0, 3)
    t1 = time.monotonic()
    images.seed(layout, sorted({stable_version, DEMO_VERSION}), [stable_version])
    if "blue" not in images.pins(layout):
        images.pin(layout, "blue", stable_version)  # what `up` starts in blue
    timings["images"] = round(time.monotonic() - t1, 3)
    t2 = time.monotonic()
    tf = Terraform(TerraformSpec(root=str(TERRAFORM_ROOT), state_dir=str(layout.state_dir / "terraform")))
    plan = tf.plan("baseline")
    if plan.changes:
        tf.apply(plan, progress=lambda _msg: None)
    timings["terraform"] = round(time.monotonic() - t2, 3)
    return timings
