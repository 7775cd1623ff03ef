"""P7: how many concurrent releases one worker holds while the step overhead stays <= 200 ms.

    .venv/bin/python bench/scale.py [--levels 100,250,500,1000] [--pause 60] [--window 20]
        [--store memory|file]

Called from ``bench/run.py`` (its table gets the P7 rows); runnable alone.

Provider set: **simulated** (``activities/*/simulated.py``: platform, router, analysis
and smoke keep their state in the worker's memory and do no I/O). What is measured
is the engine itself (workflow code, the Temporal Python SDK, the activity thread
pool) and the Temporal dev server on this machine, not any infrastructure.

How
---
A Temporal dev server of its own, its store in memory by default (``--store file``:
its SQLite file, as the local platform runs it), and ONE real worker process
(``python worker.py``, capacity options from the environment: see worker.py).
Each release is a ``CanaryRelease`` of its own environment (``sim-0000`` ...,
so workflow ids and simulated state differ), built from one deploy-code.yaml
with ``resolve_release`` like every other bench case; its steps are
``set_weight`` 5, 10, ... 95 separated by timed pauses of ``--pause`` seconds
(60 s: deploy-code.yaml's production canary pauses 10 min, so this is ten times
the step rate production would give the same number of releases). The first
pause of release i is spread over (1 s, pause], so releases started together pass
their gates evenly over time, as independent releases would.

The number of running releases is ramped through ``--levels``; the releases of a
level stay running into the next. A level's new releases are started at
``START_RATE`` per second; once a sample of them (``SETTLE_SAMPLE``) all began their
first pause (the start burst is worked off; at most ``SETTLE_MAX_S``) and ``SETTLE_S``
more, a measurement window of
``--window`` seconds opens (about releases x window / pause gates fall in it). At
its end the worker's RSS and the CPU used by the worker and the server in the
window are read from /proc. After the last level the worker is killed (the releases
stand still) and the histories are read; the dev server and its store then go.

Per-step overhead = history time of the ``TimerFired`` of a pause -> the
``ActivityTaskCompleted`` of the ``router.set_traffic`` that follows it (the same
cross-check P1 uses; here the router is a dict, so it is all engine and Temporal).
Only gates whose timer fired inside a level's window count for that level. P7 =
the largest level whose p95 overhead is <= 200 ms (the median is shown too), with
the step rate (gates per second in the window) beside it: the load is releases /
pause, not releases alone.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import itertools
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any

from temporalio.api.enums.v1 import EventType
from temporalio.client import Client, WorkflowHandle
from temporalio.service import RPCError

import worker as worker_module
from bench.common import event_time, pct
from engine import temporal
from engine.config import parse_config, resolve_release
from engine.contracts import ReleaseResult, ReleaseSpec
from harness.support import WorkerProcess, stop_process
from infrastructure.local.layout import Layout, port_is_free
from infrastructure.local.temporal_server import (
    SEARCH_ATTRIBUTES,
    TemporalServer,
    TemporalServerError,
    temporal_binary,
)

P7_TARGET_N = 1000
OVERHEAD_LIMIT_MS = 200.0
DEFAULT_LEVELS = (100, 250, 500, 1000)
DEFAULT_PAUSE_S = 60.0
"""Seconds between two steps of a release (deploy-code.yaml's production canary pauses 10 min)."""
WINDOW_S = 20.0
"""Measurement window per level: about releases x WINDOW_S / pause gates are sampled."""
START_RATE = 20.0
"""Releases started per second when a level adds releases."""
SETTLE_S = 3.0
"""After a sample of a level's new releases began their first pause (at most SETTLE_MAX_S)."""
SETTLE_MAX_S = 90.0
SETTLE_SAMPLE = 20
HISTORY_RESERVE_S = 40.0
"""Time kept, per 1,000 releases, for reading the histories at the end."""
HISTORY_FETCHES = 16
"""Histories read at once after the run."""

CONFIG_HEAD = """
app: {name: scale-api}
default_environment: sim-0000
environments:
"""
ENVIRONMENT = """  %s:
    providers: {platform: simulated, router: simulated, analysis: simulated, smoke: simulated}
    instances: 2
"""


def config_text(count: int, pause_s: float) -> str:
    steps = []
    for weight in range(5, 100, 5):
        steps.append(f"      - set_weight: {weight}")
        if weight < 95:
            steps.append(f"      - pause: {{duration: {pause_s:g}s}}")
    return (
        CONFIG_HEAD
        + "".join(ENVIRONMENT % env_name(i) for i in range(count))
        + "strategies:\n  canary:\n    canary_instances: 1\n    steps:\n"
        + "\n".join(steps)
        + "\n"
    )


def env_name(i: int) -> str:
    return f"sim-{i:04d}"


def first_pause_s(i: int, pause_s: float) -> float:
    """Release i's first pause: spread evenly over (1 s, pause] (golden-ratio sequence)."""
    return 1.0 + (pause_s - 1.0) * ((i * 0.6180339887498949) % 1.0)


def specs(count: int, pause_s: float) -> list[ReleaseSpec]:
    """One release per environment; the first pause differs per release, so that releases
    started together pass their gates spread over a whole pause, not all at once."""
    config = parse_config(config_text(count, pause_s), source="bench scale config")
    out = []
    for i in range(count):
        spec = resolve_release(config, "v2.0.0", "canary", env_name(i), requested_by="bench")
        data = spec.model_dump()
        data["canary"]["steps"][1]["step"]["pause"]["duration"] = timedelta(seconds=first_pause_s(i, pause_s))
        out.append(ReleaseSpec.model_validate(data))
    return out


# --------------------------------------------------------------------------- #
# The Temporal dev server
# --------------------------------------------------------------------------- #


class MemoryServer:
    """``temporal server start-dev`` with its store in memory (no ``--db-filename``), headless."""

    def __init__(self, layout: Layout, log_file: Path) -> None:
        self.port, self.log_file = layout.temporal_port, log_file
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    def start(self, timeout: float = 30.0) -> int:
        argv = [temporal_binary(), "server", "start-dev", "--ip", "127.0.0.1", "--port", str(self.port)]
        argv += ["--headless", "--log-level", "warn"]
        for name in SEARCH_ATTRIBUTES:
            argv += ["--search-attribute", f"{name}=Keyword"]
        with self.log_file.open("ab") as log:
            self.proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=log, start_new_session=True)
        deadline = time.monotonic() + timeout
        while port_is_free(self.port):
            if self.proc.poll() is not None or time.monotonic() > deadline:
                msg = f"temporal dev server (memory) did not start; see {self.log_file}"
                raise TemporalServerError(msg)
            time.sleep(0.05)
        return self.proc.pid

    def stop(self) -> None:
        if self.proc is not None:
            stop_process(self.proc)


# --------------------------------------------------------------------------- #
# /proc readings
# --------------------------------------------------------------------------- #


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def cpu_seconds(pid: int) -> float:
    """User + system CPU of a process and its reaped children (clock ticks -> s)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    ticks = sum(int(f) for f in fields[11:15])  # utime stime cutime cstime
    return ticks / os.sysconf("SC_CLK_TCK")


# --------------------------------------------------------------------------- #
# Measurement
# --------------------------------------------------------------------------- #


@dataclass
class Gate:
    workflow_id: str
    fired: float
    overhead_ms: float  # TimerFired -> set_traffic ActivityTaskCompleted
    to_wft_started_ms: float  # TimerFired -> the workflow task reacting to it started
    to_scheduled_ms: float  # TimerFired -> set_traffic scheduled
    to_started_ms: float  # set_traffic scheduled -> started (activity dispatch)
    run_ms: float  # set_traffic started -> completed


@dataclass
class Level:
    releases: int
    started: int  # releases started for this level
    start_s: float  # time spent starting them
    settle_s: float  # then waited until a sample of them began their first pause
    window: tuple[float, float]  # wall clock
    worker_rss_mb: float
    worker_cpu: float  # share of one core over the window
    server_cpu: float
    gates: list[Gate] = field(default_factory=list)

    @property
    def overheads(self) -> list[float]:
        return [g.overhead_ms for g in self.gates]

    @property
    def median_ms(self) -> float:
        return statistics.median(self.overheads) if self.gates else float("nan")

    @property
    def p95_ms(self) -> float:
        return pct(self.overheads, 95)

    @property
    def steps_per_s(self) -> float:
        return len(self.gates) / (self.window[1] - self.window[0])

    def cpu_ms_per_step(self, share: float) -> float:
        """CPU (ms) a process spent per gate in the window (everything it did, divided by gates)."""
        span = self.window[1] - self.window[0]
        return 1000 * share * span / len(self.gates) if self.gates else float("nan")

    @property
    def ok(self) -> bool:
        return bool(self.gates) and self.p95_ms <= OVERHEAD_LIMIT_MS


@dataclass
class ScaleResults:
    pause_s: float
    store: str = "memory"  # the dev server's store: memory, or its SQLite file ("file")
    levels: list[Level] = field(default_factory=list)
    capacity: dict[str, int] = field(default_factory=dict)
    failed_starts: int = 0
    not_running: int = 0  # releases that ended before the bench stopped the worker (must be 0)
    skipped: list[int] = field(default_factory=list)  # levels not run: out of the time budget
    history_events: int = 0
    error: str = ""

    @property
    def held(self) -> int:
        """The largest level whose p95 overhead stayed within the limit (levels are increasing)."""
        best = 0
        for level in self.levels:
            if not level.ok:
                break
            best = level.releases
        return best


def gates_of(workflow_id: str, events: list[Any]) -> list[Gate]:
    """Every pause gate of one release: timer fired -> the next set_traffic completed."""
    names = {
        e.event_id: e.activity_task_scheduled_event_attributes.activity_type.name
        for e in events
        if e.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED
    }
    started = {
        e.activity_task_started_event_attributes.scheduled_event_id: e
        for e in events
        if e.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_STARTED
    }
    completed = {
        e.activity_task_completed_event_attributes.scheduled_event_id: e
        for e in events
        if e.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_COMPLETED
    }
    out = []
    for fired in (e for e in events if e.event_type == EventType.EVENT_TYPE_TIMER_FIRED):
        after = [e for e in events if e.event_id > fired.event_id]
        sched = next((e for e in after if names.get(e.event_id) == "router.set_traffic"), None)
        wft = next((e for e in after if e.event_type == EventType.EVENT_TYPE_WORKFLOW_TASK_STARTED), None)
        if sched is None or wft is None or sched.event_id not in completed:
            continue  # terminated before the step finished
        g = event_time(fired)
        out.append(
            Gate(
                workflow_id=workflow_id,
                fired=g,
                overhead_ms=1000 * (event_time(completed[sched.event_id]) - g),
                to_wft_started_ms=1000 * (event_time(wft) - g),
                to_scheduled_ms=1000 * (event_time(sched) - g),
                to_started_ms=1000 * (event_time(started[sched.event_id]) - event_time(sched)),
                run_ms=1000 * (event_time(completed[sched.event_id]) - event_time(started[sched.event_id])),
            )
        )
    return out


async def _start_paced(
    client: Client, task_queue: str, batch: list[ReleaseSpec], over_s: float, tag: str
) -> tuple[list[WorkflowHandle], int]:
    """Start ``batch`` evenly over ``over_s`` seconds; returns the handles and the failures."""
    handles: list[WorkflowHandle] = []
    failed = 0
    t0 = time.monotonic()
    pending: set[asyncio.Task[WorkflowHandle]] = set()
    for i, spec in enumerate(batch):
        delay = t0 + over_s * i / len(batch) - time.monotonic()
        if delay > 0:
            await asyncio.sleep(delay)
        pending.add(
            asyncio.ensure_future(
                client.start_workflow(
                    "CanaryRelease",
                    spec,
                    id=f"bench-scale-{tag}-{spec.environment.name}",
                    task_queue=task_queue,
                    result_type=ReleaseResult,
                )
            )
        )
    for task in asyncio.as_completed(pending):
        try:
            handles.append(await task)
        except RPCError:
            failed += 1
    return handles, failed


async def _settled(handles: list[WorkflowHandle], within: float) -> float:
    """Until a sample of the releases just started have all begun their first pause (the start
    burst is worked off), at most ``within`` seconds; returns the seconds waited."""
    t0 = time.monotonic()
    sample = handles[:: max(1, len(handles) // SETTLE_SAMPLE)][-SETTLE_SAMPLE:] if handles else []
    waiting = list(sample)
    while waiting and time.monotonic() - t0 < within:
        still = []
        for h in waiting:
            try:
                events = (await h.fetch_history()).events
            except RPCError:
                still.append(h)
                continue
            if not any(e.event_type == EventType.EVENT_TYPE_TIMER_STARTED for e in events):
                still.append(h)
        waiting = still
        if waiting:
            await asyncio.sleep(1.0)
    return time.monotonic() - t0


async def run(
    workdir: Path,
    *,
    levels: tuple[int, ...] = DEFAULT_LEVELS,
    pause_s: float = DEFAULT_PAUSE_S,
    capacity: dict[str, int] | None = None,
    window_s: float = WINDOW_S,
    store: str = "memory",
    budget_s: float = 3600.0,
    quiet: bool = False,
) -> ScaleResults:
    """The whole P7 measurement on its own Temporal dev server and worker process.

    Levels that would not finish within ``budget_s`` are skipped (and reported as skipped)."""
    t_begin = time.monotonic()
    res = ScaleResults(
        pause_s=pause_s, store=store, capacity=capacity or worker_module.capacity_from_environment()
    )
    layout = Layout.for_tests(workdir / "scale")
    layout.ensure_dirs()
    server: MemoryServer | TemporalServer = (
        MemoryServer(layout, workdir / "scale-temporal.log") if store == "memory" else TemporalServer(layout)
    )
    tag = f"{os.getpid()}-{int(time.time())}"
    task_queue = f"deploy-bench-scale-{tag}"
    env = {
        **os.environ,
        "TEMPORAL_ADDRESS": f"127.0.0.1:{layout.temporal_port}",
        **{worker_module.CAPACITY_OPTIONS[k][0]: str(v) for k, v in res.capacity.items()},
    }
    env.pop("TEMPORAL_PROFILE", None)
    log = workdir / "scale-worker.log"
    proc = WorkerProcess(env, log, task_queue)
    all_specs = specs(max(levels), pause_s)
    handles: list[WorkflowHandle] = []
    try:
        server_pid = server.start()
        client = await temporal.connect(target_host=server.address)
        proc.start()
        assert proc.proc is not None
        worker_pid = proc.proc.pid
        await asyncio.sleep(2.0)  # the worker's imports and first polls
        for n in levels:
            batch = all_specs[len(handles) : n]
            needed = len(batch) / START_RATE + SETTLE_S + window_s + 30.0 + HISTORY_RESERVE_S * n / 1000
            if time.monotonic() - t_begin + needed > budget_s:
                res.skipped.append(n)  # out of time: reported, not guessed
                continue
            t = time.monotonic()
            new, failed = await _start_paced(client, task_queue, batch, len(batch) / START_RATE, tag)
            handles += new
            res.failed_starts += failed
            start_s = time.monotonic() - t
            settle_s = await _settled(new, SETTLE_MAX_S)
            await asyncio.sleep(SETTLE_S)
            cpu_w, cpu_s, w0 = cpu_seconds(worker_pid), cpu_seconds(server_pid), time.time()
            await asyncio.sleep(window_s)
            w1 = time.time()
            level = Level(
                releases=len(handles),
                started=len(new),
                start_s=start_s,
                settle_s=settle_s,
                window=(w0, w1),
                worker_rss_mb=rss_mb(worker_pid),
                worker_cpu=(cpu_seconds(worker_pid) - cpu_w) / (w1 - w0),
                server_cpu=(cpu_seconds(server_pid) - cpu_s) / (w1 - w0),
            )
            res.levels.append(level)
            if not quiet:
                print(
                    f"P7 level {level.releases}: started {len(new)} in {start_s:.1f}s, worker RSS "
                    f"{level.worker_rss_mb:.0f} MB, worker CPU {100 * level.worker_cpu:.0f}%, "
                    f"server CPU {100 * level.server_cpu:.0f}%",
                    flush=True,
                )
            if proc.proc.poll() is not None:
                res.error = f"the worker exited ({proc.proc.returncode}); see {log}"
                break
        # Stop the worker (the releases stand still), read what happened; the server (memory) goes.
        proc.kill()
        sem = asyncio.Semaphore(HISTORY_FETCHES)
        ended = {
            EventType.EVENT_TYPE_WORKFLOW_EXECUTION_COMPLETED,
            EventType.EVENT_TYPE_WORKFLOW_EXECUTION_FAILED,
            EventType.EVENT_TYPE_WORKFLOW_EXECUTION_TIMED_OUT,
            EventType.EVENT_TYPE_WORKFLOW_EXECUTION_TERMINATED,
        }

        async def history(h: WorkflowHandle) -> list[Gate]:
            async with sem:
                events = (await h.fetch_history()).events
            res.history_events += len(events)
            if any(e.event_type in ended for e in events):
                res.not_running += 1  # a release that ended (failed) before the bench stopped
            return gates_of(h.id, events)

        gates = [g for gs in await asyncio.gather(*(history(h) for h in handles)) for g in gs]
        for level in res.levels:
            level.gates = [g for g in gates if level.window[0] <= g.fired < level.window[1]]
        return res
    finally:
        proc.kill()
        server.stop()


# --------------------------------------------------------------------------- #
# Report
# --------------------------------------------------------------------------- #


def rows(res: ScaleResults) -> list[tuple[str, str, str, str]]:
    if not res.levels:
        return [("P7 concurrent releases on one worker (simulated providers)", res.error or "-", "-", "FAIL")]
    held = res.held
    ok = held >= P7_TARGET_N and not res.failed_starts and not res.not_running and not res.error
    out = [
        (
            "P7 releases one worker holds, p95 step overhead <= 200 ms (simulated providers, no I/O)",
            f"{held} (tried {', '.join(str(lv.releases) for lv in res.levels)}"
            + (f"; not run, out of time: {', '.join(map(str, res.skipped))}" if res.skipped else "")
            + ")",
            f">= {P7_TARGET_N:,}",
            "PASS" if ok else "FAIL",
        )
    ]
    for lv in res.levels:
        out.append(
            (
                f"P7   {lv.releases} releases: step overhead median / p95",
                f"{lv.median_ms:.0f} / {lv.p95_ms:.0f} ms (n={len(lv.gates)}, {lv.steps_per_s:.0f} steps/s); "
                f"RSS {lv.worker_rss_mb:.0f} MB, CPU worker {100 * lv.worker_cpu:.0f}% "
                f"server {100 * lv.server_cpu:.0f}%",
                f"<= {OVERHEAD_LIMIT_MS:g} ms",
                "PASS" if lv.ok else "FAIL",
            )
        )
    if res.failed_starts or res.not_running or res.error:
        out.append(
            (
                "P7   problems",
                f"{res.failed_starts} failed starts, {res.not_running} releases not running at the end"
                + (f"; {res.error}" if res.error else ""),
                "0",
                "FAIL",
            )
        )
    return out


def raw(res: ScaleResults) -> str:
    cap = ", ".join(f"{k}={v}" for k, v in res.capacity.items())
    out = [
        "",
        f"P7 (simulated providers, no I/O; pauses of {res.pause_s:g}s; dev server store: {res.store}; "
        f"one worker process: {cap}; "
        f"{res.history_events} history events read)",
        f"{'releases':>8} {'n':>5} {'steps/s':>7} {'median':>7} {'p95':>7} {'max':>7} | "
        f"{'->wft':>6} {'->sched':>7} {'->start':>7} {'run':>6} (medians, ms) | {'RSS MB':>6} "
        f"{'MB/rel':>6} {'w CPU':>5} {'s CPU':>5} {'w ms/st':>7} {'s ms/st':>7} {'start s':>7} "
        f"{'settle s':>8}",
    ]
    base = None
    for lv in res.levels:
        g = lv.gates

        def med(key: str, gates: list[Gate] = g) -> float:
            return statistics.median(getattr(x, key) for x in gates) if gates else float("nan")

        if base is None:
            base = (lv.releases, lv.worker_rss_mb)
        per = (
            (lv.worker_rss_mb - base[1]) / (lv.releases - base[0]) if lv.releases > base[0] else float("nan")
        )
        out.append(
            f"{lv.releases:>8} {len(g):>5} {lv.steps_per_s:>7.1f} {lv.median_ms:>7.1f} {lv.p95_ms:>7.1f} "
            f"{max(lv.overheads, default=float('nan')):>7.1f} | {med('to_wft_started_ms'):>6.1f} "
            f"{med('to_scheduled_ms'):>7.1f} {med('to_started_ms'):>7.1f} {med('run_ms'):>6.1f}"
            f"{'':14} | {lv.worker_rss_mb:>6.0f} {per:>6.2f} {100 * lv.worker_cpu:>4.0f}% "
            f"{100 * lv.server_cpu:>4.0f}% {lv.cpu_ms_per_step(lv.worker_cpu):>7.1f} "
            f"{lv.cpu_ms_per_step(lv.server_cpu):>7.1f} {lv.start_s:>7.1f} {lv.settle_s:>8.1f}"
        )
    out.append(
        "    overhead = TimerFired -> router.set_traffic completed; ->wft: -> workflow task started; "
        "->sched: -> set_traffic scheduled; ->start: scheduled -> started; run: started -> completed;"
    )
    out.append(
        "    MB/rel: RSS growth per release since the first level; CPU: share of one core in the window "
        f"(the machine has {os.cpu_count() or 0} cores, shared); ms/st: CPU ms of the worker / server per "
        "gate in the window"
    )
    return "\n".join(out)


def report(res: ScaleResults) -> dict[str, Any]:
    return {
        "pause_s": res.pause_s,
        "capacity": res.capacity,
        "held": res.held,
        "failed_starts": res.failed_starts,
        "not_running": res.not_running,
        "skipped": res.skipped,
        "error": res.error,
        "levels": [
            {
                **{k: v for k, v in asdict(lv).items() if k != "gates"},
                "median_ms": lv.median_ms,
                "p95_ms": lv.p95_ms,
                "steps_per_s": lv.steps_per_s,
                "overheads_ms": [round(x, 1) for x in lv.overheads],
            }
            for lv in res.levels
        ],
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--levels", default=",".join(map(str, DEFAULT_LEVELS)), help="releases per level")
    parser.add_argument("--pause", type=float, default=DEFAULT_PAUSE_S, help="seconds between steps")
    parser.add_argument("--window", type=float, default=WINDOW_S, help="measurement window per level (s)")
    parser.add_argument(
        "--store",
        choices=("memory", "file"),
        default="memory",
        help="the dev server's store (default memory; file = its SQLite file, as the local platform runs it)",
    )
    parser.add_argument("--keep", action="store_true", help="keep the temp dir (worker log)")
    args = parser.parse_args(argv)
    levels = tuple(int(x) for x in args.levels.split(","))
    if any(b <= a for a, b in itertools.pairwise(levels)) or levels[0] < 1:
        parser.error("--levels must be increasing positive numbers")
    tmp = Path(tempfile.mkdtemp(prefix="deploy-bench-scale-"))
    try:
        res = asyncio.run(run(tmp, levels=levels, pause_s=args.pause, window_s=args.window, store=args.store))
    finally:
        if not args.keep:
            with contextlib.suppress(OSError):
                shutil.rmtree(tmp)
    for row in rows(res):
        print(" | ".join(row))
    print(raw(res))
    return 0 if rows(res)[0][3] == "PASS" else 2


if __name__ == "__main__":
    sys.exit(main())
