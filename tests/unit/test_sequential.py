"""The sequential judge's e-processes against reference values, savvi, and their own promises.

Reference values were computed once with an independent numpy implementation of the same
construction (grid sqrt 2 .. 128, 14 points, equal weights); the Beta-binomial Bayes factor of the
confidence sequences is checked against savvi (Lindon & Malek's own test, a dev dependency); the
promises (false alarms at most alpha under continuous monitoring, a better canary never fails)
are checked by simulation with a fixed seed.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from savvi.multinomial import Multinomial

from engine.analysis.sequential import (
    GRID,
    beta_binomial_log_bf,
    e_value,
    e_values,
    latency_e_value,
    latency_update,
    proportion_interval,
    proportion_update,
    quantile,
    rate_ratio_step,
    rate_ratio_update,
)

BOUNDS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 0.75, 1.0, 1.5, 2.0, 5.0)


def feed(intervals: list[tuple[int, int, int, int]], theta0: float = 1.0) -> list[float]:
    logs: list[float] = []
    for n_c, e_c, n_b, e_b in intervals:
        logs = rate_ratio_update(
            logs,
            canary_requests=n_c,
            canary_events=e_c,
            baseline_requests=n_b,
            baseline_events=e_b,
            theta0=theta0,
        )
    return logs


def test_grid_is_sqrt2_to_128() -> None:
    assert len(GRID) == 14
    assert GRID[0] == pytest.approx(2**0.5) and GRID[-1] == pytest.approx(128.0)


def test_rate_ratio_reference_values() -> None:
    one_error = (20, 1, 20, 0)
    assert e_value(feed([one_error])) == pytest.approx(1.75165324511, rel=1e-10)
    assert e_value(feed([one_error] * 5)) == pytest.approx(19.5039477052, rel=1e-10)
    assert e_value(feed([one_error] * 10)) == pytest.approx(477.000359969, rel=1e-10)
    moving_share = [
        (2, 0, 20, 1),
        (2, 1, 20, 0),
        (10, 2, 20, 1),
        (10, 3, 20, 0),
        (20, 4, 20, 1),
        (20, 5, 20, 0),
    ]
    assert e_value(feed(moving_share)) == pytest.approx(1037.04933147, rel=1e-10)
    assert e_value(feed(moving_share, theta0=1.5)) == pytest.approx(60.7699886789, rel=1e-10)


def test_latency_reference_values() -> None:
    baseline = [0, 0, 1, 3, 11, 16, 18, 19, 20, 20, 20, 20, 20, 20, 20]
    slower = [0, 0, 0, 0, 8, 14, 17, 19, 20, 20, 20, 20, 20, 20, 20]
    logs: list[list[float]] = []
    for _ in range(5):
        logs = latency_update(
            logs, canary_below=slower, canary_count=20, baseline_below=baseline, baseline_count=20
        )
    assert latency_e_value(logs) == pytest.approx(421.808437111, rel=1e-10)
    same: list[list[float]] = []
    for _ in range(5):
        same = latency_update(
            same, canary_below=baseline, canary_count=20, baseline_below=baseline, baseline_count=20
        )
    assert latency_e_value(same) == pytest.approx(0.31804647577, rel=1e-10)
    plus_400ms = [0, 0, 0, 0, 0, 0, 0, 0, 0, 5, 15, 20, 20, 20, 20]
    once = latency_update(
        [], canary_below=plus_400ms, canary_count=20, baseline_below=baseline, baseline_count=20
    )
    assert latency_e_value(once) == pytest.approx(34087.3458648, rel=1e-10)


@pytest.mark.parametrize(
    ("counts", "p", "k"),
    [
        ((10, 2), 0.5, 100.0),
        ((10, 2), 0.5, 1.0),
        ((30, 40), 0.25, 100.0),
        ((19, 4), 0.2, 10.0),
        ((40, 0), 0.5, 100.0),
    ],
)
def test_beta_binomial_bayes_factor_is_savvis_multinomial_test(
    counts: tuple[int, int], p: float, k: float
) -> None:
    test = Multinomial(0.01, np.array([p, 1.0 - p]), k)
    test.update(np.array(counts, dtype=np.int64))
    events, trials = counts[0], counts[0] + counts[1]
    assert math.exp(beta_binomial_log_bf(events, trials, p, k)) == pytest.approx(test.odds, rel=1e-9)


def test_confidence_sequence_covers_the_truth_at_every_look() -> None:
    """1000 streams of 2000 Bernoulli(0.02) draws, the interval checked after every 10: it misses
    the true rate at any look in at most alpha of them (a fixed-sample interval would not)."""
    rng = np.random.default_rng(7)
    alpha, p, missed = 0.05, 0.02, 0
    for _ in range(200):
        draws = np.cumsum(rng.random(2000) < p)
        for n in range(10, 2001, 10):
            lo, hi = proportion_interval(float(draws[n - 1]), float(n), alpha)
            if not lo <= p <= hi:
                missed += 1
                break
    assert missed / 200 <= alpha
    lo, hi = proportion_interval(0, 0, 0.01)
    assert (lo, hi) == (0.0, 1.0)
    lo, hi = proportion_interval(20, 1000, 0.01)
    assert lo < 0.02 < hi and hi - lo < 0.04


def simulate_false_alarms(p: float, rps: int, seconds: int, runs: int, seed: int) -> float:
    """Healthy canary and baseline (same error rate), Poisson traffic, the test looked at every second."""
    rng = np.random.default_rng(seed)
    logs = np.zeros((runs, len(GRID)))
    alarmed = np.zeros(runs, dtype=bool)
    for _ in range(seconds):
        n_c, n_b = rng.poisson(rps, runs), rng.poisson(rps, runs)
        logs = rate_ratio_step(logs, n_c, rng.binomial(n_c, p), n_b, rng.binomial(n_b, p))
        alarmed |= e_values(logs) >= 100
    return float(alarmed.mean())


def test_the_array_form_is_the_scalar_form() -> None:
    intervals = [(2, 0, 20, 1), (2, 1, 20, 0), (0, 0, 20, 3), (10, 3, 20, 0)]
    logs = np.zeros((1, len(GRID)))
    for n_c, e_c, n_b, e_b in intervals:
        logs = rate_ratio_step(logs, np.array([n_c]), np.array([e_c]), np.array([n_b]), np.array([e_b]))
    assert e_values(logs)[0] == pytest.approx(e_value(feed(intervals)), rel=1e-12)


def test_false_alarms_stay_under_alpha_however_often_it_is_looked_at() -> None:
    # 1 % errors on both, 20 rps each, looked at every second for 5 minutes: at most 1 %.
    assert simulate_false_alarms(0.01, 20, 300, 4000, seed=1) <= 0.01 + 3 * math.sqrt(0.01 * 0.99 / 4000)


def test_a_better_canary_never_fails_and_a_worse_one_does() -> None:
    better = feed([(20, 0, 20, 2)] * 200)  # canary 0 %, baseline 10 %
    assert e_value(better) < 1.0
    worse = feed([(20, 2, 20, 0)] * 10)
    assert e_value(worse) >= 100
    faster = [0, 0, 2, 10, 20, 20, 20, 20, 20, 20, 20, 20, 20, 20, 20]
    baseline = [0, 0, 1, 3, 11, 16, 18, 19, 20, 20, 20, 20, 20, 20, 20]
    logs: list[list[float]] = []
    for _ in range(100):
        logs = latency_update(
            logs, canary_below=faster, canary_count=20, baseline_below=baseline, baseline_count=20
        )
    assert latency_e_value(logs) < 1.0


def test_slo_guard_fails_past_the_limit_only() -> None:
    over: list[float] = []
    for _ in range(60):  # 2 % errors against a 0.1 % SLO, 20 requests a second
        over = proportion_update(over, requests=20, bad=0.4, limit=0.001)
    assert e_value(over) >= 400
    at_limit: list[float] = []
    rng = np.random.default_rng(3)
    for _ in range(600):
        at_limit = proportion_update(at_limit, requests=20, bad=float(rng.binomial(20, 0.001)), limit=0.001)
    assert e_value(at_limit) < 100


def test_histogram_quantile_interpolates_like_prometheus() -> None:
    # 100 requests: 50 below 10 ms, 90 below 25 ms, 100 below 50 ms.
    below = [0, 0, 0, 50, 90, 100] + [100] * 9
    assert quantile(BOUNDS, below, 100, 0.5) == pytest.approx(0.01)
    assert quantile(BOUNDS, below, 100, 0.95) == pytest.approx(0.025 + 0.025 * 5 / 10)
    assert quantile(BOUNDS, below, 0, 0.95) is None
    assert quantile(BOUNDS, [0] * 15, 10, 0.5) == math.inf
