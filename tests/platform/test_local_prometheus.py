"""Prometheus scrapes every slot (static targets) and sees the request counters by version."""

from __future__ import annotations

import time

import httpx

from infrastructure.local.haproxy import HAProxy
from infrastructure.local.instances import InstanceManager
from infrastructure.local.layout import Layout
from infrastructure.local.prometheus import Prometheus


def test_prometheus_sees_instances_and_counters(
    layout: Layout, instances: InstanceManager, router: HAProxy
) -> None:
    prom = Prometheus(layout)
    prom.start()
    instances.start("v1", "blue", 2)
    waited = prom.wait_targets_up(2, timeout=15)
    print(f"prometheus saw 2 targets after {waited:.2f}s")
    with httpx.Client(timeout=5) as client:
        for inst in instances.list():
            for _ in range(7):
                client.get(inst.url + "/")
    q = 'sum by (version) (http_requests_total{job="app", code="200"})'
    deadline = time.monotonic() + 10
    while True:
        res = {r["metric"]["version"]: float(r["value"][1]) for r in prom.query(q)}
        if res == {"v1": 14.0}:
            break
        assert time.monotonic() < deadline, res
        time.sleep(0.2)
    labels = prom.query('up{job="app", pool="blue", slot="0"}')[0]["metric"]
    assert labels["app"] == "sample-api"
    assert labels["instance"] == f"127.0.0.1:{layout.instance_port('blue', 0)}"
    assert prom.query('haproxy_process_nbthread{job="haproxy"}')

    # a new instance appears (new version, other pool)
    t0 = time.monotonic()
    instances.start("v2", "green", 1)
    prom.wait_targets_up(3, timeout=15)
    print(f"new instance visible in prometheus after {time.monotonic() - t0:.2f}s")
    assert prom.scalar('count(up{job="app", pool="green"} == 1)') == 1
    deadline = time.monotonic() + 5
    while not prom.query('http_requests_total{version="v2", pool="green"}'):  # the app labels its version
        assert time.monotonic() < deadline
        time.sleep(0.2)
    instances.stop("green")
    prom.wait_targets_up(2, timeout=15)
