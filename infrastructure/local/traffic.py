"""Load generator: steady GET requests against the (loopback) router.

Library: :func:`run_load`.  CLI::

    python -m infrastructure.local.traffic --url URL --rps R [--duration S] [--max-requests N]
        [--threads T] [--summary FILE] [--method POST]

Requests are paced on a global schedule (request i at ``t0 + i/rps``) by a few threads,
each with its own keep-alive httpx client.  With ``--summary`` the JSON summary is
written every second and on exit/SIGTERM.
"""

from __future__ import annotations

import argparse
import contextlib
import ipaddress
import os
import signal
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import structlog
from pydantic import BaseModel, Field

from infrastructure.local.logs import configure_logging

log = structlog.get_logger(__name__)


class LoadSummary(BaseModel):
    """What a load run did."""

    url: str
    rps: float
    sent: int = 0
    ok: int = 0
    failed: int = 0
    by_version: dict[str, int] = Field(default_factory=dict)
    by_code: dict[str, int] = Field(default_factory=dict)
    errors: dict[str, int] = Field(default_factory=dict)  # transport errors by exception type
    duration_s: float = 0.0
    p50_ms: float = 0.0
    p95_ms: float = 0.0
    max_ms: float = 0.0


def check_loopback(url: str) -> None:
    """Raise ValueError unless ``url`` is http(s) to a loopback host."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError(f"not an http URL: {url!r}")
    host = parts.hostname
    if host == "localhost":
        return
    try:
        if ipaddress.ip_address(host).is_loopback:
            return
    except ValueError:
        pass
    raise ValueError(f"refusing non-loopback URL {url!r}")


class _Recorder:
    def __init__(self, url: str, rps: float) -> None:
        self.lock = threading.Lock()
        self.url, self.rps = url, rps
        self.sent = self.ok = self.failed = 0
        self.by_version: Counter[str] = Counter()
        self.by_code: Counter[str] = Counter()
        self.errors: Counter[str] = Counter()
        self.latencies: list[float] = []
        self.t0 = time.monotonic()

    def record(self, code: int | None, version: str | None, err: str | None, latency: float) -> None:
        with self.lock:
            self.sent += 1
            if code is not None and 200 <= code < 400:
                self.ok += 1
            else:
                self.failed += 1
            if code is not None:
                self.by_code[str(code)] += 1
            if version:
                self.by_version[version] += 1
            if err:
                self.errors[err] += 1
            self.latencies.append(latency)
            if len(self.latencies) > 200_000:  # bound memory of a long-running generator
                del self.latencies[:100_000]

    def summary(self) -> LoadSummary:
        with self.lock:
            lat = sorted(self.latencies)

            def pct(p: float) -> float:
                return round(lat[min(len(lat) - 1, int(p * len(lat)))] * 1000, 2) if lat else 0.0

            return LoadSummary(
                url=self.url,
                rps=self.rps,
                sent=self.sent,
                ok=self.ok,
                failed=self.failed,
                by_version=dict(self.by_version),
                by_code=dict(self.by_code),
                errors=dict(self.errors),
                duration_s=round(time.monotonic() - self.t0, 3),
                p50_ms=pct(0.5),
                p95_ms=pct(0.95),
                max_ms=round(lat[-1] * 1000, 2) if lat else 0.0,
            )


def run_load(
    url: str,
    rps: float,
    duration: float | None = None,
    *,
    max_requests: int | None = None,
    threads: int = 4,
    timeout: float = 5.0,
    stop_event: threading.Event | None = None,
    on_tick: Callable[[LoadSummary], None] | None = None,
    method: str = "GET",
) -> LoadSummary:
    """Send GETs (or ``method`` with an empty JSON body) to ``url`` at ``rps`` until ``duration`` s,
    ``max_requests`` or ``stop_event``.

    A request that gets an HTTP status >= 400 or a transport error counts as failed.
    ``on_tick`` (if given) receives an interim summary about every second.
    """
    check_loopback(url)
    if rps <= 0:
        raise ValueError("rps must be > 0")
    if duration is None and max_requests is None and stop_event is None:
        raise ValueError("give duration, max_requests or stop_event")
    stop = stop_event or threading.Event()
    rec = _Recorder(url, rps)
    next_i = 0
    idx_lock = threading.Lock()
    t0 = time.monotonic()
    end = t0 + duration if duration is not None else float("inf")

    def take() -> float | None:
        nonlocal next_i
        with idx_lock:
            if max_requests is not None and next_i >= max_requests:
                return None
            due = t0 + next_i / rps
            next_i += 1
        return due if due < end else None

    def worker() -> None:
        with httpx.Client(timeout=timeout, limits=httpx.Limits(max_keepalive_connections=1)) as client:
            while not stop.is_set():
                due = take()
                if due is None:
                    return
                delay = due - time.monotonic()
                if delay > 0 and stop.wait(delay):
                    return
                start = time.perf_counter()
                try:
                    r = client.get(url) if method == "GET" else client.request(method, url, json={})
                    rec.record(r.status_code, r.headers.get("x-version"), None, time.perf_counter() - start)
                except httpx.HTTPError as exc:
                    rec.record(None, None, type(exc).__name__, time.perf_counter() - start)

    pool = [threading.Thread(target=worker, daemon=True, name=f"load-{i}") for i in range(max(1, threads))]
    for t in pool:
        t.start()
    while any(t.is_alive() for t in pool):
        deadline = time.monotonic() + 1.0
        for t in pool:
            t.join(timeout=max(0.0, deadline - time.monotonic()))
        if on_tick is not None:
            on_tick(rec.summary())
    return rec.summary()


def _write_summary(path: Path, summary: LoadSummary) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(summary.model_dump_json(indent=1))
    tmp.replace(path)


def main(argv: list[str] | None = None) -> int:
    """CLI entry point; exit code 0 unless the arguments are invalid."""
    p = argparse.ArgumentParser(description="Steady GET load against a loopback URL")
    p.add_argument("--url", required=True)
    p.add_argument("--rps", type=float, required=True)
    p.add_argument("--duration", type=float, default=None, help="seconds (default: until SIGTERM)")
    p.add_argument("--max-requests", type=int, default=None)
    p.add_argument("--threads", type=int, default=4)
    p.add_argument("--summary", type=Path, default=None, help="write the JSON summary here")
    p.add_argument("--method", default="GET", choices=("GET", "POST"), help="POST: an empty JSON body")
    a = p.parse_args(argv)
    configure_logging()
    try:
        check_loopback(a.url)
    except ValueError as exc:
        p.error(str(exc))
    stop = threading.Event()

    def _on_signal(_signum: int, _frame: Any) -> None:
        stop.set()

    signal.signal(signal.SIGTERM, _on_signal)
    signal.signal(signal.SIGINT, _on_signal)
    tick: Callable[[LoadSummary], None] | None = None
    if a.summary is not None:
        summary_path: Path = a.summary

        def tick(s: LoadSummary) -> None:
            with contextlib.suppress(OSError):
                _write_summary(summary_path, s)

    log.info("load_start", url=a.url, rps=a.rps, duration=a.duration, max_requests=a.max_requests)
    summary = run_load(
        a.url,
        a.rps,
        a.duration,
        max_requests=a.max_requests,
        threads=a.threads,
        stop_event=stop,
        on_tick=tick,
        method=a.method,
    )
    if a.summary is not None:
        _write_summary(a.summary, summary)
    log.info(
        "load_done", sent=summary.sent, ok=summary.ok, failed=summary.failed, by_version=summary.by_version
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
