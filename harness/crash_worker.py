"""The engine's worker with a kill switch, for the crash matrix (tests and bench only).

    CRASH_POINTS=after:5,mid:7 CRASH_JOURNAL=/tmp/j.jsonl python -m harness.crash_worker --task-queue Q

The same worker as ``worker.py`` (``worker.build_worker``: every workflow and activity),
plus an activity interceptor that SIGKILLs its own process group at chosen points of
the run. Activities are named by their activity id, which the Python SDK numbers 1, 2,
3 ... in the order the workflow schedules them, so "activity #5" is the same step in
every run of a plan. Only first attempts are killed: the retry on the restarted worker
runs to the end. A point is one of:

- ``before:K``: activity #K was handed to this worker; it dies before the body runs
  (nothing done, the attempt is lost);
- ``after:K``: the body returned (the side effect is done) and the worker dies before
  the result reaches the server: the retry must find the work done (idempotency);
- ``mid:K``: the worker dies 0.2 s after the body's first heartbeat, while it still
  runs (if the body returns first, it dies right then, before reporting).

A release of several workflows (the pipeline and its children) numbers each workflow's
activities from 1: ``after:3@-worker-A`` is activity #3 of the workflow whose id ends in
``-worker-A`` (no ``@``: any workflow).

Every start, end, first heartbeat and kill is appended to ``CRASH_JOURNAL`` (JSON lines),
so the harness knows which kills really happened. The worker caches no workflow
(``max_cached_workflows=0``): every workflow task replays the history from the start,
so a lost worker costs no sticky-queue timeout and each task doubles as a determinism
check. Nothing here is used by the production worker.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from temporalio import activity
from temporalio.worker import (
    ActivityInboundInterceptor,
    ActivityOutboundInterceptor,
    ExecuteActivityInput,
    Interceptor,
)

import worker as worker_module
from engine import log as logging_setup
from engine import temporal

KINDS = ("before", "after", "mid")
MID_DELAY = 0.2
"""Seconds between the first heartbeat of a ``mid`` point and the kill (the heartbeat gets out)."""


@dataclass(frozen=True)
class Point:
    """Where to die: ``kind`` (before / after / mid) of activity #``activity`` of the workflow
    whose id ends in ``workflow`` (empty: any)."""

    kind: str
    activity: int
    workflow: str = ""

    def __str__(self) -> str:
        return f"{self.kind}:{self.activity}" + (f"@{self.workflow}" if self.workflow else "")

    @classmethod
    def parse(cls, text: str) -> Point:
        where, _, workflow = text.strip().partition("@")
        kind, _, number = where.partition(":")
        if kind not in KINDS or not number.isdigit():
            msg = f"bad crash point {text!r}: expected before:K, after:K or mid:K (then @WORKFLOW-SUFFIX)"
            raise ValueError(msg)
        return cls(kind, int(number), workflow)

    def matches(self, kind: str, info: activity.Info) -> bool:
        return (
            kind == self.kind
            and info.activity_id == str(self.activity)
            and info.workflow_id.endswith(self.workflow)
        )


def parse_points(text: str) -> list[Point]:
    return [Point.parse(p) for p in text.split(",") if p.strip()]


class Journal:
    """Append-only JSON lines; a line written before SIGKILL is in the page cache and survives."""

    def __init__(self, path: str | None) -> None:
        self.path = Path(path) if path else None

    def write(self, event: str, info: activity.Info | None = None, **extra: Any) -> None:
        if self.path is None:
            return
        entry: dict[str, Any] = {"t": time.time(), "pid": os.getpid(), "event": event, **extra}
        if info is not None:
            entry.update(
                activity=int(info.activity_id) if info.activity_id.isdigit() else info.activity_id,
                name=info.activity_type,
                attempt=info.attempt,
                workflow=info.workflow_id,
            )
        with self.path.open("a") as fh:
            fh.write(json.dumps(entry) + "\n")


def die(journal: Journal, point: Point, info: activity.Info, how: str) -> None:
    """SIGKILL this worker's process group (the worker leads it), as a host failure would."""
    journal.write("kill", info, point=str(point), how=how)
    if os.getpgrp() == os.getpid():
        os.killpg(os.getpgrp(), signal.SIGKILL)
    os.kill(os.getpid(), signal.SIGKILL)


class CrashInterceptor(Interceptor):
    """Kills the worker at the configured points (first attempts only)."""

    def __init__(self, points: list[Point], journal: Journal) -> None:
        self.points = points
        self.journal = journal

    def point(self, kind: str, info: activity.Info) -> Point | None:
        if info.attempt != 1 or not info.activity_id.isdigit():
            return None
        return next((p for p in self.points if p.matches(kind, info)), None)

    def intercept_activity(self, next: ActivityInboundInterceptor) -> ActivityInboundInterceptor:
        return _Inbound(next, self)


class _Inbound(ActivityInboundInterceptor):
    def __init__(self, next: ActivityInboundInterceptor, root: CrashInterceptor) -> None:
        super().__init__(next)
        self.root = root
        self.returned = False
        self.mid: Point | None = None
        self.heartbeats = 0

    def init(self, outbound: ActivityOutboundInterceptor) -> None:
        super().init(_Outbound(outbound, self))

    async def execute_activity(self, input: ExecuteActivityInput) -> Any:
        info = activity.info()
        journal = self.root.journal
        journal.write("start", info)
        if (point := self.root.point("before", info)) is not None:
            die(journal, point, info, "before the body ran")
        self.mid = self.root.point("mid", info)
        try:
            result = await self.next.execute_activity(input)
        except BaseException as exc:
            journal.write("error", info, error=f"{type(exc).__name__}: {exc}"[:300])
            raise
        self.returned = True
        journal.write("end", info, heartbeats=self.heartbeats)
        if (point := self.root.point("after", info)) is not None:
            die(journal, point, info, "after the body returned, before the result was reported")
        if self.mid is not None:  # it never heartbeated, or returned within MID_DELAY of it
            how = "mid point: the body returned before the kill" + (
                "" if self.heartbeats else " (no heartbeat)"
            )
            die(journal, self.mid, info, how)
        return result

    def heartbeat(self) -> None:
        """Called (on the event loop) for each heartbeat of the body."""
        self.heartbeats += 1
        if self.heartbeats == 1:
            info = activity.info()
            self.root.journal.write("heartbeat", info)
            if self.mid is not None:
                point, journal = self.mid, self.root.journal
                loop = asyncio.get_running_loop()

                def kill() -> None:
                    if not self.returned:
                        die(journal, point, info, "mid-body, after its first heartbeat")

                loop.call_later(MID_DELAY, kill)


class _Outbound(ActivityOutboundInterceptor):
    def __init__(self, next: ActivityOutboundInterceptor, inbound: _Inbound) -> None:
        super().__init__(next)
        self.inbound = inbound

    def heartbeat(self, *details: Any) -> None:
        super().heartbeat(*details)
        self.inbound.heartbeat()


async def serve(task_queue: str, points: list[Point], journal: Journal) -> None:
    client = await temporal.connect()
    with ThreadPoolExecutor(max_workers=64, thread_name_prefix="activity") as executor:
        worker = worker_module.build_worker(
            client,
            task_queue,
            executor,
            interceptors=[CrashInterceptor(points, journal)],
            max_cached_workflows=0,
        )
        async with worker:
            journal.write("worker started", points=[str(p) for p in points])
            await asyncio.Event().wait()


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--task-queue", required=True)
    args = parser.parse_args()
    logging_setup.configure()
    points = parse_points(os.environ.get("CRASH_POINTS", ""))
    asyncio.run(serve(args.task_queue, points, Journal(os.environ.get("CRASH_JOURNAL"))))


if __name__ == "__main__":
    main()
