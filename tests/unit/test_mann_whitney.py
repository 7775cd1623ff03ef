"""Kayenta's judge (engine/analysis/mann_whitney.py) against Kayenta's published test case and scipy."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.stats import mannwhitneyu

from engine.analysis.mann_whitney import classify, score, shift_interval
from engine.contracts.analysis import CompareMetric


def test_hodges_lehmann_interval_is_kayentas_published_case() -> None:
    # spinnaker/kayenta MannWhitneySuite: [10, 20, 30, 40] vs [1, 2, 3, 4] at 95 %: (6, 39), 22.5.
    shift = shift_interval([10, 20, 30, 40], [1, 2, 3, 4], confidence=0.95)
    assert (shift.low, shift.high, shift.estimate) == (6.0, 39.0, 22.5)


def test_an_interval_excluding_zero_goes_with_a_small_p_value() -> None:
    rng = np.random.default_rng(11)
    agree = 0
    for _ in range(200):
        x, y = rng.normal(0.3, 1, 30), rng.normal(0, 1, 30)
        shift = shift_interval(x, y)
        excludes = shift.low > 0 or shift.high < 0
        p = mannwhitneyu(x, y, alternative="two-sided", method="asymptotic").pvalue
        agree += excludes == (p < 0.02)
    assert agree >= 190  # order statistics and the asymptotic test differ only at the margin


def metric(name: str, group: str = "default", **kw: object) -> CompareMetric:
    return CompareMetric(name=name, query="q", group=group, **kw)  # type: ignore[arg-type]


def test_classification_and_scoring_follow_kayenta() -> None:
    rng = np.random.default_rng(5)
    base = list(rng.normal(100, 5, 30))
    same = classify(metric("p95"), list(rng.normal(100, 5, 30)), base)
    higher = classify(metric("errors", critical=True), list(rng.normal(150, 5, 30)), base)
    lower_but_increase_fails = classify(metric("latency"), list(rng.normal(50, 5, 30)), base)
    assert same.classification == "Pass" and not same.failed
    assert higher.classification == "High" and higher.failed
    assert lower_but_increase_fails.classification == "Low" and not lower_but_increase_fails.failed
    nodata = classify(metric("absent"), [], base)
    assert nodata.classification == "Nodata"
    assert classify(metric("absent", must_have_data=True), [], base).failed

    assert score([same, lower_but_increase_fails], {}, 75, 50).verdict == "pass"
    critical = score([same, higher], {}, 75, 50)
    assert (critical.summary, critical.verdict) == (0.0, "fail") and "critical" in critical.why
    a = classify(metric("a", "errors"), list(rng.normal(150, 5, 30)), base)
    b = classify(metric("b", "latency"), list(rng.normal(100, 5, 30)), base)
    weighted = score([a, b], {"errors": 40, "latency": 60}, 75, 50)
    assert weighted.summary == pytest.approx(60.0) and weighted.verdict == "marginal"
    no_data = score([nodata, same], {}, 75, 50)
    assert no_data.summary == 0.0 and "no data" in no_data.why
