"""Smoke provider: plain HTTP GET against each instance."""

from __future__ import annotations

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
