"""Generate the promtool unit tests (*.test.yml) from the scenarios below.

promtool compares an alert's labels *and* annotations exactly, so the expected alerts are
built from alerting-rules.yml instead of being copied by hand. Each scenario drives one or
more alerts into firing and back out. Run: python monitoring/production/prometheus/tests/generate.py
"""

# ruff: noqa: E501 -- data tables: one query or series per line reads better than wrapped strings

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

HERE = Path(__file__).resolve().parent
RULES = HERE.parent / "alerting-rules.yml"

# (eval_time, alertname, extra labels when firing, or None when the alert must be clear)
Check = tuple[str, str, dict[str, str] | None]

SCENARIOS: dict[str, dict[str, Any]] = {
    "slo": {
        "evaluation_interval": "1m",
        "groups": [
            {
                # 1000 good requests/min throughout; 100 errors/min from 60m to 300m.
                "interval": "1m",
                "series": {
                    'http_requests_total{code="200",version="v1",pool="blue"}': "0+1000x420",
                    'http_requests_total{code="500",version="v1",pool="blue"}': "0x60 0+100x240 24000x120",
                },
                "checks": [
                    ("30m", "SLOErrorBudgetBurnFast", None),
                    ("120m", "SLOErrorBudgetBurnFast", {}),
                    ("330m", "SLOErrorBudgetBurnFast", None),
                    ("30m", "SLOErrorBudgetBurnSlow", None),
                    ("120m", "SLOErrorBudgetBurnSlow", {}),
                    ("360m", "SLOErrorBudgetBurnSlow", None),
                    ("120m", "APIHighErrorRate", {}),
                    ("330m", "APIHighErrorRate", None),
                ],
            },
            {
                # Fast until 30m, every request in the 1-2.5 s bucket from 30m to 90m, fast again.
                "interval": "1m",
                "series": {
                    'http_request_duration_seconds_bucket{version="v1",le="0.1"}': "0+100x30 3000x60 3000+100x60",
                    'http_request_duration_seconds_bucket{version="v1",le="0.5"}': "0+100x30 3000x60 3000+100x60",
                    'http_request_duration_seconds_bucket{version="v1",le="1"}': "0+100x30 3000x60 3000+100x60",
                    'http_request_duration_seconds_bucket{version="v1",le="2.5"}': "0+100x150",
                    'http_request_duration_seconds_bucket{version="v1",le="+Inf"}': "0+100x150",
                },
                "checks": [
                    ("20m", "APILatencyP95High", None),
                    ("70m", "APILatencyP95High", {}),
                    ("120m", "APILatencyP95High", None),
                    ("20m", "APILatencyP99High", None),
                    ("70m", "APILatencyP99High", {}),
                    ("120m", "APILatencyP99High", None),
                ],
            },
        ],
    },
    "database": {
        "evaluation_interval": "1m",
        "groups": [
            {
                "interval": "1m",
                "series": {
                    'pg_up{instance="db"}': "1x30 0x30 1x60",
                    'pg_replication_lag_seconds{instance="replica"}': "0x30 400x30 700x30 0x60",
                    'pg_stat_activity_count{instance="db",datname="app",state="active"}': "10x30 90x30 10x60",
                    'pg_settings_max_connections{instance="db"}': "100x150",
                },
                "checks": [
                    ("20m", "PostgresDown", None),
                    ("40m", "PostgresDown", {"instance": "db"}),
                    ("80m", "PostgresDown", None),
                    ("50m", "PostgresReplicationLagHigh", {"instance": "replica"}),
                    ("50m", "PostgresReplicationLagCritical", None),
                    ("80m", "PostgresReplicationLagCritical", {"instance": "replica"}),
                    ("120m", "PostgresReplicationLagHigh", None),
                    ("120m", "PostgresReplicationLagCritical", None),
                    ("20m", "PostgresConnectionsSaturated", None),
                    ("50m", "PostgresConnectionsSaturated", {"instance": "db"}),
                    ("80m", "PostgresConnectionsSaturated", None),
                ],
            },
        ],
    },
    "saturation": {
        "evaluation_interval": "1m",
        "groups": [
            {
                # CPU idle 1 s/s, then 0.05 s/s (95 % busy) from 30m to 90m.
                "interval": "1m",
                "series": {
                    'node_cpu_seconds_total{instance="n1",cpu="0",mode="idle"}': "0+60x30 1800+3x60 1980+60x60",
                    'node_memory_MemTotal_bytes{instance="n1"}': "100x150",
                    'node_memory_MemAvailable_bytes{instance="n1"}': "50x30 5x60 50x60",
                    'node_filesystem_size_bytes{instance="n1",fstype="ext4",mountpoint="/"}': "100x150",
                    'node_filesystem_avail_bytes{instance="n1",fstype="ext4",mountpoint="/"}': "50x30 5x60 50x60",
                },
                "checks": [
                    ("20m", "NodeCPUSaturated", None),
                    ("80m", "NodeCPUSaturated", {"instance": "n1"}),
                    ("120m", "NodeCPUSaturated", None),
                    ("20m", "NodeMemorySaturated", None),
                    ("80m", "NodeMemorySaturated", {"instance": "n1"}),
                    ("120m", "NodeMemorySaturated", None),
                    ("20m", "NodeDiskFillingUp", None),
                    ("60m", "NodeDiskFillingUp", {"instance": "n1"}),
                    ("120m", "NodeDiskFillingUp", None),
                ],
            },
        ],
    },
    "deploy-engine": {
        "evaluation_interval": "5m",
        "groups": [
            {
                # A release starts waiting at 35m (the gauge grows 300 s per 5 m) and is approved at 340m.
                "interval": "5m",
                "series": {
                    'deploy_awaiting_approval_seconds{environment="production"}': "0x6 0+300x60 0x20",
                },
                "checks": [
                    ("120m", "DeploymentAwaitingApprovalTooLong", None),
                    ("300m", "DeploymentAwaitingApprovalTooLong", {"environment": "production"}),
                    ("360m", "DeploymentAwaitingApprovalTooLong", None),
                ],
            },
            {
                # Rollbacks at 65m and 130m; the 6 h window forgets them after 490m.
                "interval": "5m",
                "series": {
                    'deploy_rollbacks_total{environment="production"}': "0x12 1x12 2x80",
                },
                "checks": [
                    ("90m", "DeploymentRepeatedRollbacks", None),
                    ("180m", "DeploymentRepeatedRollbacks", {"environment": "production"}),
                    ("500m", "DeploymentRepeatedRollbacks", None),
                ],
            },
            {
                "interval": "5m",
                "series": {
                    'deploy_release_total{outcome="succeeded",strategy="canary",environment="production"}': "0+1x40",
                    'deploy_release_total{outcome="failed",strategy="canary",environment="production"}': "0x6 1x34",
                },
                "checks": [
                    ("20m", "DeploymentFailed", None),
                    ("40m", "DeploymentFailed", {"environment": "production", "strategy": "canary"}),
                    ("120m", "DeploymentFailed", None),
                ],
            },
            {
                # Activities picked up within 100 ms, then only after > 10 s from 30m to 90m.
                "interval": "1m",
                "series": {
                    'temporal_activity_schedule_to_start_latency_seconds_bucket{task_queue="deploy",le="0.1"}': "0+10x30 300x60 300+10x60",
                    'temporal_activity_schedule_to_start_latency_seconds_bucket{task_queue="deploy",le="10"}': "0+10x30 300x60 300+10x60",
                    'temporal_activity_schedule_to_start_latency_seconds_bucket{task_queue="deploy",le="+Inf"}': "0+10x150",
                },
                "checks": [
                    ("20m", "DeployEngineActivitiesStarved", None),
                    ("60m", "DeployEngineActivitiesStarved", {"task_queue": "deploy"}),
                    ("120m", "DeployEngineActivitiesStarved", None),
                ],
            },
        ],
    },
    "dr-drills": {
        "evaluation_interval": "30m",
        "groups": [
            {
                # A drill fails at 3h; the 1 d window forgets it after 27h.
                "interval": "1h",
                "series": {
                    'deploy_dr_drill_total{outcome="failed"}': "0x2 1x40",
                    'deploy_dr_drill_total{outcome="succeeded"}': "0x42",
                    'deploy_dr_drill_last_success_timestamp_seconds{environment="production"}': "0x42",
                },
                "checks": [
                    ("2h", "DRDrillFailed", None),
                    ("4h", "DRDrillFailed", {}),
                    ("30h", "DRDrillFailed", None),
                ],
            },
            {
                # Last success at t=0 until a drill succeeds at 221h. Samples every 5m: sparser
                # series go stale between samples (5m lookback) and reset the 1 h hold.
                "interval": "5m",
                "series": {
                    'deploy_dr_drill_last_success_timestamp_seconds{environment="production"}': "0x2651 795600x60",
                },
                "checks": [
                    ("100h", "DRDrillNotRun", None),
                    ("200h", "DRDrillNotRun", {"environment": "production"}),
                    ("225h", "DRDrillNotRun", None),
                ],
            },
            {
                # A worker restart: the old pod's series (drill at t=0) ends at 2h, the new pod's
                # appears 3h later (a slow start, Temporal briefly unreachable). No alert: the 9 d
                # max_over_time bridges the gap. Still only one drill, at t=0: past 8 days it fires.
                "interval": "5m",
                "series": {
                    'deploy_dr_drill_last_success_timestamp_seconds{environment="production",instance="worker-a"}': "0x24",
                    'deploy_dr_drill_last_success_timestamp_seconds{environment="production",instance="worker-b"}': "_x60 0x2400",
                },
                "checks": [
                    ("1h", "DRDrillNotRun", None),
                    ("3h", "DRDrillNotRun", None),
                    ("4h30m", "DRDrillNotRun", None),
                    ("6h", "DRDrillNotRun", None),
                    ("190h", "DRDrillNotRun", None),
                    ("200h", "DRDrillNotRun", {"environment": "production"}),
                ],
            },
            {
                # A restart where the new worker never exports the gauge (no metrics, or a drill
                # history it cannot read): the last value is kept for 9 days, then absent fires.
                "interval": "1h",
                "series": {
                    'deploy_dr_drill_last_success_timestamp_seconds{environment="production",instance="worker-a"}': "3600x2",
                    'up{job="deploy-engine-worker"}': "1x240",
                },
                "checks": [
                    ("12h", "DRDrillNotRun", None),
                    ("150h", "DRDrillNotRun", None),
                    ("200h", "DRDrillNotRun", {"environment": "production"}),
                    ("230h", "DRDrillNotRun", {}),
                ],
            },
            {
                # The engine never reported a drill: absent_over_time fires after the 1 h hold.
                "interval": "5m",
                "series": {'up{job="deploy-engine-worker"}': "1x30"},
                "checks": [
                    ("30m", "DRDrillNotRun", None),
                    ("2h", "DRDrillNotRun", {}),
                ],
            },
        ],
    },
}


def load_rules() -> dict[str, dict[str, Any]]:
    """Alert name -> rule, from alerting-rules.yml."""
    doc = yaml.safe_load(RULES.read_text())
    return {r["alert"]: r for g in doc["groups"] for r in g["rules"] if "alert" in r}


def render(name: str, scenario: dict[str, Any], rules: dict[str, dict[str, Any]]) -> dict[str, Any]:
    tests = []
    for group in scenario["groups"]:
        alert_tests = []
        for eval_time, alertname, labels in group["checks"]:
            expected = []
            if labels is not None:
                rule = rules[alertname]
                expected.append(
                    {
                        "exp_labels": {**rule.get("labels", {}), **labels},
                        "exp_annotations": dict(rule.get("annotations", {})),
                    }
                )
            alert_tests.append({"eval_time": eval_time, "alertname": alertname, "exp_alerts": expected})
        tests.append(
            {
                "interval": group["interval"],
                "input_series": [{"series": s, "values": v} for s, v in group["series"].items()],
                "alert_rule_test": alert_tests,
            }
        )
    return {
        "rule_files": ["../recording-rules.yml", "../alerting-rules.yml"],
        "evaluation_interval": scenario["evaluation_interval"],
        "tests": tests,
    }


def main() -> None:
    rules = load_rules()
    for name, scenario in SCENARIOS.items():
        header = f"# Generated by generate.py from scenario {name!r}: edit the scenario, not this file.\n"
        body = yaml.safe_dump(render(name, scenario, rules), sort_keys=False, width=120)
        (HERE / f"{name}.test.yml").write_text(header + body)


if __name__ == "__main__":
    main()
