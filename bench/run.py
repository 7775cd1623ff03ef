"""The benchmark of the deployment engine: P1-P8 on the local platform, one command, one table.

    .venv/bin/python bench/run.py [--quick] [--json FILE] [--rps 50] [--only P1,P7,...]
        [--zero-downtime-only | --resilience-only | --scale-only | --dr-only]

With no flags it measures every metric of the benchmark suite in one run (about
8-10 minutes on a 2-core machine) and prints ONE table (metric | measured |
target | verdict), then the raw samples. Exit code 2 if any target is missed.

    P1  engine overhead per step                      (bench/step_overhead.py)
    P2  bad canary to 100 % stable                     (bench/bad_canary.py)
    P3  failed requests of a bad 5 % canary / minimum  (bench/resilience.py)
    P4  failed requests, blue-green and rolling        (bench/zero_downtime.py, Z1-Z4)
    P5  DR RTO and lost writes, sync and async         (bench/dr.py)
    P6  worker killed mid-step -> step resuming        (bench/resilience.py)
    P7  concurrent releases one worker holds           (bench/scale.py, simulated providers)
    P8  starters/deploy.py start -> workflow running   (bench/resilience.py)
    J   the canary judge: false rollbacks, bad canaries caught, time to verdict, healthy
        release duration; against today's threshold templates   (bench/judge.py)
    W   the whole app (2 components x 2 regions): engine time per step against the api
        alone in one region (W1), what the standby region adds beyond its own work (W2)
                                                                 (bench/whole_app.py)
    D   the release dashboard's list and release pages with 100 releases in the history
        (simulated providers; HTTP load time of each page, target < 1 s)  (bench/dashboard.py)
    U   undo within the rollback window, per strategy: from ``control.py undo`` to every user back
        on the previous version at the router (target <= 2 s, 0 failed requests under load),
        beside a normal release of it                                  (bench/undo.py)

Each module's docstring defines its rows. Three phases, each on its own throw-away
stack and torn down before the next (also on failure and Ctrl-C):

1. the local platform (P1, P2, P3, P4, P6, P8): HAProxy, Prometheus, three
   instances of the sample service, a load generator and a Temporal dev server, in
   a temporary state directory on a free block of loopback ports; the engine's
   worker runs in this process on its own task queue (P6 uses worker processes);
2. P7: a Temporal dev server of its own and one worker process, with the
   simulated providers (no I/O);
3. P5: a fresh two-region stack per replication mode (bench/dr.py);
4. J: simulated releases (seconds), then real ones on a platform of their own (bench/judge.py);
5. W: the two-region platform with workers and jobs (bench/whole_app.py).

``--only`` picks metrics (e.g. ``--only P1,P2``); the ``--*-only`` flags are
shorthands (zero downtime = P4, resilience = P3, P6, P8, scale = P7, dr = P5).

What is measured, and how: the module of each metric says (P1 bench/step_overhead.py,
P2 bench/bad_canary.py, both observing the router through bench/router_watch.py).
The table and the raw samples are rendered by bench/report.py.

Every phase is bounded (hard limits below) and uses loopback only.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import shutil
import signal
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict
from pathlib import Path
from typing import Any

import worker
from activities.router.haproxy import HAProxyRouter
from bench import dashboard, dr, resilience, scale, undo, whole_app, zero_downtime
from bench import judge as judging
from bench.bad_canary import P2_CONFIG, RollbackSample, run_p2_once
from bench.common import CONFIG_HEAD, INSTANCES, STABLE_VERSION, make_spec
from bench.report import Row, build_rows, render_raw, render_run, render_table
from bench.router_watch import RouterWatch
from bench.step_overhead import GateSample, router_cost, run_baseline, run_p1
from engine import log as engine_log
from engine import temporal
from engine.contracts import POOLS
from infrastructure.local import platform
from infrastructure.local.layout import Layout
from infrastructure.local.prometheus import Prometheus
from infrastructure.local.regions import PlatformLayout

STANDBY_INSTANCES = 1
"""API instances in region B, where users are not (the platform phase measures in A)."""
MEASURE_BUDGET_S = 170.0
"""Hard limit on P1, P2 and P4 after the platform is up (the platform's own start is ~10 s)."""
RESILIENCE_BUDGET_S = 260.0
"""Added to the limit when the resilience rows (P8, P6, P3: bench/resilience.py) run."""
SCALE_BUDGET_S = 420.0
"""Hard limit on P7 (bench/scale.py)."""
DR_BUDGET_S = 300.0
"""Hard limit on P5 (bench/dr.py: two fresh two-region stacks)."""
WHOLE_APP_BUDGET_S = 900.0
"""Hard limit on W (bench/whole_app.py: 3 single and 3 whole-app releases, ~1 min each)."""
DASHBOARD_BUDGET_S = 600.0
"""Hard limit on D (bench/dashboard.py: 101 simulated releases, then the page loads)."""
JUDGE_BUDGET_S = 3000.0
"""Hard limit on J's real releases (15 of them, the 0.5 % ones for minutes each)."""
UNDO_BUDGET_S = 900.0
"""Hard limit on U (bench/undo.py: 5 releases and 4 undos per strategy, each undo under load >= 12 s)."""

METRICS = ("P1", "P2", "P3", "P4", "P5", "P6", "P7", "P8", "J", "W", "D", "U")
PLATFORM_METRICS = frozenset({"P1", "P2", "P3", "P4", "P6", "P8"})
SHORTHANDS = {
    "zero_downtime_only": frozenset({"P4"}),
    "resilience_only": frozenset({"P3", "P6", "P8"}),
    "scale_only": frozenset({"P7"}),
    "dr_only": frozenset({"P5"}),
}

# --------------------------------------------------------------------------- #
# The phases and the command
# --------------------------------------------------------------------------- #


async def measure(
    site: PlatformLayout,
    args: argparse.Namespace,
    watch: RouterWatch,
    report: dict[str, Any],
    selected: frozenset[str],
) -> tuple[list[Row], str]:
    """The platform phase: the rows and raw samples of P1, P2, P3, P4, P6, P8 (those selected)."""
    layout = site.home_layout
    tag = f"{os.getpid()}-{int(time.time())}"
    task_queue = f"deploy-bench-{tag}"
    client = await temporal.connect(target_host=f"127.0.0.1:{layout.temporal_port}")
    # Every instance scraped before anything is measured.
    await asyncio.to_thread(Prometheus(layout).wait_targets_up, INSTANCES + STANDBY_INSTANCES, 30)
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
                zd = await zero_downtime.run(
                    client, task_queue, layout, CONFIG_HEAD, tag, url=site.global_url
                )
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
    """Bring the local platform up (regions A and B, the global entry in front), measure in A, tear
    it down (also on failure)."""
    site = PlatformLayout.for_tests(tmp / "platform")
    layout = site.home_layout
    report.update(port_base=layout.port_base, state_dir=str(layout.state_dir))
    watch = RouterWatch(layout, interval=args.poll_ms / 1000)
    try:
        print(
            f"bringing up the platform in {layout.state_dir} "
            f"(regions {', '.join(site.regions)}, ports from {site.port_base})",
            flush=True,
        )
        t = time.monotonic()
        up = platform.up(
            site,
            stable_version=STABLE_VERSION,
            instances=INSTANCES,
            standby_instances=STANDBY_INSTANCES,
            traffic_rps=args.rps,
        )
        report["platform_up_s"] = round(time.monotonic() - t, 2)
        report["platform_timings"] = up.get("timings", {})
        print(f"platform up in {report['platform_up_s']}s", flush=True)
        watch.start()
        budget = MEASURE_BUDGET_S + (RESILIENCE_BUDGET_S if selected & {"P3", "P6", "P8"} else 0.0)
        return asyncio.run(asyncio.wait_for(measure(site, args, watch, report, selected), timeout=budget))
    finally:
        watch.stop()
        with contextlib.suppress(KeyboardInterrupt):
            signal.signal(signal.SIGINT, signal.SIG_IGN)  # a second Ctrl-C must not skip the teardown
            platform.down(site, purge=not args.keep)
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


def judge_phase(args: argparse.Namespace, report: dict[str, Any], tmp: Path) -> tuple[list[Row], str]:
    """J: simulated streams for both judges, then real releases confirming the judge's verdicts."""
    print("J: simulated releases, the judge and today's templates on the same streams", flush=True)
    res = judging.run_simulations(args.quick)
    layout = Layout.for_tests(tmp / "judge")
    tag = f"j{os.getpid()}-{int(time.time())}"
    try:
        print(f"J: real releases on the local platform ({judging.REAL_LOAD_RPS} requests/s)", flush=True)
        platform.up(
            layout, stable_version=STABLE_VERSION, instances=INSTANCES, traffic_rps=judging.REAL_LOAD_RPS
        )

        async def real() -> None:
            client = await temporal.connect(target_host=f"127.0.0.1:{layout.temporal_port}")
            await asyncio.to_thread(Prometheus(layout).wait_targets_up, INSTANCES, 30)
            with ThreadPoolExecutor(max_workers=32, thread_name_prefix="activity") as executor:
                async with worker.build_worker(client, f"bench-judge-{tag}", executor):
                    await judging.run_real(
                        client, f"bench-judge-{tag}", layout, CONFIG_HEAD, tag=tag, quick=args.quick, res=res
                    )

        asyncio.run(asyncio.wait_for(real(), timeout=JUDGE_BUDGET_S))
    finally:
        with contextlib.suppress(KeyboardInterrupt):
            platform.down(layout, purge=not args.keep)
    report["judge"] = judging.report(res)
    return [Row(*r) for r in judging.rows(res)], judging.raw(res)


def whole_app_phase(args: argparse.Namespace, report: dict[str, Any], tmp: Path) -> tuple[list[Row], str]:
    print("W: the api alone in A, then the whole app in A and B, alternately", flush=True)
    runs = 1 if args.quick else 3
    results = asyncio.run(asyncio.wait_for(whole_app.run(tmp / "whole", runs), timeout=WHOLE_APP_BUDGET_S))
    report["whole_app"] = [asdict(r) for r in results]
    return [Row(*r) for r in whole_app.rows(results)], whole_app.raw(results)


def dashboard_phase(args: argparse.Namespace, report: dict[str, Any], tmp: Path) -> tuple[list[Row], str]:
    print("D: 100 simulated releases, then the dashboard's pages loaded over HTTP", flush=True)
    workdir = tmp / "dashboard"
    workdir.mkdir(parents=True, exist_ok=True)
    res = asyncio.run(
        asyncio.wait_for(dashboard.run(workdir, loads=5 if args.quick else 10), timeout=DASHBOARD_BUDGET_S)
    )
    report["dashboard"] = dashboard.report(res)
    return [Row(*r) for r in dashboard.rows(res)], dashboard.raw(res)


def undo_phase(args: argparse.Namespace, report: dict[str, Any], tmp: Path) -> tuple[list[Row], str]:
    print(
        "U: undo within the rollback window per strategy, beside a normal release of the old version",
        flush=True,
    )
    runs = 1 if args.quick else 3
    results = asyncio.run(asyncio.wait_for(undo.run(tmp / "undo", runs), timeout=UNDO_BUDGET_S))
    report["undo"] = [{"fast": [asdict(f) for f in fast], "normal": asdict(n)} for fast, n in results]
    return [Row(*r) for r in undo.rows(results)], undo.raw(results)


def _raise_interrupt(_signum: int, _frame: object) -> None:
    raise KeyboardInterrupt


def _metric(row: Row) -> int:
    """Position of a row's metric (P1..P8) in the table; rows keep their order within a metric."""
    head = row.metric.split()[0]
    head = head[0] if head[0] in "JWDU" else head
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
    every_phase = [
        ("platform", bool(selected & PLATFORM_METRICS), lambda: platform_phase(args, report, selected, tmp)),
        ("P7", "P7" in selected, lambda: scale_phase(args, report, tmp)),
        ("P5", "P5" in selected, lambda: dr_phase(args, report, tmp)),
        ("J", "J" in selected, lambda: judge_phase(args, report, tmp)),
        ("W", "W" in selected, lambda: whole_app_phase(args, report, tmp)),
        ("D", "D" in selected, lambda: dashboard_phase(args, report, tmp)),
        ("U", "U" in selected, lambda: undo_phase(args, report, tmp)),
    ]
    phases = [(name, phase) for name, wanted, phase in every_phase if wanted]
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
        print(render_run(report))
        if any(r.verdict == "FAIL" for r in rows):
            code = code or 2
    if args.json:
        args.json.write_text(json.dumps(report, indent=1, default=str))
    return code


if __name__ == "__main__":
    sys.exit(main())
