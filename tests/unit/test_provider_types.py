"""Every provider in the catalog satisfies its capability's Protocol, as mypy proves it.

The catalog (``engine/catalog.py``) is the one table of providers; the registry builds them
from it by name, so a wrong entry would only show when an activity calls a method the
provider lacks. This test writes, from the catalog, one typed assignment per provider
(``Callable[[EnvironmentSpec], Router] = HAProxyRouter``, and a router's ``preview`` and
``drain`` extras against ``PreviewRouter`` and ``DrainRouter``) and runs mypy on it. A broken
twin (a router without ``read``, a router claiming ``drain`` it does not have) must fail the
same check, so the check can fail.
"""

from __future__ import annotations

import textwrap
from pathlib import Path

from mypy import api

from engine.catalog import CATALOG, EXTRA_PROTOCOL

REPO = Path(__file__).resolve().parents[2]
PROTOCOL = {
    "platform": ("EnvironmentSpec", "Platform"),
    "router": ("EnvironmentSpec", "Router"),
    "analysis": ("EnvironmentSpec", "Metrics"),
    "smoke": ("EnvironmentSpec", "Smoke"),
    "images": ("ImageSpec", "ImageRegistry"),
    "database": ("DrSpec", "Database"),
    "global_entry": ("DrSpec", "GlobalEntry"),
    "regions": ("DrSpec", "Regions"),
}
HEADER = """\
from collections.abc import Callable

from activities.interfaces import (
    Database, DrainRouter, GlobalEntry, Metrics, Platform, PreviewRouter, Regions, Router, Smoke,
)
from clients.images import ImageRegistry
from engine.contracts import EnvironmentSpec
from engine.contracts.dr import DrSpec
from engine.contracts.pipeline import ImageSpec
"""


def catalog_checks() -> str:
    lines = [HEADER]
    for capability, providers in CATALOG.items():
        spec, protocol = PROTOCOL[capability]
        for name, entry in providers.items():
            module, cls = entry.target.split(":")
            alias = f"{capability}_{name}".replace("-", "_")
            lines.append(f"from {module} import {cls} as {alias}")
            # Images clients are built by their from_spec(); the others by their constructor.
            build = f"{alias}.from_spec" if capability == "images" else alias
            lines.append(f"_{alias}: Callable[[{spec}], {protocol}] = {build}")
            for extra in sorted(entry.extras):
                lines.append(f"_{alias}_{extra}: Callable[[{spec}], {EXTRA_PROTOCOL[extra]}] = {build}")
    return "\n".join(lines) + "\n"


BROKEN = HEADER + textwrap.dedent(
    """
    from engine.contracts import Instance


    class NoRead:
        def __init__(self, env: EnvironmentSpec) -> None: ...

        def set_traffic(
            self, *, weights: dict[str, int], members: dict[str, list[Instance]]
        ) -> dict[str, float]:
            return {}


    from activities.router.alb import AlbRouter

    _no_read: Callable[[EnvironmentSpec], Router] = NoRead
    _claims_drain: Callable[[EnvironmentSpec], DrainRouter] = AlbRouter
    """
)


def test_every_catalog_entry_satisfies_its_protocol_and_a_broken_one_fails(tmp_path: Path) -> None:
    good, broken = tmp_path / "catalog_checks.py", tmp_path / "broken_checks.py"
    good.write_text(catalog_checks())
    broken.write_text(BROKEN)
    out, err, status = api.run(["--config-file", str(REPO / "pyproject.toml"), str(good), str(broken)])
    errors = [line for line in out.splitlines() if ": error:" in line]
    assert not [e for e in errors if "catalog_checks.py" in e], out + err
    assert any("broken_checks.py" in e and "_no_read" not in e and "NoRead" in e for e in errors), out
    assert any("broken_checks.py" in e and "AlbRouter" in e for e in errors), out
    assert status == 1
    assert len(catalog_checks().splitlines()) > 25  # every provider of every capability was written
