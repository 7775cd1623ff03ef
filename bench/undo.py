"""U: undo within the rollback window, from the command to every user back on the previous version.

    .venv/bin/python bench/run.py --only U        (or alone: .venv/bin/python bench/undo.py)

A local platform of its own (HAProxy, Prometheus, three instances, a Temporal dev server) and the
engine's worker in this process. For each strategy (canary, blue-green, rolling), under an app
name of its own (its own release history): X then Y are released through the Release workflow,
then ``python starters/control.py undo --as bench`` runs as a real process, within the window
(``rollback_window: {versions: 3}``: the fast path). Measured: from just before the command is
spawned (its Python start included) to the first read of the router (HAProxy's runtime API, polled
about every millisecond by :class:`bench.router_watch.RouterWatch`) with 100 % of the weight on
the pool X was started in; and the failed requests of the load generator of
``bench/zero_downtime.py`` (400 requests/s through the router, at least 5,000 per case) while it
runs. Three such undos per strategy (Y released again before each): their median and slowest are
reported (``--quick``: one). The baseline, side by side: Y released again, then the same undo
outside the window (``versions: 0``): a normal release of X by the strategy, its steps and analysis
included (each analysis three 1 s measurements of the version's 5xx rate: canary 20 % and 50 % each
analysed, blue-green 20 preview requests and a pre-promotion analysis, rolling one instance per
batch, each batch analysed), timed the same way. Target: within the window <= 2 s (the median), 0
failed requests (every undo), for every strategy. The machine's own load matters: the command's
Python start and the previous version's three instances starting (Python processes) are most of it.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import statistics
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from temporalio.client import Client

import worker as worker_module
from bench.common import CONFIG_HEAD, INSTANCES, STABLE_VERSION
from bench.router_watch import RouterWatch
from bench.zero_downtime import MIN_REQUESTS, RPS, Load
from engine import temporal
from engine.client import start_or_attach
from engine.config import parse_config, resolve_release
from engine.contracts import LocalSettings, ReleaseResult
from engine.pipeline import resolve_pipeline
from harness.support import REPO
from infrastructure.local import platform
from infrastructure.local.layout import Layout

TARGET_S = 2.0
STRATEGIES = ("canary", "blue-green", "rolling")
STEPS = """
  judged:
    metrics:
      - name: canary-5xx-rate
        query: >-
          (sum(rate(http_requests_total{version="{{canary_version}}",code=~"5.."}[5s])) or vector(0))
        success_condition: result < 1
        interval: 1s
        initial_delay: 1s
        count: 3
strategies:
  canary:
    steps:
      - set_weight: 20
      - analysis: {templates: [judged]}
      - set_weight: 50
      - analysis: {templates: [judged]}
  blue_green:
    preview_requests: 20
    pre_promotion_analysis: {templates: [judged]}
    scale_down_delay: 2s
  rolling:
    max_surge: 1
    max_unavailable: 0
    analysis: {templates: [judged]}
"""


@dataclass
class UndoSample:
    strategy: str
    fast: bool
    seconds: float
    """From the command's spawn to 100 % of the router's weight on the previous version's pool."""
    failed: int
    sent: int
    command_s: float
    """How long the command itself took (it returns once the undo's run has started)."""


class Bench:
    def __init__(self, client: Client, task_queue: str, layout: Layout, watch: RouterWatch, tag: str) -> None:
        self.client, self.task_queue, self.layout, self.watch, self.tag = (
            client,
            task_queue,
            layout,
            watch,
            tag,
        )
        self.local = LocalSettings(state_dir=str(layout.state_dir), port_base=layout.port_base)

    def config(self, app: str, window: str) -> str:
        head = CONFIG_HEAD.replace("name: sample-api,", f"name: {app},")
        head = head.replace(
            "    approvers: [bench]\n", f"    approvers: [bench]\n    rollback_window: {window}\n"
        )
        return head + STEPS

    async def release(self, app: str, version: str, strategy: str) -> None:
        config = parse_config(self.config(app, "{versions: 3}"), source="bench config")
        spec = resolve_release(config, version, strategy, "local", requested_by="bench", local=self.local)
        handle, _ = await start_or_attach(
            self.client, resolve_pipeline(config, spec), redeploy=True, task_queue=self.task_queue
        )
        result: ReleaseResult = await handle.result()
        if result.outcome != "succeeded":
            raise RuntimeError(
                f"{strategy} release of {version} (app {app}): {result.outcome}: {result.reason}"
            )

    async def undo(self, app: str, strategy: str, window: str, previous: str) -> UndoSample:
        """``control.py undo`` under load; timed to the router's 100 % on ``previous``'s pool."""
        path = Path(self.layout.state_dir) / f"{app}-{len(window)}.yaml"
        path.write_text(self.config(app, window))
        live = self.watch.read()
        target = next(p for p in ("blue", "green") if live.get(p, 0.0) < 100.0)
        env = {
            **os.environ,
            **self.layout.env(),
            "TEMPORAL_ADDRESS": f"127.0.0.1:{self.layout.temporal_port}",
            "DEPLOY_TASK_QUEUE": self.task_queue,
        }
        async with Load(self.layout.router_url, RPS) as load:
            t0 = time.time()
            proc = await asyncio.create_subprocess_exec(
                sys.executable,
                "starters/control.py",
                "undo",
                "--config",
                str(path),
                "--as",
                "bench",
                "--reason",
                "bench U",
                cwd=REPO,
                env=env,
                stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.STDOUT,
            )
            out, _ = await proc.communicate()
            command_s = time.time() - t0
            if proc.returncode != 0:
                raise RuntimeError(f"undo exited {proc.returncode}: {out.decode()[-500:]}")
            back = await self.watch.wait_for(t0, target, lambda share: share >= 100.0, within=180)
            workflow_id = temporal.release_workflow_id(app, "local")
            handle = self.client.get_workflow_handle(workflow_id, result_type=ReleaseResult)
            result: ReleaseResult = await handle.result()
        if result.outcome != "succeeded" or result.live_version != previous:
            raise RuntimeError(f"undo of {app}: {result.outcome}: {result.reason}")
        assert load.result is not None
        fast = "by the fast path" in out.decode()
        sample = UndoSample(strategy, fast, back.t - t0, load.result.failed, load.result.sent, command_s)
        kind = "fast path" if fast else "normal release"
        print(
            f"U {strategy} {kind}: traffic back in {sample.seconds:.2f} s "
            f"({sample.failed} failed / {sample.sent} requests)",
            flush=True,
        )
        return sample

    async def strategy(self, strategy: str, index: int, runs: int) -> Result:
        app = f"bench-undo-{strategy.replace('-', '')}-{self.tag}"
        x, y = f"v7.{index}.1", f"v7.{index}.2"
        await self.release(app, x, strategy)
        fast = []
        for _ in range(runs):
            await self.release(app, y, strategy)
            fast.append(await self.undo(app, strategy, "{versions: 3}", x))
        await self.release(app, y, strategy)
        normal = await self.undo(app, strategy, "{versions: 0}", x)
        return fast, normal


Result = tuple[list[UndoSample], UndoSample]
"""The undos within the window, and the baseline (a normal release of the previous version)."""


async def run(tmp: Path, runs: int = 3) -> list[Result]:
    """Bring a platform up in ``tmp``, measure every strategy, tear it down (also on failure)."""
    layout = Layout.for_tests(tmp / "undo")
    tag = f"{os.getpid()}-{int(time.time())}"
    watch = RouterWatch(layout)
    try:
        await asyncio.to_thread(
            platform.up, layout, stable_version=STABLE_VERSION, instances=INSTANCES, traffic_rps=20
        )
        watch.start()
        client = await temporal.connect(target_host=f"127.0.0.1:{layout.temporal_port}")
        task_queue = f"bench-undo-{tag}"
        with ThreadPoolExecutor(max_workers=32, thread_name_prefix="activity") as executor:
            async with worker_module.build_worker(client, task_queue, executor):
                bench = Bench(client, task_queue, layout, watch, tag)
                return [await bench.strategy(s, i, runs) for i, s in enumerate(STRATEGIES, start=1)]
    finally:
        watch.stop()
        with contextlib.suppress(KeyboardInterrupt):
            await asyncio.to_thread(platform.down, layout, purge=True)


def rows(results: list[Result]) -> list[tuple[str, str, str, str]]:
    out = []
    for fast, normal in results:
        median = statistics.median(s.seconds for s in fast)
        failed, sent = sum(s.failed for s in fast), sum(s.sent for s in fast)
        ok = all(s.fast and s.failed == 0 and s.sent >= MIN_REQUESTS for s in fast) and median <= TARGET_S
        out.append(
            (
                f"U undo {normal.strategy} within the window: command -> traffic back",
                f"median {median:.2f} s, max {max(s.seconds for s in fast):.2f} s (n={len(fast)}), "
                f"{failed} failed / {sent}; baseline, a normal {normal.strategy} release of it: "
                f"{normal.seconds:.2f} s, {normal.failed} failed / {normal.sent}",
                f"<= {TARGET_S:g} s, 0 failed",
                "PASS" if ok else "FAIL",
            )
        )
    return out


def raw(results: list[Result]) -> str:
    lines = ["U samples (seconds from the command's spawn to 100 % on the previous version at the router):"]
    for fast, normal in results:
        each = ", ".join(f"{s.seconds:.2f} (command {s.command_s:.2f})" for s in fast)
        baseline = f"normal {normal.seconds:.2f} (command {normal.command_s:.2f})"
        lines.append(f"  {normal.strategy:<10} fast {each}; {baseline}")
    return "\n".join(lines)


def main() -> int:
    with tempfile.TemporaryDirectory(prefix="bench-undo-") as tmp:
        results = asyncio.run(run(Path(tmp)))
    for row in rows(results):
        print(" | ".join(row))
    print(raw(results))
    return 0 if all(r[3] == "PASS" for r in rows(results)) else 2


if __name__ == "__main__":
    sys.exit(main())
