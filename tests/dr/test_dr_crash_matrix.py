"""Crash matrix for a DR failover: a worker killed mid-failover promotes once and ends where it should.

The harness is ``harness/crash_matrix.py``. The failover runs once undisturbed (the
reference), then once with the worker SIGKILLed (and restarted at once) after the
standby's promotion returned but before its result was reported, in the middle of
scaling the target region up, and after the global entry switched but before that was
reported. The run must end with the reference's roles, fences, replication, writes,
instances and PostgreSQL timelines, with as many promotions (PostgreSQL's own log),
router and global-entry changes and instance starts as the reference.

Every kill point, each in its own run: ``bench/crash_matrix.py`` or ``CRASH_MATRIX=full``.
"""

from __future__ import annotations

import os

import pytest
from temporalio.client import Client

from harness.crash_matrix import FailoverScenario, Point, all_points, find, render, run_case
from harness.dr_stack import DrStack

pytestmark = pytest.mark.timeout(600)
FULL = os.environ.get("CRASH_MATRIX") == "full"


async def reference_run(stack: DrStack, client: Client) -> tuple[FailoverScenario, object]:
    scenario = FailoverScenario(stack)
    reference = await run_case(scenario, client, [])
    assert reference.kills == [] and reference.state["outcome"] == "succeeded", reference.state
    topology = reference.state["topology"]
    assert topology["active"] == "B" and topology["B"][0] == "primary" and topology["A"][1] is True
    assert reference.state["timeline"]["B"] == 2  # one promotion: timeline 1 -> 2
    assert reference.counts["promotions"] == 1
    assert reference.counts["instance_starts"] == 1  # B scales from 1 standby instance to 2
    return scenario, reference


async def test_worker_killed_at_several_points_of_one_failover(stack: DrStack, client: Client) -> None:
    scenario, reference = await reference_run(stack, client)
    steps = reference.steps  # type: ignore[attr-defined]
    points = [
        Point("after", find(steps, "dr.promote")),
        Point("mid", find(steps, "dr.scale_region")),
        Point("after", find(steps, "dr.switch_entry")),
    ]
    case = (await run_case(scenario, client, points)).judge(reference)  # type: ignore[arg-type]
    print(render(reference, [case]))  # type: ignore[arg-type]
    assert [e["point"] for e in case.kills] == [str(p) for p in points], case.kills
    assert case.passed, case.verdict


@pytest.mark.skipif(not FULL, reason="19 runs, ~13 min: CRASH_MATRIX=full or bench/crash_matrix.py")
async def test_full_failover_crash_matrix(stack: DrStack, client: Client) -> None:
    scenario, reference = await reference_run(stack, client)
    cases = [
        (await run_case(scenario, client, [p])).judge(reference)  # type: ignore[arg-type]
        for p in all_points(reference.steps)  # type: ignore[attr-defined]
    ]
    print(render(reference, cases))  # type: ignore[arg-type]
    assert all(c.passed for c in cases), [f"{c.points[0]}: {c.verdict}" for c in cases if not c.passed]
