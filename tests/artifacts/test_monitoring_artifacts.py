"""Monitoring: promtool rule checks and unit tests, Alertmanager routing, Grafana dashboard queries."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import pytest
import yaml

from harness.artifact_checks import (
    MON_DIR,
    REPO,
    amtool,
    anchors,
    catalog_metrics,
    dashboard_exprs,
    dashboard_violations,
    promql_metric_names,
    promtool,
    recorded_metrics,
)

PROM = MON_DIR / "prometheus"
RULE_FILES = [PROM / "recording-rules.yml", PROM / "alerting-rules.yml"]
TEST_FILES = sorted((PROM / "tests").glob("*.test.yml"))
DASHBOARDS = sorted((MON_DIR / "grafana" / "dashboards").glob("*.json"))
ALERTMANAGER = MON_DIR / "alertmanager" / "alertmanager.yml"
CATALOG = MON_DIR / "ENGINE_METRICS.md"
ENGINE_METRICS = {
    "deploy_release_total",
    "deploy_awaiting_approval_seconds",
    "deploy_rollbacks_total",
    "deploy_dr_drill_last_success_timestamp_seconds",
    "deploy_dr_drill_total",
    "deploy_traffic_weight_percent",
    "temporal_workflow_completed",
    "temporal_workflow_failed",
    "temporal_activity_execution_failed",
    "temporal_activity_schedule_to_start_latency_seconds_bucket",
}


def _alerts() -> dict[str, dict]:
    doc = yaml.safe_load(RULE_FILES[1].read_text())
    return {r["alert"]: r for g in doc["groups"] for r in g["rules"] if "alert" in r}


def _known_metrics() -> set[str]:
    return catalog_metrics(CATALOG) | recorded_metrics(RULE_FILES)


# --- Prometheus ---------------------------------------------------------------


def test_promtool_check_rules(promtool_bin: str) -> None:
    proc = promtool("check", "rules", *map(str, RULE_FILES))
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_promtool_check_config(promtool_bin: str) -> None:
    proc = promtool("check", "config", "prometheus.yml", cwd=PROM)
    assert proc.returncode == 0, proc.stdout + proc.stderr


@pytest.mark.parametrize("test_file", TEST_FILES, ids=lambda p: p.name)
def test_promtool_unit_tests(test_file: Path, promtool_bin: str) -> None:
    proc = promtool("test", "rules", test_file.name, cwd=test_file.parent)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_every_alert_is_tested_firing_and_clear() -> None:
    fired: set[str] = set()
    cleared: set[str] = set()
    for path in TEST_FILES:
        for test in yaml.safe_load(path.read_text())["tests"]:
            for case in test.get("alert_rule_test", []):
                (fired if case.get("exp_alerts") else cleared).add(case["alertname"])
    alerts = set(_alerts())
    assert alerts - fired == set(), "alerts never tested firing"
    assert alerts - cleared == set(), "alerts never tested clear"


def test_required_alerts_exist() -> None:
    alerts = _alerts()
    exprs = " ".join(a["expr"] for a in alerts.values())
    assert any("ratio_rate1h" in a["expr"] and "14.4" in a["expr"] for a in alerts.values()), "fast burn"
    for metric in ("p95", "p99", "pg_replication_lag_seconds", "node_cpu", "node_memory"):
        assert metric in exprs or metric in " ".join(recorded_metrics(RULE_FILES)), metric
    for metric in ("deploy_awaiting_approval_seconds", "deploy_rollbacks_total", "deploy_dr_drill_total"):
        assert metric in exprs
    assert "8 * 86400" in alerts["DRDrillNotRun"]["expr"]


def test_alerts_have_severity_and_existing_runbook() -> None:
    for name, alert in _alerts().items():
        assert alert["labels"]["severity"] in {"critical", "warning", "info"}, name
        assert alert["annotations"].get("summary"), name
        path, _, anchor = alert["annotations"]["runbook_url"].partition("#")
        assert (REPO / path).is_file(), f"{name}: {path}"
        assert anchor in anchors((REPO / path).read_text()), f"{name}: #{anchor} not a heading in {path}"


def test_rules_use_only_known_metrics() -> None:
    known = _known_metrics()
    for path in RULE_FILES:
        for group in yaml.safe_load(path.read_text())["groups"]:
            for rule in group["rules"]:
                assert promql_metric_names(rule["expr"]) - known == set(), rule.get(
                    "alert", rule.get("record")
                )


def test_promtool_rejects_broken_rules(tmp_path: Path, promtool_bin: str) -> None:
    bad = tmp_path / "bad.yml"
    bad.write_text(
        "groups:\n  - name: x\n    rules:\n      - alert: Broken\n        expr: sum(rate(x[5m]) >\n"
    )
    assert promtool("check", "rules", str(bad)).returncode != 0


def test_promtool_unit_test_catches_wrong_expectation(tmp_path: Path, promtool_bin: str) -> None:
    for f in RULE_FILES:
        shutil.copy(f, tmp_path / f.name)
    (tmp_path / "wrong.test.yml").write_text(
        yaml.safe_dump(
            {
                "rule_files": [f.name for f in RULE_FILES],
                "tests": [
                    {
                        "interval": "1m",
                        "input_series": [{"series": 'pg_up{instance="db"}', "values": "1x30"}],
                        "alert_rule_test": [
                            {
                                "eval_time": "20m",
                                "alertname": "PostgresDown",
                                "exp_alerts": [{"exp_labels": {}}],
                            }
                        ],
                    }
                ],
            }
        )
    )
    assert promtool("test", "rules", "wrong.test.yml", cwd=tmp_path).returncode != 0


# --- Alertmanager -------------------------------------------------------------


def test_amtool_check_config(amtool_bin: str) -> None:
    proc = amtool("check-config", str(ALERTMANAGER))
    assert proc.returncode == 0, proc.stdout + proc.stderr


@pytest.mark.parametrize(
    ("labels", "receivers"),
    [
        (["severity=critical"], "pagerduty-critical,slack-critical"),
        (["severity=warning"], "slack-warnings"),
        (["severity=warning", "component=deploy-engine"], "slack-deployments"),
        (["severity=info"], "null"),
    ],
)
def test_alertmanager_routes_by_severity(labels: list[str], receivers: str, amtool_bin: str) -> None:
    proc = amtool("config", "routes", "test", f"--config.file={ALERTMANAGER}", *labels)
    assert proc.stdout.strip() == receivers, proc.stdout + proc.stderr


def test_amtool_rejects_broken_config(tmp_path: Path, amtool_bin: str) -> None:
    bad = tmp_path / "alertmanager.yml"
    bad.write_text("route:\n  receiver: pager\nreceivers:\n  - name: slack\n")
    assert amtool("check-config", str(bad)).returncode != 0


# --- Grafana ------------------------------------------------------------------


def test_expected_dashboards() -> None:
    names = {p.stem for p in DASHBOARDS}
    assert {"system-overview", "api-performance", "database", "infrastructure", "deployments"} <= names
    uids = [json.loads(p.read_text())["uid"] for p in DASHBOARDS]
    assert len(uids) == len(set(uids))


@pytest.mark.parametrize("path", DASHBOARDS, ids=lambda p: p.stem)
def test_dashboard_queries_name_known_metrics(path: Path) -> None:
    assert dashboard_violations(path, _known_metrics()) == []


def test_dashboard_queries_parse_as_promql(tmp_path: Path, promtool_bin: str) -> None:
    rules = []
    for path in DASHBOARDS:
        for i, (_, query) in enumerate(dashboard_exprs(json.loads(path.read_text()))):
            expr = re.sub(r"\$__\w+", "5m", query).replace("$environment", "production")
            rules.append({"record": f"dashboard:{path.stem.replace('-', '_')}:{i}", "expr": expr})
    (tmp_path / "dashboards.yml").write_text(
        yaml.safe_dump({"groups": [{"name": "dashboards", "rules": rules}]})
    )
    proc = promtool("check", "rules", str(tmp_path / "dashboards.yml"))
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_deployments_dashboard_uses_engine_metrics() -> None:
    exprs = " ".join(
        e
        for _, e in dashboard_exprs(json.loads((MON_DIR / "grafana/dashboards/deployments.json").read_text()))
    )
    assert {
        "deploy_traffic_weight_percent",
        "deploy_release_total",
        "temporal_workflow_failed",
    } <= promql_metric_names(exprs)


def test_dashboard_check_rejects_unknown_metric(tmp_path: Path) -> None:
    bad = tmp_path / "bad.json"
    bad.write_text(
        json.dumps(
            {
                "uid": "x",
                "title": "x",
                "panels": [{"title": "p", "targets": [{"expr": "rate(made_up_total[5m])"}]}],
            }
        )
    )
    assert dashboard_violations(bad, _known_metrics())


def test_engine_metrics_documented() -> None:
    assert catalog_metrics(CATALOG) >= ENGINE_METRICS
    assert {
        "http_requests_total",
        "http_request_duration_seconds_bucket",
        "pg_replication_lag_seconds",
    } <= catalog_metrics(CATALOG)


def test_metric_name_extraction() -> None:
    expr = 'sum by (pool) (rate(http_requests_total{code=~"5.."}[5m])) / on(pool) group_left up or vector(0)'
    assert promql_metric_names(expr) == {"http_requests_total", "up"}
