"""Metrics provider that asks nothing: every query answers ``VALUE`` at once.

For benchmarks (``bench/scale.py``: how many releases one worker holds, with no
I/O under the engine) and dry exercises of a workflow. ``VALUE`` is 0.0, what an
error-rate or error-count query reads for a healthy service; a gate that needs
another answer (``result > 0.99``) fails, as it would against a service that
reports nothing good. Never use it for a real environment.
"""

from __future__ import annotations

from datetime import datetime

from engine.contracts import EnvironmentSpec

VALUE = 0.0


class SimulatedMetrics:
    """Answers every query with ``VALUE``; counts the queries it was asked."""

    def __init__(self, env: EnvironmentSpec) -> None:
        self._env = env
        self.queries = 0

    def query(self, query: str) -> float | None:
        self.queries += 1
        return VALUE

    def counters(self, query: str, *, since: datetime) -> list[tuple[dict[str, str], float]]:
        """No series: a comparing judge on simulated metrics sees no traffic (inconclusive, never a pass)."""
        self.queries += 1
        return []
