"""Notifications to a Slack-compatible incoming webhook: ``POST {"text": ...}``."""

from __future__ import annotations

import httpx

from engine.errors import BadRequest


def post(url: str, text: str, *, timeout: float = 5.0) -> None:
    """Post one message; 4xx (a wrong URL) is a bad request, anything else is retried."""
    r = httpx.post(url, json={"text": text}, timeout=timeout)
    if 400 <= r.status_code < 500 and r.status_code != 429:
        msg = f"webhook {url} refused the message: {r.status_code} {r.text[:200]}"
        raise BadRequest(msg)
    r.raise_for_status()
