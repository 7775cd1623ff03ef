"""One Prometheus scraping every instance of every region (API and workers) and every router, at 1 s.

Every slot's port is fixed, so every slot is a static target labelled with its ``region``,
``component``, ``pool`` and ``slot`` (an empty slot is just ``up == 0``): a new canary is
scraped from its first second, where file_sd would pass changes on only every 5 s.
"""

from __future__ import annotations

import json
import shutil
import time
from collections.abc import Mapping
from typing import Any

import httpx
import structlog

from infrastructure.local import processes
from infrastructure.local.layout import APP_LABEL, COMPONENTS, Layout, pools_of

log = structlog.get_logger(__name__)

PROMETHEUS_BIN = "/usr/bin/prometheus"


class PrometheusError(RuntimeError):
    """Prometheus could not be started or queried."""


def render_config(layout: Layout, regions: Mapping[str, Layout] | None = None) -> str:
    """prometheus.yml for the platform whose home region is ``layout`` (``regions``: every region's
    layout, home first; one region named ``A`` when not given). JSON is valid YAML."""
    regions = regions or {"A": layout}
    cfg: dict[str, Any] = {
        "global": {"scrape_interval": "1s", "evaluation_interval": "1s", "scrape_timeout": "900ms"},
        "scrape_configs": [
            {
                "job_name": "app",
                # Instances label their own series with version/pool: keep them as they are.
                "honor_labels": True,
                "static_configs": [
                    {
                        "targets": [f"127.0.0.1:{region.instance_port(pool, slot, component)}"],
                        "labels": {
                            "region": name,
                            "component": component,
                            "pool": pool,
                            "slot": str(slot),
                            "app": APP_LABEL,
                        },
                    }
                    for name, region in regions.items()
                    for component in COMPONENTS
                    for pool in pools_of(component)
                    for slot in range(region.slots(component))
                ],
            },
            {
                "job_name": "haproxy",
                "static_configs": [
                    {"targets": [f"127.0.0.1:{region.haproxy_metrics_port}"], "labels": {"region": name}}
                    for name, region in regions.items()
                ],
            },
        ],
    }
    return json.dumps(cfg, indent=2) + "\n"


def write_config(layout: Layout, regions: Mapping[str, Layout] | None = None) -> bool:
    """Write prometheus.yml; True if the config changed."""
    layout.ensure_dirs()
    text = render_config(layout, regions)
    if layout.prometheus_yml.exists() and layout.prometheus_yml.read_text() == text:
        return False
    tmp = layout.prometheus_yml.with_suffix(".yml.tmp")
    tmp.write_text(text)
    tmp.replace(layout.prometheus_yml)
    return True


class Prometheus:
    """The Prometheus server of one layout, and a tiny client for its HTTP API."""

    def __init__(self, layout: Layout) -> None:
        """Bind to ``layout``; nothing is started."""
        self.layout = layout
        self.url = layout.prometheus_url
        self.pidfile = layout.pidfile("prometheus")

    @property
    def _marker(self) -> list[str]:
        return ["prometheus", str(self.layout.prometheus_yml)]

    def pid(self) -> int | None:
        """Pid of this layout's Prometheus, or None."""
        return processes.running_pid(self.pidfile, self._marker)

    def running(self) -> bool:
        """True if it runs."""
        return self.pid() is not None

    def start(self, timeout: float = 15.0) -> int:
        """Start Prometheus (no-op if running) and wait until ready; returns its pid."""
        pid = self.pid()
        if pid is not None:
            return pid
        binary = shutil.which("prometheus") or PROMETHEUS_BIN
        if not self.layout.prometheus_yml.exists():  # the platform writes it with every region's targets
            write_config(self.layout)
        pid = processes.spawn(
            [
                binary,
                f"--config.file={self.layout.prometheus_yml}",
                f"--storage.tsdb.path={self.layout.prometheus_data}",
                "--storage.tsdb.retention.time=6h",
                f"--web.listen-address=127.0.0.1:{self.layout.prometheus_port}",
                "--web.enable-lifecycle",
                "--log.level=warn",
            ],
            log_file=self.layout.log_file("prometheus"),
            pidfile=self.pidfile,
        )
        self.wait_ready(timeout)
        log.info("prometheus_started", pid=pid, port=self.layout.prometheus_port)
        return pid

    def stop(self, timeout: float = 10.0) -> None:
        """Stop Prometheus (idempotent)."""
        processes.stop_pidfile(self.pidfile, self._marker, timeout=timeout)

    def reload(self) -> None:
        """Ask Prometheus to re-read its config (``POST /-/reload``)."""
        httpx.post(f"{self.url}/-/reload", timeout=5).raise_for_status()

    def wait_ready(self, timeout: float = 15.0) -> None:
        """Wait until ``/-/ready`` answers 200."""
        deadline = time.monotonic() + timeout
        while True:
            try:
                if httpx.get(f"{self.url}/-/ready", timeout=1).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            pid = processes.read_pidfile(self.pidfile)
            if pid is not None and not processes.is_alive(pid, self._marker):
                raise PrometheusError(
                    "prometheus exited:\n" + processes.tail(self.layout.log_file("prometheus"))
                )
            if time.monotonic() > deadline:
                raise PrometheusError(f"prometheus not ready after {timeout}s")
            time.sleep(0.05)

    def query(self, promql: str, timeout: float = 5.0) -> list[dict[str, Any]]:
        """Instant query; returns ``data.result`` (a list of ``{metric, value}``)."""
        r = httpx.get(f"{self.url}/api/v1/query", params={"query": promql}, timeout=timeout)
        body = r.json()
        if body.get("status") != "success":
            raise PrometheusError(f"query {promql!r} failed: {body.get('error', r.text)}")
        return list(body["data"]["result"])

    def scalar(self, promql: str) -> float | None:
        """First sample's value of an instant query, or None if the result is empty."""
        res = self.query(promql)
        return float(res[0]["value"][1]) if res else None

    def wait_targets_up(self, n: int, timeout: float = 20.0, job: str = "app") -> float:
        """Wait until ``n`` targets of ``job`` are up; returns the seconds waited.

        Every slot is a static target, so targets of empty slots exist with ``up == 0``.
        """
        t0 = time.monotonic()
        q = f'(sum(up{{job="{job}"}}) or vector(0)) == {n}'
        last: Any = None
        while True:
            try:
                last = self.query(q)
                if last:
                    return time.monotonic() - t0
            except (httpx.HTTPError, PrometheusError) as exc:
                last = exc
            if time.monotonic() - t0 > timeout:
                raise PrometheusError(f"{n} {job} targets not up after {timeout}s (last: {last})")
            time.sleep(0.1)
