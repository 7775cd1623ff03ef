"""Signed approvals: what an approver signs, and how a workflow checks it (deterministically).

An approver signs what they approve with the SSH key they already have, exactly as
``ssh-keygen -Y sign -n deploy-code -f KEY`` does (OpenSSH's SSHSIG format, PROTOCOL.sshsig):
the signed text names the workflow and its run, the action, the environment, the version, when it
was issued and a nonce (:func:`message`). Keys are configured per environment in git's
``allowed_signers`` format (``principal[,principal...] [options] keytype base64 [comment]``;
:func:`parse_allowed_signers`). A workflow verifies a signature with :func:`verify` inside its
update handler: pure computation over the payload and the configuration, so it replays the same.

What is refused, and why, is a :class:`SignatureRefused` with the reason: a malformed or forged
signature, a key no approver of the environment has, another namespace, a signature over other
text (another run, action, environment or version), too old or from the future, a nonce used
before in this run.

Signatures are checked with the ``cryptography`` package (Ed25519, ECDSA P-256/384/521, RSA with
SHA-256/512); the SSH wire format is parsed here (tests sign with ``ssh-keygen`` itself).
"""

from __future__ import annotations

import base64
import hashlib
import re
import shlex
from dataclasses import dataclass
from datetime import datetime, timedelta

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, padding, rsa
from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature

NAMESPACE = "deploy-code"
"""The ``-n`` of ``ssh-keygen -Y sign``: a signature made for anything else is refused."""
MAX_SKEW = timedelta(minutes=5)
"""A signature may be issued this far in the workflow's future (clocks differ), no further."""
_ARMOR = re.compile(r"-----BEGIN SSH SIGNATURE-----(.*?)-----END SSH SIGNATURE-----", re.S)


class SignatureRefused(ValueError):
    """A signature that does not prove what it must; the message says why."""


@dataclass(frozen=True)
class Signer:
    """One line of an allowed_signers file: who may sign, with which public key."""

    principals: tuple[str, ...]
    key_type: str
    key: str
    """The public key blob, base64 (as in ``~/.ssh/id_ed25519.pub``)."""

    @property
    def fingerprint(self) -> str:
        """``SHA256:...``, as ``ssh-keygen -l`` prints it."""
        digest = hashlib.sha256(base64.b64decode(self.key)).digest()
        return "SHA256:" + base64.b64encode(digest).decode().rstrip("=")


def parse_allowed_signers(text: str, where: str = "allowed_signers") -> list[Signer]:
    """Every signer of an allowed_signers text; a malformed line is a ValueError naming it."""
    out = []
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        try:
            fields = shlex.split(line)
        except ValueError as exc:
            raise ValueError(f"{where} line {number}: {exc}") from None
        # principals, then options (anything but a key type), then key type and key.
        key_at = next((i for i, f in enumerate(fields) if _is_key_type(f)), None)
        if key_at is None or key_at == 0 or key_at + 1 >= len(fields):
            expected = "'principals [options] keytype base64-key'"
            msg = f"{where} line {number}: expected {expected}, got {line[:80]!r}"
            raise ValueError(msg)
        principals = tuple(p for p in fields[0].split(",") if p)
        key_type, key = fields[key_at], fields[key_at + 1]
        try:
            blob = base64.b64decode(key, validate=True)
            serialization.load_ssh_public_key(f"{key_type} {key}".encode())
        except (ValueError, TypeError) as exc:
            raise ValueError(f"{where} line {number}: not a valid {key_type} public key ({exc})") from None
        if _read_string(blob, 0)[0].decode(errors="replace") != key_type:
            raise ValueError(f"{where} line {number}: the key is not a {key_type} key")
        out.append(Signer(principals=principals, key_type=key_type, key=key))
    return out


def _is_key_type(field: str) -> bool:
    return field.startswith(("ssh-", "ecdsa-sha2-", "sk-"))


def message(
    *,
    workflow_id: str,
    run_id: str,
    action: str,
    environment: str,
    version: str,
    issued_at: datetime,
    nonce: str,
) -> bytes:
    """The text an approver signs: everything that makes the approval this one and no other."""
    lines = [
        "deploy-code approval v1",
        f"workflow: {workflow_id}",
        f"run: {run_id}",
        f"action: {action}",
        f"environment: {environment}",
        f"version: {version}",
        f"issued: {issued_at.isoformat()}",
        f"nonce: {nonce}",
    ]
    return ("\n".join(lines) + "\n").encode()


def verify(armored: str, signed: bytes, signers: list[Signer]) -> Signer:
    """The signer whose key made ``armored`` over ``signed`` in our namespace; else refused."""
    blob = _dearmor(armored)
    if blob[:6] != b"SSHSIG":
        raise SignatureRefused("not an SSH signature (no SSHSIG preamble)")
    version = int.from_bytes(blob[6:10], "big")
    if version != 1:
        raise SignatureRefused(f"SSH signature version {version} is not supported")
    public, at = _read_string(blob, 10)
    namespace, at = _read_string(blob, at)
    reserved, at = _read_string(blob, at)
    hash_algorithm, at = _read_string(blob, at)
    signature, _ = _read_string(blob, at)
    if namespace.decode(errors="replace") != NAMESPACE:
        raise SignatureRefused(
            f"signed for namespace {namespace.decode(errors='replace')!r}, not {NAMESPACE!r}"
        )
    signer = next((s for s in signers if base64.b64decode(s.key) == public), None)
    if signer is None:
        raise SignatureRefused("signed with a key no approver of this environment has")
    algorithm = hash_algorithm.decode(errors="replace")
    if algorithm not in ("sha512", "sha256"):
        raise SignatureRefused(f"hash algorithm {algorithm!r} is not sha256 or sha512")
    digest = hashlib.new(algorithm, signed).digest()
    data = b"SSHSIG" + b"".join(_string(x) for x in (namespace, reserved, hash_algorithm, digest))
    _check(signer, signature, data)
    return signer


def check_time(issued_at: datetime, now: datetime, valid_for: timedelta) -> None:
    """Refuse a signature issued too long before ``now``, or too far after it."""
    if issued_at > now + MAX_SKEW:
        raise SignatureRefused(f"issued {issued_at.isoformat()}, in the future (now {now.isoformat()})")
    if now - issued_at > valid_for:
        raise SignatureRefused(f"expired: issued {issued_at.isoformat()}, valid for {valid_for}")


def _check(signer: Signer, signature: bytes, data: bytes) -> None:
    sig_format, at = _read_string(signature, 0)
    raw, _ = _read_string(signature, at)
    key = serialization.load_ssh_public_key(f"{signer.key_type} {signer.key}".encode())
    try:
        if isinstance(key, ed25519.Ed25519PublicKey):
            key.verify(raw, data)
        elif isinstance(key, ec.EllipticCurvePublicKey):
            r, at = _read_string(raw, 0)
            s, _ = _read_string(raw, at)
            der = encode_dss_signature(int.from_bytes(r, "big"), int.from_bytes(s, "big"))
            curve_hash = {256: hashes.SHA256(), 384: hashes.SHA384(), 521: hashes.SHA512()}[
                key.curve.key_size
            ]
            key.verify(der, data, ec.ECDSA(curve_hash))
        elif isinstance(key, rsa.RSAPublicKey):
            rsa_hash = {b"rsa-sha2-512": hashes.SHA512(), b"rsa-sha2-256": hashes.SHA256()}.get(sig_format)
            if rsa_hash is None:
                raise SignatureRefused(
                    f"RSA signature format {sig_format.decode(errors='replace')!r} refused"
                )
            key.verify(raw, data, padding.PKCS1v15(), rsa_hash)
        else:
            raise SignatureRefused(f"key type {signer.key_type} is not supported")
    except InvalidSignature:
        raise SignatureRefused(
            "the signature does not match what is approved (forged, or for another one)"
        ) from None


def _dearmor(armored: str) -> bytes:
    found = _ARMOR.search(armored or "")
    if found is None:
        raise SignatureRefused("no '-----BEGIN SSH SIGNATURE-----' block")
    try:
        return base64.b64decode("".join(found.group(1).split()), validate=True)
    except ValueError:
        raise SignatureRefused("the signature block is not base64") from None


def _read_string(blob: bytes, at: int) -> tuple[bytes, int]:
    """One SSH ``string`` (uint32 length, bytes) at ``at``; the bytes and where the next begins."""
    if at + 4 > len(blob):
        raise SignatureRefused("truncated SSH signature")
    size = int.from_bytes(blob[at : at + 4], "big")
    end = at + 4 + size
    if end > len(blob):
        raise SignatureRefused("truncated SSH signature")
    return blob[at + 4 : end], end


def _string(value: bytes) -> bytes:
    return len(value).to_bytes(4, "big") + value
