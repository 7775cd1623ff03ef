"""Payloads are encrypted end to end; operators decrypt through the codec server; logs redact secrets."""

from __future__ import annotations

import asyncio
import base64
import json
import socket
import time
from concurrent.futures import ThreadPoolExecutor

import httpx
import jwt
import pytest
import structlog
from aiohttp import web
from cryptography.hazmat.primitives.asymmetric import rsa

import worker as worker_module
from engine import temporal
from engine.client import start_or_attach
from engine.codec import EncryptionCodec, new_key, parse_keys
from engine.config import parse_config, resolve_release
from engine.contracts import Control, ReleaseResult, ReleaseStatus
from engine.log import configure as configure_logging
from engine.log import redact_secrets
from harness.stack import Stack, new_version
from infrastructure.local.temporal_server import temporal_binary
from starters.codec_server import BearerAuth, build_app

MARKER = "marker-secret-7f3a9c"


async def raw_history(stack: Stack, workflow_id: str, *codec: str) -> str:
    """The history as the CLI shows it: as the server stores it, or decoded through ``codec`` flags."""
    proc = await asyncio.create_subprocess_exec(
        temporal_binary(), "workflow", "show", "--address", stack.temporal_address,
        "--workflow-id", workflow_id, "--output", "json", *codec,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    out, err = await asyncio.wait_for(proc.communicate(), 30)
    assert proc.returncode == 0, err.decode()
    return out.decode()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


async def test_history_holds_no_plaintext_and_operators_can_decrypt(
    stack: Stack, task_queue: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    old_key, new_key_entry = new_key("k1"), new_key("k2")
    monkeypatch.setenv("DEPLOY_CODEC_KEYS", old_key)
    client = await temporal.connect(target_host=stack.temporal_address)
    config = parse_config(stack.config_text("- set_weight: 20\n- pause: {}"))
    spec = resolve_release(config, new_version(), "canary", "local", requested_by=MARKER, local=stack.local)
    async with worker_module.running(client, task_queue):
        handle, _ = await start_or_attach(client, spec, task_queue=task_queue)
        while not (await handle.query("status", result_type=ReleaseStatus)).awaiting_approval:  # noqa: ASYNC110
            await asyncio.sleep(0.2)
        await handle.execute_update("abort", Control(identity="alice", reason=f"done {MARKER}"))
        result: ReleaseResult = await handle.result()
    assert result.outcome == "rolled_back" and MARKER in result.reason

    raw = await raw_history(stack, handle.id)
    assert MARKER not in raw
    assert "YmluYXJ5L2VuY3J5cHRlZA==" in raw  # base64 of the "binary/encrypted" encoding

    # After a rotation (new key first, old kept for decryption) a worker still replays the old run.
    monkeypatch.setenv("DEPLOY_CODEC_KEYS", f"{new_key_entry},{old_key}")
    rotated = await temporal.connect(target_host=stack.temporal_address)
    with ThreadPoolExecutor(max_workers=4) as executor:
        async with worker_module.build_worker(rotated, task_queue, executor, max_concurrent_activities=4):
            status = await rotated.get_workflow_handle(handle.id).query("status", result_type=ReleaseStatus)
    assert MARKER in status.decisions[0].what

    # The codec server decrypts for the web UI, and only the UI's origin may call it from a browser.
    port, origin = free_port(), "http://localhost:8233"
    auth = BearerAuth(tokens=["codec-t0ken-for-operators"])
    runner = web.AppRunner(build_app(EncryptionCodec(parse_keys(old_key)), origin, auth))
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    try:
        started = json.loads(raw)["events"][0]["workflowExecutionStartedEventAttributes"]["input"]
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}") as http:
            bearer = {"Authorization": "Bearer codec-t0ken-for-operators"}
            anonymous = await http.post("/decode", json=started, headers={"Origin": origin})
            wrong = await http.post(
                "/decode", json=started, headers={"Origin": origin, "Authorization": "Bearer x"}
            )
            decoded = await http.post("/decode", json=started, headers={"Origin": origin, **bearer})
            other = await http.post(
                "/decode", json=started, headers={"Origin": "http://evil.example", **bearer}
            )
        # The temporal CLI decodes through it with the operator's token (--codec-auth).
        endpoint = ("--codec-endpoint", f"http://127.0.0.1:{port}")
        shown = await raw_history(stack, handle.id, *endpoint, "--codec-auth", bearer["Authorization"])
    finally:
        await runner.cleanup()
    assert (anonymous.status_code, wrong.status_code) == (401, 401)
    assert MARKER not in anonymous.text + wrong.text
    assert decoded.status_code == 200
    assert decoded.headers["Access-Control-Allow-Origin"] == origin
    assert "Access-Control-Allow-Origin" not in other.headers
    plain = base64.b64decode(decoded.json()["payloads"][0]["data"]).decode()
    assert MARKER in plain
    shown_input = json.loads(shown)["events"][0]["workflowExecutionStartedEventAttributes"]["input"]
    assert MARKER in base64.b64decode(shown_input["payloads"][0]["data"]).decode()


def test_secrets_are_redacted_from_logs(capsys: pytest.CaptureFixture[str]) -> None:
    event = redact_secrets(
        None, "info", {"event": "connect", "api_key": "sk-123", "password": "p", "user": "u"}
    )
    assert event == {"event": "connect", "api_key": "[redacted]", "password": "[redacted]", "user": "u"}
    configure_logging("INFO")  # the worker's and starters' real set-up
    try:
        structlog.get_logger().info("connecting", api_key="sk-live-123", namespace="prod")
        written = json.loads(capsys.readouterr().err.strip().splitlines()[-1])
    finally:
        structlog.reset_defaults()
    assert written["api_key"] == "[redacted]" and written["namespace"] == "prod"
    assert "sk-live-123" not in json.dumps(written)


async def test_the_codec_server_takes_jwts_signed_by_its_jwks_and_nothing_else() -> None:
    """The web UI behind an SSO proxy passes the user's access token: a JWT checked against the
    provider's key set (audience, issuer, expiry); any other token, or none, is a 401."""
    idp, stranger = rsa.generate_private_key(65537, 2048), rsa.generate_private_key(65537, 2048)
    jwk = json.loads(jwt.algorithms.RSAAlgorithm.to_jwk(idp.public_key()))
    jwks = json.dumps({"keys": [{**jwk, "kid": "k1", "alg": "RS256", "use": "sig"}]})
    auth = BearerAuth(jwks=jwks, audience="temporal-ui", issuer="https://sso.example")
    now = int(time.time())
    claims = {"sub": "alice", "aud": "temporal-ui", "iss": "https://sso.example", "exp": now + 60}

    def token(key: rsa.RSAPrivateKey, **changes: object) -> str:
        return jwt.encode({**claims, **changes}, key, algorithm="RS256", headers={"kid": "k1"})

    assert auth.allows(f"Bearer {token(idp)}")
    assert not auth.allows(f"Bearer {token(stranger)}")  # forged
    assert not auth.allows(f"Bearer {token(idp, exp=now - 10)}")  # expired
    assert not auth.allows(f"Bearer {token(idp, aud='other')}")  # for another service
    assert not auth.allows(token(idp))  # not a bearer header
    assert not auth.allows(None)
    with pytest.raises(ValueError, match="refuses to run without auth"):
        BearerAuth()


def test_bad_keys_are_refused() -> None:
    from engine.codec import CodecError

    with pytest.raises(CodecError, match="must be 32 bytes"):
        parse_keys("k1=c2hvcnQ=")
    with pytest.raises(CodecError, match="id=base64key"):
        parse_keys("no-separator")
