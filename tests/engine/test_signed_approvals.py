"""Signed approvals on the real platform: a release that waits for approval where approvals are signed.

The approvers' keys are made here with ``ssh-keygen``; control.py signs with them (through
``ssh-keygen -Y sign``) and the workflow verifies. Forgeries come through control.py and through
the ``temporal`` CLI; every refusal must change nothing (the release still waits) and be recorded
with its reason.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from temporalio.client import Client, WorkflowHandle, WorkflowUpdateFailedError

from engine.client import start_or_attach
from engine.config import parse_config, resolve_release
from engine.contracts import Control, Phase, ReleaseResult, ReleaseStatus
from harness.stack import Stack, new_version, wait_for
from harness.support import allowed_signers, ssh_key
from infrastructure.local.temporal_server import temporal_binary
from starters import control
from starters.common import EXIT_BAD_INPUT, EXIT_OK, EXIT_REFUSED
from starters.signing import sign

pytestmark = pytest.mark.usefixtures("worker")
STEPS = "- set_weight: 20\n- pause: {}\n- set_weight: 40"


def signed_config(stack: Stack, *, required: int = 1) -> Path:
    """The base config with approvals signed by alice's and bob's keys (mallory has a key, not listed)."""
    keys = stack.tmp / "keys"
    signers = allowed_signers(keys, "alice", "bob")
    ssh_key(keys, "mallory")
    text = stack.config_text(STEPS).replace(
        "    approvers: [alice]\n",
        f"    approvers: [alice, bob]\n    approvals: signed\n    allowed_signers: {signers}\n"
        f"    required_approvals: {required}\n",
    )
    path = stack.tmp / f"signed-{required}.yaml"
    path.write_text(text)
    return path


async def start(client: Client, stack: Stack, task_queue: str, config: Path) -> WorkflowHandle:
    spec = resolve_release(
        parse_config(await asyncio.to_thread(config.read_text)),
        new_version(),
        "canary",
        "local",
        requested_by="pytest",
        local=stack.local,
    )
    handle, _ = await start_or_attach(client, spec, task_queue=task_queue)
    await wait_for(handle, lambda s: s.awaiting_approval)
    return handle


async def status(handle: WorkflowHandle) -> ReleaseStatus:
    return await handle.query("status", result_type=ReleaseStatus)


@pytest.fixture
def cli(stack: Stack, monkeypatch: pytest.MonkeyPatch) -> Callable[..., object]:
    monkeypatch.setenv("TEMPORAL_ADDRESS", stack.temporal_address)

    async def run(config: Path, *argv: str) -> int:
        return await control.main([*argv, "--config", str(config)])

    return run


async def signed(stack: Stack, handle: WorkflowHandle, who: str, **change: str) -> Control:
    """A control signed by ``who`` for this release (``change``: what to sign instead)."""
    desc, st = await handle.describe(), await status(handle)
    fields = {
        "workflow_id": handle.id,
        "run_id": desc.run_id,
        "action": "approve",
        "subject": st.version,
        **change,
    }
    sig = sign(str(stack.tmp / "keys" / who), environment="local", **fields)  # type: ignore[arg-type]
    return Control(identity=who, signature=sig)


async def test_forged_approvals_are_refused_and_change_nothing(
    client: Client, stack: Stack, task_queue: str, cli: Callable[..., object]
) -> None:
    config = signed_config(stack)
    handle = await start(client, stack, task_queue, config)
    keys = stack.tmp / "keys"

    # control.py: a name without a key is refused before anything is sent; mallory's key is no
    # approver's; alice's name with mallory's key is refused by the workflow.
    assert await cli(config, "approve", "--as", "alice") == EXIT_BAD_INPUT  # type: ignore[misc]
    assert await cli(config, "approve", "--key", str(keys / "mallory")) == EXIT_BAD_INPUT  # type: ignore[misc]
    assert await cli(config, "approve", "--as", "alice", "--key", str(keys / "mallory")) == EXIT_REFUSED  # type: ignore[misc]

    # The temporal CLI: a plain name, and a signature by alice made for another action.
    other_action = (await signed(stack, handle, "alice", action="promote")).model_dump(mode="json")
    for forged in ({"identity": "alice", "reason": "trust me"}, other_action):
        done = await asyncio.create_subprocess_exec(
            temporal_binary(), "workflow", "update", "execute", "--address", stack.temporal_address,
            "--workflow-id", handle.id, "--name", "approve", "--input", json.dumps(forged),
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
        )  # fmt: skip
        _, err = await asyncio.wait_for(done.communicate(), timeout=30)
        assert done.returncode != 0
        assert "signature" in err.decode()

    # Another run, an old one, a reused nonce: refused.
    with pytest.raises(WorkflowUpdateFailedError, match="Workflow update failed"):
        await handle.execute_update("approve", await signed(stack, handle, "alice", run_id="another-run"))
    expired = sign(
        str(keys / "alice"), workflow_id=handle.id, run_id=(await handle.describe()).run_id, action="approve",
        environment="local", subject=(await status(handle)).version,
        issued_at=datetime.now(UTC).replace(microsecond=0) - timedelta(hours=1),
    )  # fmt: skip
    with pytest.raises(WorkflowUpdateFailedError):
        await handle.execute_update("approve", Control(identity="alice", signature=expired))

    held = await status(handle)
    assert held.awaiting_approval and held.phase == Phase.AWAITING_APPROVAL and held.canary_weight == 20
    reasons = [r.reason for r in held.refused]
    assert any("needs the approver's SSH signature" in r for r in reasons)  # the plain name (CLI)
    assert sum("does not match what is approved" in r for r in reasons) >= 2  # other action, other run
    assert any("key no approver of this environment has" in r for r in reasons)  # mallory's key
    assert any("expired" in r for r in reasons)
    assert held.approvals == []

    # The right signature, sent by control.py: approved, and the release goes on.
    assert await cli(config, "approve", "--key", str(keys / "alice"), "--reason", "signed") == EXIT_OK  # type: ignore[misc]
    result: ReleaseResult = await asyncio.wait_for(handle.result(), timeout=120)
    assert result.outcome == "succeeded", result.reason
    [approval] = [a for a in result.status.approvals if a.action == "approve"]
    assert approval.by == "alice" and approval.fingerprint and approval.fingerprint.startswith("SHA256:")

    # The history holds signatures (public), never the private key.
    history = json.dumps((await handle.fetch_history()).to_json_dict())
    private = (keys / "alice").read_text()
    body = "".join(private.splitlines()[1:-1])
    assert body[:40] not in history and "PRIVATE KEY" not in history


async def test_two_person_rule_counts_distinct_keys_and_a_replayed_nonce_is_refused(
    client: Client, stack: Stack, task_queue: str, cli: Callable[..., object]
) -> None:
    config = signed_config(stack, required=2)
    handle = await start(client, stack, task_queue, config)
    keys = stack.tmp / "keys"

    first = await signed(stack, handle, "alice")
    answer = await handle.execute_update("approve", first, result_type=str)
    assert "1 more distinct approver(s) needed" in answer
    with pytest.raises(WorkflowUpdateFailedError):
        await handle.execute_update("approve", first)  # the same signature again: a replayed nonce
    assert await cli(config, "approve", "--key", str(keys / "alice")) == EXIT_OK  # type: ignore[misc]
    held = await status(handle)
    assert held.awaiting_approval and held.approvals_needed == 1  # alice twice counts once
    assert [a.by for a in held.approvals] == ["alice", "alice"]
    assert any("nonce was used before" in r.reason for r in held.refused)

    assert await cli(config, "approve", "--key", str(keys / "bob")) == EXIT_OK  # type: ignore[misc]
    result: ReleaseResult = await asyncio.wait_for(handle.result(), timeout=120)
    assert result.outcome == "succeeded", result.reason
    approved = [d.by for d in result.status.decisions if d.what == "approved"]
    assert approved == ["bob"]
    assert len({a.fingerprint for a in result.status.approvals}) == 2
