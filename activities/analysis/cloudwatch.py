"""Metrics provider: CloudWatch ``GetMetricData``.

A query is the JSON of ``MetricDataQueries`` (a list), or of one query (an object), as the
API takes them; ``{{...}}`` template arguments are rendered before it gets here. The value
is the newest datapoint of the query that returns data (the only one with ``ReturnData``
true, or the last one), looked up over ``aws.metrics_window`` with ``aws.metrics_period``
as the default period. No datapoint is no data (None): the judge calls it inconclusive,
never a success.

ALB metrics by pool: in the ``AWS/ApplicationELB`` namespace a ``TargetGroup`` dimension
whose value is a pool name (``"{{canary_pool}}"``) becomes that pool's target group
(``targetgroup/NAME/ID`` of ``aws.target_groups``), and the ``LoadBalancer`` dimension
CloudWatch publishes it with is added from ``aws.listener_arn``. So a template can read
``HTTPCode_Target_5XX_Count`` / ``RequestCount`` of whichever target group the canary is in,
which it could not name itself.
"""

from __future__ import annotations

import json
import math
import time
from datetime import UTC, datetime
from typing import Any

from clients import aws
from engine.contracts import EnvironmentSpec
from engine.errors import BadRequest

ALB_NAMESPACE = "AWS/ApplicationELB"


def alb_dimension(arn: str, kind: str) -> str:
    """CloudWatch's dimension value of an ELBv2 ARN: ``targetgroup/N/ID``, ``app/N/ID``."""
    _, _, resource = arn.partition(f":{kind}/")
    parts = resource.split("/")
    if kind == "targetgroup" and len(parts) == 2 and all(parts):
        return f"targetgroup/{resource}"
    if kind == "listener" and len(parts) == 4 and parts[0] in ("app", "net") and all(parts):
        return "/".join(parts[:3])
    msg = f"not an ELBv2 {kind} ARN: {arn!r}"
    raise BadRequest(msg)


class CloudWatchMetrics:
    def __init__(self, env: EnvironmentSpec) -> None:
        self._settings = aws.settings_for(env)
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
                q["MetricStat"] = self._by_pool({"Period": self._settings.metrics_period, **q["MetricStat"]})
            out.append(q)
        returned = [q for q in out if q.get("ReturnData", True)]
        if len(returned) != 1:
            for q in out[:-1]:
                q["ReturnData"] = False
            out[-1].pop("ReturnData", None)
        return out

    def _by_pool(self, stat: dict[str, Any]) -> dict[str, Any]:
        """Pool names in an ALB metric's TargetGroup dimension become the pool's target group."""
        metric = stat.get("Metric")
        if not isinstance(metric, dict) or metric.get("Namespace") != ALB_NAMESPACE:
            return stat
        dims = [dict(d) for d in metric.get("Dimensions", []) if isinstance(d, dict)]
        named = [
            d
            for d in dims
            if d.get("Name") == "TargetGroup" and not str(d.get("Value", "")).startswith("targetgroup/")
        ]
        if not named:
            return stat
        for d in named:
            arn = self._settings.target_groups.get(d["Value"])
            if arn is None:
                msg = f"query names pool {d['Value']!r}, which has no aws.target_groups entry"
                raise BadRequest(msg)
            d["Value"] = alb_dimension(arn, "targetgroup")
        if not any(d.get("Name") == "LoadBalancer" for d in dims):
            if not self._settings.listener_arn:
                msg = "an ALB metric by pool needs aws.listener_arn (its LoadBalancer dimension)"
                raise BadRequest(msg)
            dims.append(
                {"Name": "LoadBalancer", "Value": alb_dimension(self._settings.listener_arn, "listener")}
            )
        return {**stat, "Metric": {**metric, "Dimensions": dims}}

    def counters(self, query: str, *, since: datetime) -> list[tuple[dict[str, str], float]]:
        """CloudWatch keeps per-period sums, not counters: the query's sum since ``since`` (periods
        aligned, the last one still filling), as one series that only grows while the canary runs."""
        queries = self.parse(query)
        period = self._settings.metrics_period
        start = datetime.fromtimestamp(int(since.timestamp()) // period * period, UTC)
        end = datetime.fromtimestamp((int(time.time()) // period + 1) * period, UTC)
        with aws.refusals(
            "ValidationError", "InvalidParameterValue", "InvalidParameterCombination", what="query"
        ):
            response = self._cw.get_metric_data(MetricDataQueries=queries, StartTime=start, EndTime=end)
        result = next((r for r in response["MetricDataResults"] if r.get("Values")), None)
        total = sum(float(v) for v in result["Values"]) if result else 0.0
        return [({"cloudwatch": "sum since start"}, total)]

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
