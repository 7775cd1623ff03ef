"""Counts from counter series: what happened between two readings, whatever restarted in between.

A comparing judge reads raw counter series (one per instance and label set), never ``rate()`` or
``increase()``: those extrapolate to the window's edges (fractional counts) and miss a series'
first sample, and the tests need integer counts per interval. A series' increase is its value now
minus its value at the last reading; a value below the last one is a counter reset (the instance
restarted) and the new value is the increase, the rule Prometheus itself applies. A series first
seen after the start counts from zero (instances pre-create their series at 0); one that vanishes
keeps its last value, so it counts right again if it comes back.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping

Series = tuple[Mapping[str, str], float]
"""One counter series: its labels and its current value."""


def series_key(labels: Mapping[str, str], *, without: Iterable[str] = ()) -> str:
    """A stable name for a series: its labels, sorted (``without`` some of them)."""
    skip = set(without)
    return ",".join(f"{k}={labels[k]}" for k in sorted(labels) if k not in skip)


def increments(
    last: Mapping[str, float], now: Iterable[Series], *, first: bool
) -> tuple[dict[str, float], dict[str, float]]:
    """Per series, how much it grew since ``last`` (``first``: the start, nothing counted yet);
    and the values to remember for the next reading."""
    grew: dict[str, float] = {}
    remember = dict(last)
    for labels, value in now:
        if math.isnan(value):
            continue
        key = series_key(labels)
        before = last.get(key)
        if not first:
            grew[key] = value if before is None else (value - before if value >= before else value)
        remember[key] = value
    return grew, remember


def total(grew: Mapping[str, float]) -> float:
    return float(sum(grew.values()))


def histogram(grew: Mapping[str, float], keys: Mapping[str, Mapping[str, str]]) -> dict[float, float]:
    """The increments of a histogram's bucket series summed per ``le`` boundary (``+Inf`` as inf)."""
    by_le: dict[float, float] = {}
    for key, value in grew.items():
        le = keys[key].get("le")
        if le is None:
            continue
        bound = math.inf if le in ("+Inf", "Inf", "inf") else float(le)
        by_le[bound] = by_le.get(bound, 0.0) + value
    return by_le


def below_counts(by_le: Mapping[float, float], boundaries: list[float]) -> tuple[list[float], float]:
    """Requests at or below each finite boundary, and all requests (the +Inf bucket), kept monotone
    (a reset caught in one bucket but not the next could otherwise bend it)."""
    count = by_le.get(math.inf, max(by_le.values(), default=0.0))
    below: list[float] = []
    running = 0.0
    for b in boundaries:
        running = max(running, by_le.get(b, running))
        below.append(min(running, count))
    return below, count
