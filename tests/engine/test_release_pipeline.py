"""The release pipeline (workflows/release.py) on the real local platform and a real registry.

A local Slack-compatible webhook receiver records the notifications; Terraform runs for real
on infrastructure/local/terraform with state in the stack's state dir.
"""

from __future__ import annotations

import asyncio
import json
import sys
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from temporalio.client import Client, WorkflowHandle

from clients.oci import RegistryClient
from engine import temporal
from engine.client import control_target, start_or_attach
from engine.contracts import Control, ReleaseResult, ReleaseStatus, StageReport
from engine.contracts.pipeline import PipelineSpec
from harness.pipeline import pipeline_spec, snapshot, write_pipeline_config
from harness.stack import Stack, new_version
from harness.support import REPO
from infrastructure.local import images
from infrastructure.local.instances import InstanceManager
from infrastructure.local.release_services import Redis
from infrastructure.local.sample_service import set_behaviour
from starters import control


class Webhook:
    """A local Slack-compatible incoming webhook: records every ``{"text": ...}`` in order."""

    def __init__(self) -> None:
        self.messages: list[str] = []
        received = self.messages

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = json.loads(self.rfile.read(int(self.headers["content-length"])))
                received.append(body["text"])
                self.send_response(200)
                self.send_header("content-length", "2")
                self.end_headers()
                self.wfile.write(b"ok")

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hooks/T000/B000"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def webhook() -> Iterator[Webhook]:
    hook = Webhook()
    yield hook
    hook.close()


# --------------------------------------------------------------------------- #


async def run_release(client: Client, task_queue: str, pipeline: PipelineSpec) -> WorkflowHandle:
    handle, attached = await start_or_attach(client, pipeline, task_queue=task_queue)
    assert not attached
    return handle


def stage(result: ReleaseResult, name: str) -> StageReport:
    return next(s for s in result.status.stages if s.name == name)


@pytest.mark.usefixtures("worker")
async def test_full_release_promotes_the_ci_digest_and_reaches_100_percent(
    client: Client, stack: Stack, task_queue: str, webhook: Webhook
) -> None:
    version = new_version()
    built = images.push(images.registry_url(stack.layout), version)
    handle = await run_release(client, task_queue, pipeline_spec(stack, version, webhook=webhook.url))
    result: ReleaseResult = await asyncio.wait_for(handle.result(), timeout=120)

    assert result.outcome == "succeeded", result.reason
    assert stack.count_versions(100) == {version: 100}
    registry = RegistryClient(images.registry_url(stack.layout))
    try:
        assert registry.resolve(images.PRODUCTION_REPOSITORY, version) == built
        # The platform runs what production holds: the image's own VERSION file, by digest.
        assert images.read_version(registry, images.PRODUCTION_REPOSITORY, version) == (built, version)
    finally:
        registry.close()
    live_pools = {i.pool for i in InstanceManager(stack.layout).list() if i.version == version}
    assert {images.pins(stack.layout)[p]["digest"] for p in live_pools} == {built}
    verdicts = {s.name: s.verdict for s in result.status.stages}
    assert verdicts == {
        "pre-validation": "passed",
        "infrastructure": "passed",  # no changes
        "image promotion": "passed",
        "strategy": "passed",
        "post-deployment": "passed",
        "report": "passed",
    }
    checks = stage(result, "pre-validation").measurements
    assert set(checks) == {"database", "redis", "http dependency 1", "image"}
    assert stage(result, "image promotion").measurements["digest"] == built
    assert (
        stage(result, "post-deployment").measurements["live_image"]
        == f"2 instance(s) of {version} run {built}"
    )
    assert all(s.duration_s is not None for s in result.status.stages)
    assert [m.split(":")[0] for m in webhook.messages] == [
        f"Release sample-api/local@{version} (canary) started",
        f"Release sample-api/local@{version}",
    ]
    assert "SUCCEEDED" in webhook.messages[-1]


@pytest.mark.usefixtures("worker")
async def test_terraform_change_waits_for_approval_and_abort_deploys_nothing(
    client: Client, stack: Stack, task_queue: str, webhook: Webhook
) -> None:
    version = new_version()
    images.push(images.registry_url(stack.layout), version)
    before = snapshot(stack)
    state = stack.layout.state_dir / "terraform" / "terraform.tfstate"
    serial_before = json.loads(state.read_text())["serial"]
    pipeline = pipeline_spec(stack, version, webhook=webhook.url, tf_vars={"cache_size_mb": 512})
    handle = await run_release(client, task_queue, pipeline)

    deadline = time.monotonic() + 60
    while not (status := await handle.query("status", result_type=ReleaseStatus)).awaiting_approval:
        assert time.monotonic() < deadline, status.decisions[-3:]
        await asyncio.sleep(0.3)
    infra = next(s for s in status.stages if s.name == "infrastructure")
    assert infra.verdict == "waiting"
    assert "terraform_data.cache: update (cache_size_mb: 64 -> 512)" in infra.detail
    # The control starter's target is the release itself while it waits for approval.
    assert (await control_target(handle)).id == handle.id
    await handle.execute_update("abort", Control(identity="bob", reason="not today"), result_type=str)
    result: ReleaseResult = await asyncio.wait_for(handle.result(), timeout=60)

    assert result.outcome == "failed"
    assert "aborted by bob: not today" in result.reason
    assert snapshot(stack) == before  # nothing deployed, nothing promoted
    assert json.loads(state.read_text())["serial"] == serial_before  # nothing applied
    assert stage(result, "image promotion").verdict == "pending"
    assert [m.split(" ")[0:3] for m in webhook.messages][:2] == [
        ["Release", f"sample-api/local@{version}", "(canary)"],
        ["Release", f"sample-api/local@{version}", "waits"],
    ]
    assert len(webhook.messages) == 3 and "FAILED" in webhook.messages[2]


@pytest.mark.usefixtures("worker")
async def test_strategy_rolled_back_after_an_applied_terraform_change_keeps_it_and_says_so(
    client: Client,
    stack: Stack,
    task_queue: str,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """The pipeline's undo stack runs after the strategy rolled back by itself: the applied
    Terraform change is kept (and the decision log says so) and the release ends rolled back.
    (Before the undo stack was shared, this path called a method the stack did not have and the
    workflow task failed forever.)"""
    version = new_version()
    images.push(images.registry_url(stack.layout), version)
    set_behaviour(stack.layout, version, error_rate=1.0)  # its analysis fails: the canary rolls back
    pipeline = pipeline_spec(stack, version, steps="- set_weight: 50\n- analysis: {templates: [error-rate]}")
    assert pipeline.terraform is not None
    own_state = stack.tmp / f"terraform-{version}"  # a state of its own: the other tests' stays as it is
    pipeline = pipeline.model_copy(
        update={"terraform": pipeline.terraform.model_copy(update={"state_dir": str(own_state)})}
    )
    handle = await run_release(client, task_queue, pipeline)
    deadline = time.monotonic() + 60
    while not (status := await handle.query("status", result_type=ReleaseStatus)).awaiting_approval:
        assert time.monotonic() < deadline, status.decisions[-3:]
        await asyncio.sleep(0.3)
    await handle.execute_update("approve", Control(identity="alice", reason="bigger cache"), result_type=str)
    result: ReleaseResult = await asyncio.wait_for(handle.result(), timeout=120)

    assert result.outcome == "rolled_back", result.reason
    assert "analysis error-rate failed" in result.reason
    assert json.loads((own_state / "terraform.tfstate").read_text())["resources"]  # applied, and kept
    decisions = [d.what for d in result.status.decisions]
    assert "undo: keep the applied infrastructure change (not undone automatically)" in decisions
    assert stage(result, "infrastructure").verdict == "passed"
    assert stage(result, "strategy").verdict == "failed"
    assert stage(result, "report").verdict == "failed"
    assert version not in {i.version for i in InstanceManager(stack.layout).list(probe=False)}
    # control.py history names who approved it (read from the run's result).
    monkeypatch.setenv("TEMPORAL_ADDRESS", stack.temporal_address)
    capsys.readouterr()
    assert await control.main(["history", "--limit", "1", "--json"]) == 0
    [row] = json.loads(capsys.readouterr().out)
    assert (row["version"], row["approved_by"]) == (version, ["alice"]), row


@pytest.mark.usefixtures("worker")
async def test_missing_image_fails_pre_validation_and_changes_nothing(
    client: Client, stack: Stack, task_queue: str
) -> None:
    version = new_version()  # never pushed
    before = snapshot(stack)
    handle = await run_release(client, task_queue, pipeline_spec(stack, version))
    result: ReleaseResult = await asyncio.wait_for(handle.result(), timeout=60)

    assert result.outcome == "failed"
    assert f"ci/sample-api:{version} does not exist" in result.reason
    assert stage(result, "pre-validation").verdict == "failed"
    assert [s.verdict for s in result.status.stages[1:]] == ["pending"] * 4 + ["failed"]
    assert snapshot(stack) == before


@pytest.mark.usefixtures("worker")
async def test_dead_redis_fails_pre_validation_naming_redis(
    client: Client, stack: Stack, task_queue: str
) -> None:
    version = new_version()
    images.push(images.registry_url(stack.layout), version)
    before = snapshot(stack)
    redis = Redis(stack.layout)
    redis.stop()
    try:
        handle = await run_release(client, task_queue, pipeline_spec(stack, version))
        result: ReleaseResult = await asyncio.wait_for(handle.result(), timeout=60)
    finally:
        redis.start()
    assert result.outcome == "failed"
    assert "pre-deployment validation failed: redis: Redis at 127.0.0.1" in result.reason
    assert "unreachable" in result.reason
    checks = stage(result, "pre-validation").measurements
    assert str(checks["database"]).startswith("ok")
    assert str(checks["redis"]).startswith("FAILED")
    assert snapshot(stack) == before


async def run_starter(stack: Stack, task_queue: str, *args: str) -> tuple[int, str]:
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "starters/deploy.py",
        *args,
        cwd=REPO,
        env=stack.env(task_queue),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    out, _ = await asyncio.wait_for(proc.communicate(), timeout=150)
    return proc.returncode or 0, out.decode()


@pytest.mark.usefixtures("worker")
async def test_two_ci_runs_of_one_tag_give_one_release_and_dry_run_starts_nothing(
    client: Client,
    stack: Stack,
    task_queue: str,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    version = new_version()
    digest = images.push(images.registry_url(stack.layout), version)
    config = str(write_pipeline_config(stack, version))
    workflow_id = temporal.release_workflow_id("sample-api", "local")
    query = f'WorkflowId = "{workflow_id}" AND DeployVersion = "{version}"'

    code, out = await run_starter(stack, task_queue, version, "canary", "--config", config, "--dry-run")
    assert code == 0, out
    assert "stages: pre-validation -> infrastructure -> image promotion -> strategy" in out
    assert "terraform plan" in out and "no changes" in out
    assert (
        f"would promote http://127.0.0.1:{stack.layout.registry_port}/ci/sample-api:{version} = {digest}"
        in out
    )
    assert "step 1: set weight 50%" in out
    assert [w async for w in client.list_workflows(query)] == []

    # Two CI jobs of the same tag at once (a re-run while the first still runs).
    first, second = await asyncio.gather(
        run_starter(stack, task_queue, version, "canary", "--config", config, "--wait"),
        run_starter(stack, task_queue, version, "canary", "--config", config, "--wait"),
    )
    for code, out in (first, second):
        assert code == 0, out
        assert f"SUCCEEDED: {version} is live" in out
        assert "REPORT" in out and "image promotion" in out
    starts = sorted(out.splitlines()[0].split(" sample-api")[0] for _, out in (first, second))
    assert starts == ["attached to", "started"]
    # And a re-run after it finished attaches to the finished release.
    code, out = await run_starter(stack, task_queue, version, "canary", "--config", config, "--wait")
    assert code == 0 and out.startswith(f"attached to sample-api/local@{version}"), out
    assert f"this release ran before and ended SUCCEEDED: {version} is live" in out
    assert "to run it again: add --redeploy" in out
    assert len([w async for w in client.list_workflows(query)]) == 1
    # control.py history: this release, newest first, as it ended.
    monkeypatch.setenv("TEMPORAL_ADDRESS", stack.temporal_address)
    capsys.readouterr()
    assert await control.main(["history", "--config", config, "--limit", "3"]) == 0
    table = capsys.readouterr().out.splitlines()
    assert table[0].split() == [
        "STARTED",
        "(UTC)",
        "VERSION",
        "STRATEGY",
        "PHASE",
        "TOOK",
        "APPROVED",
        "BY",
        "RUN",
    ]
    newest = table[1].split()
    assert newest[2:5] == [version, "canary", "Succeeded"] and newest[5].endswith("s"), table
    assert newest[6] == "-", table  # nobody approved: its steps have no pause
