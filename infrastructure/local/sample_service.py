"""The sample HTTP service the local platform deploys (several instances, several versions).

Run as::

    python -m infrastructure.local.sample_service --version V --pool P --slot I --port N --state-dir S

(``--host H`` binds another address than 127.0.0.1.)

* ``GET /`` (and any other app path) -> JSON ``{"version", "pool", "slot"}``, header ``X-Version``;
  500 per the injected error rate.
* ``GET /healthz`` -> 200 ``ok`` (503 when the behaviour says ``healthy: false``).
* ``GET /metrics`` -> ``http_requests_total{code,version,pool}`` and
  ``http_request_duration_seconds{version,pool}``.
* ``GET|POST /admin/behaviour`` -> read / change this instance's behaviour at runtime.
* ``GET /admin/inflight`` -> ``{"inflight": N}``, requests being served right now.
* ``POST /orders {"id": N}`` -> inserts row N into the region's database (``{state_dir}/database.json``
  names it, re-read when it changes); 201 once committed, 503 when the database refuses or is
  unreachable, 404 without that file.
* ``POST /jobs`` -> adds a job for the workers (``infrastructure.local.sample_worker``) the same way:
  201 ``{"job": ID, "node": REGION}``.

Behaviour is read from ``behaviour/{version}.json`` at start and whenever that file changes
(polled every 200 ms), and so is the background behaviour of every version,
``behaviour/_background.json``: noise like a real service's, so a healthy canary and its
baseline look alike but never identical. A request fails if the version's deterministic
pattern says so (``error_rate`` r: request n fails iff ``floor(n*r) > floor((n-1)*r)``, so 20 %
fails exactly every 5th request), or with probability ``error_probability`` of the version or of
the background. Its latency is the version's fixed ``latency_ms``, plus a draw from each
lognormal distribution set (``latency_median_ms`` with ``latency_p95_ms``; the version's and
the background's).
SIGTERM stops accepting, finishes in-flight requests and exits 0.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import random
import signal
import sys
import threading
import time
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import TYPE_CHECKING, Any

import structlog
from pydantic import BaseModel, Field, model_validator

from infrastructure.local.logs import configure_logging

if TYPE_CHECKING:
    from infrastructure.local.layout import Layout

log = structlog.get_logger(__name__)

LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 0.75, 1.0, 1.5, 2.0, 5.0)
_POLL_S = 0.2
_EPS = 1e-9
_Z95 = 1.6448536269514722
"""The standard normal's 95th percentile: a lognormal's P95 is exp(mu + _Z95 * sigma)."""


class Behaviour(BaseModel):
    """How an instance behaves: 500s (a deterministic share, and at random), added latency, health."""

    error_rate: float = Field(default=0.0, ge=0.0, le=1.0)
    error_probability: float = Field(default=0.0, ge=0.0, le=1.0)
    latency_ms: int = Field(default=0, ge=0, le=60_000)
    latency_median_ms: float = Field(default=0.0, ge=0.0, le=60_000)
    latency_p95_ms: float = Field(default=0.0, ge=0.0, le=60_000)
    healthy: bool = True

    @model_validator(mode="after")
    def _check_latency(self) -> Behaviour:
        if self.latency_median_ms and self.latency_p95_ms < self.latency_median_ms:
            median, p95 = self.latency_median_ms, self.latency_p95_ms
            msg = f"latency_p95_ms ({p95}) is below latency_median_ms ({median})"
            raise ValueError(msg)
        return self

    def draw_latency_ms(self, rng: random.Random) -> float:
        """The fixed latency plus one draw of the lognormal distribution (median, P95), if set."""
        extra = 0.0
        if self.latency_median_ms > 0:
            mu = math.log(self.latency_median_ms)
            sigma = (math.log(self.latency_p95_ms) - mu) / _Z95 if self.latency_p95_ms > 0 else 0.0
            extra = rng.lognormvariate(mu, sigma)
        return self.latency_ms + extra


BACKGROUND = "_background"
"""The behaviour file every version reads besides its own (``set_behaviour(layout, BACKGROUND, ...)``)."""


def set_behaviour(layout: Layout, version: str, *, component: str = "api", **behaviour: Any) -> Behaviour:
    """Write the behaviour file of ``version`` of ``component`` atomically (``behaviour/{version}.json``,
    ``behaviour/worker-{version}.json``); running instances pick it up within ~0.2 s.

    ``version`` may be :data:`BACKGROUND`: noise for every version (random errors and latency).
    """
    b = Behaviour(**behaviour)
    path = layout.behaviour_file(version, component)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(b.model_dump_json())
    tmp.replace(path)
    return b


def clear_behaviour(layout: Layout, version: str, component: str = "api") -> None:
    """Remove the behaviour file of ``version`` (instances keep their current behaviour)."""
    layout.behaviour_file(version, component).unlink(missing_ok=True)


class _State:
    """Shared, lock-protected state of one instance."""

    def __init__(self, version: str, pool: str, slot: int, behaviour_file: Path) -> None:
        from prometheus_client import CollectorRegistry, Counter, Histogram  # noqa: PLC0415

        self.version, self.pool, self.slot = version, pool, slot
        self.behaviour_file = behaviour_file
        self.background_file = behaviour_file.with_name(f"{BACKGROUND}.json")
        self.lock = threading.Lock()
        self.behaviour = Behaviour()
        self.background = Behaviour()
        self.rng = random.Random()  # noqa: S311 - noise, not secrets
        self._file_mtime: int | None = None
        self._background_mtime: int | None = None
        self._n = 0
        self._failed = 0
        self.inflight = 0
        self.idle = threading.Condition(self.lock)
        self.stopping = False
        self.registry = CollectorRegistry()
        self.requests = Counter(
            "http_requests",
            "HTTP requests served by the app",
            ["code", "version", "pool"],
            registry=self.registry,
        )
        self.duration = Histogram(
            "http_request_duration_seconds",
            "App request latency",
            ["version", "pool"],
            buckets=LATENCY_BUCKETS,
            registry=self.registry,
        )
        # Pre-create the series so rate() sees them from the first scrapes on.
        for code in ("200", "500"):
            self.requests.labels(code=code, version=version, pool=pool)
        self.duration.labels(version=version, pool=pool)
        self.reload_file()
        database_file = behaviour_file.parent.parent / "database.json"
        self.database = RegionDatabase(database_file) if database_file.exists() else None

    def set(self, behaviour: Behaviour) -> None:
        with self.lock:
            if behaviour != self.behaviour:
                self._n = self._failed = 0
            self.behaviour = behaviour
        log.info("behaviour", **behaviour.model_dump())

    def reload_file(self) -> None:
        b, self._file_mtime = read_changed(self.behaviour_file, self._file_mtime)
        if b is not None:
            self.set(b)
        background, self._background_mtime = read_changed(self.background_file, self._background_mtime)
        if background is not None:
            with self.lock:
                self.background = background
            log.info("background_behaviour", **background.model_dump())

    def next_outcome(self) -> tuple[bool, float]:
        """Whether this request fails, and how long it takes (ms) before the answer."""
        with self.lock:
            b, background = self.behaviour, self.background
            self._n += 1
            should = math.floor(self._n * b.error_rate + _EPS)
            fail = should > self._failed
            if fail:
                self._failed += 1
            for p in (b.error_probability, background.error_probability):
                fail = fail or (p > 0 and self.rng.random() < p)
            latency = b.draw_latency_ms(self.rng) + background.draw_latency_ms(self.rng)
            return fail, latency

    def watch(self) -> None:
        while True:
            time.sleep(_POLL_S)
            self.reload_file()


def read_changed(path: Path, seen: int | None) -> tuple[Behaviour | None, int | None]:
    """The behaviour in ``path`` if the file changed since mtime ``seen`` (None if not, or invalid)."""
    try:
        mtime = path.stat().st_mtime_ns
    except OSError:
        return None, None
    if mtime == seen:
        return None, seen
    try:
        return Behaviour.model_validate_json(path.read_text()), mtime
    except (OSError, ValueError) as exc:
        log.warning("behaviour_file_invalid", path=str(path), error=str(exc))
        return None, seen


class RegionDatabase:
    """The database named by ``database.json`` (``{"conninfo", "node"}``, re-read when it changes);
    pooled connections. Shared with the sample worker."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.lock = threading.Lock()
        self._mtime: int | None = None
        self._target: dict[str, Any] = {}
        self._idle: list[Any] = []

    def current(self) -> dict[str, Any]:
        """``{"conninfo", "node"}`` as the file says now (conninfo None: writes refused, fenced)."""
        with self.lock:
            try:
                mtime = self.path.stat().st_mtime_ns
                if mtime != self._mtime:
                    self._target, self._mtime = json.loads(self.path.read_text()), mtime
                    stale, self._idle = self._idle, []
                    for conn in stale:
                        conn.close()
            except (OSError, ValueError):
                pass
            return self._target

    def run(self, sql: str, params: tuple[Any, ...] = ()) -> tuple[int, Any, str | None]:
        """``(201, first row, node)`` once committed; ``(503, error, node)`` when the database refuses,
        is unreachable or none is configured."""
        import psycopg  # noqa: PLC0415 - only instances with a database need the driver

        target = self.current()
        if not target.get("conninfo"):
            return 503, "no database configured (fenced)", None
        with self.lock:
            conn = self._idle.pop() if self._idle else None
        try:
            if conn is None:
                conn = psycopg.connect(target["conninfo"], autocommit=True, connect_timeout=2)
            conn.execute("SET statement_timeout = '5s'")
            cursor = conn.execute(sql, params)
            row = cursor.fetchone() if cursor.description else None
        except psycopg.Error as exc:
            if conn is not None:
                conn.close()
            return 503, str(exc).strip()[:300], target.get("node")
        with self.lock:
            if self._target is target:
                self._idle.append(conn)
            else:
                conn.close()
        return 201, row, target.get("node")

    def insert_order(self, raw: bytes) -> tuple[int, dict[str, Any]]:
        try:
            order = int(json.loads(raw or b"{}")["id"])
        except (ValueError, KeyError, TypeError):
            return 400, {"error": 'expected {"id": N}'}
        code, out, node = self.run(
            "INSERT INTO orders (id) VALUES (%s) ON CONFLICT (id) DO NOTHING", (order,)
        )
        if code != 201:
            return code, {"error": out, "node": node}
        return 201, {"id": order, "node": node}

    def add_job(self) -> tuple[int, dict[str, Any]]:
        code, out, node = self.run("INSERT INTO jobs DEFAULT VALUES RETURNING id")
        if code != 201:
            return code, {"error": out, "node": node}
        return 201, {"job": out[0], "node": node}


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True
    server: _Server

    def log_message(self, format: str, *args: Any) -> None:
        """Silence per-request access logs."""

    def _send(self, code: int, body: bytes, ctype: str, headers: dict[str, str] | None = None) -> None:
        self.send_response(code)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("X-Version", self.server.state.version)
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        if self.server.state.stopping:
            self.send_header("Connection", "close")
            self.close_connection = True
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def _json(self, code: int, obj: Any) -> None:
        self._send(code, json.dumps(obj).encode(), "application/json")

    def _tracked(self, fn: Any) -> None:
        st = self.server.state
        with st.lock:
            st.inflight += 1
        try:
            fn()
        finally:
            with st.lock:
                st.inflight -= 1
                st.idle.notify_all()

    def do_GET(self) -> None:
        """Route GET requests."""
        self._tracked(self._get)

    def do_HEAD(self) -> None:
        """HEAD behaves like GET without a body."""
        self._tracked(self._get)

    def do_POST(self) -> None:
        """Route POST requests."""
        self._tracked(self._post)

    def _get(self) -> None:
        st = self.server.state
        path = self.path.split("?", 1)[0]
        if path == "/healthz":
            if st.behaviour.healthy:
                self._send(200, b"ok", "text/plain")
            else:
                self._send(503, b"unhealthy", "text/plain")
        elif path == "/metrics":
            from prometheus_client import CONTENT_TYPE_LATEST, generate_latest  # noqa: PLC0415

            self._send(200, generate_latest(st.registry), CONTENT_TYPE_LATEST)
        elif path == "/admin/behaviour":
            self._json(200, st.behaviour.model_dump())
        elif path == "/admin/inflight":
            with st.lock:
                self._json(200, {"inflight": st.inflight - 1})  # not counting this request
        else:
            self._app()

    def _app(self) -> None:
        st = self.server.state
        start = time.perf_counter()
        fail, latency_ms = st.next_outcome()
        if latency_ms > 0:
            time.sleep(latency_ms / 1000)
        code = 500 if fail else 200
        body: dict[str, Any] = {"version": st.version, "pool": st.pool, "slot": st.slot}
        if fail:
            body["error"] = "injected"
        self._json(code, body)
        st.requests.labels(code=str(code), version=st.version, pool=st.pool).inc()
        st.duration.labels(version=st.version, pool=st.pool).observe(time.perf_counter() - start)

    def _post(self) -> None:
        st = self.server.state
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b"{}"
        path = self.path.split("?", 1)[0]
        if path in ("/orders", "/jobs") and st.database is not None:
            code, body = st.database.insert_order(raw) if path == "/orders" else st.database.add_job()
            self._json(code, body)
            return
        if self.path.split("?", 1)[0] != "/admin/behaviour":
            self._json(404, {"error": "not found"})
            return
        try:
            merged = {**st.behaviour.model_dump(), **json.loads(raw or b"{}")}
            b = Behaviour.model_validate(merged)
        except ValueError as exc:
            self._json(400, {"error": str(exc)})
            return
        st.set(b)
        self._json(200, b.model_dump())


class _Server(ThreadingHTTPServer):
    request_queue_size = 256
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, addr: tuple[str, int], state: _State) -> None:
        self.state = state
        super().__init__(addr, _Handler)


def serve(*, version: str, pool: str, slot: int, port: int, state_dir: Path, host: str = "127.0.0.1") -> int:
    """Serve until SIGTERM/SIGINT; then drain in-flight requests and return 0."""
    behaviour_file = state_dir / "behaviour" / f"{version}.json"  # == Layout.behaviour_file(version)
    state = _State(version, pool, slot, behaviour_file)
    server = _Server((host, port), state)
    threading.Thread(target=state.watch, daemon=True, name="behaviour-watch").start()

    def _on_signal(signum: int, _frame: Any) -> None:
        state.stopping = True
        threading.Thread(target=server.shutdown, daemon=True).start()

    signal.signal(signal.SIGTERM, _on_signal)
    signal.signal(signal.SIGINT, _on_signal)
    log.info("listening", version=version, pool=pool, slot=slot, port=port, pid=os.getpid())
    server.serve_forever(poll_interval=0.1)
    server.server_close()
    with state.lock:
        state.idle.wait_for(lambda: state.inflight == 0, timeout=10.0)
    log.info("stopped", version=version, pool=pool, slot=slot)
    return 0


def run_instance(description: str, serve_instance: Callable[..., int], argv: list[str] | None = None) -> int:
    """The command line of an instance process (this API, or the sample worker): which version, pool,
    slot and port, where the platform's state is; then ``serve_instance`` until SIGTERM."""
    p = argparse.ArgumentParser(description=description)
    p.add_argument("--version", required=True)
    p.add_argument("--pool", required=True)
    p.add_argument("--slot", type=int, required=True)
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--state-dir", type=Path, required=True)
    p.add_argument("--host", default="127.0.0.1", help="address to bind (any loopback 127.x.y.z works)")
    a = p.parse_args(argv)
    configure_logging()
    return serve_instance(
        version=a.version, pool=a.pool, slot=a.slot, port=a.port, state_dir=a.state_dir, host=a.host
    )


def main(argv: list[str] | None = None) -> int:
    """Command-line entry point."""
    return run_instance(__doc__.splitlines()[0], serve, argv)


if __name__ == "__main__":
    sys.exit(main())
