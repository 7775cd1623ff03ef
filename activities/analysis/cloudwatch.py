"""Metrics provider: CloudWatch ``GetMetricData``.

A query is the JSON of ``MetricDataQueries`` (a list), or of one query (an object), as the
API takes them; ``{{...}}`` template arguments are rendered before it gets here. The value
is the newest datapoint of the query that returns data (the only one with ``ReturnData``
true, or the last one), looked up over ``aws.metrics_window`` with ``aws.metrics_period``
as the default period. No datapoint is no data (None): the judge calls it inconclusive,
never a success.
"""

from __future__ import annotations

import json
import math
import time
from datetime import UTC, datetime
from typing import Any

from activities.cloud import aws
from activities.interfaces import BadRequest
from activities.router.alb import settings_for
from engine.contracts import EnvironmentSpec


class CloudWatchMetrics:
    def __init__(self, env: EnvironmentSpec) -> None:
        self._settings = settings_for(env)
        self._cw = aws.client(self._settings, "cloudwatch")

    def parse(self, query: str) -> list[dict[str, Any]]:
        try:
            parsed = json.loads(query)
        except json.JSONDecodeError as exc:
            msg = f"a CloudWatch query is the JSON of MetricDataQueries: {exc}"
            raise BadRequest(msg) from None
        queries = parsed if isinstance(parsed, list) else [parsed]
        if not queries or not all(
            isinstance(q, dict) and ("MetricStat" in q or "Expression" in q) for q in queries
        ):
            msg = "each CloudWatch query needs MetricStat or Expression"
            raise BadRequest(msg)
        out = []
        for i, given in enumerate(queries):
            q = {"Id": f"q{i}", **given}
            if "MetricStat" in q:
                q["MetricStat"] = {"Period": self._settings.metrics_period, **q["MetricStat"]}
            out.append(q)
        returned = [q for q in out if q.get("ReturnData", True)]
        if len(returned) != 1:
            for q in out[:-1]:
                q["ReturnData"] = False
            out[-1].pop("ReturnData", None)
        return out

    def query(self, query: str) -> float | None:
        queries = self.parse(query)
        # Aligned to the period (as CloudWatch recommends), the end rounded up past "now".
        period = self._settings.metrics_period
        end = datetime.fromtimestamp((int(time.time()) // period + 1) * period, UTC)
        start = end - self._settings.metrics_window
        with aws.refusals(
            "ValidationError", "InvalidParameterValue", "InvalidParameterCombination", what="query"
        ):
            response = self._cw.get_metric_data(MetricDataQueries=queries, StartTime=start, EndTime=end)
        result = next((r for r in response["MetricDataResults"] if r.get("Values")), None)
        if result is None:
            return None
        newest = max(zip(result["Timestamps"], result["Values"], strict=True))[1]
        value = float(newest)
        return None if math.isnan(value) or math.isinf(value) else value
