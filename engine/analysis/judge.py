"""A comparing judge, one interval at a time: what new evidence does to its tests, and its verdict.

:func:`observe` takes one reading of every query for each side (counter series, and the values of
a ``mann-whitney`` judge's metrics), turns it into the interval's counts (``evidence``) and feeds
every test the template asks for:

- ``errors``: canary's error rate per request above ``tolerance`` x the baseline's (sequential);
- ``latency``: canary slower than its baseline, from the histogram buckets (sequential);
- ``errors-slo`` / ``latency-slo``: the canary past an absolute limit (any judge);
- each ``compare`` metric collects one sample per side (mann-whitney, judged when a gate ends).

:func:`verdict` says what the evidence means now: ``failed`` the moment any sequential test
crosses its bound (alpha is split evenly between the tests a template runs, so the chance that a
healthy canary fails stays at most alpha); at the end of a gate's window ``passed`` if every test
held and each side served at least ``min_requests``, else ``inconclusive`` with the reason (too few
requests, a metric without data); ``running`` otherwise. Every verdict carries its evidence.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime

from engine.analysis import evidence as counts
from engine.analysis import mann_whitney, sequential
from engine.contracts.analysis import Evidence, JudgePhase, JudgeSpec, JudgeState, Verdict

CANARY, BASELINE = "canary", "baseline"
Reading = dict[str, list[tuple[dict[str, str], float]]]
"""Query name (requests, errors, latency) -> its counter series, for one side."""


def tests_of(spec: JudgeSpec, *, baseline: bool) -> list[str]:
    """The sequential tests a template runs (each gets alpha / their number)."""
    out = []
    if baseline and spec.judge == "sequential":
        out += ["errors"] if spec.errors else []
        out += ["latency"] if spec.latency else []
    out += ["errors-slo"] if spec.slo.errors is not None else []
    out += ["latency-slo"] if spec.slo.latency is not None else []
    return out


def bound(spec: JudgeSpec, *, baseline: bool) -> float:
    """The e-value at which a test fails: 1 / (alpha / number of tests)."""
    return max(1, len(tests_of(spec, baseline=baseline))) / spec.alpha


# --------------------------------------------------------------------------- #
# Reading one interval
# --------------------------------------------------------------------------- #


@dataclass
class _Interval:
    """One interval's increments per side: requests, errors, and the latency histogram."""

    totals: dict[str, dict[str, float]] = field(default_factory=dict)
    below: dict[str, list[float]] = field(default_factory=dict)
    observed: dict[str, float] = field(default_factory=dict)

    def get(self, side: str, name: str) -> float:
        return self.totals.get(side, {}).get(name, 0.0)


def _read(
    state: JudgeState, readings: Mapping[str, Reading], first: bool
) -> tuple[_Interval, dict, list[float]]:
    """The interval's increments, the series values to remember, the histogram's boundaries."""
    last = {k: dict(v) for k, v in state.last.items()}
    boundaries = list(state.boundaries)
    interval = _Interval()
    for side, reading in readings.items():
        interval.totals[side] = {}
        for name, series in reading.items():
            key = f"{side}/{name}"
            grew, last[key] = counts.increments(last.get(key, {}), series, first=first)
            if name != "latency":
                interval.totals[side][name] = counts.total(grew)
                continue
            if not boundaries:
                finite = {lab["le"] for lab, _ in series if lab.get("le") not in (None, "+Inf", "Inf")}
                boundaries = sorted(float(le) for le in finite)
            labels = {counts.series_key(lab): lab for lab, _ in series}
            below, observed = counts.below_counts(counts.histogram(grew, labels), boundaries)
            if series:
                interval.below[side], interval.observed[side] = below, observed
    return interval, last, boundaries


def observe(
    state: JudgeState,
    spec: JudgeSpec,
    readings: Mapping[str, Reading],
    compared: Mapping[str, Mapping[str, float | None]],
    now: datetime,
) -> JudgeState:
    """The state after one more reading (``readings`` and ``compared`` are per side). The first
    reading only remembers where the counters stand: evidence starts after it."""
    first = state.started_at is None
    step, last, boundaries = _read(state, readings, first)
    served, errors, observed = dict(state.requests), dict(state.errors), dict(state.observed)
    below = {k: list(v) for k, v in state.below.items()}
    for side in readings:
        served[side] = served.get(side, 0.0) + step.get(side, "requests")
        errors[side] = errors.get(side, 0.0) + step.get(side, "errors")
        if side in step.below:
            before = below.get(side) or [0.0] * len(step.below[side])
            below[side] = [a + b for a, b in zip(before, step.below[side], strict=True)]
            observed[side] = observed.get(side, 0.0) + step.observed[side]
    e_log, e_latency = _feed(state, spec, step, boundaries, baseline=BASELINE in readings, first=first)
    e_now = {name: sequential.e_value(g) for name, g in e_log.items()}
    if e_latency:
        e_now["latency"] = sequential.latency_e_value(e_latency)
    samples = {m: {s: list(v) for s, v in sides.items()} for m, sides in state.samples.items()}
    for side, values in compared.items():
        for metric, value in values.items():
            if value is not None and not math.isnan(value):
                samples.setdefault(metric, {}).setdefault(side, []).append(value)
    return state.model_copy(
        update={
            "started_at": state.started_at or now,
            "last": last,
            "requests": served,
            "errors": errors,
            "boundaries": boundaries,
            "below": below,
            "observed": observed,
            "e_log": e_log,
            "e_latency": e_latency,
            "e_max": {k: max(state.e_max.get(k, 1.0), v) for k, v in e_now.items()},
            "samples": samples,
            "intervals": state.intervals + (0 if first else 1),
        }
    )


def _feed(
    state: JudgeState,
    spec: JudgeSpec,
    step: _Interval,
    boundaries: list[float],
    *,
    baseline: bool,
    first: bool,
) -> tuple[dict[str, list[float]], list[list[float]]]:
    """Every test's grid after the interval."""
    e_log = {k: list(v) for k, v in state.e_log.items()}
    e_latency = [list(g) for g in state.e_latency]
    if first:
        return e_log, e_latency
    compare = baseline and spec.judge == "sequential"
    if compare and spec.errors:
        e_log["errors"] = sequential.rate_ratio_update(
            e_log.get("errors", []),
            canary_requests=step.get(CANARY, "requests"),
            canary_events=step.get(CANARY, "errors"),
            baseline_requests=step.get(BASELINE, "requests"),
            baseline_events=step.get(BASELINE, "errors"),
            theta0=spec.tolerance,
        )
    if compare and spec.latency and CANARY in step.below and BASELINE in step.below:
        e_latency = sequential.latency_update(
            e_latency,
            canary_below=step.below[CANARY],
            canary_count=step.observed[CANARY],
            baseline_below=step.below[BASELINE],
            baseline_count=step.observed[BASELINE],
            theta0=spec.tolerance,
        )
    if spec.slo.errors is not None:
        e_log["errors-slo"] = sequential.proportion_update(
            e_log.get("errors-slo", []),
            requests=step.get(CANARY, "requests"),
            bad=step.get(CANARY, "errors"),
            limit=spec.slo.errors,
        )
    slo = spec.slo.latency
    j = _boundary_index(boundaries, slo.below) if slo is not None else None
    if slo is not None and j is not None and CANARY in step.below:
        n = step.observed[CANARY]
        e_log["latency-slo"] = sequential.proportion_update(
            e_log.get("latency-slo", []), requests=n, bad=n - step.below[CANARY][j], limit=1.0 - slo.quantile
        )
    return e_log, e_latency


def _boundary_index(boundaries: Sequence[float], value: float) -> int | None:
    return next((i for i, b in enumerate(boundaries) if math.isclose(b, value, rel_tol=1e-9)), None)


# --------------------------------------------------------------------------- #
# The verdict and its evidence
# --------------------------------------------------------------------------- #


def verdict(
    state: JudgeState, spec: JudgeSpec, *, baseline: bool, gate_ended: bool
) -> tuple[JudgePhase, str, list[Evidence]]:
    """What the evidence says now; at a gate's end, pass or inconclusive instead of running."""
    found = describe(state, spec, baseline=baseline)
    failed = [e for e in found if e.verdict == "fail"]
    if failed:
        return "failed", "; ".join(f"{e.metric}: {e.rule}" for e in failed), found
    if not gate_ended:
        limit = bound(spec, baseline=baseline)
        return "running", f"watching ({state.intervals} intervals; a test fails at e-value {limit:g})", found
    problem = _not_enough(state, spec, found, baseline=baseline)
    if problem is None and spec.judge == "mann-whitney" and baseline:
        scored, metrics = _mann_whitney(state, spec)
        found = found + metrics
        if scored.verdict != "pass":
            phase: JudgePhase = "failed" if scored.verdict == "fail" else "inconclusive"
            return phase, f"Kayenta score {scored.verdict}: {scored.why}", found
    if problem is not None:
        return "inconclusive", problem, found
    held = ", ".join(e.metric for e in found) or "no test"
    passed = [e.model_copy(update={"verdict": "pass"}) if e.verdict == "watching" else e for e in found]
    return "passed", f"{held} held over {state.requests.get(CANARY, 0.0):.0f} canary requests", passed


def _not_enough(state: JudgeState, spec: JudgeSpec, found: list[Evidence], *, baseline: bool) -> str | None:
    """Why a gate cannot pass yet: too few requests, and every metric without data (named even
    with little traffic: more traffic will not fix a query that selects nothing)."""
    problems = []
    n_c, n_b = state.requests.get(CANARY, 0.0), state.requests.get(BASELINE, 0.0)
    if n_c < spec.min_requests or (baseline and n_b < spec.min_requests):
        sides = f"canary {n_c:.0f}" + (f", baseline {n_b:.0f}" if baseline else "")
        problems.append(
            f"too little traffic to judge: {sides} requests; at least {spec.min_requests} per version needed"
        )
    problems += [f"{e.metric}: {e.rule}" for e in found if e.verdict == "inconclusive"]
    return "; ".join(problems) or None


def describe(state: JudgeState, spec: JudgeSpec, *, baseline: bool) -> list[Evidence]:
    """Each sequential test's evidence: values per side, statistic, bound, effect and interval."""
    tests = tests_of(spec, baseline=baseline)
    builders = {
        "errors": _errors,
        "latency": _latency,
        "errors-slo": _errors_slo,
        "latency-slo": _latency_slo,
    }
    return [builders[t](_Facts.of(state, spec, t, baseline=baseline)) for t in tests]


@dataclass(frozen=True)
class _Facts:
    """What describing one test needs."""

    state: JudgeState
    spec: JudgeSpec
    limit: float
    alpha: float
    worst: float
    verdict: Verdict

    @staticmethod
    def of(state: JudgeState, spec: JudgeSpec, test: str, *, baseline: bool) -> _Facts:
        limit = bound(spec, baseline=baseline)
        worst = state.e_max.get(test, 1.0)
        alpha = spec.alpha / max(1, len(tests_of(spec, baseline=baseline)))
        return _Facts(state, spec, limit, alpha, worst, "fail" if worst >= limit else "watching")

    def n(self, side: str) -> float:
        return self.state.requests.get(side, 0.0)

    def e(self, side: str) -> float:
        return self.state.errors.get(side, 0.0)

    def ratio(self, side: str) -> float | None:
        return self.e(side) / self.n(side) if self.n(side) else None

    def sizes(self) -> dict[str, int]:
        return {"canary_requests": int(self.n(CANARY)), "baseline_requests": int(self.n(BASELINE))}

    def crossing(self) -> str:
        return f"once the e-value reaches {self.limit:g} (largest so far {self.worst:.3g})"

    def quantile(self, side: str, q: float) -> float | None:
        below = self.state.below.get(side)
        if not below or not self.state.boundaries:
            return None
        return sequential.quantile(self.state.boundaries, below, self.state.observed.get(side, 0.0), q)


def _ratio_interval(f: _Facts) -> tuple[float | None, float | None]:
    """An interval on the canary/baseline error-rate ratio: from the confidence sequence of the
    share of all errors that fell in the canary, at the average traffic share (for reading; the
    decision is the e-process's, which follows the share interval by interval)."""
    n_c, n_b, e_c, e_b = f.n(CANARY), f.n(BASELINE), f.e(CANARY), f.e(BASELINE)
    if not (n_c and n_b and e_c + e_b):
        return None, None
    s = n_c / (n_c + n_b)
    lo, hi = sequential.proportion_interval(e_c, e_c + e_b, f.alpha)

    def theta(q: float) -> float:
        return math.inf if q >= 1 else q * (1 - s) / (s * (1 - q))

    return theta(lo), theta(hi)


def _errors(f: _Facts) -> Evidence:
    c, b = f.ratio(CANARY), f.ratio(BASELINE)
    low, high = _ratio_interval(f)
    return Evidence(
        metric="errors",
        verdict=f.verdict,
        rule=f"canary's error ratio above {f.spec.tolerance:g} x the baseline's {f.crossing()}",
        canary=c,
        baseline=b,
        unit="error ratio",
        value=f.worst,
        bound=f.limit,
        effect=c / b if c is not None and b else None,
        effect_low=low,
        effect_high=high,
        effect_name="error ratio, canary / baseline",
        **f.sizes(),
    )


def _latency(f: _Facts) -> Evidence:
    q = f.spec.slo.latency.quantile if f.spec.slo.latency else 0.95
    c, b = f.quantile(CANARY, q), f.quantile(BASELINE, q)
    missing = not f.state.boundaries
    rule = (
        f"no latency histogram in {f.spec.latency!r}"
        if missing
        else f"canary slower than baseline {f.crossing()}"
    )
    return Evidence(
        metric="latency",
        verdict="inconclusive" if missing else f.verdict,
        rule=rule,
        canary=c,
        baseline=b,
        unit=f"P{q * 100:g} seconds",
        value=f.worst,
        bound=f.limit,
        effect=c / b if c is not None and b else None,
        effect_name=f"P{q * 100:g} latency, canary / baseline",
        **f.sizes(),
    )


def _errors_slo(f: _Facts) -> Evidence:
    limit = f.spec.slo.errors or 0.0
    lo, hi = sequential.proportion_interval(f.e(CANARY), f.n(CANARY), f.alpha)
    return Evidence(
        metric="errors-slo",
        verdict=f.verdict,
        rule=f"canary's error ratio above the SLO's {limit:g} {f.crossing()}",
        canary=f.ratio(CANARY),
        baseline=limit,
        unit="error ratio (baseline column: the SLO)",
        value=f.worst,
        bound=f.limit,
        effect=f.ratio(CANARY),
        effect_low=lo,
        effect_high=hi,
        effect_name="canary error ratio",
        **f.sizes(),
    )


def _latency_slo(f: _Facts) -> Evidence:
    slo = f.spec.slo.latency
    assert slo is not None  # tests_of runs this test only with one
    j = _boundary_index(f.state.boundaries, slo.below)
    count = f.state.observed.get(CANARY, 0.0)
    below = f.state.below.get(CANARY, [])
    slow = count - below[j] if j is not None and below else None
    lo, hi = sequential.proportion_interval(slow, count, f.alpha) if slow is not None else (None, None)
    known = ", ".join(f"{b:g}" for b in f.state.boundaries) or "none found"
    share = 100 * (1 - slo.quantile)
    rule = (
        f"the SLO's {slo.below:g} s is not a bucket boundary of {f.spec.latency!r} ({known})"
        if j is None
        else f"more than {share:g} % of canary requests slower than {slo.below:g} s {f.crossing()}"
    )
    return Evidence(
        metric="latency-slo",
        verdict="inconclusive" if j is None else f.verdict,
        rule=rule,
        canary=f.quantile(CANARY, slo.quantile),
        baseline=slo.below,
        unit=f"P{slo.quantile * 100:g} seconds (baseline column: the SLO)",
        value=f.worst,
        bound=f.limit,
        effect=slow / count if slow is not None and count else None,
        effect_low=lo,
        effect_high=hi,
        effect_name=f"share of canary requests slower than {slo.below:g} s",
        **f.sizes(),
    )


def _mann_whitney(state: JudgeState, spec: JudgeSpec) -> tuple[mann_whitney.Score, list[Evidence]]:
    def samples(metric: str, side: str) -> list[float]:
        return state.samples.get(metric, {}).get(side, [])

    results = [
        mann_whitney.classify(m, samples(m.name, CANARY), samples(m.name, BASELINE)) for m in spec.compare
    ]
    scored = mann_whitney.score(results, spec.groups, spec.pass_score, spec.marginal_score)
    found = [
        Evidence(
            metric=r.metric.name,
            verdict="fail" if r.failed else "inconclusive" if r.classification == "Nodata" else "pass",
            rule=f"Mann-Whitney {mann_whitney.CONFIDENCE:.0%} interval of the shift: {r.classification} "
            f"(direction {r.metric.direction}, group {r.metric.group})",
            canary=r.canary_mean,
            baseline=r.baseline_mean,
            unit="mean per interval",
            canary_requests=r.n_canary,
            baseline_requests=r.n_baseline,
            statistic="p-value",
            value=r.p_value,
            effect=r.shift.estimate if r.shift else None,
            effect_low=r.shift.low if r.shift else None,
            effect_high=r.shift.high if r.shift else None,
            effect_name="Hodges-Lehmann shift, canary - baseline (samples: one per interval)",
        )
        for r in results
    ]
    outcome: Verdict = {"pass": "pass", "fail": "fail"}.get(scored.verdict, "inconclusive")  # type: ignore[assignment]
    found.append(
        Evidence(
            metric="score",
            verdict=outcome,
            rule=scored.why,
            statistic="score",
            value=scored.summary,
            bound=spec.pass_score,
        )
    )
    return scored, found
