"""Codec server: lets the Temporal web UI and CLI show decrypted payloads to operators.

    python starters/codec_server.py [--bind 127.0.0.1:8081] [--ui-origin http://localhost:8233]

Serves Temporal's remote codec protocol: ``POST /encode`` and ``POST /decode`` with
``{"payloads": [...]}`` bodies, using the keys of ``DEPLOY_CODEC_KEYS`` /
``DEPLOY_CODEC_KEY_FILE`` (see engine/codec.py). Point the UI at it with
``temporal server start-dev --ui-codec-endpoint http://127.0.0.1:8081`` (or the
UI's "Data Encoder" setting) and the CLI with ``--codec-endpoint``. Only the
configured UI origin may call it from a browser (CORS). Keep it on loopback or
behind your SSO proxy: whoever reaches it can decrypt.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Awaitable, Callable, Sequence

from aiohttp import web
from google.protobuf import json_format
from temporalio.api.common.v1 import Payload, Payloads

from engine.codec import EncryptionCodec, keys_from_environment

Transform = Callable[[Sequence[Payload]], Awaitable[list[Payload]]]


def build_app(codec: EncryptionCodec, ui_origin: str) -> web.Application:
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
            if request.method == "OPTIONS":
                return cors(web.Response(), request)
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
    args = parser.parse_args(argv)
    keys = keys_from_environment()
    if not keys:
        print("error: no codec keys: set DEPLOY_CODEC_KEYS or DEPLOY_CODEC_KEY_FILE", file=sys.stderr)
        return 2
    host, _, port = args.bind.rpartition(":")
    web.run_app(build_app(EncryptionCodec(keys), args.ui_origin), host=host, port=int(port), print=None)
    return 0


if __name__ == "__main__":
    sys.exit(main())
