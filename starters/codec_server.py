"""Codec server: lets the Temporal web UI and CLI show decrypted payloads to operators.

    python starters/codec_server.py (--token-file FILE | --jwks FILE [--audience A] [--issuer I])
        [--bind 127.0.0.1:8081] [--ui-origin http://localhost:8233]

Serves Temporal's remote codec protocol: ``POST /encode`` and ``POST /decode`` with
``{"payloads": [...]}`` bodies, using the keys of ``DEPLOY_CODEC_KEYS`` /
``DEPLOY_CODEC_KEY_FILE`` (see engine/codec.py). Point the UI at it with
``temporal server start-dev --ui-codec-endpoint http://127.0.0.1:8081`` (or the
UI's "Data Encoder" setting) and the CLI with ``--codec-endpoint``. Only the
configured UI origin may call it from a browser (CORS).

Every ``/encode`` and ``/decode`` needs ``Authorization: Bearer TOKEN`` (anything else: 401):
a token listed in ``--token-file`` (one a line; for the CLI and scripts), or a JWT signed by a
key of ``--jwks`` (a JSON Web Key Set file; ``--audience``/``--issuer`` checked when given), which
is what the web UI sends when its codec setting "pass the user's access token" is on behind an
SSO proxy (docs/runbooks: codec server). The keys decrypt everything: never run it without auth.
"""

from __future__ import annotations

import argparse
import hmac
import os
import sys
from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path

import jwt
from aiohttp import web
from google.protobuf import json_format
from temporalio.api.common.v1 import Payload, Payloads

from engine.codec import EncryptionCodec, keys_from_environment

Transform = Callable[[Sequence[Payload]], Awaitable[list[Payload]]]


class BearerAuth:
    """Who may decrypt: a bearer token from a token file, or a JWT verified against a JWKS file."""

    def __init__(
        self,
        *,
        tokens: Sequence[str] = (),
        jwks: str | None = None,
        audience: str | None = None,
        issuer: str | None = None,
    ) -> None:
        self.tokens = [t for t in tokens if t]
        self.keys = jwt.PyJWKSet.from_json(jwks) if jwks else None
        self.audience, self.issuer = audience, issuer
        if not self.tokens and self.keys is None:
            raise ValueError("no token and no JWKS: the codec server refuses to run without auth")

    @classmethod
    def from_files(
        cls, token_file: str | None, jwks_file: str | None, audience: str | None, issuer: str | None
    ) -> BearerAuth:
        tokens = Path(token_file).read_text().split() if token_file else []
        jwks = Path(jwks_file).read_text() if jwks_file else None
        return cls(tokens=tokens, jwks=jwks, audience=audience, issuer=issuer)

    def allows(self, header: str | None) -> bool:
        scheme, _, token = (header or "").partition(" ")
        if scheme.lower() != "bearer" or not token:
            return False
        if any(hmac.compare_digest(token.encode(), t.encode()) for t in self.tokens):
            return True
        if self.keys is None:
            return False
        try:
            kid = jwt.get_unverified_header(token).get("kid")
            key = next((k for k in self.keys.keys if kid is None or k.key_id == kid), None)
            if key is None:
                return False
            jwt.decode(
                token,
                key=key.key,
                algorithms=[key.algorithm_name] if key.algorithm_name else ["RS256", "ES256", "EdDSA"],
                audience=self.audience,
                issuer=self.issuer,
                options={"require": ["exp"], "verify_aud": self.audience is not None},
            )
        except jwt.PyJWTError:
            return False
        return True


def build_app(codec: EncryptionCodec, ui_origin: str, auth: BearerAuth) -> web.Application:
    """The aiohttp application (also used by tests)."""

    def cors(response: web.StreamResponse, request: web.Request) -> web.StreamResponse:
        if request.headers.get("Origin") == ui_origin:
            response.headers["Access-Control-Allow-Origin"] = ui_origin
            response.headers["Access-Control-Allow-Methods"] = "POST, OPTIONS"
            response.headers["Access-Control-Allow-Headers"] = "content-type, x-namespace, authorization"
            response.headers["Access-Control-Allow-Credentials"] = "true"
        return response

    def handler(transform: Transform) -> Callable[[web.Request], Awaitable[web.StreamResponse]]:
        async def handle(request: web.Request) -> web.StreamResponse:
            if request.method == "OPTIONS":  # a browser's preflight carries no credentials
                return cors(web.Response(), request)
            if not auth.allows(request.headers.get("Authorization")):
                response = web.json_response({"error": "a valid bearer token is needed"}, status=401)
                response.headers["WWW-Authenticate"] = 'Bearer realm="deploy-code codec"'
                return cors(response, request)
            payloads = json_format.Parse(await request.text(), Payloads())
            result = Payloads(payloads=await transform(list(payloads.payloads)))
            return cors(web.json_response(text=json_format.MessageToJson(result)), request)

        return handle

    app = web.Application()
    for path, transform in (("/encode", codec.encode), ("/decode", codec.decode)):
        app.router.add_route("POST", path, handler(transform))
        app.router.add_route("OPTIONS", path, handler(transform))
    return app


def main(argv: list[str] | None = None) -> int:
    formatter = argparse.RawDescriptionHelpFormatter
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=formatter)
    parser.add_argument("--bind", default="127.0.0.1:8081", help="host:port to listen on")
    parser.add_argument("--ui-origin", default="http://localhost:8233", help="the web UI's origin, for CORS")
    parser.add_argument(
        "--token-file", default=os.environ.get("DEPLOY_CODEC_TOKEN_FILE"), help="bearer tokens"
    )
    parser.add_argument("--jwks", default=os.environ.get("DEPLOY_CODEC_JWKS_FILE"), help="JWKS file for JWTs")
    parser.add_argument("--audience", default=None, help="the JWTs' required audience")
    parser.add_argument("--issuer", default=None, help="the JWTs' required issuer")
    args = parser.parse_args(argv)
    try:
        auth = BearerAuth.from_files(args.token_file, args.jwks, args.audience, args.issuer)
    except (OSError, ValueError, jwt.PyJWTError) as exc:
        print(f"error: {exc} (--token-file FILE or --jwks FILE)", file=sys.stderr)
        return 2
    keys = keys_from_environment()
    if not keys:
        print("error: no codec keys: set DEPLOY_CODEC_KEYS or DEPLOY_CODEC_KEY_FILE", file=sys.stderr)
        return 2
    host, _, port = args.bind.rpartition(":")
    web.run_app(build_app(EncryptionCodec(keys), args.ui_origin, auth), host=host, port=int(port), print=None)
    return 0


if __name__ == "__main__":
    sys.exit(main())
