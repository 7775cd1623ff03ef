"""The sample worker the local platform runs beside the API: it processes jobs from its region's database.

Run as::

    python -m infrastructure.local.sample_worker --version V --pool P --slot I --port N --state-dir S

The API adds jobs (``POST /jobs``, a row in ``jobs``); each worker takes the oldest pending one
(``FOR UPDATE SKIP LOCKED``, so two workers never take the same job), works on it, and marks
it done with its outcome, its version and the database it ran against. It reads which
database from the region's ``database.json`` (as the API does): none (the region is fenced)
or a standby (``pg_is_in_recovery()``) means no work, so a standby region's workers wait,
warm, and take jobs the moment their database is promoted.

* ``GET /healthz`` -> 200 ``ok`` (503 when the behaviour says ``healthy: false``).
* ``GET /metrics`` -> ``worker_jobs_total{version,pool,outcome}`` (ok, failed) and
  ``worker_job_duration_seconds{version,pool}``: what the release's health gate of the worker
  compares, new version against old.
* ``GET /admin/inflight`` -> ``{"inflight": N}``, jobs being worked on right now.

Whether it takes jobs at all is the region's dispatch (:mod:`infrastructure.local.dispatch`,
written by the release's worker router): a worker that is not a member of its pool, or is
draining, takes no new job.

Behaviour is the API's (:class:`~infrastructure.local.sample_service.Behaviour`), read from
``behaviour/worker-{version}.json`` and ``behaviour/worker-_background.json``: a job fails by the
version's pattern or probability, and takes the version's latency. SIGTERM: no new job is
taken, the one in hand is finished, exit 0.
"""

from __future__ import annotations

import json
import os
import random
import signal
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import structlog

from infrastructure.local import dispatch
from infrastructure.local.sample_service import BACKGROUND, Behaviour, read_changed, run_instance

log = structlog.get_logger(__name__)

COMPONENT = "worker"
IDLE_S = 0.2
"""How long a worker waits before looking again when there is nothing to do."""
RECOVERY_RECHECK_S = 1.0
"""How often an idle worker asks whether its database left recovery (was promoted)."""
CLAIM = (
    "UPDATE jobs SET taken_at = now(), taken_by = %s WHERE id = ("
    " SELECT id FROM jobs WHERE done_at IS NULL"
    " AND (taken_at IS NULL OR taken_at < now() - interval '30 seconds')"
    " ORDER BY id FOR UPDATE SKIP LOCKED LIMIT 1) RETURNING id"
)
"""Take the oldest pending job (or one a dead worker held for 30 s)."""
FINISH = "UPDATE jobs SET done_at = now(), outcome = %s, version = %s, node = %s WHERE id = %s"


class _Worker:
    """One worker process: its behaviour, metrics and the loop that takes jobs."""

    def __init__(self, version: str, pool: str, slot: int, state_dir: Path) -> None:
        from prometheus_client import CollectorRegistry, Counter, Histogram  # noqa: PLC0415

        self.version, self.pool, self.slot = version, pool, slot
        self.name = f"{COMPONENT}-{pool}-{slot}"
        self.behaviour_file = state_dir / "behaviour" / f"{COMPONENT}-{version}.json"
        self.background_file = state_dir / "behaviour" / f"{COMPONENT}-{BACKGROUND}.json"
        self.database_file = state_dir / "database.json"
        self.dispatch_file = state_dir / dispatch.FILE
        self._dispatch_mtime: int | None = None
        self.dispatched = True
        self.behaviour, self.background = Behaviour(), Behaviour()
        self._mtimes: dict[Path, int | None] = {}
        self.lock = threading.Lock()
        self.rng = random.Random()  # noqa: S311 - noise, not secrets
        self._n = self._failed = 0
        self.inflight = 0
        self.stopping = threading.Event()
        self.registry = CollectorRegistry()
        self.jobs = Counter(
            "worker_jobs",
            "Jobs processed by the worker",
            ["version", "pool", "outcome"],
            registry=self.registry,
        )
        self.duration = Histogram(
            "worker_job_duration_seconds", "Job latency", ["version", "pool"], registry=self.registry
        )
        for outcome in ("ok", "failed"):  # the series exist from the first scrape on
            self.jobs.labels(version=version, pool=pool, outcome=outcome)
        self.reload()
        self._conn: Any = None
        self._conninfo: str | None = None
        self._recovery_checked = 0.0
        self._in_recovery = True

    # ---- behaviour -------------------------------------------------------------------------------
    def reload(self) -> None:
        for path in (self.behaviour_file, self.background_file):
            b, self._mtimes[path] = read_changed(path, self._mtimes.get(path))
            if b is None:
                continue
            with self.lock:
                if path == self.behaviour_file:
                    if b != self.behaviour:
                        self._n = self._failed = 0
                    self.behaviour = b
                else:
                    self.background = b
            log.info("behaviour", file=path.name, **b.model_dump())

    def outcome(self) -> tuple[bool, float]:
        """Whether this job fails, and how long it takes (ms)."""
        with self.lock:
            b, background = self.behaviour, self.background
            self._n += 1
            fail = int(self._n * b.error_rate + 1e-9) > self._failed
            if fail:
                self._failed += 1
            rng = self.rng
            for p in (b.error_probability, background.error_probability):
                fail = fail or (p > 0 and rng.random() < p)
            return fail, b.draw_latency_ms(rng) + background.draw_latency_ms(rng)

    def reload_dispatch(self) -> None:
        """Whether this worker may take jobs (the dispatch file; none: every worker may)."""
        try:
            mtime: int | None = self.dispatch_file.stat().st_mtime_ns
        except FileNotFoundError:
            mtime = None
        if mtime == self._dispatch_mtime:
            return
        self._dispatch_mtime = mtime
        if mtime is None:
            allowed = True
        else:
            try:
                allowed = dispatch.parse(self.dispatch_file.read_text()).takes_jobs(self.pool, self.slot)
            except (OSError, ValueError):
                self._dispatch_mtime = None  # half a file cannot be: read again next time
                return
        if allowed != self.dispatched:
            log.info("dispatch", takes_jobs=allowed)
        self.dispatched = allowed

    # ---- the database ----------------------------------------------------------------------------
    def _target(self) -> tuple[str | None, str | None]:
        try:
            body = json.loads(self.database_file.read_text())
        except (OSError, ValueError):
            return None, None
        return body.get("conninfo"), body.get("node")

    def _connection(self, conninfo: str) -> Any:
        import psycopg  # noqa: PLC0415

        if self._conn is not None and self._conninfo == conninfo and not self._conn.closed:
            return self._conn
        self._close()
        self._conn = psycopg.connect(conninfo, autocommit=True, connect_timeout=2)
        self._conn.execute("SET statement_timeout = '5s'")
        self._conninfo, self._recovery_checked = conninfo, 0.0
        return self._conn

    def _close(self) -> None:
        if self._conn is not None:
            self._conn.close()
        self._conn = None

    def step(self) -> bool:  # noqa: PLR0911 - each way out says why there was no job
        """Take and process one job; False when there was nothing to do (or no database to do it in)."""
        import psycopg  # noqa: PLC0415

        self.reload_dispatch()
        if not self.dispatched:
            return False
        conninfo, node = self._target()
        if conninfo is None:
            self._close()
            return False
        try:
            conn = self._connection(conninfo)
            now = time.monotonic()
            if now - self._recovery_checked >= RECOVERY_RECHECK_S:
                row = conn.execute("SELECT pg_is_in_recovery()").fetchone()
                self._in_recovery, self._recovery_checked = bool(row and row[0]), now
            if self._in_recovery:
                return False
            claimed = conn.execute(CLAIM, (self.name,)).fetchone()
        except psycopg.Error as exc:
            log.warning("database_error", error=str(exc).strip().splitlines()[0][:200] if str(exc) else "")
            self._close()
            return False
        if claimed is None:
            return False
        job = claimed[0]
        with self.lock:
            self.inflight += 1
        start = time.perf_counter()
        try:
            fail, latency_ms = self.outcome()
            if latency_ms > 0:
                time.sleep(latency_ms / 1000)
            outcome = "failed" if fail else "ok"
            try:
                conn.execute(FINISH, (outcome, self.version, node, job))
            except psycopg.Error as exc:  # the job stays taken: another worker retakes it after 30 s
                log.warning("finish_failed", job=job, error=str(exc).strip()[:200])
                self._close()
                return True
            self.jobs.labels(version=self.version, pool=self.pool, outcome=outcome).inc()
            self.duration.labels(version=self.version, pool=self.pool).observe(time.perf_counter() - start)
        finally:
            with self.lock:
                self.inflight -= 1
        return True

    def run(self) -> None:
        last_reload = 0.0
        while not self.stopping.is_set():
            if time.monotonic() - last_reload > 0.2:
                self.reload()
                last_reload = time.monotonic()
            if not self.step():
                self.stopping.wait(IDLE_S)
        self._close()


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: _Server

    def log_message(self, format: str, *args: Any) -> None:
        """Silence per-request access logs."""

    def _send(self, code: int, body: bytes, ctype: str) -> None:
        self.send_response(code)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("X-Version", self.server.worker.version)
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self) -> None:
        """Health, metrics and in-flight jobs."""
        w = self.server.worker
        path = self.path.split("?", 1)[0]
        if path == "/healthz":
            healthy = w.behaviour.healthy
            self._send(200 if healthy else 503, b"ok" if healthy else b"unhealthy", "text/plain")
        elif path == "/metrics":
            from prometheus_client import CONTENT_TYPE_LATEST, generate_latest  # noqa: PLC0415

            self._send(200, generate_latest(w.registry), CONTENT_TYPE_LATEST)
        elif path == "/admin/inflight":
            with w.lock:
                self._send(200, json.dumps({"inflight": w.inflight}).encode(), "application/json")
        else:
            self._send(404, b'{"error": "not found"}', "application/json")


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, addr: tuple[str, int], worker: _Worker) -> None:
        self.worker = worker
        super().__init__(addr, _Handler)


def serve(*, version: str, pool: str, slot: int, port: int, state_dir: Path, host: str = "127.0.0.1") -> int:
    """Work and serve until SIGTERM/SIGINT; then finish the job in hand and return 0."""
    worker = _Worker(version, pool, slot, state_dir)
    server = _Server((host, port), worker)
    loop = threading.Thread(target=worker.run, name="jobs")

    def _on_signal(signum: int, _frame: Any) -> None:
        worker.stopping.set()
        threading.Thread(target=server.shutdown, daemon=True).start()

    signal.signal(signal.SIGTERM, _on_signal)
    signal.signal(signal.SIGINT, _on_signal)
    loop.start()
    log.info(
        "listening", component=COMPONENT, version=version, pool=pool, slot=slot, port=port, pid=os.getpid()
    )
    server.serve_forever(poll_interval=0.1)
    server.server_close()
    loop.join(timeout=30)
    log.info("stopped", component=COMPONENT, version=version, pool=pool, slot=slot)
    return 0


def main(argv: list[str] | None = None) -> int:
    """Command-line entry point (the same arguments as the API's)."""
    return run_instance(__doc__.splitlines()[0], serve, argv)


if __name__ == "__main__":
    sys.exit(main())
