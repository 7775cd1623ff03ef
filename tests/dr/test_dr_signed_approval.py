"""A failover where approvals are signed and two approvers are required (real two-region stack).

A name typed at start (``approved_by``) or in an update proves nothing and is refused; two
signatures by distinct approvers' keys (made with ``ssh-keygen``) let the failover go, and
the run records both fingerprints.
"""

from __future__ import annotations

import asyncio
import uuid
from pathlib import Path

import pytest
from temporalio.client import Client, WorkflowHandle, WorkflowUpdateFailedError

from engine import approvals
from engine.contracts import ApprovalPolicy, Control, SignerKey
from engine.contracts.dr import DrResult, DrStatus, FailoverRequest
from harness.dr_stack import DrStack
from harness.support import ssh_key
from starters.signing import sign

pytestmark = pytest.mark.timeout(180)


def signer(keys: Path, who: str) -> SignerKey:
    key = ssh_key(keys, who)
    [line] = approvals.parse_allowed_signers(f"{who} {key.with_suffix('.pub').read_text()}", where=who)
    return SignerKey(principals=[who], key_type=line.key_type, key=line.key, fingerprint=line.fingerprint)


async def signed(handle: WorkflowHandle, keys: Path, who: str, environment: str) -> Control:
    desc = await handle.describe()
    operation = (await handle.query("status", result_type=DrStatus)).operation
    fields = {"workflow_id": handle.id, "run_id": desc.run_id, "action": "approve", "subject": operation}
    signature = await asyncio.to_thread(sign, str(keys / who), environment=environment, **fields)
    return Control(identity=who, signature=signature)


async def test_a_signed_failover_needs_two_distinct_approvers_keys(
    stack: DrStack, client: Client, task_queue: str, worker: None, tmp_path: Path
) -> None:
    policy = ApprovalPolicy(
        approvals="signed", signers=[signer(tmp_path, "alice"), signer(tmp_path, "bob")], required_approvals=2
    )
    spec = stack.spec().model_copy(update={"approvers": ["alice", "bob"], "policy": policy})
    handle = await client.start_workflow(
        "DrFailover",
        FailoverRequest(
            dr=spec, to_region="B", requested_by="pytest", approved_by="alice"
        ),  # a name: ignored
        id=f"dr-signed-{uuid.uuid4().hex[:6]}",
        task_queue=task_queue,
        result_type=DrResult,
    )
    deadline = asyncio.get_running_loop().time() + 60
    while not (held := await handle.query("status", result_type=DrStatus)).awaiting_approval:
        assert asyncio.get_running_loop().time() < deadline, "the failover does not wait for approvers"
        await asyncio.sleep(0.2)
    assert held.approvals_needed == 2

    with pytest.raises(WorkflowUpdateFailedError):
        await handle.execute_update("approve", Control(identity="bob", reason="typed"))
    first = await signed(handle, tmp_path, "alice", spec.environment)
    answer = await handle.execute_update("approve", first, result_type=str)
    assert "1 more distinct approver(s) needed" in answer
    held = await handle.query("status", result_type=DrStatus)
    assert held.awaiting_approval and held.approvals_needed == 1
    assert stack.topology()["active"] == "A", "nothing moved on one approval"
    assert any("needs the approver's SSH signature" in r.reason for r in held.refused)

    await handle.execute_update("approve", await signed(handle, tmp_path, "bob", spec.environment))
    result = await asyncio.wait_for(handle.result(), 90)
    assert result.outcome == "succeeded", result.reason
    assert stack.topology()["active"] == "B"
    assert [a.by for a in result.status.approvals] == ["alice", "bob"]
    assert len({a.fingerprint for a in result.status.approvals}) == 2
