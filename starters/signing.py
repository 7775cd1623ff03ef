"""Signing an approval from the command line: what control.py, failover.py and sign_approval.py share.

The signature is made by ``ssh-keygen -Y sign -n deploy-code`` with the approver's own key: a
private key file, or a public key file whose private half is in the ssh-agent. The private key
never leaves the machine, and nothing but the signature reaches Temporal.
"""

from __future__ import annotations

import secrets
import subprocess
from datetime import UTC, datetime
from pathlib import Path

from temporalio.client import WorkflowHandle

from engine import approvals
from engine.contracts import ApprovalPolicy, ReleaseStatus, Signature
from engine.contracts.dr import DrStatus
from engine.errors import InputError


def public_key(key: str) -> tuple[str, str]:
    """(key type, base64 blob) of the key's public half: the file itself if it is one, else KEY.pub."""
    path = Path(key).expanduser()
    candidates = [path] if path.suffix == ".pub" else [path.with_name(path.name + ".pub")]
    for candidate in candidates:
        try:
            fields = candidate.read_text().split()
        except OSError:
            continue
        if len(fields) >= 2:
            return fields[0], fields[1]
    msg = f"--key {key}: no public key at {candidates[0]} (ssh-keygen writes one beside the private key)"
    raise InputError(msg)


def identity_of(key: str, policy: ApprovalPolicy) -> str:
    """The approver whose allowed_signers entry holds this key (its first principal)."""
    _, blob = public_key(key)
    for signer in policy.signers:
        if signer.key == blob:
            return signer.principals[0]
    fingerprint = approvals.Signer((), "", blob).fingerprint
    msg = f"--key {key} ({fingerprint}) is no approver's key in this environment's allowed_signers"
    raise InputError(msg)


def sign(
    key: str,
    *,
    workflow_id: str,
    run_id: str,
    action: str,
    environment: str,
    subject: str,
    issued_at: datetime | None = None,
) -> Signature:
    """A fresh signature (now unless ``issued_at``, a random nonce) of ``action`` on that run, by ``key``."""
    issued_at = issued_at or datetime.now(UTC).replace(microsecond=0)
    nonce = secrets.token_urlsafe(18)
    text = approvals.message(
        workflow_id=workflow_id,
        run_id=run_id,
        action=action,
        environment=environment,
        version=subject,
        issued_at=issued_at,
        nonce=nonce,
    )
    path = str(Path(key).expanduser())
    done = subprocess.run(
        ["ssh-keygen", "-Y", "sign", "-q", "-n", approvals.NAMESPACE, "-f", path],
        input=text,
        capture_output=True,
        check=False,
    )
    if done.returncode != 0:
        msg = f"ssh-keygen could not sign with {key}: {done.stderr.decode(errors='replace').strip()[:300]}"
        raise InputError(msg)
    return Signature(issued_at=issued_at, nonce=nonce, armored=done.stdout.decode())


async def subject_of(handle: WorkflowHandle, *, failover: bool = False) -> tuple[str, str, str]:
    """What a signature names of the run behind ``handle``: workflow id, run id and subject
    (a release's version; a failover's operation, as its status names it)."""
    run_id = (await handle.describe()).run_id
    if failover:
        return handle.id, run_id, (await handle.query("status", result_type=DrStatus)).operation
    return handle.id, run_id, (await handle.query("status", result_type=ReleaseStatus)).version


async def sign_for(
    handle: WorkflowHandle, key: str, action: str, environment: str, *, failover: bool = False
) -> Signature:
    """A signature by ``key`` over ``action`` of the run behind ``handle``."""
    workflow_id, run_id, subject = await subject_of(handle, failover=failover)
    return sign(
        key, workflow_id=workflow_id, run_id=run_id, action=action, environment=environment, subject=subject
    )
