"""J1-J4: how well a canary is judged: the sequential judge and today's templates on the same streams.

Rows (``python bench/run.py --only J``; ``--quick`` for a short version):

- **J1 false rollbacks** of healthy canaries: canary and baseline with the same noise (0.1 % random
  errors, latency lognormal with median 20 ms and P95 80 ms). Goal: at most alpha (1 %).
- **J2 bad canaries caught**, per case: errors 2 % vs 0.1 %; errors 0.5 % vs 0.1 %; +400 ms on every
  request; median latency +50 % (the whole distribution x1.5). Goal: at least 99 % each.
- **J3 time to verdict** (median, p95) of the caught ones, and what the bad version served users
  before traffic was back on stable (its requests, its failed or slow ones).
- **J4 a healthy release's duration** with the judge against its configured steps (real releases).

The scenario of J1-J3: a canary and its baseline each receive ``RPS`` requests a second (the
local platform's canary at 60 requests a second through the router and a canary weight of a
third), for at most ``SECONDS`` (10 minutes). The judge is the shipped ``canary-vs-baseline``
template of deploy-code.yaml (alpha 1 % over four tests: errors and latency against the baseline,
the seed's SLOs on errors < 0.1 % and P95 < 500 ms; evidence read every 2 s). Today's templates
are those the configuration shipped before the judge: error ratio >= 5 % over 5 s as background
analysis (every second, fails at the second failure) and as gates of five 1 s measurements at half
time and at the end, P95 >= 500 ms (interpolated from the histogram) in the last gate.

Streams are simulated from the sample service's own distributions (Poisson arrivals, Bernoulli
errors, lognormal latency into its histogram buckets): thousands of releases in seconds, both
judges on the same draws. Real releases on the local platform then confirm the verdicts and
times (at least 3 per case; ``--quick``: one healthy and one +400 ms). The e-processes are
``engine/analysis/sequential.py`` itself, run on arrays of streams.
"""

from __future__ import annotations

import math
import statistics
import time
import zlib
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from scipy.stats import norm

from engine.analysis import sequential
from infrastructure.local.sample_service import LATENCY_BUCKETS

RPS = 20
"""Requests a second each of the canary and its baseline receive."""
SECONDS = 600
"""The longest canary of the scenario (10 minutes)."""
INTERVAL = 2
"""Seconds between two readings of the judge (the shipped template's interval)."""
ALPHA, TESTS = 0.01, 4
SLO_ERRORS, SLO_BELOW, SLO_QUANTILE = 0.001, 0.5, 0.95
BOUNDS = np.asarray(LATENCY_BUCKETS)
SLO_INDEX = int(np.flatnonzero(np.isclose(BOUNDS, SLO_BELOW))[0])


@dataclass(frozen=True)
class Case:
    """What the canary does differently from its baseline (both share the noise)."""

    key: str
    name: str
    canary_errors: float = 0.001
    shift_ms: float = 0.0
    scale: float = 1.0

    @property
    def bad(self) -> bool:
        return self.canary_errors > 0.001 or self.shift_ms > 0 or self.scale > 1


CASES = (
    Case("healthy", "healthy"),
    Case("err2", "errors 2 % vs 0.1 %", canary_errors=0.02),
    Case("err05", "errors 0.5 % vs 0.1 %", canary_errors=0.005),
    Case("lat400", "+400 ms latency", shift_ms=400),
    Case("med50", "median latency +50 %", scale=1.5),
)
NOISE_MEDIAN_MS, NOISE_P95_MS = 20.0, 80.0


def bucket_probabilities(case: Case | None) -> np.ndarray:
    """P(latency <= each bucket boundary, and +Inf) for a side: the noise, scaled and shifted."""
    mu, sigma = (
        math.log(NOISE_MEDIAN_MS / 1000),
        math.log(NOISE_P95_MS / NOISE_MEDIAN_MS) / 1.6448536269514722,
    )
    scale, shift = (case.scale, case.shift_ms / 1000) if case else (1.0, 0.0)
    x = np.clip((BOUNDS - shift) / scale, 1e-12, None)
    cdf = np.where(BOUNDS - shift > 0, norm.cdf((np.log(x) - mu) / sigma), 0.0)
    return np.diff(np.concatenate([[0.0], cdf, [1.0]]))


@dataclass
class Outcome:
    """Per simulated release: when each judge failed it (None: never), and what users got by then."""

    judge_at: np.ndarray
    threshold_at: np.ndarray
    served: np.ndarray
    """Canary requests served before the judge's rollback (all of the canary if never)."""
    bad_served: np.ndarray
    """Of those, failed (error cases) or slower than the baseline's P95 (latency cases)."""


def simulate(case: Case, runs: int, seconds: int = SECONDS, rps: int = RPS, seed: int = 1) -> Outcome:
    """``runs`` canaries of ``case``, both judges on the same per-second draws."""
    rng = np.random.default_rng(seed)
    probs = {"canary": bucket_probabilities(case), "baseline": bucket_probabilities(None)}
    errors = {"canary": case.canary_errors, "baseline": 0.001}
    k = len(sequential.GRID)
    logs_err = np.zeros((runs, k))
    logs_lat = np.zeros((runs, 2 * len(BOUNDS), k))
    logs_slo_err = np.zeros((runs, len(sequential.slo_grid(SLO_ERRORS))))
    logs_slo_lat = np.zeros((runs, len(sequential.slo_grid(1 - SLO_QUANTILE))))
    bound = TESTS / ALPHA
    judge_at = np.full(runs, np.nan)
    thr_at = np.full(runs, np.nan)
    thr_failures = np.zeros(runs)
    window: list[tuple[np.ndarray, np.ndarray, np.ndarray]] = []  # last 5 s of canary (n, errors, below)
    acc = {s: [np.zeros(runs), np.zeros(runs), np.zeros((runs, len(BOUNDS)))] for s in probs}
    served, bad_served = np.zeros(runs), np.zeros(runs)
    slow_mark = np.flatnonzero(BOUNDS >= NOISE_P95_MS / 1000)[0]
    for t in range(1, seconds + 1):
        tick = {}
        for side in probs:
            n = rng.poisson(rps, runs)
            e = rng.binomial(n, errors[side])
            below = np.cumsum(rng.multinomial(n, probs[side]), axis=1)[:, : len(BOUNDS)]
            tick[side] = (n, e, below)
            for i, part in enumerate((n, e, below)):
                acc[side][i] = acc[side][i] + part
        alive = np.isnan(judge_at)
        n_c, e_c, below_c = tick["canary"]
        served += np.where(alive, n_c, 0)
        bad_served += np.where(alive, e_c if case.canary_errors > 0.001 else n_c - below_c[:, slow_mark], 0)
        # Today's thresholds: the error ratio over the last 5 s, every second from 3 s on.
        window = [*window[-4:], tick["canary"]]
        wn = sum(w[0] for w in window)
        ratio = np.divide(sum(w[1] for w in window), wn, out=np.zeros(runs), where=wn > 0)
        if t >= 3:
            thr_failures += ratio >= 0.05
            gate = t in range(seconds // 2, seconds // 2 + 5) or t > seconds - 5
            failed = (thr_failures >= 2) | (gate & (ratio >= 0.05))
            if t > seconds - 5:
                wbelow = sum(w[2] for w in window)
                p95 = _quantiles(wbelow, wn, SLO_QUANTILE)
                failed |= p95 >= SLO_BELOW
            thr_at = np.where(np.isnan(thr_at) & failed, t, thr_at)
        if t % INTERVAL:
            continue
        # The judge: one reading every INTERVAL seconds of what came since the last one.
        (nc, ec, bc), (nb, eb, bb) = (acc["canary"], acc["baseline"])
        logs_err = sequential.rate_ratio_step(logs_err, nc, ec, nb, eb)
        for j in range(len(BOUNDS)):
            logs_lat[:, 2 * j] = sequential.rate_ratio_step(
                logs_lat[:, 2 * j], nc, nc - bc[:, j], nb, nb - bb[:, j]
            )
            logs_lat[:, 2 * j + 1] = sequential.rate_ratio_step(
                logs_lat[:, 2 * j + 1], nc, bc[:, j], nb, bb[:, j], grid=[1 / g for g in sequential.GRID]
            )
        logs_slo_err = sequential.proportion_step(logs_slo_err, nc, ec, limit=SLO_ERRORS)
        logs_slo_lat = sequential.proportion_step(
            logs_slo_lat, nc, nc - bc[:, SLO_INDEX], limit=1 - SLO_QUANTILE
        )
        e_lat = sequential.e_values(logs_lat).mean(axis=1)
        worst = np.maximum.reduce(
            [
                sequential.e_values(logs_err),
                e_lat,
                sequential.e_values(logs_slo_err),
                sequential.e_values(logs_slo_lat),
            ]
        )
        judge_at = np.where(np.isnan(judge_at) & (worst >= bound), t, judge_at)
        acc = {s: [np.zeros(runs), np.zeros(runs), np.zeros((runs, len(BOUNDS)))] for s in probs}
    return Outcome(judge_at=judge_at, threshold_at=thr_at, served=served, bad_served=bad_served)


def _quantiles(below: np.ndarray, count: np.ndarray, q: float) -> np.ndarray:
    """histogram_quantile of each row (inf past the last boundary, nan without requests)."""
    out = np.full(count.shape, np.nan)
    for i in range(len(count)):
        if count[i] > 0:
            value = sequential.quantile(list(BOUNDS), list(below[i]), float(count[i]), q)
            out[i] = math.inf if value is None else value
    return out


# --------------------------------------------------------------------------- #
# Real releases on the local platform
# --------------------------------------------------------------------------- #


@dataclass
class RealRelease:
    case: str
    outcome: str
    verdict_s: float | None
    duration_s: float
    reason: str


@dataclass
class Results:
    sim: dict[str, Outcome] = field(default_factory=dict)
    runs: dict[str, int] = field(default_factory=dict)
    real: list[RealRelease] = field(default_factory=list)
    healthy_window: float = 0.0
    sim_seconds: float = 0.0


def run_simulations(quick: bool) -> Results:
    res = Results()
    t = time.monotonic()
    for case in CASES:
        runs = (400 if quick else 2000) if case.key == "healthy" else (200 if quick else 1000)
        res.sim[case.key] = simulate(
            case, runs, seconds=300 if quick else SECONDS, seed=zlib.crc32(case.key.encode())
        )
        res.runs[case.key] = runs
    res.sim_seconds = time.monotonic() - t
    return res


def _rate(outcome: Outcome, which: str) -> float:
    at = outcome.judge_at if which == "judge" else outcome.threshold_at
    return float(np.mean(~np.isnan(at)))


def _times(outcome: Outcome) -> tuple[float, float]:
    caught = outcome.judge_at[~np.isnan(outcome.judge_at)]
    if not caught.size:
        return math.nan, math.nan
    return float(np.median(caught)), float(np.percentile(caught, 95))


def rows(res: Results) -> list[tuple[str, str, str, str]]:
    out: list[tuple[str, str, str, str]] = []
    if not res.sim:
        return out
    healthy = res.sim["healthy"]
    judge_fp, thr_fp = _rate(healthy, "judge"), _rate(healthy, "threshold")
    n = res.runs["healthy"]
    out.append(
        (
            f"J1 false rollbacks, healthy canary ({n} simulated)",
            f"{judge_fp:.2%} (today's templates {thr_fp:.2%})",
            f"<= {ALPHA:.0%}",
            "ok" if judge_fp <= ALPHA else "FAIL",
        )
    )
    for case in CASES:
        if not case.bad:
            continue
        o = res.sim[case.key]
        caught, today = _rate(o, "judge"), _rate(o, "threshold")
        out.append(
            (
                f"J2 caught: {case.name} ({res.runs[case.key]} simulated)",
                f"{caught:.1%} (today's templates {today:.1%})",
                ">= 99%",
                "ok" if caught >= 0.99 else "FAIL",
            )
        )
    for case in CASES:
        if not case.bad:
            continue
        o = res.sim[case.key]
        med, p95 = _times(o)
        bad = "failed" if case.canary_errors > 0.001 else "slower than 80 ms"
        out.append(
            (
                f"J3 time to verdict: {case.name}",
                f"median {med:.0f} s, p95 {p95:.0f} s; served {np.median(o.served):.0f} requests, "
                f"{np.median(o.bad_served):.0f} {bad} (median)",
                "-",
                "info",
            )
        )
    healthy = [r for r in res.real if r.case == "healthy" and r.verdict_s is not None]
    if healthy:
        took = max(r.verdict_s or 0.0 for r in healthy)
        configured = res.healthy_window
        out.append(
            (
                f"J4 healthy release: first traffic -> promoted ({len(healthy)} real)",
                f"{took:.0f} s at most, for a configured gate of {configured:.0f} s",
                f"<= {configured:.0f} s + 10 s",
                "ok"
                if took <= configured + 10 and all(r.outcome == "succeeded" for r in healthy)
                else "FAIL",
            )
        )
    return out


def raw(res: Results) -> str:
    lines = [
        f"J: scenario {RPS} requests/s each to canary and baseline, at most {SECONDS} s, judge reads every "
        f"{INTERVAL} s; {sum(res.runs.values())} simulated releases in {res.sim_seconds:.1f} s"
    ]
    for case in CASES:
        if case.key not in res.sim:
            continue
        o = res.sim[case.key]
        med, p95 = _times(o)
        thr = o.threshold_at[~np.isnan(o.threshold_at)]
        thr_med = f"{np.median(thr):.0f} s" if thr.size else "never"
        lines.append(
            f"  sim  {case.name:<24} judge {_rate(o, 'judge'):7.2%} (median {med:5.0f} s, p95 {p95:5.0f} s)  "
            f"today's templates {_rate(o, 'threshold'):7.2%} (median {thr_med})"
        )
    by_case: dict[str, list[RealRelease]] = {}
    for r in res.real:
        by_case.setdefault(r.case, []).append(r)
    for key, releases in by_case.items():
        verdicts = [r.outcome for r in releases]
        times = [r.verdict_s for r in releases if r.verdict_s is not None]
        when = f"verdict after {statistics.median(times):.0f} s (median)" if times else "no verdict"
        lines.append(f"  real {key:<24} {', '.join(verdicts)}; {when}")
        for r in releases:
            if r.outcome not in ("succeeded", "rolled_back"):
                lines.append(f"       {r.outcome}: {r.reason[:160]}")
    return "\n".join(lines)


def report(res: Results) -> dict[str, Any]:
    out: dict[str, Any] = {"rps": RPS, "seconds": SECONDS, "interval": INTERVAL, "cases": {}}
    for key, o in res.sim.items():
        med, p95 = _times(o)
        out["cases"][key] = {
            "runs": res.runs[key],
            "judge_rate": _rate(o, "judge"),
            "threshold_rate": _rate(o, "threshold"),
            "judge_median_s": med,
            "judge_p95_s": p95,
        }
    out["real"] = [r.__dict__ for r in res.real]
    return out


JUDGE_TEMPLATE = """
analysis_templates:
  judge:
    requests: http_requests_total{{pool="{{{{pool}}}}"}}
    errors: http_requests_total{{pool="{{{{pool}}}}",code=~"5.."}}
    latency: http_request_duration_seconds_bucket{{pool="{{{{pool}}}}"}}
    slo: {{errors: 0.001, latency: {{quantile: 0.95, below: 0.5}}}}
    min_requests: 150
    interval: {interval}s
    window: {window}s
strategies:
  canary:
    canary_instances: 1
    steps:
      - set_weight: 33
      - analysis: {{templates: [judge]}}
    background_analysis: {{templates: [judge], chunk: 5s}}
"""
REAL_LOAD_RPS = 60
"""Through the router: at a canary weight of 33 % (the baseline beside it with as much), about 20
requests a second each to the canary and its baseline, the simulation's scenario."""
REAL_VERSIONS = iter(range(1, 10_000))


def real_config(head: str, case: Case, quick: bool) -> str:
    """The bench's app with the judge watching one 33 % step; a healthy one passes after its window."""
    window = (30 if quick else 120) if not case.bad else SECONDS
    body = JUDGE_TEMPLATE.format(interval=INTERVAL, window=window)
    return head.split("analysis_templates:", maxsplit=1)[0] + body.lstrip("\n")


async def run_real(
    client: Any, task_queue: str, layout: Any, head: str, *, tag: str, quick: bool, res: Results
) -> None:
    """Releases on the local platform: 3 per case (quick: a healthy one and a +400 ms one)."""
    from bench.common import make_spec, start  # noqa: PLC0415 - the platform phase only
    from infrastructure.local.sample_service import BACKGROUND, clear_behaviour, set_behaviour  # noqa: PLC0415

    set_behaviour(
        layout,
        BACKGROUND,
        error_probability=0.001,
        latency_median_ms=NOISE_MEDIAN_MS,
        latency_p95_ms=NOISE_P95_MS,
    )
    try:
        plan = (
            [c for c in CASES if c.key in ("healthy", "lat400")]
            if quick
            else [c for c in CASES for _ in range(3)]
        )
        for case in plan:
            version = f"v4.{next(REAL_VERSIONS)}.0"
            set_behaviour(
                layout,
                version,
                error_probability=case.canary_errors - 0.001 if case.canary_errors > 0.001 else 0.0,
                latency_ms=int(case.shift_ms),
                latency_median_ms=NOISE_MEDIAN_MS * (case.scale - 1) if case.scale > 1 else 0.0,
                latency_p95_ms=NOISE_P95_MS * (case.scale - 1) if case.scale > 1 else 0.0,
            )
            spec = make_spec(real_config(head, case, quick), version, layout)
            if not case.bad:
                res.healthy_window = 30.0 if quick else 120.0
            t0 = time.monotonic()
            handle = await start(client, spec, task_queue, tag)
            result = await handle.result()
            total = time.monotonic() - t0
            first = next(
                (d.at for d in result.status.decisions if d.what.startswith("canary weight 33")), None
            )
            ended = next(
                (
                    d.at
                    for d in result.status.decisions
                    if d.what in ("rolling back",) or d.what.startswith("promoted")
                ),
                None,
            )
            verdict = (ended - first).total_seconds() if first and ended else None
            res.real.append(RealRelease(case.name, result.outcome, verdict, total, result.reason))
            print(
                f"J real {case.name}: {result.outcome} after {verdict or 0:.0f} s ({total:.0f} s in all)",
                flush=True,
            )
    finally:
        clear_behaviour(layout, BACKGROUND)
