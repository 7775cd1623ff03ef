"""Deploy windows, pure logic (engine/windows.py) and their configuration (bad input refused).

Expected instants are written out in UTC by hand (the offsets of each date), so the tests do not
check the module with itself: 09:00 Europe/Berlin is 08:00 UTC in winter and 07:00 UTC in summer.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from engine.config import load_config, parse_config, resolve_release
from engine.contracts.windows import DeployWindows
from engine.errors import ConfigError
from engine.pipeline import resolve_pipeline
from engine.windows import closes_at, next_opening, open_at, waiting_line, why_closed
from starters import deploy

BERLIN_OFFICE = {
    "timezone": "Europe/Berlin",
    "allowed": [
        {"days": ["mon", "tue", "wed", "thu"], "start": "09:00", "end": "17:00"},
        {"days": ["fri"], "start": "09:00", "end": "15:00"},
    ],
    "freezes": [{"start": "2026-12-21T00:00", "end": "2027-01-04T00:00", "reason": "year-end freeze"}],
}


def utc(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


def windows(**data: object) -> DeployWindows:
    return DeployWindows.model_validate(data)


OFFICE = windows(**BERLIN_OFFICE)


def test_allowed_hours_in_winter() -> None:
    # Mon 2026-12-14, CET (+01:00): open 08:00-16:00 UTC; the end is excluded.
    assert not open_at(OFFICE, utc("2026-12-14T07:59"))
    assert open_at(OFFICE, utc("2026-12-14T08:00"))
    assert open_at(OFFICE, utc("2026-12-14T15:59"))
    assert not open_at(OFFICE, utc("2026-12-14T16:00"))
    assert closes_at(OFFICE, utc("2026-12-14T10:00")) == utc("2026-12-14T16:00")
    # Friday closes at 15:00 local.
    assert closes_at(OFFICE, utc("2026-12-11T09:00")) == utc("2026-12-11T14:00")
    assert next_opening(OFFICE, utc("2026-12-14T10:00")) == utc("2026-12-14T10:00")  # open: now


def test_a_weekend_waits_for_monday_morning() -> None:
    saturday = utc("2026-12-12T10:00")
    assert not open_at(OFFICE, saturday)
    assert next_opening(OFFICE, saturday) == utc("2026-12-14T08:00")
    assert closes_at(OFFICE, saturday) == utc("2026-12-14T16:00")  # the next window's end
    assert why_closed(OFFICE, saturday) == (
        "outside the allowed hours: mon, tue, wed, thu 09:00-17:00; fri 09:00-15:00 (Europe/Berlin)"
    )
    assert waiting_line(OFFICE, saturday) == (
        "waiting for the deploy window: opens at Mon 2026-12-14 09:00 CET (2026-12-14 08:00 UTC)"
    )


def test_a_freeze_wins_over_the_allowed_hours() -> None:
    monday_in_freeze = utc("2026-12-21T10:00")
    assert not open_at(OFFICE, monday_in_freeze)
    assert next_opening(OFFICE, monday_in_freeze) == utc("2027-01-04T08:00")
    assert why_closed(OFFICE, monday_in_freeze) == (
        "freeze: year-end freeze (until Mon 2027-01-04 00:00 CET (2027-01-03 23:00 UTC))"
    )
    # Friday 18 Dec, before the freeze: the next opening skips the two frozen weeks.
    assert next_opening(OFFICE, utc("2026-12-18T14:00")) == utc("2027-01-04T08:00")


def test_a_freeze_inside_a_window_cuts_it() -> None:
    w = windows(
        timezone="Europe/Berlin",
        allowed=[{"days": ["wed"], "start": "09:00", "end": "17:00"}],
        freezes=[{"start": "2026-12-16T12:00", "end": "2026-12-16T14:00", "reason": "db migration"}],
    )
    assert closes_at(w, utc("2026-12-16T09:00")) == utc("2026-12-16T11:00")
    assert not open_at(w, utc("2026-12-16T11:30"))
    assert next_opening(w, utc("2026-12-16T11:30")) == utc("2026-12-16T13:00")
    assert closes_at(w, utc("2026-12-16T13:00")) == utc("2026-12-16T16:00")


def test_freeze_times_with_an_offset_are_taken_as_given() -> None:
    w = windows(
        timezone="Europe/Berlin", freezes=[{"start": "2026-12-16T12:00Z", "end": "2026-12-16T13:00Z"}]
    )
    assert open_at(w, utc("2026-12-16T11:59"))
    assert not open_at(w, utc("2026-12-16T12:00"))
    assert closes_at(w, utc("2026-12-16T10:00")) == utc("2026-12-16T12:00")


@pytest.mark.parametrize(
    ("zone", "friday_evening", "monday_opens", "monday_closes"),
    [
        # Europe/Berlin springs forward on Sun 2027-03-28: CET (+1) on Friday, CEST (+2) on Monday.
        ("Europe/Berlin", "2027-03-26T17:00", "2027-03-29T07:00", "2027-03-29T15:00"),
        # ... and falls back on Sun 2027-10-31: CEST on Friday, CET on Monday.
        ("Europe/Berlin", "2027-10-29T16:00", "2027-11-01T08:00", "2027-11-01T16:00"),
        # America/New_York: EST (-5) to EDT (-4) on Sun 2027-03-14; back on Sun 2027-11-07.
        ("America/New_York", "2027-03-12T23:00", "2027-03-15T13:00", "2027-03-15T21:00"),
        ("America/New_York", "2027-11-05T22:00", "2027-11-08T14:00", "2027-11-08T22:00"),
    ],
    ids=["berlin-spring", "berlin-fall", "new-york-spring", "new-york-fall"],
)
def test_nine_local_on_both_sides_of_a_daylight_saving_change(
    zone: str, friday_evening: str, monday_opens: str, monday_closes: str
) -> None:
    w = windows(
        timezone=zone,
        allowed=[{"days": ["mon", "tue", "wed", "thu", "fri"], "start": "09:00", "end": "17:00"}],
    )
    friday = utc(friday_evening)  # 18:00 local: just closed
    assert not open_at(w, friday)
    assert not open_at(w, friday - timedelta(minutes=60))  # 17:00 local: the end is excluded
    assert open_at(w, friday - timedelta(minutes=61))
    assert next_opening(w, friday) == utc(monday_opens)
    assert closes_at(w, friday) == utc(monday_closes)


def test_a_window_across_the_switch_itself_lasts_what_the_clock_says() -> None:
    # 01:00-04:00 local on the night Berlin springs forward (02:00 -> 03:00): 00:00-02:00 UTC,
    # two real hours; the night it falls back (03:00 -> 02:00), 01:00 CEST-04:00 CET: four.
    w = windows(timezone="Europe/Berlin", allowed=[{"days": ["sun"], "start": "01:00", "end": "04:00"}])
    assert next_opening(w, utc("2027-03-27T12:00")) == utc("2027-03-28T00:00")
    assert closes_at(w, utc("2027-03-28T00:30")) == utc("2027-03-28T02:00")
    assert next_opening(w, utc("2027-10-30T12:00")) == utc("2027-10-30T23:00")
    assert closes_at(w, utc("2027-10-30T23:30")) == utc("2027-10-31T03:00")


def test_touching_windows_are_one_and_midnight_is_24_00() -> None:
    w = windows(
        timezone="UTC",
        allowed=[
            {"days": ["mon"], "start": "18:00", "end": "24:00"},
            {"days": ["tue"], "start": "00:00", "end": "06:00"},
        ],
    )
    assert closes_at(w, utc("2026-12-14T20:00")) == utc("2026-12-15T06:00")
    assert open_at(w, utc("2026-12-14T23:59")) and open_at(w, utc("2026-12-15T00:00"))


def test_every_hour_allowed_closes_only_for_freezes() -> None:
    always = windows(timezone="UTC")
    assert open_at(always, utc("2026-12-12T03:00"))
    assert closes_at(always, utc("2026-12-12T03:00")) is None
    frozen_later = windows(timezone="UTC", freezes=[{"start": "2027-01-20T00:00", "end": "2027-01-21T00:00"}])
    assert closes_at(frozen_later, utc("2026-12-12T03:00")) == utc("2027-01-20T00:00")  # past a short look
    assert next_opening(frozen_later, utc("2027-01-20T05:00")) == utc("2027-01-21T00:00")


def test_a_freeze_longer_than_two_years_never_opens() -> None:
    w = windows(timezone="UTC", freezes=[{"start": "2026-01-01T00:00", "end": "2030-01-01T00:00"}])
    assert next_opening(w, utc("2026-12-12T03:00")) is None
    assert waiting_line(w, utc("2026-12-12T03:00")).endswith("no window opens within two years")


def test_a_time_without_a_zone_is_refused() -> None:
    with pytest.raises(ValueError, match="no time zone"):
        open_at(OFFICE, datetime(2026, 12, 14, 10, 0))  # naive: the point of the test


# --------------------------------------------------------------------------- #
# Bad input: refused when deploy-code.yaml is read, naming the field
# --------------------------------------------------------------------------- #

CONFIG = """
app: {name: sample-api}
default_environment: prod
environments:
  prod:
    providers: {platform: simulated, router: simulated, analysis: simulated, smoke: simulated}
    instances: 2
    deploy_windows:
%s
strategies:
  canary: {steps: [{set_weight: 50}]}
"""


def config_with(windows_yaml: str) -> str:
    return CONFIG % "\n".join("      " + line for line in windows_yaml.strip().splitlines())


@pytest.mark.parametrize(
    ("windows_yaml", "expected"),
    [
        (
            "timezone: Europe/Berlim",
            "environments.prod.deploy_windows.timezone: unknown time zone 'Europe/Berlim'",
        ),
        (
            "timezone: UTC\nfreezes:\n"
            '  - {start: "2027-01-04T00:00", end: "2026-12-21T00:00", reason: year-end}',
            "environments.prod.deploy_windows: freezes[0] (year-end) ends (2026-12-21T00:00:00) before it "
            "starts (2027-01-04T00:00:00)",
        ),
        (
            'timezone: UTC\nallowed: [{days: [mon], start: "17:00", end: "09:00"}]',
            "environments.prod.deploy_windows.allowed.0: start 17:00 is not before end 09:00",
        ),
        (
            'timezone: UTC\nallowed: [{days: [mon], start: "09:00", end: "09:00"}]',
            "environments.prod.deploy_windows.allowed.0: start 09:00 is not before end 09:00",
        ),
        (
            'timezone: UTC\nallowed: [{days: [mon, thurs], start: "09:00", end: "17:00"}]',
            "environments.prod.deploy_windows.allowed.0.days.1: Input should be 'mon', 'tue', 'wed', 'thu', "
            "'fri', 'sat' or 'sun' (got 'thurs')",
        ),
        (
            "timezone: UTC\nallowed: [{days: [mon], start: 09:00, end: 17:00}]",
            "environments.prod.deploy_windows.allowed.0.end: write times of day in quotes",
        ),
        (
            'timezone: UTC\nallowed: [{days: [mon], start: "9am", end: "17:00"}]',
            "environments.prod.deploy_windows.allowed.0.start: '9am' is not a time of day",
        ),
    ],
    ids=[
        "unknown-zone",
        "freeze-backwards",
        "start-after-end",
        "start-equals-end",
        "unknown-day",
        "unquoted",
        "9am",
    ],
)
def test_bad_windows_are_refused_naming_the_field(windows_yaml: str, expected: str) -> None:
    with pytest.raises(ConfigError) as refused:
        parse_config(config_with(windows_yaml))
    assert expected in str(refused.value)


def test_the_windows_reach_the_release_pipeline() -> None:
    config = parse_config(
        config_with("timezone: Europe/Berlin\nallowed: [{days: [sat], start: '10:00', end: '12:00'}]")
    )
    pipeline = resolve_pipeline(config, resolve_release(config, "v1.2.3", "canary", "prod"))
    assert pipeline.windows is not None
    assert pipeline.windows.timezone == "Europe/Berlin" and not pipeline.ignore_windows
    assert pipeline.windows.allowed[0].days == ["sat"]


def test_the_shipped_configuration_still_loads() -> None:
    load_config()


async def test_no_window_wait_refuses_before_anything(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """deploy.py --no-window-wait outside the window: exit 2, saying when it opens; no Temporal is
    reachable at all (TEMPORAL_ADDRESS points nowhere), so nothing can have been started."""
    monkeypatch.setenv("TEMPORAL_ADDRESS", "127.0.0.1:9")  # discard: nothing answers there
    now = datetime.now(UTC)
    start, end = (
        (now - timedelta(days=1)).strftime("%Y-%m-%dT%H:%M"),
        (now + timedelta(days=2)).strftime("%Y-%m-%dT%H:%M"),
    )
    path = tmp_path / "deploy-code.yaml"
    path.write_text(
        config_with(f'timezone: UTC\nfreezes: [{{start: "{start}", end: "{end}", reason: audit}}]')
    )
    code = await deploy.main(["v1.2.3", "canary", "--env", "prod", "--config", str(path), "--no-window-wait"])
    err = capsys.readouterr().err
    assert code == 2
    assert "environments.prod.deploy_windows: outside the deploy window (freeze: audit" in err
    assert f"it opens at {(now + timedelta(days=2)):%a %Y-%m-%d %H:%M} UTC" in err
    assert "Nothing was started" in err

    code = await deploy.main(["v1.2.3", "canary", "--env", "prod", "--config", str(path), "--dry-run"])
    out = capsys.readouterr().out
    assert code == 0
    assert "deploy window: closed (freeze: audit" in out and "the release would wait: opens at" in out
