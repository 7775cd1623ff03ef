"""Zero downtime, measured: failed requests of a constant load through the router.

Called from ``bench/run.py`` (its table gets one row per case). A load client
(:func:`infrastructure.local.traffic.run_load`: loopback only, paced, bounded in
requests and in time) sends GETs through the public entry (the two-region platform's
global entry, in front of region A's router) while the engine runs:

Z1  a blue-green switch (green at full size, preview checked, all users moved at once);
Z2  a blue-green rollback flip (an abort inside the scale-down delay: back to blue);
Z3  a full rolling update (batches of one, surge 1: drain, then stop);
Z4  a rolling rollback (an abort after the first batch: batches restored in reverse).

Each case counts every request sent from before the engine acts until it is done,
and at least ``MIN_REQUESTS``. A failed request is an HTTP status >= 400 or a
transport error; the target is 0 in every case.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from temporalio.client import Client, WorkflowHandle
from temporalio.service import RPCError

from engine.config import parse_config, resolve_release
from engine.contracts import Control, LocalSettings, ReleaseResult, ReleaseSpec, ReleaseStatus
from infrastructure.local.layout import Layout
from infrastructure.local.traffic import LoadSummary, run_load

MIN_REQUESTS = 5_000
MAX_REQUESTS = 60_000
MAX_SECONDS = 120.0
RPS = 400.0
THREADS = 8

STRATEGIES = """
  blue_green:
    auto_promotion_enabled: true
    auto_promotion_delay: 1s
    preview_requests: 20
    scale_down_delay: 10m
  rolling:
    max_surge: 1
    max_unavailable: 0
    batch_pause: %s
"""


@dataclass
class Case:
    name: str
    version: str
    outcome: str
    load: LoadSummary
    engine_s: float

    @property
    def row(self) -> tuple[str, str, str, str]:
        expected = self.outcome in ("switched", "succeeded", "rolled_back")
        ok = expected and self.load.failed == 0 and self.load.sent >= MIN_REQUESTS
        measured = (
            f"{self.load.failed} failed / {self.load.sent} requests "
            f"({self.engine_s:.1f} s of engine work, p95 {self.load.p95_ms:.0f} ms)"
        )
        return (
            f"P4 {self.name}: failed requests under load",
            measured,
            f"0 of >= {MIN_REQUESTS}",
            "PASS" if ok else "FAIL",
        )


class Load:
    """The load client in a thread, until stopped (at least MIN_REQUESTS) or bounded out."""

    def __init__(self, url: str, rps: float) -> None:
        self.url, self.rps = url, rps
        self.last: LoadSummary | None = None
        self.result: LoadSummary | None = None
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True, name="zero-downtime-load")

    def _run(self) -> None:
        self.result = run_load(
            self.url,
            self.rps,
            MAX_SECONDS,
            max_requests=MAX_REQUESTS,
            threads=THREADS,
            stop_event=self._stop,
            on_tick=self._tick,
        )

    def _tick(self, summary: LoadSummary) -> None:
        self.last = summary
        if self._stop_requested and summary.sent >= MIN_REQUESTS:
            self._stop.set()

    _stop_requested = False

    async def __aenter__(self) -> Load:
        self._thread.start()
        await asyncio.sleep(1.5)  # the load flows (first tick after 1 s) before the engine acts
        return self

    async def __aexit__(self, *_: object) -> None:
        self._stop_requested = True
        if self.last is not None and self.last.sent >= MIN_REQUESTS:
            self._stop.set()
        await asyncio.to_thread(self._thread.join, MAX_SECONDS + 10)


async def _wait(
    handle: WorkflowHandle, predicate: Callable[[ReleaseStatus], bool], within: float = 90
) -> None:
    deadline = time.monotonic() + within
    while True:
        with contextlib.suppress(RPCError):  # the first workflow task may not have run yet
            if predicate(await handle.query("status", result_type=ReleaseStatus)):
                return
        if time.monotonic() > deadline:
            msg = f"{handle.id}: the expected state never came"
            raise TimeoutError(msg)
        await asyncio.sleep(0.05)


async def run(
    client: Client, task_queue: str, layout: Layout, config_head: str, tag: str, *, url: str | None = None
) -> list[Case]:
    """The four cases, in order (each starts from what the previous one left live); the load goes to
    ``url`` (default: the region's router)."""
    local = LocalSettings(state_dir=str(layout.state_dir), port_base=layout.port_base)

    def spec(version: str, strategy: str, batch_pause: str = "0s") -> ReleaseSpec:
        text = config_head + "strategies:\n  canary: {steps: [{set_weight: 50}]}\n" + STRATEGIES % batch_pause
        config = parse_config(text, source="bench config")
        return resolve_release(config, version, strategy, "local", requested_by="bench", local=local)

    async def start(s: ReleaseSpec) -> WorkflowHandle:
        workflow = {"blue-green": "BlueGreenRelease", "rolling": "RollingRelease"}[s.strategy]
        return await client.start_workflow(
            workflow, s, id=f"bench-zd-{tag}-{s.version}", task_queue=task_queue, result_type=ReleaseResult
        )

    async def measured(name: str, version: str, act: Callable[[], Awaitable[str]]) -> Case:
        async with Load(url or layout.router_url, RPS) as load:
            t0 = time.monotonic()
            outcome = await act()
            engine_s = time.monotonic() - t0
        assert load.result is not None
        case = Case(name, version, outcome, load.result, engine_s)
        print(f"{name}: {case.row[1]} ({outcome})", flush=True)
        return case

    abort = Control(identity="bench", reason="zero-downtime benchmark")
    cases: list[Case] = []

    # Z1 + Z2: blue-green switch, then an abort inside the scale-down delay (a flip back).
    bg = await start(spec("v3.0.0", "blue-green"))

    async def switch() -> str:
        await _wait(bg, lambda s: s.step == "scale-down delay")
        return "switched"

    async def flip_back() -> str:
        await bg.execute_update("abort", abort)
        return (await bg.result()).outcome

    cases.append(await measured("Z1 blue-green switch", "v3.0.0", switch))
    cases.append(await measured("Z2 blue-green rollback flip", "v3.0.0", flip_back))

    # Z3: a full rolling update.
    async def rolling_update() -> str:
        return (await (await start(spec("v3.1.0", "rolling"))).result()).outcome

    cases.append(await measured("Z3 rolling update", "v3.1.0", rolling_update))

    # Z4: a rolling update aborted after its first batch: restored batch by batch.
    rb = await start(spec("v3.2.0", "rolling", batch_pause="10m"))
    await _wait(rb, lambda s: bool(s.decisions) and s.decisions[-1].what.startswith("pause "))

    async def rolling_rollback() -> str:
        await rb.execute_update("abort", abort)
        return (await rb.result()).outcome

    cases.append(await measured("Z4 rolling rollback", "v3.2.0", rolling_rollback))
    return cases


def report(cases: list[Case]) -> list[dict[str, Any]]:
    return [
        {
            "name": c.name,
            "version": c.version,
            "outcome": c.outcome,
            "engine_s": c.engine_s,
            **c.load.model_dump(),
        }
        for c in cases
    ]
