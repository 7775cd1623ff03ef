"""Kayenta's canary judge (Spinnaker's NetflixACAJudge): Mann-Whitney per metric, then a weighted score.

For teams that know Kayenta, with its semantics (spinnaker/kayenta, ``kayenta-judge``:
``MannWhitneyClassifier``, ``WeightedSumScorer``, ``ThresholdScoreClassifier``):

- Per metric, the canary's and the baseline's samples (one value per interval, not per request)
  are compared by a two-sided Mann-Whitney U test at 98 % confidence. The shift (canary minus
  baseline) is estimated by Hodges-Lehmann (the median of all pairwise differences) with its
  distribution-free confidence interval (order statistics of those differences; Hollander & Wolfe,
  "Nonparametric Statistical Methods", section 4.3). A metric is **High** when the interval lies
  above ``tolerance`` (0.25) x |estimate|, **Low** when below minus that, else **Pass**; the
  metric's ``direction`` says which of High and Low fails it. No data on a side: **Nodata**.
- A group's score is the share of its metrics that pass (Nodata not counted, unless
  ``must_have_data``); groups are weighted (groups without a weight share what is left) into a
  summary score. A failing critical metric, or no data for half the metrics, makes the score 0.
  Score >= pass: pass; >= marginal: marginal (a human decides); else fail.

This is a fixed-horizon test: valid once, at the end of the window it was planned for, not when
looked at repeatedly; the engine applies it only when a gate's window ends. The p-value comes from
``scipy.stats.mannwhitneyu``; the interval is checked against Kayenta's own published test case
in the unit tests.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np
from scipy.stats import mannwhitneyu, norm

from engine.contracts.analysis import CompareMetric

CONFIDENCE = 0.98
TOLERANCE = 0.25
Classification = Literal["Pass", "High", "Low", "Nodata", "NodataFail"]


@dataclass(frozen=True)
class Shift:
    """The Hodges-Lehmann shift canary - baseline with its confidence interval."""

    estimate: float
    low: float
    high: float


@dataclass(frozen=True)
class MetricResult:
    metric: CompareMetric
    classification: Classification
    shift: Shift | None
    p_value: float | None
    canary_mean: float | None
    baseline_mean: float | None
    n_canary: int
    n_baseline: int

    @property
    def failed(self) -> bool:
        c = self.classification
        if c == "NodataFail":
            return True
        return (c == "High" and self.metric.direction in ("increase", "either")) or (
            c == "Low" and self.metric.direction in ("decrease", "either")
        )


def shift_interval(
    canary: Sequence[float], baseline: Sequence[float], confidence: float = CONFIDENCE
) -> Shift:
    """Hodges-Lehmann estimate of canary - baseline and its distribution-free interval."""
    x, y = np.asarray(canary, dtype=float), np.asarray(baseline, dtype=float)
    diffs = np.sort(np.subtract.outer(x, y).ravel())
    m, n = x.size, y.size
    z = float(norm.ppf(0.5 + confidence / 2))
    # The interval is [D(c), D(mn + 1 - c)] of the sorted differences, c (1-based) by the normal
    # approximation of the U statistic's distribution.
    c = math.floor(m * n / 2 - z * math.sqrt(m * n * (m + n + 1) / 12))
    c = min(max(c, 1), (diffs.size + 1) // 2)
    return Shift(estimate=float(np.median(diffs)), low=float(diffs[c - 1]), high=float(diffs[diffs.size - c]))


def classify(metric: CompareMetric, canary: Sequence[float], baseline: Sequence[float]) -> MetricResult:
    """One metric's classification, as Kayenta's MannWhitneyClassifier makes it."""
    x = [v for v in canary if not math.isnan(v)]
    y = [v for v in baseline if not math.isnan(v)]
    means = (float(np.mean(x)) if x else None, float(np.mean(y)) if y else None)
    if not x or not y:
        kind: Classification = "NodataFail" if metric.must_have_data and not metric.critical else "Nodata"
        return MetricResult(metric, kind, None, None, *means, len(x), len(y))
    if sorted(x) == sorted(y) or len(set(x) | set(y)) == 1:
        return MetricResult(metric, "Pass", Shift(0.0, 0.0, 0.0), 1.0, *means, len(x), len(y))
    shift = shift_interval(x, y)
    p = float(mannwhitneyu(x, y, alternative="two-sided", method="asymptotic").pvalue)
    margin = TOLERANCE * abs(shift.estimate)
    kind = "High" if shift.low > margin else "Low" if shift.high < -margin else "Pass"
    return MetricResult(metric, kind, shift, p, *means, len(x), len(y))


@dataclass(frozen=True)
class Score:
    summary: float
    verdict: Literal["pass", "marginal", "fail"]
    why: str
    groups: dict[str, float]


def score(
    results: list[MetricResult], weights: dict[str, float], pass_score: float, marginal: float
) -> Score:
    """The weighted summary score and its verdict (Kayenta's WeightedSumScorer and thresholds)."""
    by_group: dict[str, list[MetricResult]] = {}
    for r in results:
        by_group.setdefault(r.metric.group, []).append(r)
    group_scores: dict[str, float] = {}
    for group, rs in by_group.items():
        counted = [r for r in rs if r.classification != "Nodata"]
        group_scores[group] = 100.0 * sum(not r.failed for r in counted) / len(counted) if counted else 100.0
    unweighted = [g for g in by_group if g not in weights]
    rest = max(0.0, 100.0 - sum(weights.get(g, 0.0) for g in by_group))
    weight = {g: weights.get(g, rest / len(unweighted) if g in unweighted else 0.0) for g in by_group}
    summary = round(sum(group_scores[g] * weight[g] / 100.0 for g in by_group), 2)
    critical = [r.metric.name for r in results if r.metric.critical and r.failed]
    nodata = sum(r.classification in ("Nodata", "NodataFail") for r in results)
    why = f"score {summary:g} (pass {pass_score:g}, marginal {marginal:g})"
    if critical:
        summary, why = 0.0, f"critical metric {', '.join(critical)} failed"
    elif results and nodata * 2 >= len(results):
        summary, why = 0.0, f"no data for {nodata} of {len(results)} metrics"
    verdict: Literal["pass", "marginal", "fail"] = (
        "pass" if summary >= pass_score else "marginal" if summary >= marginal else "fail"
    )
    return Score(summary=summary, verdict=verdict, why=why, groups=group_scores)
