"""Metrics provider: Prometheus' HTTP query API."""

from __future__ import annotations

import math
from datetime import datetime
from typing import Any

import httpx

from engine import tracing
from engine.contracts import EnvironmentSpec
from engine.errors import BadRequest


class PrometheusMetrics:
    """Runs an instant PromQL query and returns its single value."""

    def __init__(self, env: EnvironmentSpec) -> None:
        if not env.prometheus_url:
            msg = f"environment {env.name!r} has no prometheus_url"
            raise BadRequest(msg)
        self._client = httpx.Client(base_url=env.prometheus_url, timeout=2.0)
        self._url = env.prometheus_url

    def query(self, query: str) -> float | None:
        data = self._get(query)
        match data["resultType"]:
            case "scalar":
                value = float(data["result"][1])
            case "vector":
                series = data["result"]
                if not series:
                    return None
                if len(series) > 1:
                    msg = f"query returns {len(series)} series; aggregate it to one (e.g. with sum)"
                    raise BadRequest(msg)
                value = float(series[0]["value"][1])
            case other:
                msg = f"query returns a {other}; an instant vector or scalar is needed"
                raise BadRequest(msg)
        return None if math.isnan(value) or math.isinf(value) else value

    def counters(self, query: str, *, since: datetime) -> list[tuple[dict[str, str], float]]:
        """The raw series the query selects (counters: the judge takes their increases itself)."""
        data = self._get(query)
        if data["resultType"] == "scalar":
            return [({}, float(data["result"][1]))]
        if data["resultType"] != "vector":
            msg = f"query returns a {data['resultType']}; an instant vector of counter series is needed"
            raise BadRequest(msg)
        return [(dict(s["metric"]), float(s["value"][1])) for s in data["result"]]

    def _get(self, query: str) -> dict[str, Any]:
        with tracing.span(
            "prometheus query", **{"prometheus.query": query, "prometheus.url": self._url}
        ) as sp:
            response = self._client.get("/api/v1/query", params={"query": query})
            if sp is not None:
                sp.set_attribute("http.response.status_code", response.status_code)
        body = (
            response.json() if response.headers.get("content-type", "").startswith("application/json") else {}
        )
        if response.status_code == 400 and body.get("errorType") == "bad_data":
            msg = f"PromQL does not parse: {body.get('error')}"
            raise BadRequest(msg)
        response.raise_for_status()
        data: dict[str, Any] = body["data"]
        return data

    def check_syntax(self, query: str) -> str | None:
        """The parse error of ``query``, or None when Prometheus accepts it."""
        response = self._client.get("/api/v1/query", params={"query": query, "time": "0"})
        if response.status_code == 400:
            return str(response.json().get("error"))
        return None
