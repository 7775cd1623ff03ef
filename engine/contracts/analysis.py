"""Analysis contracts: templates, what the judges read and remember, and what their verdicts carry.

Two families of templates (``judge``):

- ``threshold``: Argo Rollouts' metrics, each a query whose value is held against conditions;
- ``sequential`` and ``mann-whitney``: the canary is compared with its baseline (fresh instances of
  the stable version beside it) from counts read per version: requests, errors and latency
  histogram buckets (``sequential``, anytime-valid, continuous), or per-interval values of chosen
  metrics (``mann-whitney``, Kayenta's fixed-horizon judge). SLO guards hold the canary itself
  against absolute limits, whatever the baseline does.

The judging code is ``engine/analysis``; these models are what crosses the workflow/activity line.
"""

from __future__ import annotations

import re
from datetime import datetime, timedelta
from typing import Annotated, Literal

from pydantic import Field, StringConstraints, ValidationError, model_validator

from engine.analysis.conditions import Condition
from engine.contracts.environment import EnvironmentSpec
from engine.contracts.scalars import Duration, Strict

TEMPLATE_ARGS = (
    "app",
    "environment",
    "canary_version",
    "stable_version",
    "canary_pool",
    "stable_pool",
    "region",
    "component",
)
SIDE_ARGS = ("pool", "version")
"""Placeholders of a comparing judge's queries, rendered once per side (canary, baseline)."""
_TEMPLATE_REF = re.compile(r"\{\{\s*([a-z_]+)\s*\}\}")


def render_query(query: str, args: dict[str, str]) -> str:
    """Replace ``{{name}}`` placeholders (Argo's args) in a query."""
    return _TEMPLATE_REF.sub(lambda m: args[m.group(1)], query)


class Metric(Strict):
    """One metric of an analysis: a query, how to judge it, and how often."""

    name: Annotated[str, StringConstraints(pattern=r"^[a-z][a-z0-9_-]{0,62}$")]
    query: Annotated[str, StringConstraints(min_length=1, max_length=4096)]
    success_condition: Condition = None
    failure_condition: Condition = None
    interval: Duration = timedelta(seconds=1)
    count: Annotated[int, Field(ge=1, le=100_000)] | None = None
    initial_delay: Duration = timedelta(0)
    failure_limit: Annotated[int, Field(ge=0)] = 0
    inconclusive_limit: Annotated[int, Field(ge=0)] = 0
    consecutive_error_limit: Annotated[int, Field(ge=0)] = 4

    @model_validator(mode="after")
    def _check(self) -> Metric:
        if self.success_condition is None and self.failure_condition is None:
            msg = f"metric {self.name!r} needs a success_condition or a failure_condition"
            raise ValueError(msg)
        if self.interval < timedelta(milliseconds=100):
            msg = f"metric {self.name!r}: interval {self.interval} is below the 100ms minimum"
            raise ValueError(msg)
        for ref in _TEMPLATE_REF.findall(self.query):
            if ref not in TEMPLATE_ARGS:
                known = ", ".join(TEMPLATE_ARGS)
                msg = f"metric {self.name!r}: unknown placeholder {{{{{ref}}}}}; known: {known}"
                raise ValueError(msg)
        return self


def _check_placeholders(where: str, query: str, allowed: tuple[str, ...]) -> None:
    for ref in _TEMPLATE_REF.findall(query):
        if ref not in allowed:
            msg = f"{where}: unknown placeholder {{{{{ref}}}}}; known: {', '.join(allowed)}"
            raise ValueError(msg)


Judge = Literal["threshold", "sequential", "mann-whitney"]
Query = Annotated[str, StringConstraints(min_length=1, max_length=4096)]
Weight = Annotated[float, Field(gt=0.0, le=100.0)]
Score = Annotated[float, Field(ge=0.0, le=100.0)]
Alpha = Annotated[float, Field(gt=0.0, le=0.5)]
Tolerance = Annotated[float, Field(ge=1.0, le=10.0)]
MinRequests = Annotated[int, Field(ge=1, le=10_000_000)]


class LatencySlo(Strict):
    """The canary's ``quantile`` latency stays below ``below`` seconds (a histogram bucket boundary)."""

    quantile: Annotated[float, Field(gt=0.5, lt=1.0)]
    below: Annotated[float, Field(gt=0.0, le=3600.0)]


class Slo(Strict):
    """Absolute limits of the canary itself, whatever its baseline does (the seed's SLOs)."""

    errors: Annotated[float, Field(gt=0.0, lt=1.0)] | None = None
    """The share of failed requests stays below this (0.001: 0.1 %)."""
    latency: LatencySlo | None = None


class CompareMetric(Strict):
    """A metric a ``mann-whitney`` judge compares: one value per interval and side (Kayenta)."""

    name: Annotated[str, StringConstraints(pattern=r"^[a-z][a-z0-9_-]{0,62}$")]
    query: Query
    group: Annotated[str, StringConstraints(pattern=r"^[a-z][a-z0-9_-]{0,62}$")] = "default"
    direction: Literal["increase", "decrease", "either"] = "increase"
    """Which change fails the metric: an increase (errors, latency), a decrease (throughput), either."""
    critical: bool = False
    """A failing critical metric fails the canary whatever the score."""
    must_have_data: bool = False


class JudgeSpec(Strict):
    """A comparing judge: what it reads per side, how it decides, and for how long a gate looks."""

    judge: Literal["sequential", "mann-whitney"] = "sequential"
    requests: Query
    """Counter series of the side's requests (``{{pool}}``, ``{{version}}``): the evidence's size."""
    errors: Query | None = None
    """Counter series of the side's failed requests."""
    latency: Query | None = None
    """The side's latency histogram buckets: counter series with an ``le`` label."""
    slo: Slo = Field(default_factory=Slo)
    compare: list[CompareMetric] = Field(default_factory=list)
    groups: dict[str, Weight] = Field(default_factory=dict)
    """Weights of the ``compare`` metrics' groups (Kayenta): groups not named share what is left."""
    pass_score: Score = 75.0
    marginal_score: Score = 50.0
    alpha: Alpha = 0.01
    """False-alarm rate: the chance a healthy canary is failed, however often it is looked at."""
    tolerance: Tolerance = 1.0
    """The canary fails only when worse than its baseline by more than this factor (1: any worse)."""
    min_requests: MinRequests = 100
    """No pass on fewer requests per version: too little traffic is inconclusive."""
    interval: Duration = timedelta(seconds=2)
    window: Duration = timedelta(seconds=30)
    """How long a gate looks (at least) before it passes; the judge watches on in the background."""

    @model_validator(mode="after")
    def _check(self) -> JudgeSpec:
        if self.judge == "sequential" and self.errors is None and self.latency is None:
            raise ValueError("a sequential judge compares errors, latency or both: set errors or latency")
        if self.judge == "mann-whitney" and not self.compare:
            raise ValueError("a mann-whitney judge needs metrics to compare (compare: [...])")
        if self.judge == "sequential" and self.compare:
            raise ValueError(
                "compare is for judge: mann-whitney; a sequential judge reads errors and latency"
            )
        if self.slo.errors is not None and self.errors is None:
            raise ValueError("slo.errors guards the error ratio, but the template defines no errors query")
        if self.slo.latency is not None and self.latency is None:
            raise ValueError("slo.latency guards the latency, but the template defines no latency histogram")
        if self.marginal_score > self.pass_score:
            msg = f"marginal_score ({self.marginal_score:g}) is above pass_score ({self.pass_score:g})"
            raise ValueError(msg)
        unknown = sorted(set(self.groups) - {m.group for m in self.compare})
        if unknown:
            raise ValueError(f"groups {unknown} have no metric in compare")
        if self.interval < timedelta(milliseconds=500) or self.window < self.interval:
            msg = f"interval ({self.interval}) must be >= 500ms and window ({self.window}) >= one interval"
            raise ValueError(msg)
        allowed = (*TEMPLATE_ARGS, *SIDE_ARGS)
        for name, query in (("requests", self.requests), ("errors", self.errors), ("latency", self.latency)):
            if query is not None:
                _check_placeholders(name, query, allowed)
        for m in self.compare:
            _check_placeholders(f"compare metric {m.name!r}", m.query, allowed)
        return self

    def queries(self) -> dict[str, str]:
        """Every query of the template by name (requests, errors, latency, compare metrics)."""
        found = {"requests": self.requests, "errors": self.errors, "latency": self.latency}
        return {k: v for k, v in found.items() if v is not None} | {m.name: m.query for m in self.compare}


class AnalysisTemplate(Strict):
    """A named analysis: threshold metrics, or a comparing judge (the fields of :class:`JudgeSpec`)."""

    judge: Judge | None = None
    """threshold when the template has ``metrics``; else sequential (the default comparing judge)."""
    metrics: list[Metric] = Field(default_factory=list)
    requests: Query | None = None
    errors: Query | None = None
    latency: Query | None = None
    slo: Slo | None = None
    compare: list[CompareMetric] = Field(default_factory=list)
    groups: dict[str, Weight] = Field(default_factory=dict)
    pass_score: Score | None = None
    marginal_score: Score | None = None
    alpha: Alpha | None = None
    tolerance: Tolerance | None = None
    min_requests: MinRequests | None = None
    interval: Duration | None = None
    window: Duration | None = None

    @model_validator(mode="after")
    def _check(self) -> AnalysisTemplate:
        kind = self.kind
        if kind == "threshold":
            if not self.metrics:
                raise ValueError("a threshold template needs metrics (each a query and its conditions)")
            extra = [
                k
                for k in JudgeSpec.model_fields
                if k != "judge" and getattr(self, k, None) not in (None, [], {})
            ]
            if extra:
                raise ValueError(f"{', '.join(extra)}: only for a comparing judge (sequential, mann-whitney)")
            return self
        if self.metrics:
            raise ValueError(
                f"judge {kind}: metrics are for threshold templates; compare with errors, latency or compare"
            )
        if self.requests is None:
            raise ValueError(f"judge {kind} needs requests: the counter series of each side's requests")
        try:
            self.judge_spec()  # every rule of a comparing judge, named
        except ValidationError as exc:
            problems = [
                ".".join(str(p) for p in e["loc"]) + ": " + e["msg"].removeprefix("Value error, ")
                if e["loc"]
                else e["msg"].removeprefix("Value error, ")
                for e in exc.errors()
            ]
            raise ValueError("; ".join(problems)) from None
        return self

    @property
    def kind(self) -> Judge:
        if self.judge is not None:
            return self.judge
        return "threshold" if self.metrics else "sequential"

    def judge_spec(self) -> JudgeSpec:
        """The comparing judge this template describes (not for threshold templates)."""
        given = {k: getattr(self, k) for k in JudgeSpec.model_fields if k != "judge"}
        return JudgeSpec(judge=self.kind, **{k: v for k, v in given.items() if v is not None})


MeasurementPhase = Literal["successful", "failed", "inconclusive", "error"]
AnalysisPhase = Literal["successful", "failed", "inconclusive", "running"]


class Measurement(Strict):
    """One evaluation of one metric."""

    metric: str
    phase: MeasurementPhase
    value: float | None = None
    at: datetime
    message: str = ""


class MetricTally(Strict):
    """Counts carried across chunks of a long-running (background) analysis."""

    measured: int = 0
    failed: int = 0
    inconclusive: int = 0
    consecutive_errors: int = 0


class AnalysisRequest(Strict):
    """Input of the analysis activity.

    With ``chunk`` unset every metric is measured ``count`` times (foreground
    analysis). With ``chunk`` set the activity returns phase ``running`` after
    that long unless a limit was crossed first (background analysis).
    """

    environment: EnvironmentSpec
    name: str
    metrics: list[Metric]
    args: dict[str, str]
    chunk: Duration | None = None
    tallies: dict[str, MetricTally] = Field(default_factory=dict)


class QueryCheckRequest(Strict):
    """Input of ``analysis.check_queries``: every query a release's analyses will run."""

    environment: EnvironmentSpec
    analyses: list[AnalysisRef]
    args: dict[str, str]


class AnalysisResult(Strict):
    """The verdict of an analysis run (or of one chunk of a background one)."""

    name: str
    phase: AnalysisPhase
    message: str = ""
    measurements: list[Measurement] = Field(default_factory=list)
    tallies: dict[str, MetricTally] = Field(default_factory=dict)


class AnalysisRef(Strict):
    """An analysis template, resolved by name: threshold metrics, or a comparing judge."""

    name: str
    metrics: list[Metric] = Field(default_factory=list)
    judge: JudgeSpec | None = None
    """Set for a comparing judge (sequential, mann-whitney); then ``metrics`` is empty."""


# --------------------------------------------------------------------------- #
# A comparing judge at run time: sides, what it remembers, what its verdict carries
# --------------------------------------------------------------------------- #


class Side(Strict):
    """One side of a comparison: the pool whose instances it is, and their version."""

    pool: str
    version: str


class JudgeState(Strict):
    """What a comparing judge has read so far; carried from chunk to chunk by the workflow."""

    started_at: datetime | None = None
    last: dict[str, dict[str, float]] = Field(default_factory=dict)
    """``side/query`` -> series (labels) -> its last counter value."""
    requests: dict[str, float] = Field(default_factory=dict)
    """Side -> requests counted since the start."""
    errors: dict[str, float] = Field(default_factory=dict)
    boundaries: list[float] = Field(default_factory=list)
    """The latency histogram's finite bucket boundaries (seconds), as first read."""
    below: dict[str, list[float]] = Field(default_factory=dict)
    """Side -> requests that took at most each boundary, since the start."""
    observed: dict[str, float] = Field(default_factory=dict)
    """Side -> requests in the latency histogram (its +Inf bucket), since the start."""
    e_log: dict[str, list[float]] = Field(default_factory=dict)
    """Test -> the log likelihood ratios of its grid (errors, error-slo, latency-slo)."""
    e_latency: list[list[float]] = Field(default_factory=list)
    e_max: dict[str, float] = Field(default_factory=dict)
    """Test -> the largest e-value it has reached (a test that crossed 1/alpha has failed)."""
    samples: dict[str, dict[str, list[float]]] = Field(default_factory=dict)
    """mann-whitney: metric -> side -> one value per interval."""
    intervals: int = 0
    gate_requests: dict[str, float] = Field(default_factory=dict)
    """Side -> requests counted since the current gate began."""


Verdict = Literal["pass", "fail", "inconclusive", "watching"]


class Evidence(Strict):
    """What one test of a judge saw and decided: the numbers behind a verdict."""

    template: str = ""
    metric: str
    verdict: Verdict
    rule: str
    """The rule that decided (or will), in words with its numbers."""
    canary: float | None = None
    baseline: float | None = None
    unit: str = ""
    canary_requests: int = 0
    baseline_requests: int = 0
    statistic: Literal["e-value", "p-value", "score"] = "e-value"
    value: float | None = None
    bound: float | None = None
    """Where the statistic decides (1/alpha for an e-value)."""
    effect: float | None = None
    effect_low: float | None = None
    effect_high: float | None = None
    effect_name: str = ""


class JudgeRequest(Strict):
    """Input of ``analysis.judge``: read evidence for ``chunk``, or until the verdict is known."""

    environment: EnvironmentSpec
    name: str
    spec: JudgeSpec
    canary: Side
    baseline: Side | None = None
    """None when nothing of the old version takes traffic beside the canary (after a blue-green
    switch): only the SLO guards judge then."""
    args: dict[str, str]
    state: JudgeState = Field(default_factory=JudgeState)
    chunk: Duration = timedelta(seconds=10)
    gate_since: datetime | None = None
    """A gate is open since then: at ``gate_since + spec.window`` the judge says pass or inconclusive."""


JudgePhase = Literal["running", "passed", "failed", "inconclusive"]


class JudgeResult(Strict):
    """What one chunk of a comparing judge found."""

    name: str
    phase: JudgePhase
    """running: no verdict yet (no gate, or its window still open); failed at any time; passed or
    inconclusive at the end of a gate's window."""
    message: str = ""
    evidence: list[Evidence] = Field(default_factory=list)
    state: JudgeState


# QueryCheckRequest refers to AnalysisRef, defined after it.
QueryCheckRequest.model_rebuild()
