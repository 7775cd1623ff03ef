"""Crash matrix for canary, blue-green and rolling: a worker killed mid-release changes nothing.

The harness is ``harness/crash_matrix.py`` (the kill switch is ``harness/crash_worker.py``).
Each test runs its release once undisturbed, for the reference, then once more with the
worker SIGKILLed at several points of the same run (restarted at once after each):
right after the body of a side-effecting activity returned but before its result was
reported (the harshest boundary: the retry must find the work done), and in the middle
of a heartbeating activity. The run must end in the reference's final state with exactly
as many router changes and instance starts as the reference, counted on the platform.

Every kill point of every strategy, each in its own run, is ``bench/crash_matrix.py``
(about 40 minutes), or these tests with ``CRASH_MATRIX=full``.
"""

from __future__ import annotations

import os
from collections.abc import Callable

import pytest
from temporalio.client import Client

from harness.crash_matrix import (
    Case,
    Point,
    ReleaseScenario,
    RouterTap,
    Step,
    all_points,
    find,
    instance_starts,
    render,
    run_case,
)
from harness.stack import Stack, new_version
from infrastructure.local.haproxy import HAProxy
from infrastructure.local.instances import InstanceManager

pytestmark = pytest.mark.timeout(600)
FULL = os.environ.get("CRASH_MATRIX") == "full"

CI_POINTS: dict[str, Callable[[list[Step]], list[Point]]] = {
    # The canary instance started, then weight 50 applied, with their results lost; the
    # analysis killed between measurements; the old pool stopped, result lost.
    "canary": lambda s: [
        Point("after", find(s, "platform.start_pool")),
        Point("after", find(s, "router.set_traffic")),
        Point("mid", find(s, "analysis.run")),
        Point("after", find(s, "platform.stop_pool")),
    ],
    # Judged against a fresh baseline: the baseline started and the three-way split applied
    # (results lost); the judge killed mid-chunk (it resumes from its heartbeat: the state it had
    # read). Later points shift with the number of judge chunks (timing), so CI stops here; the
    # full matrix kills each point in its own run. Baseline starts are counted with the others.
    "canary-judged": lambda s: [
        Point("after", find(s, "platform.start_pool", 2)),
        Point("after", find(s, "router.set_traffic")),
        Point("mid", find(s, "analysis.judge")),
    ],
    # The preview route set, and users switched, with their results lost (an instance start
    # with its result lost is the canary's and rolling's).
    "blue-green": lambda s: [
        Point("after", find(s, "router.set_preview")),
        Point("after", find(s, "router.set_traffic")),
    ],
    # The first old instance drained and then stopped (results lost); the second batch's
    # instance start killed while it waits for health.
    "rolling": lambda s: [
        Point("after", find(s, "router.drain")),
        Point("after", find(s, "platform.stop_pool")),
        Point("mid", find(s, "platform.start_pool", 2)),
    ],
}


async def reference_run(stack: Stack, client: Client, strategy: str) -> tuple[ReleaseScenario, Case]:
    scenario = ReleaseScenario(stack, strategy, new_version)
    reference = await run_case(scenario, client, [])
    assert reference.kills == [] and reference.restarts == 0
    assert reference.state["outcome"] == "succeeded", reference.state
    assert reference.state["live"] == "new" and reference.state["served"] == ["new"]
    assert reference.state["split"] == {"old pool": 0, "new pool": 100}
    assert reference.state["instances"] == [("new pool", "new", True)] * 2
    starts = 3 if strategy == "canary-judged" else 2  # the baseline's instance too
    assert reference.counts["instance_starts"] == starts and reference.counts["router_changes"] > 0
    return scenario, reference


@pytest.mark.parametrize("strategy", ["canary", "canary-judged", "blue-green", "rolling"])
async def test_worker_killed_at_several_points_of_one_release(
    client: Client, stack: Stack, strategy: str
) -> None:
    scenario, reference = await reference_run(stack, client, strategy)
    points = CI_POINTS[strategy](reference.steps)
    case = (await run_case(scenario, client, points)).judge(reference)
    print(render(reference, [case]))
    assert [e["point"] for e in case.kills] == [str(p) for p in points], case.kills
    assert case.restarts == len(points)
    assert case.passed, case.verdict


@pytest.mark.skipif(not FULL, reason="72 runs, ~40 min: CRASH_MATRIX=full or bench/crash_matrix.py")
@pytest.mark.parametrize("strategy", ["canary", "blue-green", "rolling"])
async def test_full_crash_matrix(client: Client, stack: Stack, strategy: str) -> None:
    scenario, reference = await reference_run(stack, client, strategy)
    cases = [(await run_case(scenario, client, [p])).judge(reference) for p in all_points(reference.steps)]
    print(render(reference, cases))
    assert all(c.passed for c in cases), [f"{c.points[0]}: {c.verdict}" for c in cases if not c.passed]


def test_the_counters_see_real_changes_and_only_those(stack: Stack) -> None:
    """The ground truth the matrix judges by: a no-op write is a command, not a change; a start is a pid."""
    layout, haproxy = stack.layout, HAProxy(stack.layout)
    idle = next(p for p, w in stack.weights().items() if w == 0)
    starts = instance_starts([layout])
    starts.mark()
    with RouterTap(layout.haproxy_sock, ("app", "preview"), "router") as tap:
        haproxy.command(f"set server preview/{idle}3 weight 0")  # already 0 (and in maintenance)
        haproxy.command(f"set server preview/{idle}3 weight 7; set server preview/{idle}3 weight 0")
        haproxy.command(f"set server preview/{idle}3 state maint")  # already
        assert haproxy.get_weight("preview", f"{idle}3") == 0
        manager = InstanceManager(layout)
        manager.start("v0.0.9", idle, 1)
        manager.start("v0.0.9", idle, 1)  # idempotent: the same process
        manager.stop(idle)
    assert (tap.commands, tap.changes) == (4, 2), tap.log
    assert layout.haproxy_sock.exists() and not tap.real.exists()  # HAProxy is back on its own path
    assert "Name: HAProxy" in haproxy.command("show info")
    lines = starts.lines()
    assert len(lines) == 1 and "v0.0.9" in lines[0], lines


def test_a_case_fails_on_a_missing_kill_a_different_state_or_a_side_effect_done_twice() -> None:
    state = {"outcome": "succeeded", "live": "new"}
    counts = {"router_changes": 10, "router_commands": 12, "instance_starts": 2}
    reference = Case("canary", [], state, counts, 7.0, [], 0, [Step(5, "router.set_traffic", 0)])

    def case(points: list[Point], kills: list[str], **changes: object) -> Case:
        more = {k: v for k, v in changes.items() if k in counts}
        other = {k: v for k, v in changes.items() if k in state}
        kill_events = [{"point": k, "how": "after the body returned"} for k in kills]
        return Case(
            "canary", points, {**state, **other}, {**counts, **more}, 20.0, kill_events, len(kills), []
        ).judge(reference)

    after = [Point("after", 5)]
    assert case(after, ["after:5"], router_commands=14).passed  # a re-sent no-op is no side effect
    assert case(after, []).verdict == "no kill at after:5"
    assert case(after, ["after:5"], router_changes=12).verdict == "router_changes 12 (undisturbed 10)"
    assert case(after, ["after:5"], instance_starts=3).verdict == "instance_starts 3 (undisturbed 2)"
    assert case(after, ["after:5"], live="old").verdict == "live: 'old' != 'new'"
