"""Watching the router: every change of the split HAProxy has in force, with its wall-clock time.

A thread reads the ``app`` backend through HAProxy's runtime API
(:meth:`infrastructure.local.haproxy.HAProxy.pool_shares`: ``show servers state``, one unix-socket round
trip, ~0.1 ms) about every millisecond and records, with ``time.time()``, every change
of the split actually in force: per pool, the share of the summed weights of the servers
that are enabled, running and of non-zero weight (what
:meth:`activities.router.haproxy.HAProxyRouter.read` reports; the bench checks that both
read the same before it measures). Temporal history event times come from the dev
server on the same host, so both clocks are the same wall clock.
"""

from __future__ import annotations

import asyncio
import statistics
import threading
import time
from dataclasses import dataclass
from typing import Any

from infrastructure.local.haproxy import HAProxy, RouterError
from infrastructure.local.layout import Layout


@dataclass
class RouterChange:
    """The split in force from ``t`` (wall clock) on, as first seen by the watcher."""

    t: float
    weights: dict[str, float]


class RouterWatch(threading.Thread):
    """Polls HAProxy's runtime API in a tight loop and records each change of the split."""

    def __init__(self, layout: Layout, backend: str = "app", interval: float = 0.001) -> None:
        super().__init__(name="router-watch", daemon=True)
        self.haproxy = HAProxy(layout, socket_timeout=1.0)
        self.backend = backend
        self.interval = interval
        self.changes: list[RouterChange] = []
        self.polls = 0
        self.errors = 0
        self.gaps: list[float] = []  # seconds between consecutive successful reads (resolution)
        self._stop = threading.Event()
        self._lock = threading.Lock()

    def read(self) -> dict[str, float]:
        """Pool shares in force right now (one runtime-API round trip)."""
        return self.haproxy.pool_shares(self.backend)

    def run(self) -> None:
        last: dict[str, float] | None = None
        previous_read = 0.0
        while not self._stop.is_set():
            before = time.time()
            try:
                weights = self.read()
            except (RouterError, ValueError):
                self.errors += 1
                time.sleep(0.01)
                continue
            after = time.time()
            at = (before + after) / 2
            self.polls += 1
            if previous_read and len(self.gaps) < 500_000:
                self.gaps.append(at - previous_read)
            previous_read = at
            if weights != last:
                with self._lock:
                    self.changes.append(RouterChange(at, weights))
                last = weights
            time.sleep(self.interval)

    def stop(self) -> None:
        self._stop.set()

    def first(self, after: float, pool: str, predicate: Any) -> RouterChange | None:
        """The first change at or after ``after`` whose share of ``pool`` satisfies ``predicate``."""
        with self._lock:
            changes = list(self.changes)
        return next((c for c in changes if c.t >= after and predicate(c.weights.get(pool, 0.0))), None)

    async def wait_for(self, after: float, pool: str, predicate: Any, within: float) -> RouterChange:
        deadline = time.monotonic() + within
        while (found := self.first(after, pool, predicate)) is None:
            if time.monotonic() > deadline:
                msg = f"router: {pool} never reached the expected share within {within}s"
                raise TimeoutError(msg)
            await asyncio.sleep(0.005)
        return found

    def resolution_ms(self) -> float:
        return 1000 * statistics.median(self.gaps) if self.gaps else float("nan")
