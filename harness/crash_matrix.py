"""The crash matrix: a worker SIGKILLed at every activity boundary ends where an undisturbed run ends.

Shared by ``tests/engine/test_crash_matrix.py``, ``tests/dr/test_dr_crash_matrix.py`` and
``bench/crash_matrix.py``. A *scenario* is one short release (canary, blue-green,
rolling) or a DR failover on the real local platform. For each scenario:

1. an undisturbed run on :mod:`harness.crash_worker` (no kill point) gives the reference:
   its final state, its side-effect counts and the list of activities it ran (#1, #2 ...
   in scheduling order, with the ones that heartbeated);
2. each case reruns the scenario from the same starting state with kill points
   (``before:K``, ``after:K``, ``mid:K``); whenever the worker process dies, a new one
   is started at once, until the workflow ends;
3. a case passes when every kill happened (the worker's journal says so), the final
   state equals the reference's, and no side effect was done more often than in the
   reference.

Side effects are counted on the platform, never from the workflow history:

- router changes: a counting proxy sits on the path of each HAProxy runtime-API socket
  (the engine's router; in DR the two regions' routers and the global entry) and keeps
  a model of every server's weight and admin state. A command that changes a server
  counts as a *change*; one that sets what is already there (an idempotent retry
  re-sending it) counts only as a *command*;
- instance starts: the ``listening ... pid=N`` lines the sample-service processes write
  to their own logs when they start (distinct pids);
- database promotions: the ``selected new timeline ID`` lines PostgreSQL logs when a
  standby is promoted (and the timeline the new primary ends on, in the final state).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import re
import socket
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import psycopg
from temporalio.client import Client, WorkflowHandle

from activities.router.haproxy import HAProxyRouter
from engine.client import start_or_attach
from engine.contracts import ALL_POOLS, BASELINE_POOL, POOLS, Instance, ReleaseResult, ReleaseSpec
from engine.contracts.dr import DrResult, FailoverRequest
from harness import whole_app
from harness.crash_worker import KINDS, Point
from harness.dr_stack import DrStack
from harness.stack import Stack
from harness.support import REPO, WorkerProcess
from infrastructure.local import dr as local_dr
from infrastructure.local.global_entry import GlobalEntry
from infrastructure.local.haproxy import HAProxy
from infrastructure.local.instances import InstanceManager
from infrastructure.local.layout import API, WORKER, Layout, pools_of
from infrastructure.local.regions import PlatformLayout

SIDE_EFFECTS = ("router_changes", "instance_starts", "promotions")
"""Counts that must equal the undisturbed run's (the others are shown, not judged)."""


# --------------------------------------------------------------------------- #
# Ground truth: the platform's own record of what was done
# --------------------------------------------------------------------------- #


@dataclass(frozen=True)
class _Sock:
    """What :class:`HAProxy` needs of a layout to talk to one socket."""

    haproxy_sock: Path


class RouterTap:
    """A counting proxy on the path of an HAProxy runtime-API socket.

    HAProxy keeps listening on its socket, moved aside (same directory); the proxy
    listens on the original path, forwards each connection (the runtime API's
    non-interactive mode: one command line, one answer, close) and counts the
    ``set server`` commands. Writes are judged against a model of each server's weight
    and admin state, read from HAProxy when the tap is installed.
    """

    def __init__(self, sock: Path, backends: Iterable[str], name: str) -> None:
        self.sock, self.backends, self.name = sock, tuple(backends), name
        self.real = sock.with_name("r-" + sock.name)
        self.commands = 0
        self.changes = 0
        self.log: list[tuple[float, str, bool]] = []
        self._model: dict[tuple[str, str, str], str] = {}
        self._lock = threading.Lock()
        self._listener: socket.socket | None = None
        self._thread: threading.Thread | None = None

    def __enter__(self) -> RouterTap:
        haproxy = HAProxy(_Sock(self.sock))  # type: ignore[arg-type]
        for backend in self.backends:
            for s in haproxy.servers(backend):
                self._model[(backend, s.name, "weight")] = str(s.weight)
                self._model[(backend, s.name, "state")] = s.admin
        os.rename(self.sock, self.real)
        listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        listener.bind(str(self.sock))
        listener.listen(64)
        self._listener = listener
        self._thread = threading.Thread(target=self._accept, daemon=True, name=f"tap-{self.name}")
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        if self._listener is not None:
            with contextlib.suppress(OSError):
                self._listener.shutdown(socket.SHUT_RDWR)
            self._listener.close()
        if self._thread is not None:
            self._thread.join(5)
        self.sock.unlink(missing_ok=True)
        if self.real.exists():
            os.rename(self.real, self.sock)

    def _accept(self) -> None:
        assert self._listener is not None
        while True:
            try:
                conn, _ = self._listener.accept()
            except OSError:
                return
            threading.Thread(target=self._serve, args=(conn,), daemon=True).start()

    def _serve(self, conn: socket.socket) -> None:
        with conn, contextlib.suppress(OSError), socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as up:
            conn.settimeout(10)
            up.settimeout(10)
            data = b""
            while not data.endswith(b"\n"):
                chunk = conn.recv(65536)
                if not chunk:
                    break
                data += chunk
            up.connect(str(self.real))
            self._count(data.decode(errors="replace"))
            up.sendall(data)
            while chunk := up.recv(65536):
                conn.sendall(chunk)

    _WRITE = re.compile(r"^set server (\S+)/(\S+) (weight|state) (\S+)$")

    def _count(self, line: str) -> None:
        with self._lock:
            for command in (c.strip() for c in line.split(";")):
                m = self._WRITE.match(command)
                if not m:
                    continue
                backend, server, what, value = m.groups()
                key = (backend, server, what)
                changed = self._model.get(key) != value
                self._model[key] = value
                self.commands += 1
                self.changes += changed
                self.log.append((time.time(), command, changed))


class LogLines:
    """Lines matching ``pattern`` appended to log files (a glob per directory) since :meth:`mark`."""

    def __init__(self, places: Iterable[tuple[Path, str]], pattern: str) -> None:
        self.places, self.pattern = list(places), re.compile(pattern)
        self._offsets: dict[Path, int] = {}

    def _files(self) -> list[Path]:
        return [p for d, glob in self.places for p in sorted(d.glob(glob))]

    def mark(self) -> None:
        self._offsets = {p: p.stat().st_size for p in self._files()}

    def lines(self) -> list[str]:
        out = []
        for path in self._files():
            with path.open("rb") as fh:
                fh.seek(self._offsets.get(path, 0))
                text = fh.read().decode(errors="replace")
            out += [line for line in text.splitlines() if self.pattern.search(line)]
        return out


def instance_starts(layouts: Iterable[Layout], *, workers: bool = False) -> LogLines:
    """Sample-service processes that started (each logs ``listening ... pid=N`` once); ``workers``:
    the sample workers too (``worker-POOL-SLOT.log``)."""
    prefixes = ("", "worker-") if workers else ("",)
    return LogLines(
        [(layout.logs_dir, f"{p}{pool}-*.log") for layout in layouts for p in prefixes for pool in ALL_POOLS],
        r"\blistening\b.*\bpid=\d+",
    )


def _pids(lines: list[str]) -> int:
    return len({re.search(r"\bpid=(\d+)", line).group(1) for line in lines})  # type: ignore[union-attr]


# --------------------------------------------------------------------------- #
# The crash worker as a process
# --------------------------------------------------------------------------- #


class CrashWorker(WorkerProcess):
    """``python -m harness.crash_worker`` as a real process in its own session."""

    def __init__(
        self, env: Mapping[str, str], log_file: Path, task_queue: str, points: list[Point], journal: Path
    ) -> None:
        env = {**env, "CRASH_POINTS": ",".join(map(str, points)), "CRASH_JOURNAL": str(journal)}
        super().__init__(env, log_file, task_queue)
        self.journal = journal
        self.starts = 0

    def start(self) -> None:
        self.starts += 1
        with self.log_file.open("ab") as log:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "harness.crash_worker", "--task-queue", self.task_queue],
                cwd=REPO,
                env=self.env,
                stdout=subprocess.DEVNULL,
                stderr=log,
                start_new_session=True,
            )

    def died(self) -> bool:
        return self.proc is not None and self.proc.poll() is not None

    def events(self) -> list[dict[str, Any]]:
        if not self.journal.exists():
            return []
        return [json.loads(line) for line in self.journal.read_text().splitlines() if line.strip()]


# --------------------------------------------------------------------------- #
# Scenarios
# --------------------------------------------------------------------------- #


@dataclass
class Started:
    """A run in progress and what its final state is judged against."""

    handle: WorkflowHandle
    context: dict[str, Any] = field(default_factory=dict)


class Scenario:
    """One release or failover on the real platform, restartable from the same state."""

    name = ""

    async def reset(self) -> None:
        """Back to the starting state (outside any count)."""

    def taps(self) -> list[RouterTap]:
        return []

    def logs(self) -> dict[str, LogLines]:
        return {}

    async def start(self, client: Client, task_queue: str) -> Started:
        raise NotImplementedError

    async def final_state(self, started: Started, result: Any) -> dict[str, Any]:
        raise NotImplementedError

    def env(self, task_queue: str) -> dict[str, str]:
        raise NotImplementedError

    tmp: Path


class ReleaseScenario(Scenario):
    """Canary, blue-green or rolling on the single-region stack (:class:`harness.stack.Stack`)."""

    PLANS: Mapping[str, str] = {
        # Weight, a 1 s pause, a one-measurement analysis, then promotion.
        "canary": "- set_weight: 50\n- pause: {duration: 1s}\n- analysis: {templates: [error-rate]}",
        # The same judged against a fresh baseline: its instance beside the canary, the judge
        # watching in chunks, a gate, the baseline stopped at promotion.
        "canary-judged": "- set_weight: 50\n- analysis: {templates: [judge]}",
        # Green at full size, 5 requests through the preview route, automatic switch, no delay.
        "blue-green": "preview_requests: 5\nscale_down_delay: 0s",
        # Two instances, one at a time, each old one drained before it stops.
        "rolling": "max_surge: 1\nmax_unavailable: 0\ndrain_timeout: 10s",
    }

    def __init__(self, stack: Stack, strategy: str, new_version: Callable[[], str]) -> None:
        self.name = strategy
        self.stack, self.strategy, self.new_version = stack, strategy.removesuffix("-judged"), new_version
        self.tmp = stack.tmp

    def env(self, task_queue: str) -> dict[str, str]:
        return self.stack.env(task_queue)

    def spec(self, version: str) -> ReleaseSpec:
        if self.name == "canary-judged":
            watch = "background_analysis: {templates: [judge], chunk: 3s}"
            return self.stack.spec(version, self.PLANS[self.name], min_requests=20, window="4s", canary=watch)
        if self.strategy == "canary":
            return self.stack.spec(version, self.PLANS["canary"], count=1)
        return self.stack.strategy_spec(version, self.strategy, self.PLANS[self.strategy])

    def live(self) -> tuple[str, list[Any]]:
        """The pool users reach, and its running instances."""
        pools = {s.name.rstrip("0123456789") for s in self.stack.haproxy.servers("app") if s.weight > 0}
        assert len(pools) == 1, f"traffic split across {pools}"
        pool = pools.pop()
        return pool, [i for i in InstanceManager(self.stack.layout).list() if i.pool == pool]

    async def reset(self) -> None:
        await asyncio.to_thread(self._reset)

    def _reset(self) -> None:
        """One pool live with every instance of one version; the other empty; the same router weights."""
        pool, running = self.live()
        other = next(p for p in POOLS if p != pool)
        manager = InstanceManager(self.stack.layout)
        manager.stop(other)
        manager.stop(BASELINE_POOL)
        assert len({i.version for i in running}) == 1 and len(running) == 2, running
        members = [
            Instance(pool=i.pool, slot=i.slot, version=i.version, address=f"127.0.0.1:{i.port}", healthy=True)
            for i in running
        ]
        router = HAProxyRouter(self.spec("v0.0.1").environment)
        router.set_traffic(weights={pool: 100, other: 0}, members={pool: members})
        router.set_preview(members=[])

    def taps(self) -> list[RouterTap]:
        return [RouterTap(self.stack.layout.haproxy_sock, ("app", "preview"), "router")]

    def logs(self) -> dict[str, LogLines]:
        return {"instance_starts": instance_starts([self.stack.layout])}

    async def start(self, client: Client, task_queue: str) -> Started:
        pool, running = await asyncio.to_thread(self.live)
        version = self.new_version()
        handle, attached = await start_or_attach(client, self.spec(version), task_queue=task_queue)
        assert not attached
        context = {"old_pool": pool, "old_version": running[0].version, "version": version}
        return Started(handle, context)

    async def final_state(self, started: Started, result: ReleaseResult) -> dict[str, Any]:
        return await asyncio.to_thread(self._final_state, started.context, result)

    def _final_state(self, ctx: dict[str, Any], result: ReleaseResult) -> dict[str, Any]:
        old_pool = ctx["old_pool"]
        role = {ctx["version"]: "new", ctx["old_version"]: "old"}
        pool_role = {
            old_pool: "old pool",
            next(p for p in POOLS if p != old_pool): "new pool",
            BASELINE_POOL: "baseline pool",
        }
        weights = self.stack.weights()
        total = sum(weights.values()) or 1
        preview = HAProxyRouter(self.spec("v0.0.1").environment).read_preview()
        return {
            "outcome": result.outcome,
            "live": role.get(result.live_version or "", result.live_version),
            "split": {pool_role[p]: round(100 * w / total) for p, w in sorted(weights.items())},
            "instances": sorted(
                (pool_role[i.pool], role.get(i.version, i.version), i.healthy)
                for i in InstanceManager(self.stack.layout).list()
            ),
            "served": sorted({role.get(v, v) for v in self.stack.count_versions(20)}),
            "preview": len(preview),
        }


class FailoverScenario(Scenario):
    """A DR failover A -> B on the two-region stack (:class:`harness.dr_stack.DrStack`), pre-approved."""

    name = "dr-failover"

    def __init__(self, dr_stack: DrStack) -> None:
        self.stack = dr_stack
        self.tmp = dr_stack.tmp

    def env(self, task_queue: str) -> dict[str, str]:
        return self.stack.env(task_queue)

    async def reset(self) -> None:
        await asyncio.to_thread(self.stack.reset)

    def taps(self) -> list[RouterTap]:
        dr = self.stack.dr
        taps = [RouterTap(dr.region(r).haproxy_sock, ("app",), f"router {r}") for r in dr.regions]
        return [*taps, RouterTap(GlobalEntry(dr).paths.haproxy_sock, ("regions",), "global entry")]

    def logs(self) -> dict[str, LogLines]:
        dr = self.stack.dr
        return {
            "instance_starts": instance_starts([dr.region(r) for r in dr.regions]),
            "promotions": LogLines([(dr.pg_root, "*.log")], r"selected new timeline ID"),
        }

    async def start(self, client: Client, task_queue: str) -> Started:
        request = FailoverRequest(
            dr=self.stack.spec(), to_region="B", requested_by="crash-matrix", approved_by="alice"
        )
        handle = await client.start_workflow(
            "DrFailover",
            request,
            id=f"dr-crash-{uuid.uuid4().hex[:8]}",
            task_queue=task_queue,
            result_type=DrResult,
        )
        return Started(handle)

    async def final_state(self, started: Started, result: DrResult) -> dict[str, Any]:
        return await asyncio.to_thread(self._final_state, result)

    def _final_state(self, result: DrResult) -> dict[str, Any]:
        dr = self.stack.dr
        instances = {
            r: sorted((i.pool, i.version, i.healthy) for i in InstanceManager(dr.region(r)).list())
            for r in dr.regions
        }
        return {
            "outcome": result.outcome,
            "topology": self.stack.topology(),
            "instances": instances,
            "timeline": {r: _timeline(dr, r) for r in dr.regions},
        }


class WholeAppScenario(Scenario):
    """A whole-app release (api and worker, regions A then B) on the two-region platform
    (:mod:`harness.whole_app`), the worker without its gate: the activities' order is then the
    same in every run, so a kill point names the same activity in the reference and the case."""

    name = "whole-app"

    def __init__(self, site: PlatformLayout, tmp: Path, new_version: Callable[[], str]) -> None:
        self.site, self.tmp, self.new_version = site, tmp, new_version

    def env(self, task_queue: str) -> dict[str, str]:
        return {
            **os.environ,
            "TEMPORAL_ADDRESS": f"127.0.0.1:{self.site.home_layout.temporal_port}",
            "DEPLOY_TASK_QUEUE": task_queue,
        }

    async def reset(self) -> None:
        await asyncio.to_thread(self._reset)

    def _reset(self) -> None:
        """Every component in every region on one version in one pool (a leftover idle pool stopped)."""
        for name in self.site.regions:
            layout = self.site.region(name)
            for component in (API, WORKER):
                manager = InstanceManager(layout, component)
                serving = {i.pool for i in manager.list(probe=False)}
                assert len(serving) == 1, f"{component} in {name} runs in {serving}"
                for pool in pools_of(component):
                    if pool not in serving:
                        manager.stop(pool)

    def taps(self) -> list[RouterTap]:
        return [
            RouterTap(self.site.region(r).haproxy_sock, ("app", "preview"), f"router {r}")
            for r in self.site.regions
        ]

    def logs(self) -> dict[str, LogLines]:
        return {
            "instance_starts": instance_starts([self.site.region(r) for r in self.site.regions], workers=True)
        }

    async def start(self, client: Client, task_queue: str) -> Started:
        before = await asyncio.to_thread(self._running)
        version = self.new_version()
        pipeline = whole_app.pipeline(self.site, version, requested_by="crash-matrix", gate=False)
        handle, attached = await start_or_attach(client, pipeline, task_queue=task_queue)
        assert not attached
        old = {v for _, _, _, v in before}
        assert len(old) == 1, before
        pools = {(r, c): p for r, c, p, _ in before}
        return Started(handle, {"version": version, "old_version": old.pop(), "old_pools": pools})

    def _running(self) -> list[tuple[str, str, str, str]]:
        return sorted(
            (r, c, i.pool, i.version)
            for r in self.site.regions
            for c in (API, WORKER)
            for i in InstanceManager(self.site.region(r), c).list(probe=False)
        )

    async def final_state(self, started: Started, result: ReleaseResult) -> dict[str, Any]:
        return await asyncio.to_thread(self._final_state, started.context, result)

    def _final_state(self, ctx: dict[str, Any], result: ReleaseResult) -> dict[str, Any]:
        role = {ctx["version"]: "new", ctx["old_version"]: "old"}
        instances = {}
        for r in self.site.regions:
            for c in (API, WORKER):
                old_pool = ctx["old_pools"][(r, c)]
                instances[f"{c} {r}"] = sorted(
                    (
                        "old pool" if i.pool == old_pool else "new pool",
                        role.get(i.version, i.version),
                        i.healthy,
                    )
                    for i in InstanceManager(self.site.region(r), c).list()
                )
        with httpx.Client(timeout=5) as http:
            served = {http.get(self.site.global_url).headers.get("x-version", "none") for _ in range(20)}
        return {
            "outcome": result.outcome,
            "targets": [(f"{t.component} in {t.region}", t.verdict) for t in result.status.targets],
            "instances": instances,
            "versions": {
                r: {c: role.get(v, v) for c, v in local_dr.versions(self.site, r).items()}
                for r in self.site.regions
            },
            "served": sorted(role.get(v, v) for v in served),
        }


def _timeline(dr: Any, region: str) -> int | None:
    """The PostgreSQL timeline a node is on (a promotion starts a new one)."""
    try:
        with local_dr.node(dr, region).connect(timeout=2) as conn:
            row = conn.execute("SELECT timeline_id FROM pg_control_checkpoint()").fetchone()
            if not conn.execute("SELECT pg_is_in_recovery()").fetchone()[0]:  # type: ignore[index]
                wal = conn.execute("SELECT pg_walfile_name(pg_current_wal_lsn())").fetchone()
                return int(wal[0][:8], 16)  # type: ignore[index]
            return int(row[0]) if row else None  # type: ignore[index]
    except psycopg.Error:
        return None


# --------------------------------------------------------------------------- #
# Running cases
# --------------------------------------------------------------------------- #


@dataclass
class Step:
    """One activity of the undisturbed run (#``number`` of its workflow)."""

    number: int
    name: str
    heartbeats: int
    workflow: str = ""
    """The id of the workflow that ran it (activities are numbered per workflow)."""


@dataclass
class Case:
    """One run of a scenario with its kill points, and what it left behind."""

    scenario: str
    points: list[Point]
    state: dict[str, Any]
    counts: dict[str, int]
    seconds: float
    kills: list[dict[str, Any]]
    restarts: int
    steps: list[Step]
    verdict: str = ""
    passed: bool = True

    def judge(self, reference: Case) -> Case:
        """Pass: every kill happened, the same final state, no side effect more often than the reference."""
        problems = []
        killed = {e["point"] for e in self.kills}
        missing = [str(p) for p in self.points if str(p) not in killed]
        if missing:
            problems.append(f"no kill at {', '.join(missing)}")
        for key in sorted(set(reference.state) | set(self.state)):
            if self.state.get(key) != reference.state.get(key):
                problems.append(f"{key}: {self.state.get(key)!r} != {reference.state.get(key)!r}")
        for key in SIDE_EFFECTS:
            if key in reference.counts and self.counts.get(key) != reference.counts[key]:
                problems.append(f"{key} {self.counts.get(key)} (undisturbed {reference.counts[key]})")
        self.passed, self.verdict = not problems, "; ".join(problems)
        return self

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Case:
        """Back from ``dataclasses.asdict`` (JSON): to print a matrix again."""
        return cls(
            **{
                **data,
                "points": [Point(**p) for p in data["points"]],
                "steps": [Step(**s) for s in data["steps"]],
            }
        )

    def how(self, point: Point) -> str:
        return next((e["how"] for e in self.kills if e["point"] == str(point)), "")


async def run_case(scenario: Scenario, client: Client, points: list[Point], *, within: float = 300.0) -> Case:
    """Run the scenario once from its starting state, restarting the worker each time it dies."""
    await scenario.reset()
    task_queue = f"crash-{uuid.uuid4().hex[:10]}"
    journal = scenario.tmp / f"journal-{task_queue}.jsonl"
    worker = CrashWorker(
        scenario.env(task_queue), scenario.tmp / f"worker-{task_queue}.log", task_queue, points, journal
    )
    logs = scenario.logs()
    started_at = time.monotonic()
    with contextlib.ExitStack() as stack:
        taps = [stack.enter_context(tap) for tap in scenario.taps()]
        for counter in logs.values():
            counter.mark()
        worker.start()
        try:
            started = await scenario.start(client, task_queue)
            result_task = asyncio.ensure_future(started.handle.result())
            deadline = time.monotonic() + within
            while not result_task.done():
                if worker.died():
                    # Each kill point kills once (first attempts only): more deaths are a broken worker.
                    assert worker.starts <= len(points), f"the worker keeps dying: {worker.log_file}"
                    worker.start()  # at once, as a supervisor would
                assert time.monotonic() < deadline, f"{scenario.name} {points}: no result after {within:g}s"
                await asyncio.wait({result_task}, timeout=0.1)
            result = result_task.result()
        finally:
            worker.kill()
        seconds = time.monotonic() - started_at
        counts = {
            "router_changes": sum(t.changes for t in taps),
            "router_commands": sum(t.commands for t in taps),
        }
        for key, counter in logs.items():
            lines = counter.lines()
            counts[key] = _pids(lines) if key == "instance_starts" else len(lines)
    events = worker.events()
    return Case(
        scenario=scenario.name,
        points=points,
        state=await scenario.final_state(started, result),
        counts=counts,
        seconds=round(seconds, 1),
        kills=[e for e in events if e["event"] == "kill"],
        restarts=worker.starts - 1,
        steps=_steps(events),
    )


def _steps(events: list[dict[str, Any]]) -> list[Step]:
    """Activities in scheduling order, from the journal of an undisturbed run: workflow by workflow
    (in the order they first ran an activity), each in its own numbering."""
    steps: dict[tuple[int, int], Step] = {}
    order: dict[str, int] = {}
    for e in events:
        if e["event"] == "end" and isinstance(e.get("activity"), int):
            workflow = e.get("workflow", "")
            rank = order.setdefault(workflow, len(order))
            steps[(rank, e["activity"])] = Step(e["activity"], e["name"], e.get("heartbeats", 0), workflow)
    return [steps[k] for k in sorted(steps)]


def all_points(steps: list[Step]) -> list[Point]:
    """Every boundary (before and after each activity) and the middle of each that heartbeats."""
    out = []
    for s in steps:
        out += [Point("before", s.number), Point("after", s.number)]
        if s.heartbeats:
            out.append(Point("mid", s.number))
    return out


def find(steps: list[Step], name: str, occurrence: int = 1) -> int:
    """The number of the ``occurrence``-th activity called ``name`` (1-based)."""
    numbers = [s.number for s in steps if s.name == name]
    assert len(numbers) >= occurrence, f"{name} #{occurrence} not in {[s.name for s in steps]}"
    return numbers[occurrence - 1]


# --------------------------------------------------------------------------- #
# The printed matrix
# --------------------------------------------------------------------------- #


def counts_text(counts: Mapping[str, int]) -> str:
    """``r14 (c16) i2 p0``: router changes (commands), instance starts, promotions."""
    text = f"r{counts.get('router_changes', 0)} (c{counts.get('router_commands', 0)})"
    text += f" i{counts.get('instance_starts', 0)}"
    if "promotions" in counts:
        text += f" p{counts['promotions']}"
    return text


def render(reference: Case, cases: list[Case]) -> str:
    """One block per scenario: activity rows, before / after / mid columns, each PASS or FAIL with counts."""
    by_point = {str(c.points[0]): c for c in cases if len(c.points) == 1}
    lines = [f"{reference.scenario}: undisturbed {reference.seconds:g}s, {counts_text(reference.counts)}"]
    if by_point:
        lines.append(f"  {'#':>2}  {'activity':<24}" + "".join(f"{k:<30}" for k in KINDS))
    for step in reference.steps if by_point else []:
        cells = []
        for kind in KINDS:
            case = by_point.get(f"{kind}:{step.number}")
            if case is None:
                cells.append("-" if kind == "mid" and not step.heartbeats else "(not run)")
                continue
            mark = "PASS" if case.passed else "FAIL"
            if kind == "mid" and "returned before" in case.how(Point(kind, step.number)):
                mark += "*"
            cells.append(f"{mark} {counts_text(case.counts)} +{case.seconds - reference.seconds:.0f}s")
        lines.append(f"  {step.number:>2}  {step.name:<24}" + "".join(f"{c:<30}" for c in cells))
    multi = [c for c in cases if len(c.points) > 1]
    for case in multi:
        mark = "PASS" if case.passed else "FAIL"
        names = ", ".join(f"{p} ({_name(reference, p)})" for p in case.points)
        lines.append(f"  one run, {len(case.points)} kills [{names}]:")
        lines.append(
            f"    {mark} {counts_text(case.counts)} {case.seconds:g}s (undisturbed {reference.seconds:g}s)"
        )
    single = sorted(by_point.values(), key=lambda c: c.seconds)
    if single:
        costs = [c.seconds - reference.seconds for c in single]
        passed = sum(c.passed for c in single)
        lines.append(
            f"  {passed}/{len(single)} passed; a kill cost +{min(costs):.0f}s to +{max(costs):.0f}s "
            f"(median +{sorted(costs)[len(costs) // 2]:.0f}s) over the undisturbed run"
        )
    for case in cases:
        if not case.passed:
            lines.append(f"  FAIL {','.join(map(str, case.points))}: {case.verdict}")
    return "\n".join(lines)


def _name(reference: Case, point: Point) -> str:
    found = (
        s.name for s in reference.steps if s.number == point.activity and s.workflow.endswith(point.workflow)
    )
    return next(found, "?")


LEGEND = (
    "cells: PASS/FAIL, then what the platform saw: rN router changes (cN runtime-API write commands;\n"
    "an idempotent retry may re-send a no-op), iN instance processes started, pN PostgreSQL promotions;\n"
    "then +Ns: the run's wall time minus the undisturbed run's (retry timeout, worker restart, replays).\n"
    "PASS* = a mid point where the body returned before the kill (killed before its result was reported)."
)
