"""The whole-app release on the two-region local platform, for tests, the replay recorder and bench.

:data:`CONFIG` is an app of two components (the api; a worker released after it, behind a gate
on its job counters) in an environment whose local platform has regions A and B;
:func:`site_up` brings up that platform with Temporal and Prometheus (jobs flowing, no load
generator: callers send their own requests); :func:`pipeline` resolves a release of it.
"""

from __future__ import annotations

from collections import Counter

from engine.config import DeployConfig, parse_config, resolve_release
from engine.contracts.pipeline import PipelineSpec
from engine.pipeline import resolve_pipeline
from infrastructure.local import platform
from infrastructure.local.regions import PlatformLayout

CONFIG = """
app:
  name: sample-api
  components:
    api: {kind: service}
    worker:
      kind: worker
      depends_on: [api]
      instances: 2
      standby_instances: 1
      gate: {templates: [worker-jobs]}
environments:
  local:
    providers: {platform: local, router: haproxy, analysis: prometheus}
    instances: 2
    approvers: [alice]
    local: {state_dir: "%(state_dir)s", port_base: %(port_base)s}
    dr:
      regions: [A, B]
      instances: 2
      standby_instances: 1
      synchronous_replication: true
      auto_approve: true
analysis_templates:
  worker-jobs:
    requests: worker_jobs_total{component="worker",region="{{region}}",pool="{{pool}}"}
    errors: worker_jobs_total{component="worker",region="{{region}}",pool="{{pool}}",outcome="failed"}
    slo: {errors: 0.01}
    min_requests: 10
    interval: 1s
    window: 15s
strategies:
  canary:
    canary_instances: 1
    baseline: stable
    steps:
      - set_weight: 50
      - pause: {duration: 2s}
"""
TARGETS = [("api", "A"), ("worker", "A"), ("api", "B"), ("worker", "B")]
"""The order the release reaches them: the primary region first, the api before its worker."""


def site_up(site: PlatformLayout, *, version: str = "v1.0.0", jobs_rps: float = 10.0) -> None:
    platform.up(
        site, stable_version=version, instances=2, workers=2, standby_instances=1, standby_workers=1,
        traffic_rps=0, jobs_rps=jobs_rps, services=False,
    )  # fmt: skip


def config(site: PlatformLayout, *, bake: str | None = None, gate: bool = True) -> DeployConfig:
    """:data:`CONFIG` aimed at ``site``; ``bake``: in two waves (A, then B) with this bake between;
    ``gate=False``: the worker's batches without their gate."""
    text = CONFIG % {"state_dir": site.state_dir, "port_base": site.port_base}
    if not gate:
        text = text.replace("      gate: {templates: [worker-jobs]}\n", "", 1)
    if bake is not None:
        waves = f"    waves: [{{regions: [A], bake: {bake}}}, {{regions: [B]}}]\n"
        text = text.replace("    approvers: [alice]\n", "    approvers: [alice]\n" + waves, 1)
    return parse_config(text)


def pipeline(
    site: PlatformLayout,
    version: str,
    *,
    requested_by: str = "pytest",
    bake: str | None = None,
    gate: bool = True,
) -> PipelineSpec:
    parsed = config(site, bake=bake, gate=gate)
    spec = resolve_release(parsed, version, "canary", "local", requested_by=requested_by)
    return resolve_pipeline(parsed, spec)


def running(site: PlatformLayout) -> Counter[tuple[str, str, str]]:
    """(region, component, version) -> instances running, read from the platform."""
    return Counter((i["region"], i["component"], i["version"]) for i in platform.status(site)["instances"])
