"""The threshold judge: measure metrics on a schedule and hold each value against its conditions.

Semantics follow Argo Rollouts' AnalysisRun, with one deliberate difference:
missing data and unreachable metrics are never a success.

- A measurement is ``failed`` when the failure condition holds, ``successful``
  when the success condition holds, else ``inconclusive``; with only a success
  condition, not meeting it is a failure. No data is ``inconclusive``; a query
  that errors is ``error``, which counts as inconclusive too.
- The run fails as soon as failures exceed ``failure_limit``, is inconclusive as
  soon as inconclusive measurements exceed ``inconclusive_limit`` or errors in a
  row exceed ``consecutive_error_limit``, and succeeds when every metric has been
  measured ``count`` times without crossing a limit.

The judge is plain code: the activity passes it the metrics provider, a clock, a sleep and a
heartbeat, so a retried activity resumes from its last heartbeat.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Literal, Protocol

from engine.analysis.conditions import evaluate_condition
from engine.contracts import (
    AnalysisRequest,
    AnalysisResult,
    Measurement,
    MeasurementPhase,
    Metric,
    MetricTally,
    render_query,
)


class Source(Protocol):
    """What the threshold judge reads: one number per query (``activities.interfaces.Metrics``)."""

    def query(self, query: str) -> float | None: ...


Clock = Callable[[], float]
Sleep = Callable[[float], None]
Heartbeat = Callable[[list[Measurement], dict[str, MetricTally], float], None]


def measure(metric: Metric, provider: Source, args: dict[str, str]) -> Measurement:
    """Take and judge one measurement of one metric."""
    now = datetime.now(UTC)
    try:
        value = provider.query(render_query(metric.query, args))
    except Exception as exc:
        return Measurement(metric=metric.name, phase="error", at=now, message=str(exc)[:300])
    if value is None or math.isnan(value):
        return Measurement(metric=metric.name, phase="inconclusive", at=now, message="no data")
    if metric.failure_condition and evaluate_condition(metric.failure_condition, value):
        return Measurement(
            metric=metric.name, phase="failed", value=value, at=now, message=metric.failure_condition
        )
    if metric.success_condition:
        if evaluate_condition(metric.success_condition, value):
            return Measurement(metric=metric.name, phase="successful", value=value, at=now)
        phase: MeasurementPhase = "inconclusive" if metric.failure_condition else "failed"
        return Measurement(
            metric=metric.name, phase=phase, value=value, at=now, message=f"not {metric.success_condition}"
        )
    return Measurement(metric=metric.name, phase="successful", value=value, at=now)


def tally(before: MetricTally, m: Measurement) -> MetricTally:
    return MetricTally(
        measured=before.measured + 1,
        failed=before.failed + (m.phase == "failed"),
        inconclusive=before.inconclusive + (m.phase in ("inconclusive", "error")),
        consecutive_errors=before.consecutive_errors + 1 if m.phase == "error" else 0,
    )


def verdict(
    metric: Metric, t: MetricTally, last: Measurement
) -> tuple[Literal["failed", "inconclusive"], str] | None:
    """("failed" | "inconclusive", why) once a limit is crossed, else None."""
    if t.failed > metric.failure_limit:
        return (
            "failed",
            f"{metric.name}: {t.failed} failed measurements (limit {metric.failure_limit}); "
            f"last {_show(last)}",
        )
    if t.consecutive_errors > metric.consecutive_error_limit:
        return "inconclusive", f"{metric.name}: {t.consecutive_errors} errors in a row: {last.message}"
    if t.inconclusive > metric.inconclusive_limit:
        return "inconclusive", (
            f"{metric.name}: {t.inconclusive} inconclusive measurements (limit {metric.inconclusive_limit}); "
            f"last {_show(last)}"
        )
    return None


def _show(m: Measurement) -> str:
    value = "no value" if m.value is None else f"{m.value:.4g}"
    return f"{m.phase} ({value}{': ' + m.message if m.message else ''})"


def run(
    request: AnalysisRequest,
    provider: Source,
    *,
    clock: Clock,
    sleep: Sleep,
    heartbeat: Heartbeat,
    resume: tuple[list[Measurement], dict[str, MetricTally], float] | None = None,
) -> AnalysisResult:
    """Measure until a verdict (or, for a background chunk, until the chunk ends)."""
    measurements, tallies, elapsed_before = resume or ([], dict(request.tallies), 0.0)
    tallies = {m.name: tallies.get(m.name, MetricTally()) for m in request.metrics}
    started = clock() - elapsed_before
    # When each metric is next due, in seconds since `started`.
    due: dict[str, float] = {}
    for m in request.metrics:
        if request.tallies.get(m.name, MetricTally()).measured == 0 and tallies[m.name].measured == 0:
            due[m.name] = m.initial_delay.total_seconds()
        else:
            due[m.name] = elapsed_before
    chunk = None
    if request.chunk:
        # A chunk lasts at least one interval of every metric, and the first one also covers the
        # initial delay: every chunk measures, so a background analysis can never spin empty.
        first = not any(t.measured for t in request.tallies.values())
        longest_wait = max(m.interval.total_seconds() for m in request.metrics)
        delay = max(m.initial_delay.total_seconds() for m in request.metrics) if first else 0.0
        chunk = max(request.chunk.total_seconds(), longest_wait) + delay

    def done(m: Metric) -> bool:
        return chunk is None and m.count is not None and tallies[m.name].measured >= m.count

    while True:
        pending = [m for m in request.metrics if not done(m)]
        if not pending:
            # Missing data is never a success: a metric with no successful measurement at all
            # (every one errored or had no data, yet within the limits) is inconclusive.
            unproven = [m.name for m in request.metrics if _successes(tallies[m.name]) == 0]
            if unproven:
                last = measurements[-1]
                return AnalysisResult(
                    name=request.name,
                    phase="inconclusive",
                    message=f"{', '.join(unproven)}: no successful measurement; last {_show(last)}",
                    measurements=measurements,
                    tallies=tallies,
                )
            return AnalysisResult(
                name=request.name,
                phase="successful",
                message=", ".join(f"{m.name}: {tallies[m.name].measured} measured" for m in request.metrics),
                measurements=measurements,
                tallies=tallies,
            )
        next_at = min(due[m.name] for m in pending)
        if chunk is not None and next_at >= chunk:
            return AnalysisResult(
                name=request.name, phase="running", measurements=measurements, tallies=tallies
            )
        wait = next_at - (clock() - started)
        while wait > 0:  # sleep in short slices so heartbeats keep flowing during long intervals
            sleep(min(wait, 0.5))
            heartbeat(measurements, tallies, clock() - started)
            wait = next_at - (clock() - started)
        for m in pending:
            if due[m.name] > next_at:
                continue
            last = measure(m, provider, request.args)
            measurements.append(last)
            tallies[m.name] = tally(tallies[m.name], last)
            due[m.name] = next_at + m.interval.total_seconds()
            heartbeat(measurements, tallies, clock() - started)
            if (v := verdict(m, tallies[m.name], last)) is not None:
                return AnalysisResult(
                    name=request.name, phase=v[0], message=v[1], measurements=measurements, tallies=tallies
                )


def _successes(t: MetricTally) -> int:
    return t.measured - t.failed - t.inconclusive
