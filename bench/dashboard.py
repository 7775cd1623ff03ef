"""D: how long the release dashboard (starters/dashboard.py) takes to answer with 100 releases in
the environment's history.

    .venv/bin/python bench/dashboard.py [--releases 100] [--loads 10]

Called from ``bench/run.py`` (``--only D``; its table gets the D rows); runnable alone.

How: a Temporal dev server of its own (store in memory) and the engine's worker in this process
with the **simulated** providers (no I/O: a release is a few seconds of engine time), so the
history holds real ``CanaryRelease`` runs, each with its status, decisions and router read-backs,
all under one workflow id as releases of one environment are. ``--releases`` of them run one
after the other to the end (set weight 20, 50, 80, promote), then one more is started and left
waiting for approval at 30 %: the live release the page shows. The dashboard runs as its own
process (``python starters/dashboard.py``, as ``scripts/dev.sh up`` starts it) and each page is
loaded ``--loads`` times over HTTP (the whole HTML, charts included, drawn on the server); a load
is timed from the request to the last byte. The list page shows every run (101); the release
page reads the live run's status query and its history. Target: each page under 1 s (median
and slowest load). Not timed: a browser's rendering (the pages have no script beyond a reload
timer; Chromium's own start is the bulk of a headless load).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

import worker as worker_module
from bench.scale import MemoryServer
from engine import temporal
from engine.client import start_or_attach
from engine.config import parse_config, resolve_release
from engine.contracts import ReleaseStatus
from harness.support import REPO, free_port, stop_process
from infrastructure.local.layout import Layout, port_is_free

TARGET_S = 1.0
APP, ENV = "dash-api", "sim"
CONFIG = f"""
app: {{name: {APP}}}
default_environment: {ENV}
environments:
  {ENV}:
    providers: {{platform: simulated, router: simulated, analysis: simulated, smoke: simulated}}
    instances: 2
    approvers: [alice]
strategies:
  canary:
    canary_instances: 1
    steps:
%s
"""
DONE_STEPS = "      - set_weight: 20\n      - set_weight: 50\n      - set_weight: 80"
LIVE_STEPS = "      - set_weight: 30\n      - pause: {}\n      - set_weight: 60"


@dataclass
class DashboardResults:
    releases: int = 0
    seed_s: float = 0.0
    list_s: list[float] = field(default_factory=list)
    release_s: list[float] = field(default_factory=list)
    list_bytes: int = 0
    release_bytes: int = 0
    list_rows: int = 0
    error: str = ""


async def _seed(client: Any, task_queue: str, count: int) -> str:
    """``count`` finished releases, then one waiting for approval; the live run's page path."""
    done = parse_config(CONFIG % DONE_STEPS, source="bench dashboard config")
    for i in range(count):
        spec = resolve_release(done, f"v1.0.{i + 1}", "canary", ENV, requested_by="bench")
        handle, _ = await start_or_attach(client, spec, task_queue=task_queue)
        result = await asyncio.wait_for(handle.result(), 60)
        if result.outcome != "succeeded":
            msg = f"seed release {spec.version} ended {result.outcome}: {result.reason}"
            raise RuntimeError(msg)
    live = parse_config(CONFIG % LIVE_STEPS, source="bench dashboard config")
    spec = resolve_release(live, f"v1.1.{count + 1}", "canary", ENV, requested_by="bench")
    handle, _ = await start_or_attach(client, spec, task_queue=task_queue)
    deadline = time.monotonic() + 60
    while not (await handle.query("status", result_type=ReleaseStatus)).awaiting_approval:
        if time.monotonic() > deadline:
            raise RuntimeError("the live release never reached its approval wait")
        await asyncio.sleep(0.2)
    return f"/run/{handle.id}/{handle.result_run_id}"


async def _load(http: httpx.AsyncClient, url: str) -> tuple[float, str]:
    t = time.perf_counter()
    r = await http.get(url)
    text = r.text
    took = time.perf_counter() - t
    r.raise_for_status()
    return took, text


def _spawn_dashboard(address: str, port: int, config: Path, log_file: Path) -> subprocess.Popen[bytes]:
    """``python starters/dashboard.py`` on ``port``, against the bench's Temporal."""
    env = {**os.environ, "TEMPORAL_ADDRESS": address}
    env.pop("TEMPORAL_PROFILE", None)
    argv = [sys.executable, "starters/dashboard.py", "--port", str(port), "--config", str(config)]
    with log_file.open("ab") as log:
        return subprocess.Popen(argv, cwd=REPO, env=env, stdout=log, stderr=log)


async def run(workdir: Path, *, releases: int = 100, loads: int = 10) -> DashboardResults:
    res = DashboardResults(releases=releases)
    layout = Layout.for_tests(workdir / "dash")
    layout.ensure_dirs()
    server = MemoryServer(layout, workdir / "dashboard-temporal.log")
    config = workdir / "deploy-code.yaml"
    config.write_text(CONFIG % DONE_STEPS)
    port = free_port()
    proc: subprocess.Popen[bytes] | None = None
    try:
        server.start()
        client = await temporal.connect(target_host=server.address)
        task_queue = f"bench-dashboard-{os.getpid()}"
        async with worker_module.running(client, task_queue):
            t = time.monotonic()
            page = await _seed(client, task_queue, releases)
            res.seed_s = time.monotonic() - t
            proc = _spawn_dashboard(server.address, port, config, workdir / "dashboard.log")
            deadline = time.monotonic() + 30
            while port_is_free(port):
                if proc.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"the dashboard did not start; see {workdir / 'dashboard.log'}")
                await asyncio.sleep(0.1)
            base = f"http://127.0.0.1:{port}"
            async with httpx.AsyncClient(base_url=base, timeout=30) as http:
                await _load(http, "/")  # the first load connects the dashboard's client: not counted
                await _load(http, page)
                for _ in range(loads):
                    took, text = await _load(http, "/")
                    res.list_s.append(took)
                    res.list_bytes, res.list_rows = len(text), text.count('data-testid="run"')
                    took, text = await _load(http, page)
                    res.release_s.append(took)
                    res.release_bytes = len(text)
    except Exception as exc:  # the row says what failed
        res.error = f"{type(exc).__name__}: {exc}"
    finally:
        if proc is not None:
            stop_process(proc)
        server.stop()
    return res


def _ms(samples: list[float]) -> str:
    return f"median {statistics.median(samples) * 1000:.0f} ms, max {max(samples) * 1000:.0f} ms"


def _verdict(samples: list[float]) -> str:
    return "PASS" if samples and max(samples) < TARGET_S else "FAIL"


def rows(res: DashboardResults) -> list[tuple[str, str, str, str]]:
    if res.error or not res.list_s:
        return [("D dashboard page loads", res.error or "no sample", "-", "FAIL")]
    what = f"{res.releases + 1} releases in the history"
    return [
        (
            f"D1 dashboard list page, {what}",
            _ms(res.list_s),
            f"< {TARGET_S:g} s",
            _verdict(res.list_s),
        ),
        (
            "D2 dashboard release page (live canary: status query + history)",
            _ms(res.release_s),
            f"< {TARGET_S:g} s",
            _verdict(res.release_s),
        ),
    ]


def raw(res: DashboardResults) -> str:
    if res.error:
        return f"D: {res.error}"
    ms = ", ".join
    return (
        f"D (simulated providers; {res.releases} finished releases seeded in {res.seed_s:.1f}s, one live): "
        f"list page {res.list_rows} rows (its default limit: the newest 100), {res.list_bytes} bytes: "
        f"{ms(f'{s * 1000:.0f}' for s in res.list_s)} ms; release page {res.release_bytes} bytes: "
        f"{ms(f'{s * 1000:.0f}' for s in res.release_s)} ms"
    )


def report(res: DashboardResults) -> dict[str, Any]:
    return {
        "releases": res.releases,
        "seed_s": round(res.seed_s, 2),
        "list_ms": [round(s * 1000, 1) for s in res.list_s],
        "release_ms": [round(s * 1000, 1) for s in res.release_s],
        "list_rows": res.list_rows,
        "error": res.error,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--releases", type=int, default=100)
    parser.add_argument("--loads", type=int, default=10)
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="deploy-bench-dash-") as tmp:
        res = asyncio.run(run(Path(tmp), releases=args.releases, loads=args.loads))
    for row in rows(res):
        print(" | ".join(row))
    print(raw(res))
    return 0 if all(r[3] == "PASS" for r in rows(res)) else 2


if __name__ == "__main__":
    sys.exit(main())
