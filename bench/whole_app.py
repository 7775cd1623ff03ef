"""W1, W2: what releasing the whole app (2 components x 2 regions) costs the engine.

    .venv/bin/python bench/whole_app.py [--runs 3]

On the two-region local platform (harness/whole_app.py: the api and its worker in A and B,
PostgreSQL A -> B, jobs flowing, Prometheus, a Temporal dev server, the engine's worker in
this process), alternately: a release of the api alone in region A (the same canary, the
environment without components or standby region), and a whole-app release (api and worker,
A then B). Every workflow's history is read afterwards (the Release and each child).

* Engine time of a workflow: the wall time in which none of its activities, timers or child
  workflows is open, i.e. the engine deciding what comes next (workflow tasks, scheduling,
  the server's queues). Per step: the engine time of every workflow of the release divided
  by its steps (activities and child workflows started).
* W1: median engine time per step of the whole-app release over that of the single
  release. Target <= 2x.
* W2: what region B adds beyond its own work: the span from the parent's first command for
  B (observing it) to B's last child ending, minus the time B's activities ran (starting
  instances until healthy, smoke checks, router changes, drains). Target <= 1 s.

Part of ``bench/run.py`` (the W rows); runnable alone as above.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

import yaml
from temporalio.api.enums.v1 import EventType
from temporalio.client import Client, WorkflowHistory

import worker as worker_module
from bench.common import event_time
from engine import temporal
from engine.client import start_or_attach
from engine.config import parse_config, resolve_release
from engine.contracts import ReleaseResult
from engine.pipeline import resolve_pipeline
from harness import whole_app
from infrastructure.local import platform
from infrastructure.local.regions import PlatformLayout

W1_TARGET = 2.0
W2_TARGET_S = 1.0

_OPEN = {
    EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED,
    EventType.EVENT_TYPE_TIMER_STARTED,
    EventType.EVENT_TYPE_START_CHILD_WORKFLOW_EXECUTION_INITIATED,
}
_CLOSE = {
    EventType.EVENT_TYPE_ACTIVITY_TASK_COMPLETED: EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED,
    EventType.EVENT_TYPE_ACTIVITY_TASK_FAILED: EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED,
    EventType.EVENT_TYPE_ACTIVITY_TASK_TIMED_OUT: EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED,
    EventType.EVENT_TYPE_ACTIVITY_TASK_CANCELED: EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED,
    EventType.EVENT_TYPE_TIMER_FIRED: EventType.EVENT_TYPE_TIMER_STARTED,
    EventType.EVENT_TYPE_TIMER_CANCELED: EventType.EVENT_TYPE_TIMER_STARTED,
    EventType.EVENT_TYPE_CHILD_WORKFLOW_EXECUTION_COMPLETED: (
        EventType.EVENT_TYPE_START_CHILD_WORKFLOW_EXECUTION_INITIATED
    ),
    EventType.EVENT_TYPE_CHILD_WORKFLOW_EXECUTION_FAILED: (
        EventType.EVENT_TYPE_START_CHILD_WORKFLOW_EXECUTION_INITIATED
    ),
}


@dataclass
class Timeline:
    """One workflow's history, reduced to what the engine did and what it waited for."""

    workflow_id: str
    engine_s: float
    steps: int
    started: float
    ended: float
    activities: list[tuple[float, float]] = field(default_factory=list)
    """Each activity's (scheduled, closed) wall times."""

    @property
    def activity_s(self) -> float:
        return sum(end - start for start, end in self.activities)


def timeline(history: WorkflowHistory) -> Timeline:
    """Engine time: wall time with nothing open (no activity, timer or child) before the run closed."""
    events = list(history.events)
    scheduled_at: dict[int, float] = {}
    open_ids: set[int] = set()
    engine = 0.0
    activities: list[tuple[float, float]] = []
    steps = 0
    idle_since: float | None = event_time(events[0])
    for e in events:
        t = event_time(e)
        if e.event_type in _OPEN:
            if not open_ids and idle_since is not None:
                engine += t - idle_since
                idle_since = None
            open_ids.add(e.event_id)
            scheduled_at[e.event_id] = t
            if e.event_type != EventType.EVENT_TYPE_TIMER_STARTED:
                steps += 1
        elif e.event_type in _CLOSE:
            attrs = _attributes(e)
            opened = next(
                (getattr(attrs, k) for k in ("scheduled_event_id", "initiated_event_id", "started_event_id")
                 if getattr(attrs, k, 0)),
                0,
            )  # fmt: skip
            if opened in open_ids:
                open_ids.discard(opened)
                if e.event_type in (
                    EventType.EVENT_TYPE_ACTIVITY_TASK_COMPLETED,
                    EventType.EVENT_TYPE_ACTIVITY_TASK_FAILED,
                    EventType.EVENT_TYPE_ACTIVITY_TASK_TIMED_OUT,
                ):
                    activities.append((scheduled_at[opened], t))
            if not open_ids:
                idle_since = t
    end = event_time(events[-1])
    if idle_since is not None:
        engine += end - idle_since
    return Timeline(history.workflow_id, engine, steps, event_time(events[0]), end, activities)


def _attributes(e: object) -> object:
    for name in (
        "activity_task_completed_event_attributes",
        "activity_task_failed_event_attributes",
        "activity_task_timed_out_event_attributes",
        "activity_task_canceled_event_attributes",
        "timer_fired_event_attributes",
        "timer_canceled_event_attributes",
        "child_workflow_execution_completed_event_attributes",
        "child_workflow_execution_failed_event_attributes",
    ):
        if e.HasField(name):  # type: ignore[attr-defined]
            return getattr(e, name)
    return object()


@dataclass
class Run:
    kind: str
    version: str
    outcome: str
    seconds: float
    timelines: list[Timeline] = field(default_factory=list)
    region_b: tuple[float, float] | None = None
    """(span of region B, B's activity time) in seconds: whole-app runs only."""

    @property
    def engine_per_step_ms(self) -> float:
        steps = sum(t.steps for t in self.timelines)
        return 1000 * sum(t.engine_s for t in self.timelines) / max(1, steps)


def single_config(site: PlatformLayout) -> str:
    """The whole app's config as a release of the api alone in region A (no standby region)."""
    data = yaml.safe_load(whole_app.CONFIG % {"state_dir": site.state_dir, "port_base": site.port_base})
    env = data["environments"]["local"]
    del env["dr"]
    env["components"] = ["api"]
    return yaml.safe_dump(data)


async def _histories(client: Client, result: ReleaseResult, workflow_id: str) -> list[WorkflowHistory]:
    ids = [workflow_id, f"{workflow_id}-canary"]
    ids += [t.workflow_id for t in result.status.targets if t.workflow_id]
    return [await client.get_workflow_handle(i).fetch_history() for i in ids]


async def one(client: Client, queue: str, site: PlatformLayout, kind: str, version: str) -> Run:
    if kind == "whole app":
        pipeline = whole_app.pipeline(site, version, requested_by="bench")
    else:
        config = parse_config(single_config(site))
        pipeline = resolve_pipeline(
            config, resolve_release(config, version, "canary", "local", requested_by="bench")
        )
    t0 = time.monotonic()
    handle, _ = await start_or_attach(client, pipeline, task_queue=queue, redeploy=True)
    result: ReleaseResult = await handle.result()
    run = Run(kind, version, result.outcome, time.monotonic() - t0)
    histories = await _histories(client, result, handle.id)
    run.timelines = [timeline(h) for h in histories]
    if kind == "whole app":
        parent, b_children = run.timelines[0], [t for t in run.timelines if t.workflow_id.endswith("-B")]
        # B starts when the parent schedules its observation of B's api (the last activity it
        # scheduled before B's first child) and ends with B's last child.
        first_child = min(t.started for t in b_children)
        begin = max(start for start, _ in parent.activities if start <= first_child)
        end = max(t.ended for t in b_children)
        own = [a for a in parent.activities if begin <= a[0] and a[1] <= end]
        own += [a for t in b_children for a in t.activities]
        run.region_b = (end - begin, sum(stop - start for start, stop in own))
    return run


async def run(tmp: Path, runs: int = 3, *, quiet: bool = False) -> list[Run]:
    site = PlatformLayout.for_tests(tmp / "whole")
    out: list[Run] = []
    try:
        whole_app.site_up(site)
        client = await temporal.connect(target_host=f"127.0.0.1:{site.home_layout.temporal_port}")
        queue = f"bench-whole-{uuid.uuid4().hex[:6]}"
        async with worker_module.running(client, queue):
            for i in range(runs):
                for kind in ("single", "whole app"):
                    version = f"v7.{i}.{0 if kind == 'single' else 1}"
                    r = await one(client, queue, site, kind, version)
                    out.append(r)
                    if not quiet:
                        print(f"W {kind} {version}: {describe(r)}", flush=True)
    finally:
        platform.down(site, purge=True)
    return out


def describe(r: Run) -> str:
    steps = sum(t.steps for t in r.timelines)
    line = f"{r.outcome} in {r.seconds:.1f} s, engine {r.engine_per_step_ms:.0f} ms/step over {steps} steps"
    if r.region_b:
        line += f", region B {r.region_b[0]:.2f} s of which its own work {r.region_b[1]:.2f} s"
    return line


def rows(results: list[Run]) -> list[tuple[str, str, str, str]]:
    single = [r.engine_per_step_ms for r in results if r.kind == "single" and r.outcome == "succeeded"]
    whole = [r.engine_per_step_ms for r in results if r.kind == "whole app" and r.outcome == "succeeded"]
    failed = [f"{r.kind} {r.version}: {r.outcome}" for r in results if r.outcome != "succeeded"]
    out = []
    if single and whole:
        ratio = statistics.median(whole) / statistics.median(single)
        out.append(
            (
                "W1 engine time per step: whole app (2 components x 2 regions) / api in one region",
                f"{ratio:.2f}x ({statistics.median(whole):.0f} vs {statistics.median(single):.0f} ms/step, "
                f"n={len(whole)}/{len(single)})",
                f"<= {W1_TARGET:g}x",
                "PASS" if ratio <= W1_TARGET else "FAIL",
            )
        )
    extra = [r.region_b[0] - r.region_b[1] for r in results if r.region_b and r.outcome == "succeeded"]
    if extra:
        worst = max(extra)
        out.append(
            (
                "W2 time region B adds beyond its own work (start, health, smoke, route), max",
                f"{worst:.2f} s (n={len(extra)}: {', '.join(f'{x:.2f}' for x in extra)})",
                f"<= {W2_TARGET_S:g} s",
                "PASS" if worst <= W2_TARGET_S else "FAIL",
            )
        )
    if failed:
        out.append(("W releases that did not succeed", "; ".join(failed), "none", "FAIL"))
    return out


def raw(results: list[Run]) -> str:
    lines = ["", "W (two-region platform; engine time = nothing open in the workflow)"]
    for r in results:
        per = ", ".join(
            f"{t.workflow_id.removeprefix('release-sample-api-local') or 'Release'}: "
            f"{1000 * t.engine_s:.0f} ms/{t.steps}"
            for t in r.timelines
        )
        lines.append(f"  {r.kind:<9} {r.version}: {r.outcome} in {r.seconds:.1f} s; {per}")
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    results = asyncio.run(run(Path(tempfile.mkdtemp(prefix="bench-whole-")), args.runs))
    table = rows(results)
    for row in table:
        print(" | ".join(row))
    print(raw(results))
    return 0 if all(row[3] == "PASS" for row in table) else 2


if __name__ == "__main__":
    sys.exit(main())
