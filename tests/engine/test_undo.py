"""``control.py undo`` on the real local platform, with users' requests counted through HAProxy.

Each test releases under an app name of its own (so the environment's release history, which undo
reads from Temporal's visibility store, holds only its runs): two versions X then Y through the
Release workflow, then ``python starters/control.py undo`` as a real process, while a user thread
sends requests through the router and keeps every answer.
"""

from __future__ import annotations

import asyncio
import contextlib
import sys
import time
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from temporalio.client import Client, WorkflowExecutionStatus

from engine import temporal
from engine.client import release_runs, start_or_attach
from engine.config import parse_config, resolve_release
from engine.contracts import Control, ReleaseResult, ReleaseStatus
from engine.contracts.pipeline import PipelineSpec
from engine.pipeline import resolve_pipeline
from engine.undo import plan_undo, resolve_undo
from harness.stack import Stack, Users, new_version, wait_for
from harness.support import REPO, allowed_signers, ssh_key
from infrastructure.local.instances import InstanceManager
from starters.signing import sign

pytestmark = pytest.mark.usefixtures("worker")

FAST = "- set_weight: 50"
JUDGED = "- set_weight: 50\n- analysis: {templates: [error-rate]}"
STRATEGIES = """
  blue_green:
    preview_requests: 5
    scale_down_delay: %(delay)s
  rolling:
    max_surge: 1
    max_unavailable: 0
"""


class App:
    """An app of its own on the shared stack: its config files and its release workflow id."""

    def __init__(self, stack: Stack, client: Client, task_queue: str) -> None:
        self.stack, self.client, self.task_queue = stack, client, task_queue
        self.name = f"undo-{uuid.uuid4().hex[:8]}"
        self.workflow_id = temporal.release_workflow_id(self.name, "local")

    def config(self, *, steps: str = FAST, window: str = "{versions: 3}", delay: str = "1s") -> str:
        text = self.stack.config_text(steps, count=2).replace(
            "app: {name: sample-api}", f"app: {{name: {self.name}}}"
        )
        text = text.replace(
            "    approval_timeout: 24h\n", f"    approval_timeout: 24h\n    rollback_window: {window}\n"
        )
        return text + STRATEGIES % {"delay": delay}

    def write(self, text: str) -> Path:
        path = self.stack.tmp / f"{self.name}-{uuid.uuid4().hex[:4]}.yaml"
        path.write_text(text)
        return path

    def pipeline(self, version: str, strategy: str, text: str) -> PipelineSpec:
        config = parse_config(text)
        spec = resolve_release(
            config, version, strategy, "local", requested_by="pytest", local=self.stack.local
        )
        return resolve_pipeline(config, spec)

    async def release(self, version: str, strategy: str, text: str | None = None) -> ReleaseResult:
        pipeline = self.pipeline(version, strategy, text or self.config())
        handle, _ = await start_or_attach(self.client, pipeline, redeploy=True, task_queue=self.task_queue)
        result: ReleaseResult = await handle.result()
        assert result.outcome == "succeeded", result.reason
        return result

    async def undo(self, config: Path, *args: str) -> tuple[int, str]:
        """``python starters/control.py undo`` as a real process against this stack."""
        proc = await asyncio.create_subprocess_exec(
            sys.executable,
            "starters/control.py",
            "undo",
            "--config",
            str(config),
            *args,
            cwd=REPO,
            env=self.stack.env(self.task_queue),
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT,
        )
        out, _ = await asyncio.wait_for(proc.communicate(), timeout=180)
        return proc.returncode or 0, out.decode()

    async def runs(self) -> int:
        return len(await release_runs(self.client, self.workflow_id))

    async def latest(self) -> ReleaseResult:
        handle = self.client.get_workflow_handle(self.workflow_id, result_type=ReleaseResult)
        return await handle.result()

    async def stop_leftovers(self) -> None:
        """A run a failed test left running: aborted (its compensation restores the platform)."""
        handle = self.client.get_workflow_handle(self.workflow_id)
        with contextlib.suppress(Exception):
            if (await handle.describe()).status == WorkflowExecutionStatus.RUNNING:
                with contextlib.suppress(Exception):
                    await asyncio.wait_for(handle.execute_update("abort", Control(identity="pytest")), 30)
                with contextlib.suppress(Exception):
                    await asyncio.wait_for(handle.result(), 60)
                with contextlib.suppress(Exception):
                    await handle.terminate("test cleanup")


@pytest.fixture
async def app(stack: Stack, client: Client, task_queue: str) -> AsyncIterator[App]:
    made = App(stack, client, task_queue)
    yield made
    await made.stop_leftovers()


def back_at(users: Users, version: str, since: float) -> float:
    """When the user's requests went to ``version`` for good (wall clock), after ``since``."""
    last_other = max(
        (a.answered for a in users.answers if a.sent >= since and a.version != version), default=since
    )
    return max(last_other, since)


@pytest.mark.parametrize("strategy", ["canary", "blue-green", "rolling"])
async def test_undo_within_the_window_shifts_traffic_back_at_once(app: App, strategy: str) -> None:
    x, y = new_version(), new_version()
    await app.release(x, strategy)
    await app.release(y, strategy)
    assert app.stack.count_versions(40) == {y: 40}
    config = app.write(app.config())
    with Users(app.stack.layout.router_url) as users:
        started = time.time()
        code, out = await app.undo(config, "--as", "alice", "--reason", "bad deploy", "--wait")
        await asyncio.sleep(0.3)
    assert code == 0, out
    assert f"{y} back to {x} by the fast path" in out, out
    assert "within the rollback window" in out, out
    result = await app.latest()
    assert result.outcome == "succeeded" and result.live_version == x, result.reason
    # Users: back on x, not one request failed, and the switch took no analysis or steps.
    assert users.failed == [], users.failed[:3]
    assert len(users.answers) > 100
    after = [a.version for a in users.answers if a.sent > back_at(users, x, started)]
    assert after and set(after) == {x}
    assert app.stack.count_versions(60) == {x: 60}
    what = [d.what for d in result.status.decisions]
    assert any(w.startswith(f"undo {y} back to {x} by the fast path") for w in what), what
    assert not any(w.startswith("analysis") for w in what), what
    assert any(w.startswith("users on") for w in what), what  # one switch of every user
    assert result.status.approvals[0].action == "undo" and result.status.approvals[0].by == "alice"
    # The live pool alone runs: y is stopped after the scale-down delay.
    running = {i.version for i in InstanceManager(app.stack.layout).list(probe=False) if i.version in (x, y)}
    assert running == {x}


async def test_undo_of_a_blue_green_release_in_its_scale_down_delay_is_a_flip(app: App) -> None:
    x, y = new_version(), new_version()
    await app.release(x, "blue-green")
    pipeline = app.pipeline(y, "blue-green", app.config(delay="10m"))
    handle, _ = await start_or_attach(app.client, pipeline, redeploy=True, task_queue=app.task_queue)
    status = await wait_for(handle, lambda s: bool(s.child_workflow_id), within=60)
    child = app.client.get_workflow_handle(status.child_workflow_id or "")
    held = await wait_for(child, lambda s: s.step == "scale-down delay", within=60)
    blue_pids = {i.slot: i.pid for i in InstanceManager(app.stack.layout).list(probe=False) if i.version == x}
    assert app.stack.count_versions(30) == {y: 30} and held.stable_version == x
    config = app.write(app.config(delay="10m"))
    with Users(app.stack.layout.router_url) as users:
        code, out = await app.undo(config, "--as", "alice", "--reason", "flip back", "--wait")
        await asyncio.sleep(0.3)
    assert code == 0, out
    assert f"{y} is being released" in out and "ROLLED_BACK" in out, out
    assert users.failed == [] and len(users.answers) > 50
    assert app.stack.count_versions(40) == {x: 40}
    # The flip went to x's instances that never stopped (same processes).
    now = {i.slot: i.pid for i in InstanceManager(app.stack.layout).list(probe=False) if i.version == x}
    assert now == blue_pids
    child_status = await child.query("status", result_type=ReleaseStatus)
    assert any(a.action == "undo" and a.by == "alice" for a in child_status.approvals)


async def test_undo_outside_the_window_is_a_normal_release_with_its_analysis(app: App) -> None:
    x, y = new_version(), new_version()
    await app.release(x, "canary")
    await app.release(y, "canary")
    await asyncio.sleep(1.5)  # y went live more than the window (1s) ago
    config = app.write(app.config(steps=JUDGED, window="{within: 1s}"))
    with Users(app.stack.layout.router_url) as users:
        code, out = await app.undo(config, "--as", "alice", "--reason", "old one", "--wait")
    assert code == 0, out
    assert f"{y} back to {x} by a canary release" in out and "outside the rollback window" in out, out
    result = await app.latest()
    assert result.outcome == "succeeded" and result.live_version == x
    what = [d.what for d in result.status.decisions]
    assert any(w.startswith(f"undo {y} back to {x} by a normal release") for w in what), what
    assert any(w.startswith("analysis passed") for w in what), what  # the canary's steps and analysis ran
    assert any("canary goes to" in w for w in what), what
    assert result.status.stages[3].verdict == "passed"
    assert users.failed == []
    assert app.stack.count_versions(40) == {x: 40}


async def test_undo_refused_without_a_previous_version_or_a_valid_approver(app: App, stack: Stack) -> None:
    config = app.write(app.config())
    # Nothing released yet: refused, nothing started.
    code, out = await app.undo(config, "--as", "alice", "--reason", "r")
    assert code == 2 and "nothing to undo" in out, out
    assert await app.runs() == 0
    x = new_version()
    await app.release(x, "canary")
    code, out = await app.undo(config, "--as", "alice")
    assert code == 2 and "no previous version to go back to" in out, out
    assert await app.runs() == 1
    y = new_version()
    await app.release(y, "canary")
    before = _snapshot(stack)
    # Not an approver: refused by control.py before anything starts.
    code, out = await app.undo(config, "--as", "mallory", "--reason", "r")
    assert code == 2 and "undo needs an approver" in out, out
    assert await app.runs() == 2

    # Sent around control.py: the workflow refuses before any change.
    runs = await release_runs(app.client, app.workflow_id)
    parsed = parse_config(config.read_text())
    plan = plan_undo("local", runs, parsed.environments["local"].rollback_window, runs[0].started)
    forged = resolve_undo(
        parsed, plan, strategy="canary", approval=Control(identity="mallory"), local=stack.local
    )
    result = await _run(app, forged)
    assert result.outcome == "failed" and "'mallory' may not undo" in result.reason, result.reason
    assert [d.what for d in result.status.refused] == ["refused undo"]

    # Signed approvals: a signature over another run proves nothing; alice's own, over this one, works.
    keys = stack.tmp / f"keys-{app.name}"
    signers = allowed_signers(keys, "alice", "bob")
    ssh_key(keys, "mallory")
    signed_text = app.config().replace(
        "    approvers: [alice]\n",
        f"    approvers: [alice, bob]\n    approvals: signed\n    allowed_signers: {signers}\n",
    )
    signed = parse_config(signed_text)
    runs = await release_runs(app.client, app.workflow_id)
    plan = plan_undo("local", runs, signed.environments["local"].rollback_window, runs[0].started)
    other_run = sign(
        str(keys / "alice"),
        workflow_id=app.workflow_id,
        run_id=plan.previous.run_id,  # another run than the one undone
        action="undo",
        environment="local",
        subject=x,
    )
    replayed = resolve_undo(
        signed,
        plan,
        strategy="canary",
        approval=Control(identity="alice", signature=other_run),
        local=stack.local,
    )
    result = await _run(app, replayed)
    assert result.outcome == "failed" and "signature refused" in result.reason, result.reason
    assert _snapshot(stack) == before  # nothing changed: same instances, same router weights
    assert stack.count_versions(30) == {y: 30}

    code, out = await app.undo(
        app.write(signed_text), "--key", str(keys / "alice"), "--reason", "signed", "--wait"
    )
    assert code == 0, out
    result = await app.latest()
    assert result.outcome == "succeeded" and result.live_version == x
    assert result.status.approvals[0].fingerprint is not None and result.status.approvals[0].by == "alice"
    assert stack.count_versions(30) == {x: 30}


async def _run(app: App, pipeline: PipelineSpec) -> ReleaseResult:
    handle, _ = await start_or_attach(app.client, pipeline, redeploy=True, task_queue=app.task_queue)
    result: ReleaseResult = await handle.result()
    return result


def _snapshot(stack: Stack) -> tuple[list[str], dict[str, int]]:
    instances = sorted(
        f"{i.pool}{i.slot}:{i.version}:{i.pid}" for i in InstanceManager(stack.layout).list(probe=False)
    )
    return instances, stack.weights()
