"""The promotion train (workflows/train.py) on two real local platforms: staging, then production.

Each environment is its own local platform (router, Prometheus, instances under load, image
registry); the train runs on staging's Temporal server. Traffic is counted through each router.
"""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import AsyncIterator, Callable

import pytest
from temporalio.client import Client, WorkflowExecutionStatus, WorkflowHandle
from temporalio.service import RPCError

from clients.oci import RegistryClient
from engine import temporal
from engine.client import start_train
from engine.config import load_config
from engine.contracts import Control, ReleaseResult, ReleaseStatus, StageReport
from engine.contracts.promotion import TrainResult, TrainSpec, TrainStatus
from harness.browser import Chromium, chromium_binary, elements
from harness.pipeline import snapshot
from harness.stack import Stack, new_version
from harness.support import REPO, free_port
from harness.train import Stacks, retag
from infrastructure.local import images
from infrastructure.local.sample_service import set_behaviour
from starters import control, dashboard, deploy

TRAIN = temporal.train_workflow_id("sample-api", ["staging", "production"])


@pytest.fixture(autouse=True)
async def no_train_left(client: Client, worker: None) -> AsyncIterator[None]:
    """A train a failed test left running is aborted (its stage rolls back) while the worker runs."""
    yield
    handle = client.get_workflow_handle(TRAIN)
    try:
        running = (await handle.describe()).status == WorkflowExecutionStatus.RUNNING
    except RPCError:
        return
    if running:
        try:
            await handle.execute_update("abort", Control(identity="pytest", reason="test cleanup"))
            await asyncio.wait_for(handle.result(), 120)
        except Exception:  # cleanup: terminating cancels the stage (it undoes itself)
            await handle.terminate("test cleanup")


async def start(client: Client, task_queue: str, spec: TrainSpec) -> WorkflowHandle:
    handle, attached = await start_train(client, spec, task_queue=task_queue)
    assert not attached
    return handle


async def wait_train(
    handle: WorkflowHandle, predicate: Callable[[TrainStatus], bool], within: float
) -> TrainStatus:
    deadline = time.monotonic() + within
    while True:
        status = await handle.query("status", result_type=TrainStatus)
        if predicate(status):
            return status
        assert time.monotonic() < deadline, f"timed out; train status {status.model_dump_json()[:2000]}"
        await asyncio.sleep(0.2)


async def release_of(client: Client, environment: str) -> ReleaseResult:
    handle = client.get_workflow_handle(
        temporal.release_workflow_id("sample-api", environment), result_type=ReleaseResult
    )
    result: ReleaseResult = await handle.result()
    return result


def stage(result: ReleaseResult, name: str) -> StageReport:
    return next(s for s in result.status.stages if s.name == name)


def production_digest(stack: Stack, version: str) -> str | None:
    registry = RegistryClient(images.registry_url(stack.layout))
    try:
        return registry.resolve(images.PRODUCTION_REPOSITORY, version)
    finally:
        registry.close()


async def test_train_soaks_staging_then_releases_the_same_digest_to_production(
    stacks: Stacks,
    client: Client,
    task_queue: str,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    version = new_version()
    built = stacks.push_both(version)
    before = stacks.production.stable_version()
    path = stacks.write_config("ok", soak="5s")
    handle = await start(client, task_queue, stacks.train_spec(version, soak="5s"))

    soaking = await wait_train(handle, lambda s: s.stages[0].verdict == "soaking", within=180)
    assert soaking.current == 0 and soaking.digest == built
    assert soaking.soak_remaining_s is not None and 0 < soaking.soak_remaining_s <= 5
    assert soaking.stages[1].verdict == "pending"
    assert stacks.staging.count_versions(50) == {version: 50}
    assert stacks.production.count_versions(50) == {before: 50}  # nothing there while staging soaks
    monkeypatch.setenv("TEMPORAL_ADDRESS", stacks.staging.temporal_address)
    assert await control.main(["status", "--train", "--config", str(path)]) == 0
    shown = capsys.readouterr().out
    assert "soaking" in shown and "s left" in shown and "<- now" in shown
    # The dashboard, in headless Chromium: the train in the list, its page with staging soaking now.
    chromium = chromium_binary()
    assert chromium is not None, "Debian's chromium (scripts/dev.sh install)"
    port = free_port()
    runner = await dashboard.serve(
        dashboard.Dashboard(client, load_config(path), ["staging", "production"]), "127.0.0.1", port
    )
    try:
        listed = await Chromium(chromium).dom(f"http://127.0.0.1:{port}/")
        [row] = [r for r in elements(listed, "run") if r.attrs["data-workflow-id"] == handle.id]
        assert (
            row.attrs["data-kind"] == "train staging -> production" and row.attrs["data-version"] == version
        )
        shown_page = await Chromium(chromium).dom(
            f"http://127.0.0.1:{port}/run/{handle.id}/{handle.result_run_id}"
        )
        stages = elements(shown_page, "train-stage")
        assert [(st.attrs["data-environment"], st.attrs["data-verdict"]) for st in stages] == [
            ("staging", "soaking"),
            ("production", "pending"),
        ]
        assert "◀ now" in stages[0].text and built in elements(shown_page, "digest")[0].text
        assert "abort --train staging,production" in elements(shown_page, "train-abort")[0].text
    finally:
        await runner.cleanup()

    result: TrainResult = await asyncio.wait_for(handle.result(), timeout=240)

    assert result.outcome == "succeeded", result.reason
    first, second = result.status.stages
    assert (first.verdict, second.verdict) == ("passed", "passed")
    assert first.digest == second.digest == result.digest == built
    assert second.expected_digest == built  # carried, not re-resolved by tag
    assert first.soaked_s is not None and first.soaked_s >= 5.0
    assert first.measurements and {m.metric for m in first.measurements} == {"error-ratio"}
    assert first.soak_until is not None
    started = (
        await client.get_workflow_handle(second.workflow_id, run_id=second.run_id).describe()
    ).start_time
    assert started >= first.soak_until  # production began only after staging's soak
    production = await release_of(client, "production")
    assert production.outcome == "succeeded"
    assert stage(production, "image promotion").measurements["digest"] == built
    assert any("the digest the promotion train carries" in d.what for d in production.status.decisions)
    assert stacks.staging.count_versions(100) == {version: 100}
    assert stacks.production.count_versions(100) == {version: 100}
    assert (
        production_digest(stacks.production, version) == built == production_digest(stacks.staging, version)
    )
    if os.environ.get("DEPLOY_RECORD_HISTORIES"):  # tests/engine/test_replay.py replays it
        stage_run = client.get_workflow_handle(second.workflow_id, run_id=second.run_id)
        for name, run in (("promotion_train", handle), ("release_train_stage", stage_run)):
            history = await run.fetch_history()
            stored = REPO / "tests" / "engine" / "histories" / name
            stored.with_suffix(".json").write_text(history.to_json())
            stored.with_suffix(".workflow-id").write_text(history.workflow_id + "\n")


async def test_analysis_failing_during_the_soak_stops_the_train_before_production(
    stacks: Stacks, client: Client, task_queue: str
) -> None:
    version = new_version()
    stacks.push_both(version)
    before = stacks.production.stable_version()
    handle = await start(client, task_queue, stacks.train_spec(version, soak="90s"))
    await wait_train(handle, lambda s: s.stages[0].verdict == "soaking", within=180)
    set_behaviour(stacks.staging.layout, version, error_rate=0.2)  # a fifth of its requests fail now
    try:
        result: TrainResult = await asyncio.wait_for(handle.result(), timeout=90)
    finally:
        set_behaviour(stacks.staging.layout, version, error_rate=0.0)

    assert result.outcome == "stopped", result.reason
    first, second = result.status.stages
    assert first.verdict == "soak_failed"
    assert "analysis error-rate failed" in first.detail
    assert first.soaked_s is not None and first.soaked_s < 90
    assert "the train stops before production" in result.reason
    assert second.verdict == "pending" and second.run_id is None  # production's release never started
    assert stacks.production.count_versions(100) == {before: 100}
    assert stacks.staging.count_versions(50) == {version: 50}  # staging keeps it, and the reason says so
    assert f"staging keeps {version}" in result.reason


async def test_abort_during_production_rolls_production_back_and_staging_stays(
    stacks: Stacks,
    client: Client,
    task_queue: str,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    version = new_version()
    built = stacks.push_both(version)
    before = stacks.production.stable_version()
    path = stacks.write_config("abort", soak="0s", paused_production=True)
    handle = await start(client, task_queue, stacks.train_spec(version, soak="0s", paused_production=True))
    await wait_train(handle, lambda s: s.current == 1 and s.stages[1].verdict == "releasing", within=180)
    release = client.get_workflow_handle(temporal.release_workflow_id("sample-api", "production"))
    deadline = time.monotonic() + 120
    while True:  # production's canary holds at 50 % for its approver
        status = await release.query("status", result_type=ReleaseStatus)
        if status.child_workflow_id:
            canary = await client.get_workflow_handle(status.child_workflow_id).query(
                "status", result_type=ReleaseStatus
            )
            if canary.awaiting_approval:
                break
        assert time.monotonic() < deadline, status.decisions[-3:]
        await asyncio.sleep(0.2)
    assert set(stacks.production.count_versions(100)) == {before, version}

    monkeypatch.setenv("TEMPORAL_ADDRESS", stacks.staging.temporal_address)
    code = await control.main(
        ["abort", "--train", "--config", str(path), "--as", "carol", "--reason", "stop"]
    )
    assert code == 0
    assert "production's release is aborted" in capsys.readouterr().out
    result: TrainResult = await asyncio.wait_for(handle.result(), timeout=120)

    assert result.outcome == "aborted", result.reason
    first, second = result.status.stages
    assert (first.verdict, first.digest) == ("passed", built)
    assert second.verdict == "rolled_back"
    assert "aborted by carol: stop" in result.reason
    assert (await release_of(client, "production")).outcome == "rolled_back"
    assert stacks.production.count_versions(100) == {before: 100}
    assert stacks.staging.count_versions(100) == {version: 100}


async def test_a_retagged_ci_image_is_refused_at_productions_image_stage_changing_nothing(
    stacks: Stacks, client: Client, task_queue: str
) -> None:
    version = new_version()
    built = stacks.push_both(version)
    before = snapshot(stacks.production)
    handle = await start(client, task_queue, stacks.train_spec(version, soak="5s"))
    await wait_train(handle, lambda s: s.stages[0].verdict == "soaking", within=180)
    rebuilt = retag(stacks.production, version)  # CI pushes another build under the same tag
    assert rebuilt != built

    result: TrainResult = await asyncio.wait_for(handle.result(), timeout=120)

    assert result.outcome == "stopped", result.reason
    first, second = result.status.stages
    assert (first.verdict, first.digest) == ("passed", built)
    assert second.verdict == "failed"
    assert "digest mismatch" in result.reason and built in result.reason and rebuilt in result.reason
    production = await release_of(client, "production")
    assert production.outcome == "failed"
    assert stage(production, "image promotion").verdict == "failed"
    assert stage(production, "strategy").verdict == "pending"
    assert snapshot(stacks.production) == before  # instances, router weights, production tags
    assert production_digest(stacks.production, version) is None


async def test_deploy_through_starts_the_train_and_waits_for_it(
    stacks: Stacks,
    client: Client,
    task_queue: str,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    version = new_version()
    built = stacks.push_both(version)
    path = stacks.write_config("cli", soak="1h")  # --through's own soak wins over the section's
    monkeypatch.setenv("TEMPORAL_ADDRESS", stacks.staging.temporal_address)
    monkeypatch.setattr(temporal, "TASK_QUEUE", task_queue)

    argv = [version, "canary", "--through", "staging:2s,production", "--config", str(path), "--as", "ci"]
    code = await asyncio.wait_for(deploy.main([*argv, "--wait"]), timeout=240)

    out = capsys.readouterr().out
    assert code == 0, out
    assert f"started promotion train sample-api@{version}: staging -> production" in out
    assert "staging: soak 0:00:02 (error-rate) before the next stage" in out
    assert f"SUCCEEDED: {version} ({built}) released to staging, production" in out
    assert stacks.staging.count_versions(50) == {version: 50}
    assert stacks.production.count_versions(50) == {version: 50}
    # A second run of the same command attaches to the finished train: nothing is released twice.
    assert await deploy.main(argv) == 0
    again = capsys.readouterr().out
    assert "attached to promotion train" in again and "this train ran before and ended SUCCEEDED" in again
    runs = [r async for r in client.list_workflows(f'WorkflowId = "{TRAIN}" AND DeployVersion = "{version}"')]
    assert len(runs) == 1
