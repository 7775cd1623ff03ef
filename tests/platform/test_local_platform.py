"""`up` / `status` / `down` of the whole platform, in-process and through the CLI."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import httpx

from infrastructure.local import platform, processes
from infrastructure.local.layout import REPO_ROOT, Layout
from infrastructure.local.traffic import check_loopback


def _pids(st: dict) -> dict[str, int | None]:
    """Every process ``up`` was asked for (no job generator: no workers here)."""
    pids = {name: c["pid"] for name, c in st["components"].items() if name != "jobs"}
    pids.update({f"{i['pool']}-{i['slot']}": i["pid"] for i in st["instances"]})
    return pids


def test_up_is_idempotent_and_down_leaves_nothing(layout: Layout) -> None:
    t0 = time.monotonic()
    st = platform.up(layout, stable_version="v1", instances=2, traffic_rps=20, worker_cmd="sleep 600")
    print(f"up took {time.monotonic() - t0:.2f}s: {st['timings']}")
    pids = _pids(st)
    assert all(pids.values()), pids
    assert [(i["pool"], i["slot"], i["version"], i["healthy"]) for i in st["instances"]] == [
        ("blue", 0, "v1", True),
        ("blue", 1, "v1", True),
    ]
    assert {s["server"]: s["weight"] for s in st["router"]["servers"]} == {"blue0": 1, "blue1": 1}
    r = httpx.get(layout.router_url, timeout=5)
    assert r.status_code == 200
    assert r.headers["x-version"] == "v1"
    assert processes.cmdline(pids["worker"]) == "sleep 600"
    worker_env = Path(f"/proc/{pids['worker']}/environ").read_bytes()
    assert b"TEMPORAL_ADDRESS=127.0.0.1:%d" % layout.temporal_port in worker_env
    assert b"DEPLOY_PORT_BASE=%d" % layout.port_base in worker_env

    t0 = time.monotonic()
    again = platform.up(layout, stable_version="v1", instances=2, traffic_rps=20, worker_cmd="sleep 600")
    assert time.monotonic() - t0 < 3
    assert _pids(again) == pids

    # the load generator goes through the router and reports
    deadline = time.monotonic() + 10
    while True:
        load = platform.status(layout)["load"]
        if load and load["ok"] >= 10:
            break
        assert time.monotonic() < deadline, load
        time.sleep(0.3)
    assert load["failed"] == 0
    assert set(load["by_version"]) == {"v1"}

    out = subprocess.run(
        [
            sys.executable,
            "-m",
            "infrastructure.local",
            "--state-dir",
            str(layout.state_dir),
            "--port-base",
            str(layout.port_base),
            "--regions",
            "A",
            "status",
            "--json",
        ],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        check=True,
    )
    assert _pids(json.loads(out.stdout)) == pids

    platform.down(layout)
    deadline = time.monotonic() + 5
    while any(processes.is_alive(p) for p in pids.values()):
        assert time.monotonic() < deadline, {n: p for n, p in pids.items() if processes.is_alive(p)}
        time.sleep(0.05)
    st = platform.status(layout)
    assert not any(c["running"] for c in st["components"].values())
    assert st["instances"] == []
    platform.down(layout)  # idempotent


def test_cli_behave_and_purge(layout: Layout) -> None:
    base = [
        sys.executable,
        "-m",
        "infrastructure.local",
        "--state-dir",
        str(layout.state_dir),
        "--port-base",
        str(layout.port_base),
        "--regions",
        "A",
    ]
    up = subprocess.run(
        [*base, "up", "--no-temporal", "--instances", "1", "--traffic-rps", "0", "--stable-version", "v3"],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        check=True,
    )
    assert "haproxy" in up.stdout
    assert "v3" in up.stdout
    subprocess.run(
        [*base, "behave", "v3", "--error-rate", "1.0"], cwd=REPO_ROOT, check=True, capture_output=True
    )
    deadline = time.monotonic() + 3
    while httpx.get(layout.router_url, timeout=5).status_code != 500:
        assert time.monotonic() < deadline
        time.sleep(0.05)
    subprocess.run([*base, "down", "--purge"], cwd=REPO_ROOT, check=True, capture_output=True)
    assert not layout.state_dir.exists()


def test_load_generator_refuses_remote_urls() -> None:
    for url in ("http://example.com/", "http://10.0.0.1/", "ftp://127.0.0.1/"):
        try:
            check_loopback(url)
        except ValueError:
            continue
        raise AssertionError(url)
    check_loopback("http://127.0.0.1:1/")
    check_loopback("http://localhost:1/")
    r = subprocess.run(
        [
            sys.executable,
            "-m",
            "infrastructure.local.traffic",
            "--url",
            "http://example.com",
            "--rps",
            "1",
            "--duration",
            "1",
        ],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        check=False,
    )
    assert r.returncode == 2
