"""The two-region platform: API instances and workers per region, the database pair, the global
entry, and jobs flowing from the API through the database to the primary region's workers."""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from infrastructure.local import dr as regions
from infrastructure.local import platform, processes
from infrastructure.local.prometheus import Prometheus
from infrastructure.local.regions import PlatformLayout

pytestmark = pytest.mark.timeout(180)


@pytest.fixture
def site(tmp_path: Path) -> Iterator[PlatformLayout]:
    lay = PlatformLayout.for_tests(tmp_path)
    try:
        yield lay
    finally:
        platform.down(lay, purge=True)


def done_jobs(site: PlatformLayout) -> list[tuple[str, str, str]]:
    """(outcome, worker version, node) of every finished job, read from the primary in A."""
    with regions.node(site, "A").connect() as conn:
        rows = conn.execute("SELECT outcome, version, node FROM jobs WHERE done_at IS NOT NULL").fetchall()
    return [(r[0], r[1], r[2]) for r in rows]


def test_two_regions_run_the_api_and_workers_and_jobs_flow_to_the_primary(site: PlatformLayout) -> None:
    st = platform.up(
        site, stable_version="v1", instances=2, workers=2, standby_instances=1, standby_workers=1,
        traffic_rps=10, jobs_rps=10, temporal=False, services=False,
    )  # fmt: skip
    assert st["active_region"] == "A"
    running = Counter((i["region"], i["component"]) for i in st["instances"])
    assert running == {("A", "api"): 2, ("A", "worker"): 2, ("B", "api"): 1, ("B", "worker"): 1}
    assert all(i["healthy"] and i["version"] == "v1" for i in st["instances"])
    a, b = st["regions"]["A"]["database"], st["regions"]["B"]["database"]
    assert a["role"] == "primary" and b["role"] == "standby"
    assert [(r["name"], r["state"], r["sync"]) for r in a["replicas"]] == [("region_b", "streaming", "sync")]
    assert httpx.get(site.global_url, timeout=5).headers["x-version"] == "v1"

    # Jobs posted through the global entry are done by A's workers; B's wait on their standby.
    deadline = time.monotonic() + 20
    while len(done := done_jobs(site)) < 20:
        assert time.monotonic() < deadline, f"{len(done)} jobs done"
        time.sleep(0.3)
    assert {(outcome, version, node) for outcome, version, node in done} == {("ok", "v1", "A")}

    # Prometheus sees each region's workers and API by component: B's workers did nothing.
    prom = Prometheus(site.home_layout)
    query = 'sum by (region, outcome) (worker_jobs_total{job="app", component="worker"})'
    deadline = time.monotonic() + 15
    while True:
        seen = {
            (r["metric"]["region"], r["metric"]["outcome"]): float(r["value"][1]) for r in prom.query(query)
        }
        if seen.get(("A", "ok"), 0) >= 10:
            break
        assert time.monotonic() < deadline, seen
        time.sleep(0.3)
    assert seen.get(("B", "ok")) == 0 and seen.get(("A", "failed")) == 0

    # A worker version that fails its jobs shows in its own counters.
    platform.behave(site.home_layout, "v1", component="worker", error_probability=1.0)
    deadline = time.monotonic() + 15
    while not any(outcome == "failed" for outcome, _, _ in done_jobs(site)):
        assert time.monotonic() < deadline
        time.sleep(0.3)
    assert httpx.get(site.global_url, timeout=5).status_code == 200  # the API's behaviour is its own

    # up again changes nothing; down stops everything it started.
    pids = {i["pid"] for i in st["instances"]}
    again = platform.up(site, stable_version="v1", instances=2, workers=2, traffic_rps=10, jobs_rps=10,
                        temporal=False, services=False)  # fmt: skip
    assert {i["pid"] for i in again["instances"]} == pids
    platform.down(site)
    deadline = time.monotonic() + 10
    while any(processes.is_alive(p) for p in pids):
        assert time.monotonic() < deadline
        time.sleep(0.1)
    after = platform.status(site)
    assert after["instances"] == [] and not any(c["running"] for c in after["components"].values())
