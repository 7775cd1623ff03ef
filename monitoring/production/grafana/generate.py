"""Generate the Grafana dashboards (dashboards/*.json) from the panel lists below.

Every query may only name metrics listed in ../ENGINE_METRICS.md or recorded in
../prometheus/recording-rules.yml (checked by tests/artifacts/test_monitoring.py).
Run: python monitoring/production/grafana/generate.py
"""

# ruff: noqa: E501 -- data tables: one query or series per line reads better than wrapped strings

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

OUT = Path(__file__).resolve().parent / "dashboards"
DS = {"type": "prometheus", "uid": "${datasource}"}

# (title, panel type, unit, [(legend, expr), ...])
Panel = tuple[str, str, str, list[tuple[str, str]]]

DASHBOARDS: dict[str, tuple[str, list[Panel]]] = {
    "system-overview": (
        "Claude Deployment / System overview",
        [
            (
                "Availability (30 d SLO 99.9 %)",
                "stat",
                "percentunit",
                [("", "1 - sli:http_errors:ratio_rate1d")],
            ),
            ("Requests per second", "timeseries", "reqps", [("total", "sli:http_requests:rate5m")]),
            ("5xx ratio", "timeseries", "percentunit", [("5m", "sli:http_errors:ratio_rate5m")]),
            (
                "Latency P95 / P99",
                "timeseries",
                "s",
                [
                    ("p95", "sli:http_request_duration_seconds:p95_5m"),
                    ("p99", "sli:http_request_duration_seconds:p99_5m"),
                ],
            ),
            ("Firing alerts", "stat", "short", [("", 'count(ALERTS{alertstate="firing"}) or vector(0)')]),
            ("Targets up", "stat", "short", [("{{job}}", "sum by (job) (up)")]),
        ],
    ),
    "api-performance": (
        "Claude Deployment / API performance",
        [
            (
                "Requests by pool and version",
                "timeseries",
                "reqps",
                [("{{pool}} {{version}}", "pool:http_requests:rate5m")],
            ),
            (
                "Requests by status code",
                "timeseries",
                "reqps",
                [("{{code}}", "sum by (code) (rate(http_requests_total[$__rate_interval]))")],
            ),
            (
                "5xx ratio by pool",
                "timeseries",
                "percentunit",
                [("{{pool}} {{version}}", "pool:http_errors:ratio_rate5m")],
            ),
            (
                "P95 latency by version",
                "timeseries",
                "s",
                [("{{version}}", "version:http_request_duration_seconds:p95_5m")],
            ),
            (
                "Error budget burn rate (1 h)",
                "timeseries",
                "short",
                [("burn rate", "sli:http_errors:ratio_rate1h / 0.001")],
            ),
            (
                "Latency heatmap",
                "heatmap",
                "s",
                [
                    (
                        "{{le}}",
                        "sum by (le) (increase(http_request_duration_seconds_bucket[$__rate_interval]))",
                    )
                ],
            ),
        ],
    ),
    "database": (
        "Claude Deployment / Database",
        [
            ("PostgreSQL up", "stat", "short", [("{{instance}}", "pg_up")]),
            (
                "Replication lag (RPO 15 min)",
                "timeseries",
                "s",
                [("{{instance}}", "pg_replication_lag_seconds")],
            ),
            (
                "Connections used",
                "timeseries",
                "percentunit",
                [("{{instance}}", "instance:pg_connections_used:ratio")],
            ),
            (
                "Connections by state",
                "timeseries",
                "short",
                [("{{state}}", "sum by (state) (pg_stat_activity_count)")],
            ),
            (
                "Transactions per second",
                "timeseries",
                "ops",
                [
                    ("commit", "sum(rate(pg_stat_database_xact_commit[$__rate_interval]))"),
                    ("rollback", "sum(rate(pg_stat_database_xact_rollback[$__rate_interval]))"),
                ],
            ),
            (
                "Cache hit ratio",
                "timeseries",
                "percentunit",
                [
                    (
                        "hit",
                        "sum(rate(pg_stat_database_blks_hit[$__rate_interval])) / (sum(rate(pg_stat_database_blks_hit"
                        "[$__rate_interval])) + sum(rate(pg_stat_database_blks_read[$__rate_interval])))",
                    )
                ],
            ),
            ("Deadlocks", "timeseries", "short", [("", "sum(increase(pg_stat_database_deadlocks[1h]))")]),
            ("Database size", "timeseries", "bytes", [("{{datname}}", "pg_database_size_bytes")]),
        ],
    ),
    "infrastructure": (
        "Claude Deployment / Infrastructure",
        [
            (
                "Node CPU",
                "timeseries",
                "percentunit",
                [("{{instance}}", "instance:node_cpu_utilisation:ratio")],
            ),
            (
                "Node memory",
                "timeseries",
                "percentunit",
                [("{{instance}}", "instance:node_memory_utilisation:ratio")],
            ),
            (
                "Disk available",
                "timeseries",
                "percentunit",
                [("{{instance}}", "instance:node_filesystem_avail:ratio")],
            ),
            ("Load (1 m)", "timeseries", "short", [("{{instance}}", "node_load1")]),
            (
                "Network",
                "timeseries",
                "Bps",
                [
                    (
                        "rx {{instance}}",
                        "sum by (instance) (rate(node_network_receive_bytes_total[$__rate_interval]))",
                    ),
                    (
                        "tx {{instance}}",
                        "sum by (instance) (rate(node_network_transmit_bytes_total[$__rate_interval]))",
                    ),
                ],
            ),
            ("Nodes up", "stat", "short", [("", 'sum(up{job="node-exporter"})')]),
        ],
    ),
    "deployments": (
        "Claude Deployment / Deployments (engine)",
        [
            (
                "Traffic weight by pool",
                "timeseries",
                "percent",
                [("{{pool}}", 'deploy_traffic_weight_percent{environment="$environment"}')],
            ),
            (
                "Releases in 24 h by outcome",
                "bargauge",
                "short",
                [
                    (
                        "{{outcome}}",
                        'environment_outcome:deploy_release:increase1d{environment="$environment"}',
                    )
                ],
            ),
            (
                "Releases by strategy",
                "timeseries",
                "short",
                [
                    (
                        "{{strategy}} {{outcome}}",
                        'sum by (strategy, outcome) (increase(deploy_release_total{environment="$environment"}[1h]))',
                    )
                ],
            ),
            (
                "Waiting for approval",
                "stat",
                "s",
                [("", 'max(deploy_awaiting_approval_seconds{environment="$environment"})')],
            ),
            (
                "Rollbacks (7 d)",
                "stat",
                "short",
                [("", 'sum(increase(deploy_rollbacks_total{environment="$environment"}[7d]))')],
            ),
            (
                "Days since last successful DR drill",
                "stat",
                "d",
                [("", "(time() - max(deploy_dr_drill_last_success_timestamp_seconds)) / 86400")],
            ),
            (
                "DR drills (30 d)",
                "bargauge",
                "short",
                [("{{outcome}}", "sum by (outcome) (increase(deploy_dr_drill_total[30d]))")],
            ),
            (
                "Workflows completed / failed",
                "timeseries",
                "short",
                [
                    (
                        "completed {{workflow_type}}",
                        "sum by (workflow_type) (increase(temporal_workflow_completed[1h]))",
                    ),
                    (
                        "failed {{workflow_type}}",
                        "sum by (workflow_type) (increase(temporal_workflow_failed[1h]))",
                    ),
                ],
            ),
            (
                "Activity failures",
                "timeseries",
                "short",
                [
                    (
                        "{{activity_type}}",
                        "sum by (activity_type) (increase(temporal_activity_execution_failed[1h]))",
                    )
                ],
            ),
            (
                "Activity schedule-to-start P95",
                "timeseries",
                "s",
                [("{{task_queue}}", "task_queue:temporal_activity_schedule_to_start_seconds:p95_5m")],
            ),
        ],
    ),
}


def panel(pid: int, spec: Panel) -> dict[str, Any]:
    title, kind, unit, queries = spec
    return {
        "id": pid,
        "type": kind,
        "title": title,
        "datasource": DS,
        "gridPos": {"h": 8, "w": 12, "x": 12 * ((pid - 1) % 2), "y": 8 * ((pid - 1) // 2)},
        "fieldConfig": {"defaults": {"unit": unit}, "overrides": []},
        "targets": [
            {"refId": chr(ord("A") + i), "datasource": DS, "expr": expr, "legendFormat": legend}
            for i, (legend, expr) in enumerate(queries)
        ],
    }


def dashboard(uid: str, title: str, panels: list[Panel]) -> dict[str, Any]:
    variables: list[dict[str, Any]] = [
        {"name": "datasource", "type": "datasource", "query": "prometheus", "label": "Data source"},
    ]
    if uid == "deployments":
        variables.append(
            {
                "name": "environment",
                "type": "query",
                "datasource": DS,
                "query": "label_values(deploy_release_total, environment)",
                "current": {"text": "production", "value": "production"},
            }
        )
    return {
        "uid": f"claude-deployment-{uid}",
        "title": title,
        "tags": ["claude-deployment", "production"],
        "timezone": "utc",
        "schemaVersion": 39,
        "version": 1,
        "refresh": "30s",
        "time": {"from": "now-6h", "to": "now"},
        "templating": {"list": variables},
        "panels": [panel(i + 1, p) for i, p in enumerate(panels)],
    }


def main() -> None:
    OUT.mkdir(exist_ok=True)
    for uid, (title, panels) in DASHBOARDS.items():
        (OUT / f"{uid}.json").write_text(json.dumps(dashboard(uid, title, panels), indent=2) + "\n")


if __name__ == "__main__":
    main()
