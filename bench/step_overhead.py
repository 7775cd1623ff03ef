"""P1, engine overhead per canary step (target: median <= 50 ms).

A canary whose steps are ``set_weight`` steps with increasing weights separated by
gates: timed pauses of 1 s and analysis steps (one metric, count 1, interval 1 s,
initial delay 0), no background analysis. Per gate, gate-passed = history time of the
``TimerFired`` (pause) or of the ``ActivityTaskCompleted`` of ``analysis.run``
(analysis); weight-live = the first router observation (:mod:`bench.router_watch`) at
which the canary pool's share equals the next weight. Overhead = live - gate.
Cross-check from history alone: the ``ActivityTaskCompleted`` of the following
``router.set_traffic`` - gate (this also includes the read-back of the split and
reporting the result).

Diagnostics printed with the raw samples: the same timer -> activity path in a
do-nothing workflow (:func:`run_baseline`, ``bench/baseline.py``: the floor that
Temporal and the Python SDK cost on this machine), the engine's router provider called
directly (:func:`router_cost`, no Temporal), pause-timer lateness, the watcher's
resolution, and any transient split the watcher saw in the middle of a change.
"""

from __future__ import annotations

import asyncio
import json
import statistics
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from temporalio.api.enums.v1 import EventType
from temporalio.api.history.v1 import HistoryEvent
from temporalio.client import Client
from temporalio.worker import Worker

from activities.router.haproxy import HAProxyRouter
from bench.baseline import BenchBaseline, noop
from bench.common import CONFIG_HEAD, INSTANCES, STABLE_VERSION, event_time, make_spec, start
from bench.router_watch import RouterWatch
from engine.contracts import EnvironmentSpec, Instance
from infrastructure.local.layout import Layout

P1_VERSION = "v2.0.0"
P1_TARGET_MS = 50.0


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
