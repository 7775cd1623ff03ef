"""Smoke provider for the simulated platform: checks instances against its in-memory state.

For benchmarks (``bench/scale.py``) and dry exercises, beside the simulated platform and
router, reading their shared state (:mod:`clients.simulated`): an instance passes if the
simulated platform runs it (same pool, slot and version); a preview route passes if every
instance it serves runs the version asked. No request is sent anywhere. Never use it for a real environment.
"""

from __future__ import annotations

from clients.simulated import instances_of, preview_members, preview_url
from engine.contracts import EnvironmentSpec, Instance


class SimulatedSmoke:
    """Smoke checks answered from the simulated platform's and router's memory."""

    def __init__(self, env: EnvironmentSpec) -> None:
        self._env = env

    def check(self, *, instances: list[Instance], path: str) -> list[str]:
        running = {i.address: i for i in instances_of(self._env)}
        failures = []
        for inst in instances:
            found = running.get(inst.address)
            if found is None:
                failures.append(f"{inst.pool}/{inst.slot} {inst.address}{path}: not running")
            elif found.version != inst.version:
                failures.append(f"{inst.pool}/{inst.slot}: runs {found.version}, not {inst.version}")
        return failures

    def check_route(
        self, *, url: str, requests: int, version: str, duration: float = 0.0, judge_codes: bool = True
    ) -> list[str]:
        if not url.startswith(preview_url(self._env)):
            return [f"{url}: not a route of the simulated router of {self._env.name!r}"]
        serving = preview_members(self._env)
        if not serving:
            return [f"{url}: the preview route serves nothing"]
        running = {i.address: i.version for i in instances_of(self._env)}
        return [
            f"{url}: answered by {running.get(a, 'nothing')} at {a}, not {version}"
            for a in serving
            if running.get(a) != version
        ]
