"""Deploy windows of an environment: allowed hours in a named time zone, and freeze periods.

``environments.NAME.deploy_windows`` in deploy-code.yaml, carried as it is into the Release
workflow's input (``PipelineSpec.windows``); ``engine/windows.py`` answers whether a time is
inside a window, when the next one opens and when the current one closes::

    deploy_windows:
      timezone: Europe/Berlin
      allowed:
        - {days: [mon, tue, wed, thu], start: "09:00", end: "17:00"}
        - {days: [fri], start: "09:00", end: "15:00"}
      freezes:
        - {start: 2026-12-21T00:00, end: 2027-01-04T00:00, reason: year-end freeze}

Times of day are local wall-clock times in ``timezone`` (so 09:00 stays 09:00 across a
daylight-saving change); ``end: "24:00"`` is midnight at the end of the day. Without ``allowed``
every hour is allowed (only the freezes close it). A freeze's times without an offset are local
times in ``timezone`` too; a freeze wins over an allowed window.
"""

from __future__ import annotations

import re
from datetime import date, datetime, time
from typing import Annotated, Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import BeforeValidator, Field, field_validator, model_validator

from engine.contracts.scalars import Strict

Day = Literal["mon", "tue", "wed", "thu", "fri", "sat", "sun"]
DAYS: tuple[Day, ...] = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
"""Day names in ``datetime.weekday()`` order."""

_CLOCK = re.compile(r"^(?:[01]\d|2[0-3]):[0-5]\d$|^24:00$")


def _clock(value: Any) -> Any:
    if isinstance(value, int) and not isinstance(value, bool):
        # YAML 1.1 reads an unquoted 17:00 as the base-60 number 1020.
        msg = f'write times of day in quotes, "HH:MM" (YAML read an unquoted time as the number {value})'
        raise ValueError(msg)
    if isinstance(value, str) and not _CLOCK.match(value):
        msg = f'{value!r} is not a time of day "HH:MM" (00:00 to 24:00)'
        raise ValueError(msg)
    return value


ClockTime = Annotated[str, BeforeValidator(_clock)]
"""A local time of day, "HH:MM"; "24:00" is the end of the day."""


def minutes(clock: str) -> int:
    """Minutes after local midnight of an "HH:MM" time (24:00 is 1440)."""
    hours, mins = clock.split(":")
    return int(hours) * 60 + int(mins)


def _instant(value: Any) -> Any:
    if isinstance(value, date) and not isinstance(value, datetime):
        return datetime.combine(value, time())  # a day: its local midnight
    return value


Instant = Annotated[datetime, BeforeValidator(_instant)]
"""A point in time; without an offset, a local time in the windows' time zone."""


class AllowedWindow(Strict):
    """Hours of some days in which a release may run (local time, ``end`` excluded)."""

    days: Annotated[list[Day], Field(min_length=1)]
    start: ClockTime
    end: ClockTime

    @model_validator(mode="after")
    def _check_order(self) -> AllowedWindow:
        if minutes(self.start) >= minutes(self.end):
            msg = (
                f"start {self.start} is not before end {self.end}: an allowed window is within one day "
                '(write two windows for one across midnight; "24:00" ends a day)'
            )
            raise ValueError(msg)
        return self


class Freeze(Strict):
    """A period in which no release runs, whatever the allowed hours say."""

    start: Instant
    end: Instant
    reason: str = ""


class DeployWindows(Strict):
    """``environments.NAME.deploy_windows``: when releases may run in the environment."""

    timezone: str
    allowed: list[AllowedWindow] = Field(default_factory=list)
    """Allowed hours; empty: every hour (only the freezes close the environment)."""
    freezes: list[Freeze] = Field(default_factory=list)

    @field_validator("timezone")
    @classmethod
    def _check_timezone(cls, name: str) -> str:
        try:
            ZoneInfo(name)
        except (ZoneInfoNotFoundError, ValueError):
            msg = f"unknown time zone {name!r}: use an IANA name such as Europe/Berlin or America/New_York"
            raise ValueError(msg) from None
        return name

    @model_validator(mode="after")
    def _check_freezes(self) -> DeployWindows:
        for index, freeze in enumerate(self.freezes):
            if self.aware(freeze.end) <= self.aware(freeze.start):
                what = f" ({freeze.reason})" if freeze.reason else ""
                msg = (
                    f"freezes[{index}]{what} ends ({freeze.end.isoformat()}) before it starts "
                    f"({freeze.start.isoformat()})"
                )
                raise ValueError(msg)
        return self

    @property
    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)

    def aware(self, moment: datetime) -> datetime:
        """``moment`` with its offset: a local time in ``timezone`` when it has none."""
        return moment if moment.tzinfo is not None else moment.replace(tzinfo=self.zone)
