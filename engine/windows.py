"""Deploy windows, pure: is a time inside one, when does the next open, when does it close.

The configuration is :class:`~engine.contracts.windows.DeployWindows` (``environments.NAME.
deploy_windows``). Everything here is a function of its arguments (no clock, no I/O beyond the
system's tz database through ``zoneinfo``), so the Release workflow calls it with
``workflow.now()`` and a replay computes the same answers.

How: the allowed hours of each local day are turned into UTC intervals (``datetime.combine`` with
the zone, so 09:00 Europe/Berlin is 08:00 UTC in winter and 07:00 UTC in summer), touching ones
are merged (Monday 18:00-24:00 and Tuesday 00:00-06:00 are one window), and the freezes are cut
out. A local time that does not exist (inside a spring-forward gap) is read with the offset before
the change; one that exists twice (fall-back) is its first occurrence.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta

from engine.contracts.windows import DAYS, DeployWindows, minutes

Interval = tuple[datetime, datetime]

SHORT_HORIZON_DAYS = 9
"""Days looked ahead first (a week of allowed hours and a bit)."""
LONG_HORIZON_DAYS = 800
"""Days looked ahead at most (past long freezes); no opening within them: never opens."""


def _utc(moment: datetime) -> datetime:
    if moment.tzinfo is None:
        msg = f"{moment!r} has no time zone: pass an aware datetime (workflow.now() is UTC)"
        raise ValueError(msg)
    return moment.astimezone(UTC)


def _merge(intervals: list[Interval]) -> list[Interval]:
    merged: list[Interval] = []
    for start, end in sorted(intervals):
        if merged and start <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(merged[-1][1], end))
        else:
            merged.append((start, end))
    return merged


def freeze_intervals(windows: DeployWindows) -> list[tuple[datetime, datetime, str]]:
    """Every freeze as ``(start, end, reason)`` in UTC, in order."""
    return sorted(
        (windows.aware(f.start).astimezone(UTC), windows.aware(f.end).astimezone(UTC), f.reason)
        for f in windows.freezes
    )


def _open_intervals(windows: DeployWindows, since: datetime, days: int) -> tuple[list[Interval], datetime]:
    """The open intervals (UTC) from the local day before ``since`` to ``days`` days after it, and
    where that horizon ends (an interval reaching it may go on past it)."""
    zone = windows.zone
    first = since.astimezone(zone).date() - timedelta(days=1)
    last = first + timedelta(days=days + 1)
    horizon_start = datetime.combine(first, time(), tzinfo=zone).astimezone(UTC)
    horizon_end = datetime.combine(last + timedelta(days=1), time(), tzinfo=zone).astimezone(UTC)
    allowed: list[Interval] = []
    if not windows.allowed:
        allowed.append((horizon_start, horizon_end))
    day = first
    while windows.allowed and day <= last:
        for rule in windows.allowed:
            if DAYS[day.weekday()] in rule.days:
                allowed.append((_at(day, minutes(rule.start), windows), _at(day, minutes(rule.end), windows)))
        day += timedelta(days=1)
    open_ = _merge(allowed)
    for f_start, f_end, _ in freeze_intervals(windows):
        cut: list[Interval] = []
        for start, end in open_:
            if f_end <= start or end <= f_start:
                cut.append((start, end))
                continue
            if start < f_start:
                cut.append((start, f_start))
            if f_end < end:
                cut.append((f_end, end))
        open_ = cut
    return open_, horizon_end


def _at(day: date, minute: int, windows: DeployWindows) -> datetime:
    """Local ``day`` at ``minute`` after midnight (1440: the next midnight), in UTC."""
    rest = minute % 1440
    local = datetime.combine(
        day + timedelta(days=minute // 1440), time(rest // 60, rest % 60), tzinfo=windows.zone
    )
    return local.astimezone(UTC)


def _first_period(windows: DeployWindows, since: datetime) -> tuple[Interval | None, bool]:
    """The first open interval ending after ``since`` and whether it reaches the end of what was
    looked at (then it may go on: it does not close within about two years)."""
    for days in (SHORT_HORIZON_DAYS, LONG_HORIZON_DAYS):
        intervals, horizon = _open_intervals(windows, since, days)
        ahead = next(((s, e) for s, e in intervals if e > since), None)
        if ahead is not None and (ahead[1] < horizon or days == LONG_HORIZON_DAYS):
            return ahead, ahead[1] >= horizon
    return None, False


def open_at(windows: DeployWindows, moment: datetime) -> bool:
    """Whether a release may run at ``moment`` (inside allowed hours, in no freeze)."""
    t = _utc(moment)
    period, _ = _first_period(windows, t)
    return period is not None and period[0] <= t


def next_opening(windows: DeployWindows, moment: datetime) -> datetime | None:
    """``moment`` itself when open, else when the next window opens (UTC); None: not within about two
    years (a freeze longer than that, say)."""
    t = _utc(moment)
    period, _ = _first_period(windows, t)
    return None if period is None else max(period[0], t)


def closes_at(windows: DeployWindows, moment: datetime) -> datetime | None:
    """When the window open at ``moment`` closes (UTC); if it is closed then, when the next one that
    opens closes. None: it does not close (every hour allowed and no freeze ahead)."""
    t = _utc(moment)
    period, endless = _first_period(windows, t)
    return None if period is None or endless else period[1]


def freeze_at(windows: DeployWindows, moment: datetime) -> tuple[datetime, datetime, str] | None:
    """The freeze ``moment`` falls in (UTC start, end, reason), if any."""
    t = _utc(moment)
    return next(((s, e, r) for s, e, r in freeze_intervals(windows) if s <= t < e), None)


def local_and_utc(windows: DeployWindows, moment: datetime) -> str:
    """``Mon 2026-12-14 09:00 CET (2026-12-14 08:00 UTC)``: how status lines name a time."""
    local = moment.astimezone(windows.zone)
    utc = moment.astimezone(UTC)
    return f"{local:%a %Y-%m-%d %H:%M} {local.tzname()} ({utc:%Y-%m-%d %H:%M} UTC)"


def allowed_hours(windows: DeployWindows) -> str:
    """The allowed hours in one line: ``mon, tue 09:00-17:00; fri 09:00-15:00 (Europe/Berlin)``."""
    if not windows.allowed:
        return f"every hour ({windows.timezone})"
    rules = "; ".join(f"{', '.join(r.days)} {r.start}-{r.end}" for r in windows.allowed)
    return f"{rules} ({windows.timezone})"


def why_closed(windows: DeployWindows, moment: datetime) -> str:
    """Why no release may run at ``moment``: the freeze (its reason, until when) or the allowed hours."""
    frozen = freeze_at(windows, moment)
    if frozen is not None:
        _start, end, reason = frozen
        return f"freeze{': ' + reason if reason else ''} (until {local_and_utc(windows, end)})"
    return f"outside the allowed hours: {allowed_hours(windows)}"


def waiting_line(windows: DeployWindows, moment: datetime) -> str:
    """What the status says while a release waits: ``waiting for the deploy window: opens at ...``."""
    opens = next_opening(windows, moment)
    if opens is None:
        return "waiting for the deploy window: no window opens within two years"
    return f"waiting for the deploy window: opens at {local_and_utc(windows, opens)}"
