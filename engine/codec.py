"""Payload encryption: AES-256-GCM with key ids, so keys can rotate.

Every payload the client, worker and starters send to Temporal (workflow inputs,
activity arguments and results, update payloads) is encrypted with the active key;
the server, its database and its UI see only ciphertext. Old keys stay listed for
decryption, so a key can rotate without breaking running releases or replays.

Keys come from ``DEPLOY_CODEC_KEYS`` or the file named by ``DEPLOY_CODEC_KEY_FILE``:
``id=base64key`` entries separated by commas or newlines, the first one active.
Without either, payloads are not encrypted (the local default). Generate a key with
``python -m engine.codec new-key``.
"""

from __future__ import annotations

import base64
import os
import sys
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path

from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from temporalio.api.common.v1 import Payload
from temporalio.converter import PayloadCodec

ENCODING = b"binary/encrypted"
KEY_ID = "encryption-key-id"
NONCE_BYTES = 12


class CodecError(ValueError):
    """Keys are missing, malformed, or a payload names a key this process does not have."""


def parse_keys(text: str) -> dict[str, bytes]:
    """``id=base64key`` entries (comma or newline separated), in order; the first is active."""
    keys: dict[str, bytes] = {}
    for raw in text.replace(",", "\n").splitlines():
        entry = raw.strip()
        if not entry or entry.startswith("#"):
            continue
        key_id, sep, b64 = entry.partition("=")
        if not sep or not key_id.strip():
            msg = "a codec key entry must look like id=base64key"
            raise CodecError(msg)
        try:
            key = base64.b64decode(b64.strip(), validate=True)
        except ValueError:
            msg = f"codec key {key_id.strip()!r} is not valid base64"
            raise CodecError(msg) from None
        if len(key) != 32:
            msg = f"codec key {key_id.strip()!r} must be 32 bytes (AES-256), got {len(key)}"
            raise CodecError(msg)
        keys[key_id.strip()] = key
    return keys


def keys_from_environment(env: Mapping[str, str] = os.environ) -> dict[str, bytes]:
    if env.get("DEPLOY_CODEC_KEYS"):
        return parse_keys(env["DEPLOY_CODEC_KEYS"])
    if env.get("DEPLOY_CODEC_KEY_FILE"):
        return parse_keys(Path(env["DEPLOY_CODEC_KEY_FILE"]).read_text())
    return {}


class EncryptionCodec(PayloadCodec):
    """Encrypts with the first key; decrypts with whichever key a payload names."""

    def __init__(self, keys: Mapping[str, bytes]) -> None:
        if not keys:
            msg = "EncryptionCodec needs at least one key"
            raise CodecError(msg)
        self._keys = {k: AESGCM(v) for k, v in keys.items()}
        self._active = next(iter(keys))

    async def encode(self, payloads: Sequence[Payload]) -> list[Payload]:
        return [self._encrypt(p) for p in payloads]

    async def decode(self, payloads: Sequence[Payload]) -> list[Payload]:
        return [self._decrypt(p) for p in payloads]

    def _encrypt(self, payload: Payload) -> Payload:
        nonce = os.urandom(NONCE_BYTES)
        sealed = self._keys[self._active].encrypt(nonce, payload.SerializeToString(), self._active.encode())
        return Payload(
            metadata={"encoding": ENCODING, KEY_ID: self._active.encode()},
            data=nonce + sealed,
        )

    def _decrypt(self, payload: Payload) -> Payload:
        if payload.metadata.get("encoding") != ENCODING:
            return payload  # written before encryption was turned on
        key_id = payload.metadata[KEY_ID].decode()
        key = self._keys.get(key_id)
        if key is None:
            msg = f"payload is encrypted with key {key_id!r}, which is not configured"
            raise CodecError(msg)
        nonce, sealed = payload.data[:NONCE_BYTES], payload.data[NONCE_BYTES:]
        return Payload.FromString(key.decrypt(nonce, sealed, key_id.encode()))


def codec_from_environment() -> EncryptionCodec | None:
    keys = keys_from_environment()
    return EncryptionCodec(keys) if keys else None


def new_key(key_id: str) -> str:
    return f"{key_id}={base64.b64encode(os.urandom(32)).decode()}"


def _main(argv: Iterable[str]) -> int:
    args = list(argv)
    if args[:1] != ["new-key"]:
        print("usage: python -m engine.codec new-key [KEY_ID]", file=sys.stderr)
        return 2
    print(new_key(args[1] if len(args) > 1 else "k1"))
    return 0


if __name__ == "__main__":
    sys.exit(_main(sys.argv[1:]))
