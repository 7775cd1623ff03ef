"""The full crash matrix: strategies x kill points -> pass/fail, on a throw-away local platform.

    .venv/bin/python bench/crash_matrix.py [--only canary,rolling] [--kinds after,mid] [--json FILE]

One command. It brings up a private single-region platform (HAProxy, Prometheus, two
sample instances, a load generator, a Temporal dev server) and a private two-region DR
stack (PostgreSQL primary in A with a synchronous standby in B, a router per region,
the global entry point), on free loopback ports in a temporary directory, and tears
both down at the end (also on failure and Ctrl-C).

For each of canary, blue-green, rolling and DR failover (plans in
``harness/crash_matrix.py``): one undisturbed run on the crash worker gives the reference
(final state, side-effect counts, the activities #1..#N), then one run per kill point:
the worker SIGKILLed before activity #K's body, after it returned but before its result
was reported, and 0.2 s after the first heartbeat of each activity that heartbeats;
restarted at once each time. Each run must end in the reference's final state with the
same number of router changes, instance starts and promotions, counted on the platform
(see ``harness/crash_matrix.py``). The release scenarios share one platform and run one
after the other; the DR scenario runs beside them on its own stack.

Most of a run's time is the retry timeout of the attempt that died with the worker
(the engine's production settings, unchanged): 15 s start-to-close for quick steps,
10 s heartbeat timeout for instance starts and stops, 2-3 s for analyses and DR's
slow steps, 20 s for DR's quick steps. Measured on a shared, loaded 2-core machine: 91
kill points in 40 minutes (the three release matrices one after the other; DR's 13
minutes beside them). ``--render FILE`` prints the matrix of an earlier ``--json FILE``.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import sys
import tempfile
import time
from dataclasses import asdict
from pathlib import Path

from engine import temporal
from harness.crash_matrix import (
    LEGEND,
    Case,
    FailoverScenario,
    ReleaseScenario,
    Scenario,
    all_points,
    render,
    run_case,
)
from harness.crash_worker import KINDS
from harness.dr_stack import DrStack
from harness.stack import Stack, new_version
from infrastructure.local import platform
from infrastructure.local.layout import Layout
from infrastructure.local.logs import configure_logging
from infrastructure.local.regions import PlatformLayout

SCENARIOS = ("canary", "blue-green", "rolling", "dr-failover")


async def matrix(scenario: Scenario, client: object, kinds: set[str]) -> list[Case]:
    reference = await run_case(scenario, client, [])  # type: ignore[arg-type]
    assert reference.state["outcome"] == "succeeded", reference.state
    print(
        f"{scenario.name}: undisturbed in {reference.seconds:g}s, {len(reference.steps)} activities",
        flush=True,
    )
    cases = []
    for point in [p for p in all_points(reference.steps) if p.kind in kinds]:
        case = (await run_case(scenario, client, [point])).judge(reference)  # type: ignore[arg-type]
        cases.append(case)
        mark = "PASS" if case.passed else f"FAIL ({case.verdict})"
        print(f"  {scenario.name} {point}: {mark} in {case.seconds:g}s", flush=True)
    return [reference, *cases]


async def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--only", default=",".join(SCENARIOS), help="comma-separated scenarios")
    parser.add_argument("--kinds", default=",".join(KINDS), help="kill point kinds: before,after,mid")
    parser.add_argument("--json", type=Path, help="write every case (points, state, counts) here")
    parser.add_argument("--render", type=Path, help="print the matrix of an earlier --json FILE, run nothing")
    args = parser.parse_args(argv)
    if args.render:
        return print_matrix([Case.from_dict(c) for c in json.loads(args.render.read_text())])
    only = [s for s in args.only.split(",") if s]
    unknown = set(only) - set(SCENARIOS)
    if unknown:
        parser.error(f"unknown scenario(s) {sorted(unknown)}; choose from {', '.join(SCENARIOS)}")
    kinds = set(args.kinds.split(","))
    configure_logging()  # the platform's logs to stderr: stdout is the matrix

    tmp = Path(tempfile.mkdtemp(prefix="crash-matrix-"))
    layout = Layout.for_tests(tmp / "engine")
    dr = PlatformLayout.for_tests(tmp / "dr")
    t0 = time.monotonic()
    cases: list[Case] = []
    try:
        print(f"bringing up the platform and the DR stack in {tmp} ...", flush=True)
        platform.up(layout, instances=2, traffic_rps=40)
        address = f"127.0.0.1:{layout.temporal_port}"
        client = await temporal.connect(target_host=address)
        jobs = []
        releases = [s for s in only if s != "dr-failover"]
        if releases:
            stack = Stack(layout=layout, tmp=tmp / "engine", temporal_address=address)

            async def release_matrices() -> list[Case]:
                out: list[Case] = []
                for name in releases:
                    out += await matrix(ReleaseScenario(stack, name, new_version), client, kinds)
                return out

            jobs.append(release_matrices())
        if "dr-failover" in only:
            (tmp / "dr-tmp").mkdir()
            dr_stack = DrStack(dr=dr, tmp=tmp / "dr-tmp", temporal_address=address)
            dr_stack.up()
            jobs.append(matrix(FailoverScenario(dr_stack), client, kinds))
        for result in await asyncio.gather(*jobs):
            cases += result
    finally:
        with contextlib.suppress(Exception):
            platform.down(dr, purge=True)
        platform.down(layout, purge=True)
    if args.json:
        args.json.write_text(json.dumps([asdict(c) for c in cases], default=str, indent=1))
    code = print_matrix(cases)
    print(f"wall time {(time.monotonic() - t0) / 60:.1f} min")
    return code


def print_matrix(cases: list[Case]) -> int:
    """The matrix, one block per scenario (its undisturbed run is the case without points)."""
    blocks = []
    for name in SCENARIOS:
        mine = [c for c in cases if c.scenario == name]
        if mine:
            blocks.append(render(next(c for c in mine if not c.points), [c for c in mine if c.points]))
    judged = [c for c in cases if c.points]
    failed = [c for c in judged if not c.passed]
    print()
    print("CRASH MATRIX (worker SIGKILLed at each point, restarted at once)")
    print(LEGEND)
    print()
    print("\n\n".join(blocks))
    print()
    print(f"{len(judged) - len(failed)}/{len(judged)} kill points passed")
    return 1 if failed or not judged else 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
