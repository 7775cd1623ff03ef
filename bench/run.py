"""The benchmark of the deployment engine: P1-P8 on the local platform, one command, one table.

    .venv/bin/python bench/run.py [--quick] [--json FILE] [--rps 50] [--only P1,P7,...]
        [--zero-downtime-only | --resilience-only | --scale-only | --dr-only]

With no flags it measures every metric of the benchmark suite in one run (about
8-10 minutes on a 2-core machine) and prints ONE table (metric | measured |
target | verdict), then the raw samples. Exit code 2 if any target is missed.

    P1  engine overhead per step                      (this file)
    P2  bad canary to 100 % stable                     (this file)
    P3  failed requests of a bad 5 % canary / minimum  (bench/resilience.py)
    P4  failed requests, blue-green and rolling        (bench/zero_downtime.py, Z1-Z4)
    P5  DR RTO and lost writes, sync and async         (bench/dr.py)
    P6  worker killed mid-step -> step resuming        (bench/resilience.py)
    P7  concurrent releases one worker holds           (bench/scale.py, simulated providers)
    P8  starters/deploy.py start -> workflow running   (bench/resilience.py)

Each module's docstring defines its rows. Three phases, each on its own throw-away
stack and torn down before the next (also on failure and Ctrl-C):

1. the local platform (P1, P2, P3, P4, P6, P8): HAProxy, Prometheus, three
   instances of the sample service, a load generator and a Temporal dev server, in
   a temporary state directory on a free block of loopback ports; the engine's
   worker runs in this process on its own task queue (P6 uses worker processes);
2. P7: a Temporal dev server of its own and one worker process, with the
   simulated providers (no I/O);
3. P5: a fresh two-region stack per replication mode (bench/dr.py).

``--only`` picks metrics (e.g. ``--only P1,P2``); the ``--*-only`` flags are
shorthands (zero downtime = P4, resilience = P3, P6, P8, scale = P7, dr = P5).

What is measured, and how
-------------------------

A thread polls HAProxy's runtime API (``show servers state app``, one
unix-socket round trip, ~0.2 ms) about every millisecond and records, with
``time.time()``, every change of the split actually in force: per pool, the
share of the summed weights of the servers that are enabled, running and of
non-zero weight (what :meth:`activities.router.haproxy.HAProxyRouter.read`
reports). Temporal history event times come from the dev server on the same
host, so both clocks are the same wall clock.

P1, engine overhead per canary step (target: median <= 50 ms)
    A canary whose steps are ``set_weight`` steps with increasing weights
    separated by gates: timed pauses of 1 s and analysis steps (one metric,
    count 1, interval 1 s, initial delay 0), no background analysis. Per gate,
    gate-passed = history time of the ``TimerFired`` (pause) or of the
    ``ActivityTaskCompleted`` of ``analysis.run`` (analysis); weight-live = the
    first router observation at which the canary pool's share equals the next
    weight. Overhead = live - gate. Cross-check from history alone: the
    ``ActivityTaskCompleted`` of the following ``router.set_traffic`` - gate
    (this also includes the read-back of the split and reporting the result).

P2, bad canary to 100 % stable (target: <= 3 s, 1 s scrape, 1 s analysis interval)
    A canary of a fresh version at 20 % with a long pause and a background
    error-ratio analysis (``[3s]`` rate window, interval 1 s, no initial delay,
    failure limit 0, 5 s chunks). Once weight 20 is live and a chunk has reported
    a successful measurement (``status`` query), after a random 0-1 s offset (so
    that T0 falls anywhere in the 1 s measurement grid), every canary instance
    is told to fail half its requests (T0, ``POST /admin/behaviour``). T1 = the
    first router observation with the canary pool at 0 %. P2 = T1 - T0, split
    into detection (T0 -> the failing measurement), decision (-> the "rolling
    back" decision) and shift (-> T1). Repeated 3 times (1 with ``--quick``),
    each time waiting for the run to end ``rolled_back``.

Diagnostics printed with the raw samples: the same timer -> activity path in a
do-nothing workflow (``bench/baseline.py``: the floor that Temporal and the
Python SDK cost on this machine), the engine's router provider called directly
(no Temporal), pause-timer lateness, the watcher's resolution, and any transient
split the watcher saw in the middle of a change.

Every phase is bounded (hard limits below) and uses loopback only.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import random
import shutil
import signal
import socket
import statistics
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx
from temporalio.api.enums.v1 import EventType
from temporalio.api.history.v1 import HistoryEvent
from temporalio.client import Client, WorkflowHandle
from temporalio.service import RPCError
from temporalio.worker import Worker

import worker
from activities.router.haproxy import HAProxyRouter
from bench import dr, resilience, scale, zero_downtime
from bench.baseline import BenchBaseline, noop
from engine import log as engine_log
from engine import temporal
from engine.config import parse_config, resolve_release
from engine.contracts import (
    EnvironmentSpec,
    Instance,
    LocalSettings,
    ReleaseResult,
    ReleaseSpec,
    ReleaseStatus,
)
from infrastructure.local import platform
from infrastructure.local.layout import POOLS, Layout
from infrastructure.local.prometheus import Prometheus

INSTANCES = 3
STABLE_VERSION = "v1.0.0"
P1_VERSION = "v2.0.0"
P1_TARGET_MS = 50.0
P2_TARGET_S = 3.0
MEASURE_BUDGET_S = 170.0
"""Hard limit on P1, P2 and P4 after the platform is up (the platform's own start is ~10 s)."""
RESILIENCE_BUDGET_S = 260.0
"""Added to the limit when the resilience rows (P8, P6, P3: bench/resilience.py) run."""
SCALE_BUDGET_S = 420.0
"""Hard limit on P7 (bench/scale.py)."""
DR_BUDGET_S = 300.0
"""Hard limit on P5 (bench/dr.py: two fresh two-region stacks)."""

METRICS = ("P1", "P2", "P3", "P4", "P5", "P6", "P7", "P8")
PLATFORM_METRICS = frozenset({"P1", "P2", "P3", "P4", "P6", "P8"})
SHORTHANDS = {
    "zero_downtime_only": frozenset({"P4"}),
    "resilience_only": frozenset({"P3", "P6", "P8"}),
    "scale_only": frozenset({"P7"}),
    "dr_only": frozenset({"P5"}),
}

# srv_admin_state bits of `show servers state` (HAProxy src/server.h): maintenance and drain.
_ADMIN_MAINT = 0x01 | 0x02 | 0x20
_ADMIN_DRAIN = 0x08 | 0x10
_OP_RUNNING = 2


# --------------------------------------------------------------------------- #
# Watching the router
# --------------------------------------------------------------------------- #


@dataclass
class RouterChange:
    """The split in force from ``t`` (wall clock) on, as first seen by the watcher."""

    t: float
    weights: dict[str, float]


class RouterWatch(threading.Thread):
    """Polls HAProxy's runtime API in a tight loop and records each change of the split."""

    def __init__(self, layout: Layout, backend: str = "app", interval: float = 0.001) -> None:
        super().__init__(name="router-watch", daemon=True)
        self.sock = str(layout.haproxy_sock)
        self.backend = backend
        self.interval = interval
        self.changes: list[RouterChange] = []
        self.polls = 0
        self.errors = 0
        self.gaps: list[float] = []  # seconds between consecutive successful reads (resolution)
        self._stop = threading.Event()
        self._lock = threading.Lock()

    def read(self) -> dict[str, float]:
        """Pool shares in force right now (one runtime-API round trip)."""
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
            s.settimeout(1.0)
            s.connect(self.sock)
            s.sendall(f"show servers state {self.backend}\n".encode())
            chunks = []
            while chunk := s.recv(65536):
                chunks.append(chunk)
        totals = dict.fromkeys(POOLS, 0)
        for line in b"".join(chunks).decode().splitlines()[2:]:
            f = line.split()
            if len(f) < 8 or f[1] != self.backend:
                continue
            op, admin, weight = int(f[5]), int(f[6]), int(f[7])
            if op == _OP_RUNNING and not admin & (_ADMIN_MAINT | _ADMIN_DRAIN) and weight > 0:
                totals[f[3].rstrip("0123456789")] += weight
        total = sum(totals.values())
        return {p: (100.0 * w / total if total else 0.0) for p, w in totals.items()}

    def run(self) -> None:
        last: dict[str, float] | None = None
        previous_read = 0.0
        while not self._stop.is_set():
            before = time.time()
            try:
                weights = self.read()
            except (OSError, ValueError):
                self.errors += 1
                time.sleep(0.01)
                continue
            after = time.time()
            at = (before + after) / 2
            self.polls += 1
            if previous_read and len(self.gaps) < 500_000:
                self.gaps.append(at - previous_read)
            previous_read = at
            if weights != last:
                with self._lock:
                    self.changes.append(RouterChange(at, weights))
                last = weights
            time.sleep(self.interval)

    def stop(self) -> None:
        self._stop.set()

    def first(self, after: float, pool: str, predicate: Any) -> RouterChange | None:
        """The first change at or after ``after`` whose share of ``pool`` satisfies ``predicate``."""
        with self._lock:
            changes = list(self.changes)
        return next((c for c in changes if c.t >= after and predicate(c.weights.get(pool, 0.0))), None)

    async def wait_for(self, after: float, pool: str, predicate: Any, within: float) -> RouterChange:
        deadline = time.monotonic() + within
        while (found := self.first(after, pool, predicate)) is None:
            if time.monotonic() > deadline:
                msg = f"router: {pool} never reached the expected share within {within}s"
                raise TimeoutError(msg)
            await asyncio.sleep(0.005)
        return found

    def resolution_ms(self) -> float:
        return 1000 * statistics.median(self.gaps) if self.gaps else float("nan")


# --------------------------------------------------------------------------- #
# Configurations
# --------------------------------------------------------------------------- #

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


def p1_plan(pauses: int, analyses: int) -> tuple[str, list[int], list[str]]:
    """Config text, the weights in order and the gate kinds between them."""
    gates = ["pause"] * (pauses + analyses)
    every = (pauses + analyses) / max(analyses, 1)
    for i in range(analyses):
        gates[int(every * i + every / 2)] = "analysis"
    weights = [5 * (i + 1) for i in range(len(gates) + 1)]
    lines = []
    for weight, gate in zip(weights, [*gates, None], strict=True):
        lines.append(f"      - set_weight: {weight}")
        if gate == "pause":
            lines.append("      - pause: {duration: 1s}")
        elif gate == "analysis":
            lines.append("      - analysis: {templates: [gate]}")
    text = (
        CONFIG_HEAD
        + "strategies:\n  canary:\n    canary_instances: 1\n    steps:\n"
        + "\n".join(lines)
        + "\n"
    )
    return text, weights, gates


P2_CONFIG = (
    CONFIG_HEAD
    + """strategies:
  canary:
    canary_instances: 1
    steps:
      - set_weight: 20
      - pause: {duration: 10m}
    background_analysis: {templates: [error-rate-background], chunk: 5s}
"""
)


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


# --------------------------------------------------------------------------- #
# Helpers
# --------------------------------------------------------------------------- #


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


# --------------------------------------------------------------------------- #
# P1
# --------------------------------------------------------------------------- #


@dataclass
class GateSample:
    index: int
    kind: str
    weight: int
    gate_t: float
    live_ms: float  # gate -> weight live at the router (bench observation)
    history_ms: float  # gate -> router.set_traffic completed (history)
    to_wft_started_ms: float  # gate -> the workflow task that reacts to it is picked up by the worker
    wft_ms: float  # that workflow task: started -> completed (workflow code, commands sent)
    to_scheduled_ms: float  # gate -> set_traffic scheduled (written with the workflow task's completion)
    to_started_ms: float  # scheduled -> activity started (dispatch to the worker)
    started_to_live_ms: float  # activity started -> live
    live_to_completed_ms: float  # live -> activity completed (read-back, report)


async def run_p1(
    client: Client, task_queue: str, layout: Layout, watch: RouterWatch, *, tag: str, quick: bool
) -> tuple[list[GateSample], dict[str, Any]]:
    text, weights, gates = p1_plan(*((4, 2) if quick else (10, 3)))
    spec = make_spec(text, P1_VERSION, layout)
    t_start = time.time()
    handle = await start(client, spec, task_queue, tag)
    result = await asyncio.wait_for(handle.result(), timeout=90)
    if result.outcome != "succeeded":
        msg = f"P1 release ended {result.outcome}: {result.reason}"
        raise RuntimeError(msg)
    canary_pool = result.status.stable_pool or ""
    events = (await handle.fetch_history()).events

    scheduled_name = {
        e.event_id: e.activity_task_scheduled_event_attributes.activity_type.name
        for e in events
        if e.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED
    }
    started_of: dict[int, HistoryEvent] = {}
    completed_of: dict[int, HistoryEvent] = {}
    for e in events:
        if e.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_STARTED:
            started_of[e.activity_task_started_event_attributes.scheduled_event_id] = e
        elif e.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_COMPLETED:
            completed_of[e.activity_task_completed_event_attributes.scheduled_event_id] = e

    gate_events: list[tuple[str, HistoryEvent]] = []
    for e in events:
        if e.event_type == EventType.EVENT_TYPE_TIMER_FIRED:
            gate_events.append(("pause", e))
        elif (
            e.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_COMPLETED
            and scheduled_name[e.activity_task_completed_event_attributes.scheduled_event_id]
            == "analysis.run"
        ):
            gate_events.append(("analysis", e))
    if [k for k, _ in gate_events] != gates:
        msg = f"P1: history gates {[k for k, _ in gate_events]} differ from the plan {gates}"
        raise RuntimeError(msg)

    samples: list[GateSample] = []
    for index, ((kind, gate), weight) in enumerate(zip(gate_events, weights[1:], strict=True), start=1):
        sched = next(
            e
            for e in events
            if e.event_id > gate.event_id and scheduled_name.get(e.event_id) == "router.set_traffic"
        )
        asked = json.loads(sched.activity_task_scheduled_event_attributes.input.payloads[0].data)["weights"]
        if asked.get(canary_pool) != weight:
            msg = f"P1: the set_traffic after gate {index} asks {asked}, expected {canary_pool} {weight}"
            raise RuntimeError(msg)
        started, completed = started_of[sched.event_id], completed_of[sched.event_id]
        g = event_time(gate)
        wft_started = next(
            e
            for e in events
            if e.event_id > gate.event_id and e.event_type == EventType.EVENT_TYPE_WORKFLOW_TASK_STARTED
        )
        wft_completed = next(
            e
            for e in events
            if e.event_id > wft_started.event_id
            and e.event_type == EventType.EVENT_TYPE_WORKFLOW_TASK_COMPLETED
        )
        # The split the activity read back (integer weights may round 10 % to 10.12 %).
        in_force = json.loads(completed.activity_task_completed_event_attributes.result.payloads[0].data)
        target = float(in_force["weights"][canary_pool])
        live = watch.first(g - 0.5, canary_pool, lambda share, t=target: abs(share - t) < 0.01)
        if live is None:
            msg = f"P1: the router never showed {canary_pool} at {weight}%"
            raise RuntimeError(msg)
        samples.append(
            GateSample(
                index=index,
                kind=kind,
                weight=weight,
                gate_t=g,
                live_ms=1000 * (live.t - g),
                history_ms=1000 * (event_time(completed) - g),
                to_wft_started_ms=1000 * (event_time(wft_started) - g),
                wft_ms=1000 * (event_time(wft_completed) - event_time(wft_started)),
                to_scheduled_ms=1000 * (event_time(sched) - g),
                to_started_ms=1000 * (event_time(started) - event_time(sched)),
                started_to_live_ms=1000 * (live.t - event_time(started)),
                live_to_completed_ms=1000 * (event_time(completed) - live.t),
            )
        )
    timer_started = {e.event_id: e for e in events if e.event_type == EventType.EVENT_TYPE_TIMER_STARTED}
    lateness = [
        1000
        * (
            event_time(e)
            - event_time(started_timer := timer_started[e.timer_fired_event_attributes.started_event_id])
            - started_timer.timer_started_event_attributes.start_to_fire_timeout.ToMicroseconds() / 1e6
        )
        for _, e in gate_events
        if e.event_type == EventType.EVENT_TYPE_TIMER_FIRED
    ]
    info = {
        "workflow_id": handle.id,
        "timer_late_ms": [round(x, 1) for x in lateness],
        "version": P1_VERSION,
        "steps": len(spec.canary.steps),
        "release_seconds": round(time.time() - t_start, 2),
        "history_events": len(events),
        "canary_pool": canary_pool,
    }
    return samples, info


async def run_baseline(
    client: Client, executor: ThreadPoolExecutor, *, tag: str, rounds: int
) -> list[dict[str, float]]:
    """The floor: timer -> trivial activity in a do-nothing workflow, same worker settings."""
    task_queue = f"deploy-bench-baseline-{tag}"
    async with Worker(
        client,
        task_queue=task_queue,
        workflows=[BenchBaseline],
        activities=[noop],
        activity_executor=executor,
        max_concurrent_activities=64,
    ):
        handle = await client.start_workflow(
            BenchBaseline.run, rounds, id=f"bench-{tag}-baseline", task_queue=task_queue
        )
        await asyncio.wait_for(handle.result(), timeout=rounds * 2 + 20)
    events = (await handle.fetch_history()).events
    completed = {
        e.activity_task_completed_event_attributes.scheduled_event_id: e
        for e in events
        if e.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_COMPLETED
    }
    out = []
    for gate in (e for e in events if e.event_type == EventType.EVENT_TYPE_TIMER_FIRED):
        after = [e for e in events if e.event_id > gate.event_id]
        wft_started = next(e for e in after if e.event_type == EventType.EVENT_TYPE_WORKFLOW_TASK_STARTED)
        wft_done = next(e for e in after if e.event_type == EventType.EVENT_TYPE_WORKFLOW_TASK_COMPLETED)
        sched = next(e for e in after if e.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED)
        g = event_time(gate)
        out.append(
            {
                "to_wft_started_ms": 1000 * (event_time(wft_started) - g),
                "wft_ms": 1000 * (event_time(wft_done) - event_time(wft_started)),
                "to_scheduled_ms": 1000 * (event_time(sched) - g),
                "history_ms": 1000 * (event_time(completed[sched.event_id]) - g),
            }
        )
    return out


# --------------------------------------------------------------------------- #
# P2
# --------------------------------------------------------------------------- #


@dataclass
class RollbackSample:
    version: str
    t0: float
    total_s: float  # T0 -> canary at 0 % at the router
    detect_s: float  # T0 -> the failing measurement was taken
    decide_s: float  # failing measurement -> "rolling back" decision
    shift_s: float  # "rolling back" -> canary at 0 % at the router
    to_decision_s: float  # T0 -> "rolling back" (detect + decide)
    outcome: str
    reason: str
    failed_value: float | None = None
    measurements_before_t0: int = 0
    extra: dict[str, Any] = field(default_factory=dict)


def _ts(d: datetime) -> float:
    return d.timestamp()


async def run_p2_once(
    client: Client, task_queue: str, layout: Layout, watch: RouterWatch, *, tag: str, version: str
) -> RollbackSample:
    spec = make_spec(P2_CONFIG, version, layout)
    t_start = time.time()
    handle = await start(client, spec, task_queue, tag)
    deadline = time.monotonic() + 40
    st: ReleaseStatus | None = None
    # Weight 20 live and a background chunk back with a successful measurement.
    while True:
        if time.monotonic() > deadline:
            msg = f"P2 {version}: no successful background measurement at 20% (status: {st})"
            raise TimeoutError(msg)
        st = await status(handle)
        if (
            st is not None
            and abs(st.canary_weight - 20) <= 1  # integer router weights may round
            and st.last_analysis
            and all(m.phase == "successful" for m in st.last_analysis)
        ):
            break
        if st is not None and st.phase.value in ("RolledBack", "Failed", "Paused"):
            msg = f"P2 {version}: the release is {st.phase.value} before T0: {st.decisions[-1:]}"
            raise RuntimeError(msg)
        await asyncio.sleep(0.1)
    canary_pool = st.canary_pool or ""
    live20 = watch.first(t_start, canary_pool, lambda share, t=st.canary_weight: abs(share - t) < 0.01)
    if live20 is None:
        msg = f"P2 {version}: status says 20% but the router never showed {canary_pool} at 20%"
        raise RuntimeError(msg)
    await asyncio.sleep(random.uniform(0.0, 1.0))

    t0 = time.time()
    async with httpx.AsyncClient(timeout=2.0) as http:
        for slot in range(spec.canary.canary_instances):
            url = f"http://127.0.0.1:{layout.instance_port(canary_pool, slot)}/admin/behaviour"
            (await http.post(url, json={"error_rate": 0.5})).raise_for_status()
    t1 = (await watch.wait_for(t0, canary_pool, lambda share: share == 0.0, within=30)).t
    result = await asyncio.wait_for(handle.result(), timeout=40)
    rolling = next((d for d in result.status.decisions if d.what == "rolling back"), None)
    failed = [m for m in result.status.last_analysis if m.phase == "failed"]
    t_decision = _ts(rolling.at) if rolling else float("nan")
    t_failed = _ts(failed[0].at) if failed else float("nan")
    return RollbackSample(
        version=version,
        t0=t0,
        total_s=t1 - t0,
        detect_s=t_failed - t0,
        decide_s=t_decision - t_failed,
        shift_s=t1 - t_decision,
        to_decision_s=t_decision - t0,
        outcome=result.outcome,
        reason=result.reason,
        failed_value=failed[0].value if failed else None,
        extra={"workflow_id": handle.id, "canary_pool": canary_pool, "weight20_live_t": live20.t},
    )


def router_cost(env: EnvironmentSpec, rounds: int = 20) -> dict[str, Any]:
    """Time the engine's router provider alone, on the ``preview`` backend (no user traffic)."""

    class PreviewRouter(HAProxyRouter):
        backend = "preview"

    router = PreviewRouter(env)
    stable = [
        Instance(pool="blue", slot=i, version=STABLE_VERSION, address=f"127.0.0.1:{port}")
        for i, port in enumerate(env_ports(env, "blue", INSTANCES))
    ]
    canary = [Instance(pool="green", slot=0, version=P1_VERSION, address="127.0.0.1:1")]
    set_ms, read_ms = [], []
    for i in range(rounds):
        weight = 5 * (i % 19 + 1)
        t = time.perf_counter()
        router.set_traffic(
            weights={"blue": 100 - weight, "green": weight}, members={"blue": stable, "green": canary}
        )
        set_ms.append(1000 * (time.perf_counter() - t))
        t = time.perf_counter()
        router.read()
        read_ms.append(1000 * (time.perf_counter() - t))
    router.set_traffic(weights={"blue": 100, "green": 0}, members={"blue": stable, "green": []})
    return {
        "n": rounds,
        "set_traffic_ms_median": statistics.median(set_ms),
        "read_ms_median": statistics.median(read_ms),
        "set_traffic_ms": [round(x, 3) for x in set_ms],
        "read_ms": [round(x, 3) for x in read_ms],
    }


def env_ports(env: EnvironmentSpec, pool: str, count: int) -> list[int]:
    assert env.local is not None
    layout = Layout(state_dir=Path(env.local.state_dir), port_base=env.local.port_base)
    return [layout.instance_port(pool, slot) for slot in range(count)]


# --------------------------------------------------------------------------- #
# Report
# --------------------------------------------------------------------------- #


@dataclass
class Row:
    metric: str
    measured: str
    target: str
    verdict: str


def build_rows(p1: list[GateSample], p2: list[RollbackSample]) -> list[Row]:
    rows: list[Row] = []
    if p1:
        live = [s.live_ms for s in p1]
        hist = [s.history_ms for s in p1]
        med = statistics.median(live)
        rows += [
            Row(
                "P1 gate -> weight live at router, median",
                f"{med:.1f} ms (n={len(live)})",
                f"<= {P1_TARGET_MS:g} ms",
                "PASS" if med <= P1_TARGET_MS else "FAIL",
            ),
            Row("P1 gate -> weight live at router, p95", f"{pct(live, 95):.1f} ms", "-", "info"),
            Row(
                "P1 cross-check (history: gate -> set_traffic completed)",
                f"median {statistics.median(hist):.1f} ms, p95 {pct(hist, 95):.1f} ms",
                "-",
                "info",
            ),
        ]
        for kind in ("pause", "analysis"):
            sub = [s.live_ms for s in p1 if s.kind == kind]
            if sub:
                rows.append(
                    Row(
                        f"P1   {kind} gates only, median / max",
                        f"{statistics.median(sub):.1f} / {max(sub):.1f} ms (n={len(sub)})",
                        "-",
                        "info",
                    )
                )
    if p2:
        totals = [s.total_s for s in p2]
        rows += [
            Row(
                "P2 bad canary -> 100 % stable, max",
                f"{max(totals):.2f} s (n={len(totals)}: " + ", ".join(f"{t:.2f}" for t in totals) + ")",
                f"<= {P2_TARGET_S:g} s",
                "PASS" if max(totals) <= P2_TARGET_S else "FAIL",
            ),
            Row(
                "P2   detection: T0 -> 'rolling back', max",
                f"{max(s.to_decision_s for s in p2):.2f} s",
                "-",
                "info",
            ),
            Row(
                "P2   shift: 'rolling back' -> canary 0 %, max",
                f"{max(s.shift_s for s in p2) * 1000:.0f} ms",
                "-",
                "info",
            ),
        ]
    return rows


def render_table(rows: list[Row]) -> str:
    head = Row("metric", "measured", "target", "verdict")
    widths = [
        max(len(getattr(r, f)) for r in [head, *rows]) for f in ("metric", "measured", "target", "verdict")
    ]

    def line(r: Row) -> str:
        cells = (r.metric, r.measured, r.target, r.verdict)
        return "| " + " | ".join(c.ljust(w) for c, w in zip(cells, widths, strict=True)) + " |"

    sep = "|" + "|".join("-" * (w + 2) for w in widths) + "|"
    return "\n".join([line(head), sep, *(line(r) for r in rows)])


def render_raw(
    p1: list[GateSample], p2: list[RollbackSample], watch: RouterWatch, extra: dict[str, Any]
) -> str:
    out = ["", "Raw samples", "", "P1 (ms; gate = TimerFired / analysis.run completed; live = router read)"]
    out.append(
        f"{'#':>3} {'gate':<8} {'weight':>6} {'live':>7} {'history':>7} | "
        f"{'->wft':>6} {'wft':>6} {'->sched':>7} {'->start':>7} {'->live':>7} {'->done':>7}"
    )
    for s in p1:
        out.append(
            f"{s.index:>3} {s.kind:<8} {s.weight:>6} {s.live_ms:>7.1f} {s.history_ms:>7.1f} | "
            f"{s.to_wft_started_ms:>6.1f} {s.wft_ms:>6.1f} {s.to_scheduled_ms:>7.1f} {s.to_started_ms:>7.1f} "
            f"{s.started_to_live_ms:>7.1f} {s.live_to_completed_ms:>7.1f}"
        )
    out += [
        "    live/history: gate -> weight live at the router / -> set_traffic completed (history);",
        "    ->wft: gate -> workflow task started; wft: workflow task started -> completed;",
        "    ->sched: gate -> set_traffic scheduled; ->start: scheduled -> activity started;",
        "    ->live: activity started -> weight live; ->done: live -> activity completed.",
    ]
    if extra.get("timer_late_ms"):
        late = extra["timer_late_ms"]
        out.append(f"    pause timers fired late by (ms, not part of the overhead): {late}")
    if extra.get("baseline"):
        b = extra["baseline"]

        def med(key: str) -> float:
            return statistics.median(x[key] for x in b)

        out.append(
            f"    floor (do-nothing workflow: 1 s timer -> no-op activity, n={len(b)}, medians): "
            f"->wft {med('to_wft_started_ms'):.1f}, wft {med('wft_ms'):.1f}, "
            f"->sched {med('to_scheduled_ms'):.1f}, history {med('history_ms'):.1f} ms"
        )
    if extra.get("router_direct"):
        rd = extra["router_direct"]
        out.append(
            "    the router provider called directly (no Temporal, preview backend, n="
            f"{rd['n']}): set_traffic median {rd['set_traffic_ms_median']:.2f} ms, "
            f"read median {rd['read_ms_median']:.2f} ms"
        )
    out += ["", "P2 (s; T0 = errors injected, T1 = canary at 0 % in the router)"]
    out.append(
        f"{'version':<8} {'total':>6} {'detect':>7} {'decide':>7} {'shift':>7} {'value':>6}  outcome / reason"
    )
    for r in p2:
        value = f"{r.failed_value:.3f}" if r.failed_value is not None else "-"
        out.append(
            f"{r.version:<8} {r.total_s:>6.3f} {r.detect_s:>7.3f} {r.decide_s:>7.3f} {r.shift_s:>7.3f} "
            f"{value:>6}  {r.outcome}: {r.reason}"
        )
    out += [
        "",
        f"router watcher: {watch.polls} reads, median interval {watch.resolution_ms():.2f} ms, "
        f"{watch.errors} read errors, {len(watch.changes)} changes seen",
    ]
    transient = [
        c for c in watch.changes if any(abs(v / 5 - round(v / 5)) > 0.002 for v in c.weights.values())
    ]
    if transient:
        shown = ", ".join("/".join(f"{p} {v:.1f}%" for p, v in c.weights.items()) for c in transient[:5])
        out.append(
            f"router watcher saw {len(transient)} transient split(s) in the middle of a change "
            f"(not a planned weight): {shown}"
        )
    return "\n".join(out)


# --------------------------------------------------------------------------- #
# Main
# --------------------------------------------------------------------------- #


async def measure(
    layout: Layout,
    args: argparse.Namespace,
    watch: RouterWatch,
    report: dict[str, Any],
    selected: frozenset[str],
) -> tuple[list[Row], str]:
    """The platform phase: the rows and raw samples of P1, P2, P3, P4, P6, P8 (those selected)."""
    tag = f"{os.getpid()}-{int(time.time())}"
    task_queue = f"deploy-bench-{tag}"
    client = await temporal.connect(target_host=f"127.0.0.1:{layout.temporal_port}")
    # Every instance scraped before anything is measured.
    await asyncio.to_thread(Prometheus(layout).wait_targets_up, INSTANCES, 30)
    env = make_spec(P2_CONFIG, "v0.0.1", layout).environment
    reference, mine = HAProxyRouter(env).read().weights, watch.read()
    if any(abs(reference[p] - mine[p]) > 1e-9 for p in POOLS):
        msg = f"the watcher reads {mine}, the engine's router provider {reference}"
        raise RuntimeError(msg)
    extra: dict[str, Any] = {"router_direct": await asyncio.to_thread(router_cost, env)}
    report["router_direct"] = extra["router_direct"]
    with ThreadPoolExecutor(max_workers=64, thread_name_prefix="activity") as executor:
        p1: list[GateSample] = []
        p2: list[RollbackSample] = []
        if "P1" in selected:
            extra["baseline"] = await run_baseline(client, executor, tag=tag, rounds=4 if args.quick else 8)
            report["baseline"] = extra["baseline"]
        zd: list[zero_downtime.Case] = []
        res = resilience.Results()
        async with worker.build_worker(client, task_queue, executor):
            if "P1" in selected:
                t = time.monotonic()
                p1, p1_info = await run_p1(client, task_queue, layout, watch, tag=tag, quick=args.quick)
                report["p1"] = {"info": p1_info, "samples": [asdict(s) for s in p1]}
                extra["timer_late_ms"] = p1_info["timer_late_ms"]
                print(f"P1 done in {time.monotonic() - t:.1f}s ({len(p1)} gates)", flush=True)
            if "P2" in selected:
                report["p2"] = {"samples": []}
                for i in range(1 if args.quick else 3):
                    t = time.monotonic()
                    sample = await run_p2_once(
                        client, task_queue, layout, watch, tag=tag, version=f"v2.0.{i + 1}"
                    )
                    if sample.outcome != "rolled_back":
                        msg = f"P2 {sample.version} ended {sample.outcome}: {sample.reason}"
                        raise RuntimeError(msg)
                    p2.append(sample)
                    report["p2"]["samples"].append(asdict(sample))
                    print(
                        f"P2 {sample.version}: {sample.total_s:.2f}s (run {time.monotonic() - t:.1f}s)",
                        flush=True,
                    )
            if "P4" in selected:
                zd = await zero_downtime.run(client, task_queue, layout, CONFIG_HEAD, tag)
                report["zero_downtime"] = zero_downtime.report(zd)
            which = selected & {"P3", "P6", "P8"}
            if which:
                res = await resilience.run(
                    client,
                    task_queue,
                    layout,
                    watch,
                    config_head=CONFIG_HEAD,
                    tag=tag,
                    quick=args.quick,
                    which=frozenset(which),
                )
                report["resilience"] = resilience.report(res)
    rows = build_rows(p1, p2) + [Row(*case.row) for case in zd] + [Row(*row) for row in resilience.rows(res)]
    raw = ""
    if p1 or p2:
        raw += render_raw(p1, p2, watch, extra)
    if which:
        raw += "\n" + resilience.raw(res)
    report["router_changes"] = [
        {"t": c.t, "weights": {k: round(v, 3) for k, v in c.weights.items()}} for c in watch.changes
    ]
    return rows, raw


def platform_phase(
    args: argparse.Namespace, report: dict[str, Any], selected: frozenset[str], tmp: Path
) -> tuple[list[Row], str]:
    """Bring the local platform up, measure, tear it down (also on failure)."""
    layout = Layout.for_tests(tmp / "platform")
    report.update(port_base=layout.port_base, state_dir=str(layout.state_dir))
    watch = RouterWatch(layout, interval=args.poll_ms / 1000)
    try:
        print(
            f"bringing up the platform in {layout.state_dir} "
            f"(ports {layout.port_base}..{layout.port_base + 59})",
            flush=True,
        )
        t = time.monotonic()
        up = platform.up(layout, stable_version=STABLE_VERSION, instances=INSTANCES, traffic_rps=args.rps)
        report["platform_up_s"] = round(time.monotonic() - t, 2)
        report["platform_timings"] = up.get("timings", {})
        print(f"platform up in {report['platform_up_s']}s", flush=True)
        watch.start()
        budget = MEASURE_BUDGET_S + (RESILIENCE_BUDGET_S if selected & {"P3", "P6", "P8"} else 0.0)
        return asyncio.run(asyncio.wait_for(measure(layout, args, watch, report, selected), timeout=budget))
    finally:
        watch.stop()
        with contextlib.suppress(KeyboardInterrupt):
            signal.signal(signal.SIGINT, signal.SIG_IGN)  # a second Ctrl-C must not skip the teardown
            platform.down(layout, purge=not args.keep)
            signal.signal(signal.SIGINT, signal.default_int_handler)


def scale_phase(args: argparse.Namespace, report: dict[str, Any], tmp: Path) -> tuple[list[Row], str]:
    levels = (50, 100) if args.quick else scale.DEFAULT_LEVELS
    pause = 5.0 if args.quick else scale.DEFAULT_PAUSE_S
    workdir = tmp / "scale"
    workdir.mkdir(parents=True, exist_ok=True)
    print(
        f"P7: ramping {', '.join(map(str, levels))} releases on one worker (simulated providers)", flush=True
    )
    res = asyncio.run(
        asyncio.wait_for(
            scale.run(workdir, levels=levels, pause_s=pause, budget_s=SCALE_BUDGET_S - 60),
            timeout=SCALE_BUDGET_S + 60,
        )
    )
    report["scale"] = scale.report(res)
    return [Row(*r) for r in scale.rows(res)], scale.raw(res)


def dr_phase(args: argparse.Namespace, report: dict[str, Any], tmp: Path) -> tuple[list[Row], str]:
    workdir = tmp / "dr"
    workdir.mkdir(parents=True, exist_ok=True)
    print("P5: regional failover under write load, synchronous then asynchronous replication", flush=True)
    results = asyncio.run(asyncio.wait_for(dr.run(workdir, writers=8, runs=1), timeout=DR_BUDGET_S))
    report["dr"] = results
    return [Row(*r) for r in dr.rows(results)], dr.raw(results)


def _raise_interrupt(_signum: int, _frame: object) -> None:
    raise KeyboardInterrupt


def _metric(row: Row) -> int:
    """Position of a row's metric (P1..P8) in the table; rows keep their order within a metric."""
    head = row.metric.split()[0]
    return METRICS.index(head) if head in METRICS else len(METRICS)


def select(args: argparse.Namespace, parser: argparse.ArgumentParser) -> frozenset[str]:
    chosen: set[str] = set()
    for flag, metrics in SHORTHANDS.items():
        if getattr(args, flag):
            chosen |= metrics
    if args.only:
        names = {m.strip().upper() for m in args.only.split(",") if m.strip()}
        unknown = names - set(METRICS)
        if unknown:
            parser.error(
                f"--only: unknown metric(s) {', '.join(sorted(unknown))} (known: {', '.join(METRICS)})"
            )
        chosen |= names
    return frozenset(chosen or METRICS)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--quick", action="store_true", help="fewer samples (CI smoke)")
    parser.add_argument("--json", type=Path, default=None, help="also write the results here")
    parser.add_argument("--rps", type=float, default=50.0, help="load through the router (default 50)")
    parser.add_argument("--keep", action="store_true", help="keep the state dir (logs) after the run")
    parser.add_argument("--poll-ms", type=float, default=1.0, help="router watcher pause between reads")
    parser.add_argument("--verbose", action="store_true", help="show the engine's info logs")
    parser.add_argument("--only", default="", help="comma-separated metrics to run (default: all, P1-P8)")
    parser.add_argument("--zero-downtime-only", action="store_true", help="only P4 (Z1-Z4)")
    parser.add_argument(
        "--resilience-only", action="store_true", help="only P3, P6, P8 (bench/resilience.py)"
    )
    parser.add_argument("--scale-only", action="store_true", help="only P7 (bench/scale.py)")
    parser.add_argument("--dr-only", action="store_true", help="only P5 (bench/dr.py)")
    args = parser.parse_args(argv)
    selected = select(args, parser)
    engine_log.configure("INFO" if args.verbose else "WARNING")
    signal.signal(signal.SIGTERM, _raise_interrupt)

    tmp = Path(tempfile.mkdtemp(prefix="deploy-bench-"))
    report: dict[str, Any] = {
        "started": time.time(),
        "quick": args.quick,
        "rps": args.rps,
        "metrics": sorted(selected),
        "load_average_start": os.getloadavg(),
    }
    rows: list[Row] = []
    raws: list[str] = []
    errors: list[str] = []
    phases = []
    if selected & PLATFORM_METRICS:
        phases.append(("platform", lambda: platform_phase(args, report, selected, tmp)))
    if "P7" in selected:
        phases.append(("P7", lambda: scale_phase(args, report, tmp)))
    if "P5" in selected:
        phases.append(("P5", lambda: dr_phase(args, report, tmp)))
    code = 0
    t_all = time.monotonic()
    try:
        for name, phase in phases:
            t = time.monotonic()
            try:
                phase_rows, phase_raw = phase()
            except Exception as exc:  # one phase failing must not hide the others' rows
                message = f"{name} phase failed: {type(exc).__name__}: {exc}"
                print(message, file=sys.stderr, flush=True)
                errors.append(message)
                rows.append(Row(f"{name} phase", f"failed: {type(exc).__name__}: {exc}"[:160], "-", "FAIL"))
                continue
            rows += phase_rows
            raws.append(phase_raw)
            report.setdefault("phase_seconds", {})[name] = round(time.monotonic() - t, 1)
    except KeyboardInterrupt:
        print("interrupted: torn down", file=sys.stderr)
        code = 130
    finally:
        if not args.keep:
            shutil.rmtree(tmp, ignore_errors=True)
    rows.sort(key=_metric)
    report["total_s"] = round(time.monotonic() - t_all, 1)
    report["load_average_end"] = os.getloadavg()
    report["errors"] = errors
    report["rows"] = [asdict(r) for r in rows]
    report["table"] = render_table(rows) if rows else ""
    if rows:
        print()
        print(report["table"])
        print("\n".join(raws))
        load = ", ".join(f"{x:.1f}" for x in report["load_average_start"])
        load_end = ", ".join(f"{x:.1f}" for x in report["load_average_end"])
        phases_s = ", ".join(f"{k} {v}s" for k, v in report.get("phase_seconds", {}).items())
        up = f", platform up {report['platform_up_s']}s" if "platform_up_s" in report else ""
        print(
            f"\nwhole run {report['total_s']}s ({phases_s}{up}); load average {load} at the start, "
            f"{load_end} at the end ({os.cpu_count()} cores, shared with other work on this machine)"
        )
        if any(r.verdict == "FAIL" for r in rows):
            code = code or 2
    if args.json:
        args.json.write_text(json.dumps(report, indent=1, default=str))
    return code


if __name__ == "__main__":
    sys.exit(main())
