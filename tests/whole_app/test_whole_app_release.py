"""A whole-app release on the two-region local platform: the api and the workers, in A then B.

Real parts: the two regions (HAProxy each, API instances and workers as processes, PostgreSQL
A streaming to B, the global entry), Prometheus scraping the workers' job counters, a Temporal
dev server and the engine's worker in this process. Users send requests through the global
entry the whole time; jobs flow from the API through A's database to A's workers.
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter

import httpx
import pytest
from temporalio.client import Client

from engine.client import start_or_attach
from engine.contracts import Control, ReleaseResult
from engine.contracts.dr import DrResult, DrSpec, FailoverRequest
from engine.dr_config import resolve_dr
from harness import whole_app
from harness.stack import Users, wait_for
from infrastructure.local import dr as regions
from infrastructure.local import platform
from infrastructure.local.regions import PlatformLayout

pytestmark = [pytest.mark.timeout(420), pytest.mark.xdist_group("whole-app")]  # one platform, in order


async def release(client: Client, site: PlatformLayout, queue: str, version: str) -> ReleaseResult:
    pipeline = whole_app.pipeline(site, version)
    assert [(t.component, t.region) for t in pipeline.targets] == whole_app.TARGETS
    handle, _ = await start_or_attach(client, pipeline, task_queue=queue)
    return await handle.result()


def jobs_done_since(site: PlatformLayout, region: str, since: float) -> dict[tuple[str, str], int]:
    """(worker version, node) -> jobs finished after ``since`` (epoch s), read from ``region``'s database."""
    with regions.node(site, region).connect() as conn:
        rows = conn.execute(
            "SELECT version, node, count(*) FROM jobs WHERE done_at > to_timestamp(%s) GROUP BY 1, 2",
            (since,),
        ).fetchall()
    return {(r[0], r[1]): r[2] for r in rows}


async def wait_for_jobs(
    site: PlatformLayout, region: str, version: str, count: int = 10
) -> set[tuple[str, str]]:
    """Wait until ``count`` jobs posted from now on are done by ``version`` in ``region``; who did them."""
    since, deadline = time.time(), time.monotonic() + 30
    while (done := await asyncio.to_thread(jobs_done_since, site, region, since)).get(
        (version, region), 0
    ) < count:
        assert time.monotonic() < deadline, done
        await asyncio.sleep(0.5)
    return set(done)


ALL_ON = {("A", "api"): 2, ("A", "worker"): 2, ("B", "api"): 1, ("B", "worker"): 1}


def all_on(version: str) -> Counter[tuple[str, str, str]]:
    return Counter({(region, component, version): n for (region, component), n in ALL_ON.items()})


async def test_a_two_component_release_reaches_both_regions_with_no_failed_request(
    site: PlatformLayout, client: Client, task_queue: str
) -> None:
    with Users(site.global_url) as users:
        result = await release(client, site, task_queue, "v2.0.0")
    assert result.outcome == "succeeded", (result.reason, result.status.decisions[-8:])
    assert [(t.component, t.region, t.previous, t.verdict) for t in result.status.targets] == [
        ("api", "A", "v1.0.0", "released"),
        ("worker", "A", "v1.0.0", "released"),
        ("api", "B", "v1.0.0", "released"),
        ("worker", "B", "v1.0.0", "released"),
    ]
    assert whole_app.running(site) == all_on("v2.0.0")
    assert len(users.answers) > 500 and users.failed == [], Counter(a.version for a in users.failed)
    assert "v2.0.0" in users.versions()
    # Jobs posted from now on are done by the new workers, in A only.
    assert await wait_for_jobs(site, "A", "v2.0.0") == {("v2.0.0", "A")}


async def test_a_worker_whose_jobs_fail_goes_back_and_takes_the_api_back_with_it(
    site: PlatformLayout, client: Client, task_queue: str
) -> None:
    assert whole_app.running(site) == all_on("v2.0.0"), "what the first test left"
    platform.behave(site.home_layout, "v3.0.0", component="worker", error_probability=0.5)
    with Users(site.global_url) as users:
        result = await release(client, site, task_queue, "v3.0.0")
    assert result.outcome == "rolled_back", (result.reason, result.status.decisions[-8:])
    assert result.reason.startswith("worker in A: ")
    assert [(t.component, t.region, t.verdict) for t in result.status.targets] == [
        ("api", "A", "restored"),
        ("worker", "A", "failed"),
        ("api", "B", "pending"),
        ("worker", "B", "pending"),
    ]
    undo = [d.what for d in result.status.decisions if d.what.startswith("undo: ")]
    assert undo == ["undo: restore api in A to v2.0.0"]
    assert whole_app.running(site) == all_on("v2.0.0")  # both regions, both components: as before
    assert users.failed == [], Counter(a.version for a in users.failed)


async def test_an_abort_in_the_standby_region_takes_every_region_back(
    site: PlatformLayout, client: Client, task_queue: str
) -> None:
    assert whole_app.running(site) == all_on("v2.0.0")
    with Users(site.global_url) as users:
        handle, _ = await start_or_attach(client, whole_app.pipeline(site, "v4.0.0"), task_queue=task_queue)
        await wait_for(
            handle, lambda s: any(t.region == "B" and t.verdict == "running" for t in s.targets), 240
        )
        await handle.execute_update("abort", Control(identity="alice", reason="stop everywhere"))
        result: ReleaseResult = await handle.result()
    assert result.outcome == "rolled_back", (result.reason, result.status.decisions[-8:])
    undo = [d.what for d in result.status.decisions if d.what.startswith("undo: ")]
    assert undo[-2:] == ["undo: restore worker in A to v2.0.0", "undo: restore api in A to v2.0.0"], undo
    assert whole_app.running(site) == all_on("v2.0.0")
    assert users.failed == [], Counter(a.version for a in users.failed)


async def test_an_abort_while_the_primary_wave_bakes_takes_it_back_and_never_reaches_b(
    site: PlatformLayout, client: Client, task_queue: str
) -> None:
    assert whole_app.running(site) == all_on("v2.0.0")
    pipeline = whole_app.pipeline(site, "v4.1.0", bake="10m")
    assert [t.bake_before.total_seconds() for t in pipeline.targets] == [0, 0, 600, 0]
    handle, _ = await start_or_attach(client, pipeline, task_queue=task_queue)
    baking = await wait_for(handle, lambda s: s.step.startswith("bake 0:10:00 before wave 2"), 240)
    assert [t.verdict for t in baking.targets] == ["released", "released", "pending", "pending"]
    await handle.execute_update("abort", Control(identity="alice", reason="an alert fired during the bake"))
    result: ReleaseResult = await handle.result()
    assert result.outcome == "rolled_back", (result.reason, result.status.decisions[-8:])
    assert [t.verdict for t in result.status.targets] == ["restored", "restored", "pending", "pending"]
    assert whole_app.running(site) == all_on("v2.0.0")


async def failover(client: Client, task_queue: str, spec: DrSpec, name: str) -> DrResult:
    request = FailoverRequest(dr=spec, to_region="B", requested_by="pytest", approved_by="alice")
    handle = await client.start_workflow(
        "DrFailover", request, id=f"{name}-{task_queue}", task_queue=task_queue, result_type=DrResult
    )
    return await handle.result()


async def test_a_failover_right_after_a_release_serves_the_new_version_and_jobs_go_on_in_b(
    site: PlatformLayout, client: Client, task_queue: str
) -> None:
    result = await release(client, site, task_queue, "v5.0.0")
    assert result.outcome == "succeeded", result.reason
    # B drifts (someone put its api back on v2.0.0 by hand): a failover set to refuse says so.
    assert await asyncio.to_thread(regions.converge, site, "B", {"api": "v2.0.0"}) == {
        "api": "v2.0.0",
        "worker": "v5.0.0",
    }
    spec = resolve_dr(whole_app.config(site))
    refused = await failover(
        client, task_queue, spec.model_copy(update={"version_drift": "refuse"}), "refuse"
    )
    assert refused.outcome == "refused", refused.reason
    assert "api v5.0.0 in A, v2.0.0 in B" in refused.reason
    # Converging (the default): B serves v5.0.0 again before users are sent there.
    outcome = await failover(client, task_queue, spec, "converge")
    assert outcome.outcome == "succeeded", outcome.reason
    assert outcome.report.versions["A"] == {"api": "v5.0.0", "worker": "v5.0.0"}
    assert outcome.report.versions["B"] == {"api": "v5.0.0", "worker": "v5.0.0"}
    assert "converge B" in [s.step for s in outcome.report.steps]
    # B where users are now: the api at dr.instances, the workers at the worker's primary count.
    running = whole_app.running(site)
    assert (running[("B", "api", "v5.0.0")], running[("B", "worker", "v5.0.0")]) == (2, 2), running
    async with httpx.AsyncClient(timeout=5) as http:
        answers = Counter([(await http.get(site.global_url)).headers.get("x-version") for _ in range(20)])
    assert answers == {"v5.0.0": 20}
    assert await wait_for_jobs(site, "B", "v5.0.0") == {("v5.0.0", "B")}
