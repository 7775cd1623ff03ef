"""Signed approvals (engine/approvals.py) against signatures made by ssh-keygen itself."""

from __future__ import annotations

import re
import subprocess
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from engine.approvals import (
    NAMESPACE,
    SignatureRefused,
    check_time,
    message,
    parse_allowed_signers,
    verify,
)
from engine.config import parse_config, resolve_release
from engine.contracts import ApprovalPolicy
from engine.errors import ConfigError, InputError
from harness.support import ssh_key

NOW = datetime(2026, 12, 7, 21, 0, tzinfo=UTC)
FIELDS = {
    "workflow_id": "release-sample-api-production",
    "run_id": "run-1",
    "action": "approve",
    "environment": "production",
    "version": "v1.2.3",
    "issued_at": NOW,
    "nonce": "n0nce-0123456789abcdef",
}


def keypair(tmp: Path, name: str, kind: str = "ed25519") -> tuple[Path, str]:
    key = ssh_key(tmp, name, kind)
    return key, key.with_suffix(".pub").read_text().strip()


def sign(key: Path, text: bytes, namespace: str = NAMESPACE) -> str:
    done = subprocess.run(
        ["ssh-keygen", "-Y", "sign", "-q", "-f", str(key), "-n", namespace],
        input=text,
        capture_output=True,
        check=True,
    )
    return done.stdout.decode()


@pytest.mark.parametrize("kind", ["ed25519", "ecdsa", "rsa"])
def test_a_signature_made_by_ssh_keygen_verifies_and_names_its_signer(tmp_path: Path, kind: str) -> None:
    key, public = keypair(tmp_path, "alice", kind)
    signers = parse_allowed_signers(f"alice@example.com {public}\n")
    signed = message(**FIELDS)  # type: ignore[arg-type]
    signer = verify(sign(key, signed), signed, signers)
    assert signer.principals == ("alice@example.com",)
    fingerprint = subprocess.run(
        ["ssh-keygen", "-lf", str(key)], check=True, capture_output=True, text=True
    ).stdout.split()[1]
    assert signer.fingerprint == fingerprint


def test_forged_and_misdirected_signatures_are_refused(tmp_path: Path) -> None:
    alice, alice_pub = keypair(tmp_path, "alice")
    mallory, _ = keypair(tmp_path, "mallory")
    signers = parse_allowed_signers(f"alice {alice_pub}")
    signed = message(**FIELDS)  # type: ignore[arg-type]
    good = sign(alice, signed)
    with pytest.raises(SignatureRefused, match="key no approver"):
        verify(sign(mallory, signed), signed, signers)
    for change in (
        {"run_id": "run-2"},
        {"action": "promote"},
        {"version": "v9.9.9"},
        {"nonce": "other-nonce-000000"},
    ):
        with pytest.raises(SignatureRefused, match="does not match what is approved"):
            verify(good, message(**{**FIELDS, **change}), signers)  # type: ignore[arg-type]
    with pytest.raises(SignatureRefused, match="namespace 'git'"):
        verify(sign(alice, signed, namespace="git"), signed, signers)
    tampered = good.replace(good.splitlines()[2][5], "A" if good.splitlines()[2][5] != "A" else "B", 1)
    with pytest.raises(SignatureRefused):
        verify(tampered, signed, signers)
    with pytest.raises(SignatureRefused, match="no '-----BEGIN SSH SIGNATURE-----'"):
        verify("alice", signed, signers)


def test_old_and_future_signatures_are_refused() -> None:
    check_time(NOW - timedelta(minutes=10), NOW, timedelta(minutes=15))
    with pytest.raises(SignatureRefused, match="expired"):
        check_time(NOW - timedelta(minutes=16), NOW, timedelta(minutes=15))
    with pytest.raises(SignatureRefused, match="in the future"):
        check_time(NOW + timedelta(minutes=6), NOW, timedelta(minutes=15))


def test_allowed_signers_lines_with_options_and_bad_lines(tmp_path: Path) -> None:
    _, public = keypair(tmp_path, "bob")
    kind, blob = public.split()[:2]
    text = f'# approvers\nbob,robert namespaces="deploy-code" {kind} {blob} bob@laptop\n\n'
    [bob] = parse_allowed_signers(text)
    assert bob.principals == ("bob", "robert") and bob.key_type == kind
    with pytest.raises(ValueError, match="line 1: expected 'principals"):
        parse_allowed_signers(f"{kind} {blob}")
    with pytest.raises(ValueError, match="line 2: not a valid ssh-ed25519 public key"):
        parse_allowed_signers("# x\nbob ssh-ed25519 AAAAnotakey")


# ---- the environment's approval settings (deploy-code.yaml), refused at resolve naming the field -------
CONFIG = """
app: {name: sample-api}
environments:
  local:
    providers: {platform: local, router: haproxy, analysis: prometheus}
    instances: 2
    kubernetes: {app: sample-api, image: registry/sample-api}
%s
strategies:
  canary:
    steps: [{set_weight: 25}, {pause: {}}]
"""


def policy_of(settings: str) -> ApprovalPolicy:
    indented = "\n".join(f"    {line}" for line in settings.strip().splitlines())
    return resolve_release(parse_config(CONFIG % indented), "v1.2.3", "canary", "local").environment.policy


def test_signed_approvals_carry_only_the_approvers_keys(tmp_path: Path) -> None:
    _, alice = keypair(tmp_path, "alice")
    _, bob = keypair(tmp_path, "bob")
    _, carol = keypair(tmp_path, "carol")
    signers = tmp_path / "allowed_signers"
    signers.write_text(f"# approvers\nalice {alice}\nbob {bob}\ncarol {carol}\n")
    policy = policy_of(
        f"approvers: [alice, bob]\napprovals: signed\nallowed_signers: {signers}\nrequired_approvals: 2"
    )
    assert policy.approvals == "signed" and policy.required_approvals == 2
    assert sorted(p for s in policy.signers for p in s.principals) == ["alice", "bob"]  # carol signs nothing
    assert all(s.fingerprint.startswith("SHA256:") for s in policy.signers)
    assert policy_of("approvers: [alice]").approvals == "named"


@pytest.mark.parametrize(
    ("settings", "error"),
    [
        ("approvers: [alice]\nrequired_approvals: 2", "environments.local.required_approvals: 2 distinct"),
        ("approvals: signed\nallowed_signers: x", "environments.local.approvers: approvals are signed"),
        ("approvers: [alice]\napprovals: signed", "environments.local.allowed_signers: approvals are signed"),
        ("approvers: [alice]\napprovals: signed\nallowed_signers: /nonexistent", "cannot read /nonexistent"),
        (
            "approvers: [alice]\napprovals: signed\nallowed_signers: {bad}",
            "environments.local.allowed_signers:",
        ),
        ("approvers: [alice, dave]\napprovals: signed\nallowed_signers: {good}", "dave has no key in"),
        (
            "approvers: [alice]\napprovals: signed\nallowed_signers: {good}\nsignature_validity: 1x",
            "duration",
        ),
        ("approvers: [alice]\napprovals: maybe", "approvals"),
    ],
)
def test_bad_approval_settings_are_refused_naming_the_field(
    tmp_path: Path, settings: str, error: str
) -> None:
    _, alice = keypair(tmp_path, "alice")
    good, bad = tmp_path / "good", tmp_path / "bad"
    good.write_text(f"alice {alice}\n")
    bad.write_text(f"alice {alice}\nbob ssh-ed25519 not-base64!\n")
    with pytest.raises((InputError, ConfigError), match=re.escape(error)):
        policy_of(settings.format(good=good, bad=bad))
