"""A comparing judge fed counter readings interval by interval (engine/analysis/judge.py).

The readings are what Prometheus would answer (raw counter series per instance, the latency
histogram's buckets with their ``le`` label), generated here from per-second Poisson traffic with
a fixed seed; the verdicts are the judge's own.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import numpy as np

from engine.analysis.judge import observe, verdict
from engine.contracts.analysis import JudgeSpec, JudgeState

LE = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 0.75, 1.0, 1.5, 2.0, 5.0)
T0 = datetime(2026, 12, 7, tzinfo=UTC)
SPEC = JudgeSpec(
    requests="r",
    errors="e",
    latency="h",
    slo={"errors": 0.05, "latency": {"quantile": 0.95, "below": 0.5}},  # type: ignore[arg-type]
    min_requests=200,
)


class Side:
    """Cumulative counters of one instance: requests by code, and the latency histogram."""

    def __init__(self, rng: np.random.Generator, error: float, median: float, p95: float) -> None:
        self.rng, self.error, self.mu = rng, error, np.log(median)
        self.sigma = (np.log(p95) - self.mu) / 1.6449
        self.ok = self.failed = 0.0
        self.buckets = np.zeros(len(LE) + 1)

    def serve(self, n: int) -> None:
        failed = self.rng.binomial(n, self.error)
        self.failed, self.ok = self.failed + failed, self.ok + n - failed
        took = self.rng.lognormal(self.mu, self.sigma, n)
        self.buckets += [np.sum(took <= le) for le in LE] + [n]

    def reading(self) -> dict[str, list[tuple[dict[str, str], float]]]:
        inst = {"instance": "a"}
        return {
            "requests": [({**inst, "code": "200"}, self.ok), ({**inst, "code": "500"}, self.failed)],
            "errors": [({**inst, "code": "500"}, self.failed)],
            "latency": [
                ({**inst, "le": str(le)}, float(v)) for le, v in zip((*LE, "+Inf"), self.buckets, strict=True)
            ],
        }


def run(canary: Side, baseline: Side, seconds: int, rps: int, spec: JudgeSpec = SPEC) -> JudgeState:
    state = JudgeState()
    for t in range(seconds + 1):
        canary.serve(int(canary.rng.poisson(rps)))
        baseline.serve(int(baseline.rng.poisson(rps)))
        state = observe(
            state,
            spec,
            {"canary": canary.reading(), "baseline": baseline.reading()},
            {},
            T0 + timedelta(seconds=t),
        )
        if verdict(state, spec, baseline=True, gate_ended=False)[0] == "failed":
            break
    return state


def test_a_healthy_canary_passes_at_the_gate_with_its_evidence() -> None:
    rng = np.random.default_rng(1)
    state = run(Side(rng, 0.001, 0.02, 0.08), Side(rng, 0.001, 0.02, 0.08), seconds=30, rps=20)
    assert verdict(state, SPEC, baseline=True, gate_ended=False)[0] == "running"
    phase, message, evidence = verdict(state, SPEC, baseline=True, gate_ended=True)
    assert phase == "passed", message
    by = {e.metric: e for e in evidence}
    assert set(by) == {"errors", "latency", "errors-slo", "latency-slo"}
    assert by["latency"].canary is not None and 0.04 < by["latency"].canary < 0.2  # P95 near 80 ms
    assert by["errors"].bound == 400  # alpha 1 % over 4 tests
    assert all(e.verdict == "pass" and e.canary_requests > 500 for e in evidence)


def test_two_percent_errors_fail_against_the_baseline_and_say_why() -> None:
    rng = np.random.default_rng(2)
    state = run(Side(rng, 0.02, 0.02, 0.08), Side(rng, 0.001, 0.02, 0.08), seconds=120, rps=20)
    phase, message, evidence = verdict(state, SPEC, baseline=True, gate_ended=False)
    assert phase == "failed"
    assert "errors:" in message and "e-value reaches 400" in message
    errors = next(e for e in evidence if e.metric == "errors")
    assert errors.value is not None and errors.value >= 400
    assert errors.effect is not None and errors.effect > 5  # 2 % against 0.1 %
    assert errors.effect_low is not None and errors.effect_high is not None
    assert errors.effect_low < errors.effect < errors.effect_high
    assert state.intervals < 120  # decided well before the end


def test_400ms_slower_fails_within_seconds() -> None:
    rng = np.random.default_rng(3)
    slow = Side(rng, 0.001, 0.42, 0.5)
    state = run(slow, Side(rng, 0.001, 0.02, 0.08), seconds=60, rps=20)
    phase, message, _ = verdict(state, SPEC, baseline=True, gate_ended=False)
    assert phase == "failed" and "latency:" in message
    assert state.intervals <= 3


def test_too_little_traffic_is_inconclusive_never_a_pass() -> None:
    rng = np.random.default_rng(4)
    state = run(Side(rng, 0.0, 0.02, 0.08), Side(rng, 0.0, 0.02, 0.08), seconds=10, rps=2)
    phase, message, _ = verdict(state, SPEC, baseline=True, gate_ended=True)
    assert phase == "inconclusive"
    assert "too little traffic" in message and "at least 200 per version" in message


def test_a_missing_histogram_is_inconclusive_naming_the_metric() -> None:
    rng = np.random.default_rng(5)
    canary, baseline = Side(rng, 0.0, 0.02, 0.08), Side(rng, 0.0, 0.02, 0.08)
    state = JudgeState()
    for t in range(30):
        canary.serve(20)
        baseline.serve(20)
        readings = {
            s: {**side.reading(), "latency": []} for s, side in (("canary", canary), ("baseline", baseline))
        }
        state = observe(state, SPEC, readings, {}, T0 + timedelta(seconds=t))
    phase, message, _ = verdict(state, SPEC, baseline=True, gate_ended=True)
    assert phase == "inconclusive"
    assert "latency" in message and "'h'" in message


def test_a_counter_reset_counts_what_the_restarted_instance_served() -> None:
    state = JudgeState()
    spec = JudgeSpec(requests="r", errors="e", min_requests=1)
    seq = [10.0, 30.0, 5.0, 25.0]  # the instance restarted between the 2nd and 3rd reading
    for t, value in enumerate(seq):
        reading = {"requests": [({"i": "a"}, value)], "errors": [({"i": "a"}, 0.0)]}
        state = observe(state, spec, {"canary": reading, "baseline": reading}, {}, T0 + timedelta(seconds=t))
    assert state.requests["canary"] == 20 + 5 + 20


def test_mann_whitney_judges_at_the_gate_with_kayentas_score() -> None:
    spec = JudgeSpec(
        judge="mann-whitney",
        requests="r",
        compare=[{"name": "p95", "query": "q", "critical": True}],  # type: ignore[list-item]
        min_requests=10,
    )
    rng = np.random.default_rng(6)
    state = JudgeState()
    for t in range(40):
        reading = {"requests": [({"i": "a"}, 20.0 * t)]}
        values = {
            "canary": {"p95": float(rng.normal(0.15, 0.01))},
            "baseline": {"p95": float(rng.normal(0.1, 0.01))},
        }
        state = observe(
            state, spec, {"canary": reading, "baseline": reading}, values, T0 + timedelta(seconds=t)
        )
    phase, message, evidence = verdict(state, spec, baseline=True, gate_ended=True)
    assert phase == "failed" and "critical metric p95 failed" in message
    p95 = next(e for e in evidence if e.metric == "p95")
    assert p95.statistic == "p-value" and p95.value is not None and p95.value < 0.01
    assert p95.effect is not None and 0.04 < p95.effect < 0.06
