"""What the platform phase's metrics share: the bench's app config, its canaries, history times.

:data:`CONFIG_HEAD` is the deploy-code.yaml head every platform-phase release is built
from (``INSTANCES`` instances of ``STABLE_VERSION`` behind HAProxy, Prometheus analysis
templates); :func:`make_spec` resolves a release of it on a layout; :func:`start` and
:func:`status` start a ``CanaryRelease`` and query it; :func:`event_time` reads a history
event's server time (wall clock); :func:`pct` is the nearest-rank percentile.
"""

from __future__ import annotations

from temporalio.api.history.v1 import HistoryEvent
from temporalio.client import Client, WorkflowHandle
from temporalio.service import RPCError

from engine.config import parse_config, resolve_release
from engine.contracts import LocalSettings, ReleaseResult, ReleaseSpec, ReleaseStatus
from infrastructure.local.layout import Layout

INSTANCES = 3
STABLE_VERSION = "v1.0.0"

CONFIG_HEAD = f"""
app: {{name: sample-api, health_path: /healthz, metrics_path: /metrics, initial_version: {STABLE_VERSION}}}
default_environment: local
environments:
  local:
    providers: {{platform: local, router: haproxy, analysis: prometheus, smoke: http}}
    instances: {INSTANCES}
    approvers: [bench]
analysis_templates:
  gate:
    metrics:
      - name: canary-5xx-rate
        query: >-
          (sum(rate(http_requests_total{{version="{{{{canary_version}}}}",code=~"5.."}}[5s])) or vector(0))
        success_condition: result < 1
        interval: 1s
        initial_delay: 0s
        count: 1
  error-rate-background:
    metrics:
      - name: error-ratio
        query: >-
          (sum(rate(http_requests_total{{version="{{{{canary_version}}}}",code=~"5.."}}[3s])) or vector(0))
          / sum(rate(http_requests_total{{version="{{{{canary_version}}}}"}}[3s]))
        success_condition: result < 0.05
        failure_condition: result >= 0.05
        interval: 1s
        initial_delay: 0s
        failure_limit: 0
        inconclusive_limit: 1000
"""


def make_spec(text: str, version: str, layout: Layout) -> ReleaseSpec:
    local = LocalSettings(state_dir=str(layout.state_dir), port_base=layout.port_base)
    return resolve_release(
        parse_config(text, source="bench config"),
        version,
        "canary",
        "local",
        requested_by="bench",
        local=local,
    )


def event_time(e: HistoryEvent) -> float:
    return e.event_time.ToMicroseconds() / 1e6


def pct(values: list[float], p: float) -> float:
    """Nearest-rank percentile (p in 0..100)."""
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    rank = max(1, min(len(ordered), int(-(-p * len(ordered) // 100))))
    return ordered[rank - 1]


async def start(client: Client, spec: ReleaseSpec, task_queue: str, tag: str) -> WorkflowHandle:
    return await client.start_workflow(
        "CanaryRelease",
        spec,
        id=f"bench-{tag}-{spec.version}",
        task_queue=task_queue,
        result_type=ReleaseResult,
    )


async def status(handle: WorkflowHandle) -> ReleaseStatus | None:
    try:
        return await handle.query("status", result_type=ReleaseStatus)
    except RPCError:
        return None  # the first workflow task has not run yet
