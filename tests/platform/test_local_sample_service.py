"""The sample service: exact error injection, metrics, runtime behaviour changes, graceful stop."""

from __future__ import annotations

import signal
import subprocess
import sys
import threading
import time

import httpx
import pytest

from infrastructure.local.instances import InstanceManager, VersionConflictError
from infrastructure.local.layout import REPO_ROOT, Layout
from infrastructure.local.sample_service import BACKGROUND, set_behaviour


def _metric(text: str, name: str, **labels: str) -> float:
    for line in text.splitlines():
        if not line.startswith(name + "{"):
            continue
        if all(f'{k}="{v}"' in line for k, v in labels.items()):
            return float(line.rsplit(" ", 1)[1])
    raise AssertionError(f"{name} {labels} not found")


def _wait_behaviour(http: httpx.Client, url: str, **expected: object) -> None:
    deadline = time.monotonic() + 3
    while time.monotonic() < deadline:
        got = http.get(f"{url}/admin/behaviour").json()
        if all(got[k] == v for k, v in expected.items()):
            return
        time.sleep(0.05)
    raise AssertionError(f"behaviour never became {expected}")


def test_exact_error_injection_and_metrics(
    layout: Layout, instances: InstanceManager, http: httpx.Client
) -> None:
    set_behaviour(layout, "v1", error_rate=0.2)
    [inst] = instances.start("v1", "blue", 1)
    codes = [http.get(inst.url + "/").status_code for _ in range(100)]
    assert codes.count(500) == 20
    assert codes.count(200) == 80
    assert [i for i, c in enumerate(codes) if c == 500][:3] == [4, 9, 14]  # every 5th request
    r = http.get(inst.url + "/")
    assert r.headers["x-version"] == "v1"
    http.get(inst.url + "/healthz")
    metrics = http.get(inst.url + "/metrics").text
    assert _metric(metrics, "http_requests_total", code="500", version="v1", pool="blue") == 20
    assert _metric(metrics, "http_requests_total", code="200", version="v1", pool="blue") == 81
    assert _metric(metrics, "http_request_duration_seconds_count", version="v1") == 101


def test_background_noise_random_errors_and_lognormal_latency_for_every_version(
    layout: Layout, instances: InstanceManager, http: httpx.Client
) -> None:
    """Random errors and lognormal latency shared by every version (the background), on top of a
    version's own: a healthy canary and its baseline look alike, never identical."""
    set_behaviour(layout, BACKGROUND, error_probability=0.3, latency_median_ms=8, latency_p95_ms=20)
    [inst] = instances.start("v7", "baseline", 1)
    _wait_behaviour(http, inst.url)  # up
    time.sleep(0.5)  # the background file is polled every 0.2 s
    took, codes = [], []
    for _ in range(300):
        t0 = time.perf_counter()
        codes.append(http.get(inst.url + "/").status_code)
        took.append(time.perf_counter() - t0)
    errors = codes.count(500)
    assert 60 <= errors <= 120, errors  # 30 % of 300 at random: 90, +-3.5 sigma
    assert codes[:20] != [500 if i % 3 == 2 else 200 for i in range(20)]  # not a fixed pattern
    took.sort()
    assert 0.006 <= took[150] <= 0.020, took[150]  # median 8 ms (plus the request's own cost)
    assert 0.014 <= took[285] <= 0.045, took[285]  # P95 20 ms
    assert took[-1] > 2 * took[150]  # a tail, not a fixed sleep
    metrics = http.get(inst.url + "/metrics").text
    assert _metric(metrics, "http_request_duration_seconds_count", version="v7", pool="baseline") == 300
    set_behaviour(layout, "v7", latency_p95_ms=1)  # a P95 without a median: no lognormal part
    with pytest.raises(ValueError, match=r"latency_p95_ms .* below latency_median_ms"):
        set_behaviour(layout, "v7", latency_median_ms=10, latency_p95_ms=5)


def test_behaviour_changes_at_runtime(layout: Layout, instances: InstanceManager, http: httpx.Client) -> None:
    [inst] = instances.start("v2", "green", 1)
    body = http.get(inst.url + "/").json()
    assert body == {"version": "v2", "pool": "green", "slot": 0}
    # via the behaviour file
    set_behaviour(layout, "v2", error_rate=0.5)
    _wait_behaviour(http, inst.url, error_rate=0.5)
    assert [http.get(inst.url + "/").status_code for _ in range(10)].count(500) == 5
    # via POST, for this instance only
    r = http.post(inst.url + "/admin/behaviour", json={"error_rate": 0.0, "latency_ms": 30})
    assert r.status_code == 200
    t0 = time.monotonic()
    assert [http.get(inst.url + "/").status_code for _ in range(5)] == [200] * 5
    assert time.monotonic() - t0 >= 0.15
    http.post(inst.url + "/admin/behaviour", json={"healthy": False})
    assert http.get(inst.url + "/healthz").status_code == 503
    assert [i.healthy for i in instances.list()] == [False]
    assert http.post(inst.url + "/admin/behaviour", json={"error_rate": 2}).status_code == 400


def test_start_is_idempotent_and_refuses_other_version(instances: InstanceManager) -> None:
    progress: list[str] = []
    first = instances.start("v1", "blue", 2, on_progress=progress.append)
    assert progress
    assert "instances to be healthy" in progress[0]
    again = instances.start("v1", "blue", 2)
    assert [i.pid for i in first] == [i.pid for i in again]
    with pytest.raises(VersionConflictError):
        instances.start("v2", "blue", 1)
    assert instances.stop("blue", [1]) == [1]
    assert [(i.slot, i.healthy) for i in instances.list()] == [(0, True)]
    assert instances.stop("blue") == [0]
    assert instances.stop("blue") == []
    assert instances.list() == []


def test_sigterm_finishes_inflight_request(layout: Layout, http: httpx.Client) -> None:
    port = layout.instance_port("blue", 3)
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "infrastructure.local.sample_service",
            "--version",
            "v9",
            "--pool",
            "blue",
            "--slot",
            "3",
            "--port",
            str(port),
            "--state-dir",
            str(layout.state_dir),
        ],
        cwd=REPO_ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        url = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 10
        while True:
            try:
                http.get(url + "/healthz")
                break
            except httpx.TransportError:
                assert time.monotonic() < deadline
                time.sleep(0.05)
        http.post(url + "/admin/behaviour", json={"latency_ms": 600})
        result: dict[str, int] = {}

        def slow() -> None:
            result["code"] = httpx.get(url + "/", timeout=5).status_code

        t = threading.Thread(target=slow)
        t.start()
        deadline = time.monotonic() + 10
        while http.get(url + "/admin/inflight").json()["inflight"] < 1:  # the request is being served
            assert time.monotonic() < deadline
            time.sleep(0.02)
        proc.send_signal(signal.SIGTERM)
        t.join(5)
        assert result == {"code": 200}
        assert proc.wait(5) == 0
    finally:
        proc.kill()
        proc.wait()


def test_instances_survive_the_death_of_their_starter(layout: Layout, instances: InstanceManager) -> None:
    code = (
        "import sys, time; from pathlib import Path; "
        "from infrastructure.local.layout import Layout; "
        "from infrastructure.local.instances import InstanceManager; "
        f"InstanceManager(Layout(state_dir=Path({str(layout.state_dir)!r}), port_base={layout.port_base}, "
        f"max_slots={layout.max_slots})).start('v1', 'green', 2); "
        "print('started', flush=True); time.sleep(60)"
    )
    starter = subprocess.Popen([sys.executable, "-c", code], cwd=REPO_ROOT, stdout=subprocess.PIPE, text=True)
    try:
        assert starter.stdout is not None
        assert any(line.strip() == "started" for line in starter.stdout)
    finally:
        starter.kill()  # SIGKILL, like the engine's worker in the resilience tests
        starter.wait()
    time.sleep(0.3)
    assert [(i.pool, i.slot, i.version, i.healthy) for i in instances.list()] == [
        ("green", 0, "v1", True),
        ("green", 1, "v1", True),
    ]
    again = instances.start("v1", "green", 2)  # a restarted worker reuses them
    assert len(again) == 2
