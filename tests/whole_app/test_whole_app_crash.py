"""Crash matrix for a whole-app release: the worker SIGKILLed at several points of a two-region,
two-component release ends where the undisturbed run ends, with no side effect done twice.

The harness is ``harness/crash_matrix.py`` (:class:`WholeAppScenario`); the kill switch is
``harness/crash_worker.py``. Side effects are counted on the platform: changes to both
regions' routers (a counting proxy on each HAProxy runtime-API socket) and process starts of
API instances and workers in both regions (their own ``listening ... pid=N`` log lines). The
release runs once undisturbed (the reference), then once with the worker killed, and
restarted at once, after these activities' bodies returned but before their results were
reported: the worker in A's first new worker started, its first old worker drained, the
switch of B's api to the new version, and the last old worker in B stopped.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from temporalio.client import Client

from harness.crash_matrix import Point, WholeAppScenario, render, run_case
from harness.stack import new_version
from infrastructure.local.regions import PlatformLayout

pytestmark = [pytest.mark.timeout(600), pytest.mark.xdist_group("whole-app")]


async def test_worker_killed_at_several_points_of_a_whole_app_release(
    site: PlatformLayout, client: Client, tmp_path: Path
) -> None:
    scenario = WholeAppScenario(site, tmp_path, new_version)
    reference = await run_case(scenario, client, [], within=240)
    assert reference.kills == [] and reference.state["outcome"] == "succeeded", reference.state
    assert [verdict for _, verdict in reference.state["targets"]] == ["released"] * 4
    assert reference.state["served"] == ["new"]
    assert reference.state["versions"] == {r: {"api": "new", "worker": "new"} for r in ("A", "B")}
    assert reference.counts["instance_starts"] == 6  # api: 2 in A, 1 in B; workers: 2 in A, 1 in B
    steps = reference.steps

    def at(child: str, name: str, occurrence: int = 1) -> Point:
        """``after`` the ``occurrence``-th ``name`` of the child workflow ending in ``child``."""
        mine = [s.number for s in steps if s.workflow.endswith(child) and s.name == name]
        assert len(mine) >= occurrence, (child, name, [(s.workflow, s.name) for s in steps])
        return Point("after", mine[occurrence - 1], child)

    points = [
        at("-worker-A", "platform.start_pool"),  # the first new worker in A started
        at("-worker-A", "router.drain"),  # an old worker in A drained
        at("-api-B", "router.set_traffic", 2),  # B's api moved to the new version
        at("-worker-B", "platform.stop_pool"),  # the old worker in B stopped
    ]
    case = (await run_case(scenario, client, points, within=300)).judge(reference)
    print(render(reference, [case]))
    assert [e["point"] for e in case.kills] == [str(p) for p in points], case.kills
    assert case.restarts == len(points)
    assert case.passed, case.verdict
