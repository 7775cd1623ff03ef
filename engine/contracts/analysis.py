"""Analysis contracts (Argo Rollouts' vocabulary): metrics, templates, measurements, verdicts."""

from __future__ import annotations

import re
from datetime import datetime, timedelta
from typing import Annotated, Literal

from pydantic import Field, StringConstraints, model_validator

from engine.contracts.conditions import Condition
from engine.contracts.environment import EnvironmentSpec
from engine.contracts.scalars import Duration, Strict

TEMPLATE_ARGS = ("app", "environment", "canary_version", "stable_version", "canary_pool", "stable_pool")
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


class AnalysisTemplate(Strict):
    """A named set of metrics, referenced by canary steps and background analysis."""

    metrics: Annotated[list[Metric], Field(min_length=1)]


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
    """An analysis template, resolved by name into its metrics."""

    name: str
    metrics: list[Metric]


# QueryCheckRequest refers to AnalysisRef, defined after it.
QueryCheckRequest.model_rebuild()
