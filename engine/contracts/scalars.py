"""Scalars every contract uses: durations, versions, identities, pools, percentages, ``Strict``."""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Annotated, Any

from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict, Field, StringConstraints

_DURATION_PART = re.compile(r"(\d+(?:\.\d+)?)(ms|s|m|h|d)")
_DURATION_UNITS = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400}
MAX_DURATION = timedelta(days=30)


def _parse_duration(value: Any) -> Any:
    """Accept "500ms", "10s", "5m", "1h30m", "2d" (and "-10s", to refuse it clearly)."""
    if not isinstance(value, str):
        return value
    text = value.strip()
    sign = -1 if text.startswith("-") else 1
    body = text.lstrip("-")
    parts = _DURATION_PART.findall(body)
    if parts and "".join(n + u for n, u in parts) == body:
        return sign * timedelta(seconds=sum(float(n) * _DURATION_UNITS[u] for n, u in parts))
    return value  # numbers of seconds and ISO 8601 are pydantic's own forms


def _check_duration(value: timedelta) -> timedelta:
    if value < timedelta(0):
        msg = f"a duration cannot be negative ({value.total_seconds():g}s)"
        raise ValueError(msg)
    if value > MAX_DURATION:
        msg = f"duration {value.total_seconds():g}s is longer than the {MAX_DURATION.days}-day maximum"
        raise ValueError(msg)
    return value


Duration = Annotated[timedelta, BeforeValidator(_parse_duration), AfterValidator(_check_duration)]
"""A non-negative duration of at most 30 days; "10s"-style strings accepted."""

VERSION_PATTERN = r"^v?\d{1,6}\.\d{1,6}\.\d{1,6}(?:-[0-9A-Za-z][0-9A-Za-z.-]{0,40})?$"
Version = Annotated[str, StringConstraints(pattern=VERSION_PATTERN, max_length=64)]
"""A release version: semantic version, optional leading v and pre-release suffix."""

Identity = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=128)]
Pool = Annotated[str, StringConstraints(pattern=r"^[a-z][a-z0-9-]{0,31}$")]
Percent = Annotated[int, Field(ge=0, le=100)]

POOLS = ("blue", "green")
"""The two pools every platform offers: the live one and the one a release goes to."""
BASELINE_POOL = "baseline"
"""Where a canary's baseline runs: fresh instances of the stable version, compared with the canary."""
ALL_POOLS = (*POOLS, BASELINE_POOL)
"""Every pool a platform runs instances in."""

STRATEGIES = ("canary", "blue-green", "rolling")
"""Strategies this engine ships (the names a release request uses)."""


class Strict(BaseModel):
    """Base for every contract: unknown fields are errors, instances are frozen."""

    model_config = ConfigDict(extra="forbid", frozen=True)
