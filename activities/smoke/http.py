"""Smoke provider: plain HTTP GET against each instance."""

from __future__ import annotations

import time

import httpx

from engine.contracts import EnvironmentSpec, Instance


class HttpSmoke:
    """GET ``path`` on every instance; anything but a 2xx is a failure."""

    def __init__(self, env: EnvironmentSpec) -> None:
        self._client = httpx.Client(timeout=2.0)
        self._env = env

    def check(self, *, instances: list[Instance], path: str) -> list[str]:
        failures = []
        for inst in instances:
            url = f"http://{inst.address}{path}"
            try:
                response = self._client.get(url)
            except httpx.HTTPError as exc:
                failures.append(f"{inst.pool}/{inst.slot} {url}: {type(exc).__name__}: {exc}")
                continue
            if not response.is_success:
                failures.append(f"{inst.pool}/{inst.slot} {url}: HTTP {response.status_code}")
        return failures

    def check_route(
        self, *, url: str, requests: int, version: str, duration: float = 0.0, judge_codes: bool = True
    ) -> list[str]:
        failures: list[str] = []
        start = time.monotonic()
        for i in range(requests):
            delay = start + duration * i / requests - time.monotonic()
            if delay > 0:
                time.sleep(delay)
            try:
                response = self._client.get(url)
            except httpx.HTTPError as exc:
                failures.append(f"{url}: {type(exc).__name__}: {exc}")
                continue
            answered = response.headers.get("x-version")
            if answered != version:
                failures.append(f"{url}: answered by {answered}, not {version}")
            elif judge_codes and not response.is_success:
                failures.append(f"{url}: HTTP {response.status_code}")
        return failures
