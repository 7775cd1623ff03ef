"""Resilience rows of the benchmark: P8 (starter latency), P6 (worker crash), P3 (bad 5 % canary).

Called from ``bench/run.py`` (``--resilience-only`` runs just these). Every case
runs on the bench's own platform and Temporal dev server.

P8  ``starters/deploy.py`` start -> the workflow running (target <= 1 s).
    The real starter, as a subprocess (``python starters/deploy.py VERSION canary
    --config FILE`` with ``TEMPORAL_ADDRESS``, ``DEPLOY_STATE_DIR``,
    ``DEPLOY_PORT_BASE``, ``DEPLOY_TASK_QUEUE`` aimed at the bench). The config has
    no ``release:`` section, so the starter starts ``CanaryRelease`` directly (not
    the ``Release`` pipeline). Its steps end in a 10 min pause so the run keeps
    going; afterwards it is aborted (update ``abort``) and the rollback awaited.
    Measured from just before ``Popen`` (wall clock) to the history time of
    ``WorkflowExecutionStarted`` (accepted by the server) and of the first
    ``WorkflowTaskCompleted`` (the workflow code really ran on the worker).
    Median of 3 runs (1 with ``--quick``); the target applies to the second.

P6  worker killed mid-step -> the step resuming (target <= 3 s).
    Workers run as replicas in production, so the target row has two
    ``python worker.py --task-queue Q --metrics-bind ''`` processes (each in its own
    session) standing on the bench's queue. A canary (weight 20, then an analysis
    step: one metric, count 8, interval 1 s) is started; once ``analysis.run`` is
    running and has heartbeated at least twice, the process group of the worker
    running it (the pending activity's ``last_worker_identity``, ``pid@host``) is
    SIGKILLed (T0); nothing is started after the kill. A second row, for honesty,
    has a single worker and starts a new process right after the kill (a cold
    restart: imports and connect come on top). Resumption is seen by polling ``describe()``
    (pending activities, every ~20 ms): T_start = the server's
    ``last_started_time`` of the pending ``analysis.run`` attempt >= 2 (the retry
    picked up by the new worker), T_hb = the first ``last_heartbeat_time`` of that
    attempt (the resumed activity measuring again, from its heartbeat details).
    P6 = T_start - T0; the row also shows T_hb - T0. The floor is set by the
    engine's analysis heartbeat timeout (2 s; the SDK sends heartbeats at most every
    0.8 x timeout) plus the 200 ms first retry interval. Each run is then aborted
    and its rollback awaited. 3 runs with a replica and 2 cold restarts (1 and 1 with
    ``--quick``); the target applies to the max of the replica runs.

P3  failed requests during a bad 5 % canary / physical minimum (target <= 1.5).
    A canary at 5 % with background error-ratio analysis (interval 1 s, ``[3s]`` rate
    window, failure limit 0). A constant load of ``P3_RPS`` requests/s goes through the
    router (:func:`infrastructure.local.traffic.run_load`), started 1.5 s before T0.
    At T0 every canary instance is told to fail ``P3_ERROR_RATE`` of its requests.
    T1 = the first router observation with the canary at 0 %; the load stops 0.5 s
    after T1 (in-flight requests). Failed = every failed request of that load run
    (none can fail before T0: the check is that the last load tick before T0 shows 0
    failures). Physical minimum = rps x share x error_rate x W, with share = the
    canary's share of the router actually in force (5 % asked) and W = the detection
    window = scrape interval (1 s) + analysis interval (1 s) = 2 s: the errors are not in
    Prometheus before the next scrape after T0 (up to 1 s) and not read by the engine
    before its next measurement after that (up to 1 s more). Ratio = failed / minimum.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import random
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import httpx
from temporalio.api.enums.v1 import EventType, PendingActivityState
from temporalio.client import Client, WorkflowHandle
from temporalio.service import RPCError

from bench.common import event_time, make_spec, status
from engine import temporal
from engine.contracts import Control, ReleaseResult, ReleaseStatus
from harness.support import REPO, WorkerProcess
from infrastructure.local.layout import Layout
from infrastructure.local.traffic import LoadSummary, run_load

P8_TARGET_S = 1.0
P6_TARGET_S = 3.0
P3_TARGET = 1.5
P3_RPS = 400.0
P3_WEIGHT = 5
P3_ERROR_RATE = 0.5
SCRAPE_INTERVAL_S = 1.0  # infrastructure/local/prometheus.py
ANALYSIS_INTERVAL_S = 1.0  # the error-rate-background template of bench/common.py
DETECTION_WINDOW_S = SCRAPE_INTERVAL_S + ANALYSIS_INTERVAL_S

P6_TEMPLATE = """  long-gate:
    metrics:
      - name: canary-5xx-rate
        query: >-
          (sum(rate(http_requests_total{version="{{canary_version}}",code=~"5.."}[5s])) or vector(0))
        success_condition: result < 1
        interval: 1s
        initial_delay: 0s
        count: 8
"""

P8_STEPS = """strategies:
  canary:
    canary_instances: 1
    steps:
      - set_weight: 10
      - pause: {duration: 10m}
"""

P6_STEPS = """strategies:
  canary:
    canary_instances: 1
    steps:
      - set_weight: 20
      - analysis: {templates: [long-gate]}
      - pause: {duration: 10m}
"""

P3_STEPS = f"""strategies:
  canary:
    canary_instances: 1
    steps:
      - set_weight: {P3_WEIGHT}
      - pause: {{duration: 10m}}
    background_analysis: {{templates: [error-rate-background], chunk: 5s}}
"""


# --------------------------------------------------------------------------- #
# Helpers
# --------------------------------------------------------------------------- #


def _ts(t: Any) -> float:
    return t.ToMicroseconds() / 1e6


def _child_env(layout: Layout, task_queue: str) -> dict[str, str]:
    return {
        **os.environ,
        **layout.env(),
        "TEMPORAL_ADDRESS": f"127.0.0.1:{layout.temporal_port}",
        "DEPLOY_TASK_QUEUE": task_queue,
    }


async def _abort(handle: WorkflowHandle, reason: str, within: float = 60) -> ReleaseResult:
    with contextlib.suppress(Exception):  # it may already be over
        await asyncio.wait_for(handle.execute_update("abort", Control(identity="bench", reason=reason)), 30)
    return await asyncio.wait_for(handle.result(), within)


async def _wait_status(
    handle: WorkflowHandle, predicate: Any, what: str, within: float = 40
) -> ReleaseStatus:
    deadline = time.monotonic() + within
    st: ReleaseStatus | None = None
    while True:
        st = await status(handle)
        if st is not None and predicate(st):
            return st
        if st is not None and st.phase.value in ("RolledBack", "Failed", "Paused", "Succeeded"):
            msg = f"{handle.id}: {st.phase.value} while waiting for {what}: {st.decisions[-1:]}"
            raise RuntimeError(msg)
        if time.monotonic() > deadline:
            msg = f"{handle.id}: {what} never came (status: {st})"
            raise TimeoutError(msg)
        await asyncio.sleep(0.05)


# --------------------------------------------------------------------------- #
# P8
# --------------------------------------------------------------------------- #


@dataclass
class StarterSample:
    version: str
    to_started_s: float  # Popen -> WorkflowExecutionStarted (history time)
    to_running_s: float  # Popen -> first WorkflowTaskCompleted (history time)
    process_exit_s: float  # Popen -> the starter process exited
    exit_code: int
    workflow_type: str
    outcome: str
    child_to_started_s: float  # Popen -> the CanaryRelease child's WorkflowExecutionStarted
    child_to_running_s: float  # Popen -> the child's first WorkflowTaskCompleted


async def _first_task(handle: WorkflowHandle, what: str) -> tuple[Any, Any]:
    """WorkflowExecutionStarted and the first WorkflowTaskCompleted of a run (polls the history)."""
    deadline = time.monotonic() + 20
    while True:
        with contextlib.suppress(RPCError):
            events = (await handle.fetch_history()).events
            started = next(
                e for e in events if e.event_type == EventType.EVENT_TYPE_WORKFLOW_EXECUTION_STARTED
            )
            done = next(
                (e for e in events if e.event_type == EventType.EVENT_TYPE_WORKFLOW_TASK_COMPLETED), None
            )
            if done is not None:
                return started, done
        if time.monotonic() > deadline:
            msg = f"{what}: no workflow task completed"
            raise TimeoutError(msg)
        await asyncio.sleep(0.05)


async def run_p8_once(
    client: Client, task_queue: str, layout: Layout, *, config_head: str, version: str, workdir: Path
) -> StarterSample:
    config = workdir / f"p8-{version}.yaml"
    config.write_text(config_head + P8_STEPS)
    env = _child_env(layout, task_queue)
    t_spawn = time.time()
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "starters/deploy.py",
        version,
        "canary",
        "--config",
        str(config),
        "--as",
        "bench",
        cwd=REPO,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    out, _ = await asyncio.wait_for(proc.communicate(), 30)
    t_exit = time.time()
    if proc.returncode != 0:
        msg = f"P8 starter exited {proc.returncode}: {out.decode(errors='replace')[-500:]}"
        raise RuntimeError(msg)
    handle = client.get_workflow_handle(
        temporal.release_workflow_id("sample-api", "local"), result_type=ReleaseResult
    )
    started, done = await _first_task(handle, f"P8 {version}")
    attrs = started.workflow_execution_started_event_attributes
    if version.encode() not in attrs.input.payloads[0].data:
        msg = f"P8: the release workflow found is not {version}"
        raise RuntimeError(msg)
    # The starter always starts the Release pipeline; with no `release:` section every stage
    # but the strategy is skipped and CanaryRelease runs as its child: time that one too.
    st = await _wait_status(handle, lambda s: bool(s.child_workflow_id), "the strategy child", 30)
    child = client.get_workflow_handle(st.child_workflow_id or "", result_type=ReleaseResult)
    child_started, child_done = await _first_task(child, f"P8 {version} child")
    # Let it reach its pause (canary up at 10 %), then abort the strategy and wait for the rollback.
    await _wait_status(child, lambda s: "pause" in s.step.lower(), "the pause", 60)
    await _abort(child, "bench P8: starter latency measured")
    result = await asyncio.wait_for(handle.result(), 60)
    return StarterSample(
        version=version,
        to_started_s=event_time(started) - t_spawn,
        to_running_s=event_time(done) - t_spawn,
        process_exit_s=t_exit - t_spawn,
        exit_code=proc.returncode or 0,
        workflow_type=attrs.workflow_type.name,
        outcome=result.outcome,
        child_to_started_s=event_time(child_started) - t_spawn,
        child_to_running_s=event_time(child_done) - t_spawn,
    )


# --------------------------------------------------------------------------- #
# P6
# --------------------------------------------------------------------------- #


@dataclass
class CrashSample:
    version: str
    resume_start_s: float  # kill -> attempt >= 2 of analysis.run started (server time)
    resume_heartbeat_s: float  # kill -> first heartbeat of that attempt (server time)
    seen_s: float  # kill -> the bench saw the new attempt in describe()
    last_heartbeat_before_kill_s: float  # last heartbeat recorded before the kill -> kill
    attempt: int
    outcome: str
    measurements_after: int = 0
    replica: bool = True  # a standing second worker took over (else: a new process was started)
    extra: dict[str, Any] = field(default_factory=dict)


def _analysis(desc: Any) -> Any | None:
    for pa in desc.raw_description.pending_activities:
        if pa.activity_type.name == "analysis.run":
            return pa
    return None


async def _heartbeating(handle: WorkflowHandle, version: str) -> None:
    """Until analysis.run runs and has heartbeated twice (two measurements in: mid-step, not at its edge)."""
    deadline = time.monotonic() + 60
    hb_seen, beats = 0.0, 0
    while True:
        pa = _analysis(await handle.describe())
        if (
            pa is not None
            and pa.state == PendingActivityState.PENDING_ACTIVITY_STATE_STARTED
            and pa.HasField("last_heartbeat_time")
        ):
            hb = _ts(pa.last_heartbeat_time)
            if hb > hb_seen:
                hb_seen, beats = hb, beats + 1
                if beats >= 2:
                    return
        if time.monotonic() > deadline:
            msg = f"P6 {version}: analysis.run never ran with heartbeats"
            raise TimeoutError(msg)
        await asyncio.sleep(0.05)


def _running_it(pa: Any, a: WorkerProcess, b: WorkerProcess, version: str) -> tuple[Any, Any]:
    """(the worker running the pending activity, the other one), from its identity ``pid@host``."""
    running_on = pa.last_worker_identity.split("@")[0] if pa is not None else ""
    for victim, survivor in ((a, b), (b, a)):
        if victim.proc is not None and running_on == str(victim.proc.pid):
            return victim, survivor
    msg = f"P6 {version}: analysis.run runs on {running_on!r}, not on one of the bench's workers"
    raise RuntimeError(msg)


async def run_p6_once(
    client: Client,
    layout: Layout,
    *,
    config_head: str,
    tag: str,
    version: str,
    workdir: Path,
    replica: bool = True,
) -> CrashSample:
    """One crash. ``replica``: two workers stand on the queue and the one running the analysis
    is killed (nothing is started after the kill); else one worker, and a new process is
    started right after the kill (a cold restart)."""
    task_queue = f"deploy-bench-p6-{tag}-{version}"
    env = _child_env(layout, task_queue)
    log = workdir / f"worker-{version}.log"
    first, second = WorkerProcess(env, log, task_queue), WorkerProcess(env, log, task_queue)
    spec = make_spec(config_head + P6_TEMPLATE + P6_STEPS, version, layout)
    first.start()
    if replica:
        second.start()
    try:
        handle = await client.start_workflow(
            "CanaryRelease",
            spec,
            id=f"bench-p6-{tag}-{version}",
            task_queue=task_queue,
            result_type=ReleaseResult,
        )
        await _heartbeating(handle, version)
        await asyncio.sleep(random.uniform(0.0, 1.0))  # anywhere in the heartbeat cycle
        desc = await handle.describe()
        pa = _analysis(desc)
        last_hb = _ts(pa.last_heartbeat_time) if pa is not None else float("nan")
        victim, survivor = _running_it(pa, first, second, version) if replica else (first, second)
        t_kill = time.time()
        victim.kill()
        if not replica:
            survivor.start()
        t_worker = time.time()
        deadline = time.monotonic() + 30
        t_seen = resumed = None
        while resumed is None:
            desc = await handle.describe()
            pa = _analysis(desc)
            if (
                pa is not None
                and pa.attempt >= 2
                and pa.state == PendingActivityState.PENDING_ACTIVITY_STATE_STARTED
            ):
                t_seen = t_seen or time.time()
                started = _ts(pa.last_started_time)
                if pa.HasField("last_heartbeat_time") and _ts(pa.last_heartbeat_time) >= started:
                    resumed = pa
            elif pa is None:
                msg = f"P6 {version}: analysis.run finished without a retry being seen"
                raise RuntimeError(msg)
            if time.monotonic() > deadline:
                msg = f"P6 {version}: analysis.run never resumed (last: {pa})"
                raise TimeoutError(msg)
            await asyncio.sleep(0.02)
        assert t_seen is not None
        st = await _wait_status(handle, lambda s: "pause" in s.step.lower(), "the pause")
        result = await _abort(handle, "bench P6: worker crash measured")
        return CrashSample(
            version=version,
            resume_start_s=_ts(resumed.last_started_time) - t_kill,
            resume_heartbeat_s=_ts(resumed.last_heartbeat_time) - t_kill,
            seen_s=t_seen - t_kill,
            last_heartbeat_before_kill_s=t_kill - last_hb,
            attempt=resumed.attempt,
            outcome=result.outcome,
            measurements_after=len(st.last_analysis or []),
            replica=replica,
            extra={
                "new_worker_spawned_after_kill_s": None if replica else t_worker - t_kill,
                "workflow_id": handle.id,
            },
        )
    finally:
        first.kill()
        second.kill()


# --------------------------------------------------------------------------- #
# P3
# --------------------------------------------------------------------------- #


@dataclass
class BadCanarySample:
    version: str
    share: float  # canary share of the router in force (percent)
    failed: int
    sent: int
    failed_before_t0: int
    window_s: float  # T0 -> canary at 0 % at the router
    minimum: float
    ratio: float
    outcome: str
    by_code: dict[str, int] = field(default_factory=dict)


async def run_p3_once(
    client: Client, task_queue: str, layout: Layout, watch: Any, *, config_head: str, tag: str, version: str
) -> BadCanarySample:
    spec = make_spec(config_head + P3_STEPS, version, layout)
    t_start = time.time()
    handle = await client.start_workflow(
        "CanaryRelease",
        spec,
        id=f"bench-p3-{tag}-{version}",
        task_queue=task_queue,
        result_type=ReleaseResult,
    )
    st = await _wait_status(
        handle,
        lambda s: (
            abs(s.canary_weight - P3_WEIGHT) <= 1
            and bool(s.last_analysis)
            and all(m.phase == "successful" for m in s.last_analysis)
        ),
        "weight 5 with a successful background measurement",
    )
    pool = st.canary_pool or ""
    live = watch.first(t_start, pool, lambda share: share > 0)
    if live is None:
        msg = f"P3 {version}: the router never showed {pool} above 0 %"
        raise RuntimeError(msg)
    share = watch.read()[pool]

    stop = threading.Event()
    ticks: list[tuple[float, LoadSummary]] = []
    box: dict[str, LoadSummary] = {}

    def load() -> None:
        box["result"] = run_load(
            layout.router_url,
            P3_RPS,
            120,
            threads=8,
            stop_event=stop,
            on_tick=lambda s: ticks.append((time.time(), s)),
        )

    thread = threading.Thread(target=load, daemon=True, name="p3-load")
    thread.start()
    try:
        await asyncio.sleep(1.5 + random.uniform(0.0, 1.0))  # load flowing; T0 anywhere in the 1 s grid
        t0 = time.time()
        async with httpx.AsyncClient(timeout=2.0) as http:
            for slot in range(spec.canary.canary_instances):
                url = f"http://127.0.0.1:{layout.instance_port(pool, slot)}/admin/behaviour"
                (await http.post(url, json={"error_rate": P3_ERROR_RATE})).raise_for_status()
        t1 = (await watch.wait_for(t0, pool, lambda s: s == 0.0, within=30)).t
        await asyncio.sleep(0.5)
    finally:
        stop.set()
        await asyncio.to_thread(thread.join, 15)
    summary = box["result"]
    before = [s for t, s in ticks if t < t0]
    failed_before = before[-1].failed if before else 0
    result = await asyncio.wait_for(handle.result(), 60)
    minimum = P3_RPS * (share / 100) * P3_ERROR_RATE * DETECTION_WINDOW_S
    return BadCanarySample(
        version=version,
        share=share,
        failed=summary.failed,
        sent=summary.sent,
        failed_before_t0=failed_before,
        window_s=t1 - t0,
        minimum=minimum,
        ratio=summary.failed / minimum,
        outcome=result.outcome,
        by_code=summary.by_code,
    )


# --------------------------------------------------------------------------- #
# Driver and rows
# --------------------------------------------------------------------------- #


@dataclass
class Results:
    p8: list[StarterSample] = field(default_factory=list)
    p6: list[CrashSample] = field(default_factory=list)
    p3: list[BadCanarySample] = field(default_factory=list)
    starter_import_s: float = float("nan")  # `python -c "import starters.deploy"`, wall clock


async def run(
    client: Client,
    task_queue: str,
    layout: Layout,
    watch: Any,
    *,
    config_head: str,
    tag: str,
    quick: bool,
    which: frozenset[str] = frozenset({"P3", "P6", "P8"}),
) -> Results:
    """P8, P6, P3 (those in ``which``) in order; each run ends with its release rolled back."""
    res = Results()
    runs = 1 if quick else 3
    workdir = Path(tempfile.mkdtemp(prefix="resilience-", dir=layout.state_dir))
    if "P8" in which:
        t = time.perf_counter()
        await asyncio.to_thread(
            subprocess.run, [sys.executable, "-c", "import starters.deploy"], cwd=REPO, check=True
        )
        res.starter_import_s = time.perf_counter() - t
    for i in range(runs if "P8" in which else 0):
        t = time.monotonic()
        s = await run_p8_once(
            client, task_queue, layout, config_head=config_head, version=f"v8.0.{i + 1}", workdir=workdir
        )
        res.p8.append(s)
        print(
            f"P8 {s.version}: started {s.to_started_s:.3f}s, running {s.to_running_s:.3f}s "
            f"({s.workflow_type}, {s.outcome}; run {time.monotonic() - t:.1f}s)",
            flush=True,
        )
    p6_runs = [(True, f"v6.0.{i + 1}") for i in range(runs)]
    p6_runs += [(False, f"v6.1.{i + 1}") for i in range(max(1, runs - 1))]
    if "P6" not in which:
        p6_runs = []
    for replica, version in p6_runs:
        t = time.monotonic()
        c = await run_p6_once(
            client,
            layout,
            config_head=config_head,
            tag=tag,
            version=version,
            workdir=workdir,
            replica=replica,
        )
        res.p6.append(c)
        print(
            f"P6 {c.version} ({'standing replica' if replica else 'cold restart'}): retry started "
            f"{c.resume_start_s:.2f}s, heartbeat {c.resume_heartbeat_s:.2f}s after the kill "
            f"(attempt {c.attempt}, {c.outcome}; run {time.monotonic() - t:.1f}s)",
            flush=True,
        )
    for i in range(runs if "P3" in which else 0):
        t = time.monotonic()
        b = await run_p3_once(
            client, task_queue, layout, watch, config_head=config_head, tag=tag, version=f"v3.3.{i + 1}"
        )
        res.p3.append(b)
        print(
            f"P3 {b.version}: {b.failed} failed / min {b.minimum:.1f} = {b.ratio:.2f} "
            f"(T0->0 % {b.window_s:.2f}s, {b.outcome}; run {time.monotonic() - t:.1f}s)",
            flush=True,
        )
    return res


def rows(res: Results) -> list[tuple[str, str, str, str]]:
    out: list[tuple[str, str, str, str]] = []
    if res.p8:
        running = [s.to_running_s for s in res.p8]
        started = [s.to_started_s for s in res.p8]
        med = statistics.median(running)
        out += [
            (
                "P8 starters/deploy.py start -> Release workflow running (1st WFT done), median",
                f"{med:.3f} s (n={len(running)}: " + ", ".join(f"{x:.3f}" for x in running) + ")",
                f"<= {P8_TARGET_S:g} s",
                "PASS" if med <= P8_TARGET_S else "FAIL",
            ),
            (
                "P8   start -> Release WorkflowExecutionStarted, median (config without release:)",
                f"{statistics.median(started):.3f} s",
                "-",
                "info",
            ),
            (
                "P8   separately, once: python -c 'import starters.deploy' (start-up + imports)",
                f"{res.starter_import_s:.3f} s",
                "-",
                "info",
            ),
            (
                "P8   start -> CanaryRelease child running (1st WFT done), median",
                f"{statistics.median(s.child_to_running_s for s in res.p8):.3f} s",
                "-",
                "info",
            ),
        ]
    replicas = [c for c in res.p6 if c.replica]
    cold = [c for c in res.p6 if not c.replica]
    if replicas:
        starts = [c.resume_start_s for c in replicas]
        worst = max(starts)
        out += [
            (
                "P6 worker SIGKILLed mid-analysis -> retry started on the standing replica, max",
                f"{worst:.2f} s (n={len(starts)}: " + ", ".join(f"{x:.2f}" for x in starts) + ")",
                f"<= {P6_TARGET_S:g} s",
                "PASS" if worst <= P6_TARGET_S else "FAIL",
            ),
            (
                "P6   kill -> first heartbeat of the resumed attempt (replica), max",
                f"{max(c.resume_heartbeat_s for c in replicas):.2f} s",
                "-",
                "info",
            ),
        ]
    if cold:
        starts = [c.resume_start_s for c in cold]
        out.append(
            (
                "P6   single worker, cold restart (new process started at the kill), max",
                f"{max(starts):.2f} s (n={len(starts)}: " + ", ".join(f"{x:.2f}" for x in starts) + ")",
                f"(<= {P6_TARGET_S:g} s)",
                "info" + (" (over)" if max(starts) > P6_TARGET_S else ""),
            )
        )
    if res.p3:
        ratios = [b.ratio for b in res.p3]
        worst = max(ratios)
        out += [
            (
                "P3 failed requests, bad 5 % canary / physical minimum, max",
                f"{worst:.2f} (n={len(ratios)}: "
                + ", ".join(f"{b.failed}/{b.minimum:.1f}" for b in res.p3)
                + ")",
                f"<= {P3_TARGET:g}",
                "PASS" if worst <= P3_TARGET else "FAIL",
            ),
            (
                "P3   minimum = rps x share x error_rate x W",
                f"{P3_RPS:g} x {res.p3[0].share:.2f}% x {P3_ERROR_RATE:g} x {DETECTION_WINDOW_S:g} s "
                f"(W = scrape {SCRAPE_INTERVAL_S:g} s + analysis interval {ANALYSIS_INTERVAL_S:g} s)",
                "-",
                "info",
            ),
            (
                "P3   T0 (errors on) -> canary 0 % at router, max",
                f"{max(b.window_s for b in res.p3):.2f} s",
                "-",
                "info",
            ),
        ]
    return out


def report(res: Results) -> dict[str, Any]:
    return {k: [asdict(x) for x in getattr(res, k)] for k in ("p8", "p6", "p3")}


def raw(res: Results) -> str:
    out = ["", "Resilience samples"]
    for s in res.p8:
        out.append(
            f"P8 {s.version}: {s.workflow_type} started {s.to_started_s:.3f}s, first WFT done "
            f"{s.to_running_s:.3f}s; child CanaryRelease started {s.child_to_started_s:.3f}s, "
            f"first WFT done {s.child_to_running_s:.3f}s; starter exited {s.process_exit_s:.3f}s "
            f"after Popen; {s.outcome}"
        )
    for c in res.p6:
        out.append(
            f"P6 {c.version} ({'replica' if c.replica else 'cold restart'}): last heartbeat "
            f"{c.last_heartbeat_before_kill_s:.2f}s before the kill; "
            f"attempt {c.attempt} started {c.resume_start_s:.2f}s, heartbeat {c.resume_heartbeat_s:.2f}s, "
            f"seen by describe() {c.seen_s:.2f}s after the kill; {c.outcome}"
        )
    for b in res.p3:
        out.append(
            f"P3 {b.version}: share {b.share:.2f}%, {b.failed} failed of {b.sent} "
            f"({b.failed_before_t0} before T0), T0->0 % {b.window_s:.2f}s, min {b.minimum:.1f}, "
            f"ratio {b.ratio:.2f}, codes {b.by_code}; {b.outcome}"
        )
    return "\n".join(out)
