"""The threshold judge (engine/analysis/threshold.py) on a scripted metrics source and a fake clock.

:func:`run` judges one metric whose queries answer from a list (numbers, ``None`` for no
data, an exception for an unreachable source) without waiting: the clock only moves when
the judge sleeps. Used by the judge's own tests and by the fault tests.
"""

from __future__ import annotations

from engine.analysis import threshold as judge
from engine.contracts import AnalysisRequest, AnalysisResult, EnvironmentSpec, Metric, Providers

ENV = EnvironmentSpec(
    name="local", providers=Providers(platform="local", router="haproxy", analysis="prometheus"), instances=1
)


class Scripted:
    """Answers queries from a list: numbers, None (no data) or an exception (unreachable)."""

    def __init__(self, answers: list[float | Exception | None]) -> None:
        self.answers = list(answers)
        self.asked = 0

    def query(self, query: str) -> float | None:
        self.asked += 1
        answer = self.answers.pop(0) if self.answers else 0.0
        if isinstance(answer, Exception):
            raise answer
        return answer


class FakeClock:
    def __init__(self) -> None:
        self.now = 0.0

    def time(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.now += seconds


def run(
    answers: list[float | Exception | None], **metric: object
) -> tuple[AnalysisResult, Scripted, FakeClock]:
    fields = {
        "name": "error-ratio",
        "query": "q",
        "success_condition": "result < 0.05",
        "failure_condition": "result >= 0.05",
        "count": 5,
        **metric,
    }
    chunk = fields.pop("chunk", None)
    tallies = fields.pop("tallies", {})
    request = AnalysisRequest(
        environment=ENV, name="t", metrics=[Metric(**fields)], args={}, chunk=chunk, tallies=tallies
    )  # type: ignore[arg-type]
    source, clock = Scripted(answers), FakeClock()
    result = judge.run(request, source, clock=clock.time, sleep=clock.sleep, heartbeat=lambda *_: None)
    return result, source, clock
