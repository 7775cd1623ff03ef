"""The threshold judge's verdicts, on a metrics source that answers from a script."""

from __future__ import annotations

from datetime import timedelta

import pytest

from engine.contracts import MetricTally
from harness.judge import run


def test_success_after_count_measurements_at_the_interval() -> None:
    result, source, clock = run([0.01] * 5, interval=timedelta(seconds=2))
    assert result.phase == "successful"
    assert source.asked == 5
    assert clock.now == pytest.approx(8.0)  # first at once, then every 2 s


def test_failure_beyond_the_limit_stops_at_once() -> None:
    result, source, _ = run([0.01, 0.2, 0.3], failure_limit=1)
    assert result.phase == "failed"
    assert source.asked == 3
    assert "2 failed measurements (limit 1)" in result.message


def test_no_data_is_inconclusive_never_success() -> None:
    result, _, _ = run([None, None], inconclusive_limit=1)
    assert result.phase == "inconclusive"
    assert "no data" in result.message


def test_unreachable_metrics_are_inconclusive_after_consecutive_errors() -> None:
    down = ConnectionError("connection refused")
    result, _, _ = run([down] * 6, inconclusive_limit=10, consecutive_error_limit=3)
    assert result.phase == "inconclusive"
    assert "4 errors in a row: connection refused" in result.message


def test_only_a_success_condition_fails_when_not_met() -> None:
    result, _, _ = run([0.9], failure_condition=None, success_condition="result < 0.5")
    assert result.phase == "failed"


def test_background_chunk_with_a_long_initial_delay_still_measures() -> None:
    result, source, clock = run(
        [0.0] * 10, count=None, chunk=timedelta(seconds=2), initial_delay=timedelta(seconds=3)
    )
    assert result.phase == "running"
    assert source.asked >= 1 and clock.now >= 3
    again, source2, _ = run([0.0] * 10, count=None, chunk=timedelta(seconds=2), tallies=result.tallies)
    assert again.tallies["error-ratio"].measured > result.tallies["error-ratio"].measured
    assert source2.asked >= 2


def test_background_failures_accumulate_across_chunks() -> None:
    carried = {"error-ratio": MetricTally(measured=10, failed=1)}
    result, _, _ = run([0.3], count=None, chunk=timedelta(seconds=5), failure_limit=1, tallies=carried)
    assert result.phase == "failed"
