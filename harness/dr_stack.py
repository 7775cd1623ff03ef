"""The two-region stack of the disaster-recovery tests and of the crash-matrix bench.

:class:`DrStack` is a PostgreSQL primary in region A with a synchronous streaming standby
in B, a router and sample instances per region and the global entry point, on its own
ports and temp dir, with the DR config the tests start from (:data:`CONFIG`), starters run
as subprocesses, and readers of the topology. :func:`running_dr_stack` brings one up with a
Temporal dev server of its own and tears both down; :class:`Writer` posts numbered orders
through the global entry and keeps the acknowledged ids.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import psycopg

from engine.config import parse_config
from engine.contracts.dr import DrSpec
from engine.dr_config import resolve_dr
from harness.support import REPO
from infrastructure.local import dr as local_dr
from infrastructure.local import platform
from infrastructure.local.layout import Layout
from infrastructure.local.regions import PlatformLayout
from infrastructure.local.temporal_server import TemporalServer, temporal_binary

CONFIG = """
app: {name: sample-api}
environments:
  local:
    providers: {platform: local, router: haproxy, analysis: prometheus}
    instances: 2
    approvers: [alice]
    approval_timeout: 2m
    local: {state_dir: "%(state_dir)s", port_base: %(port_base)s}
    dr:
      regions: [A, B]
      instances: 2
      standby_instances: 1
      rpo_budget: 5s
      health_check_interval: 500ms
      health_check_failures: 3
      auto_approve: %(auto_approve)s
      synchronous_replication: true
      catch_up_timeout: 20s
strategies:
  canary:
    steps:
      - set_weight: 50
"""


@dataclass
class DrStack:
    """One running two-region stack (``dr``), its temp dir and the Temporal server it uses."""

    dr: PlatformLayout
    tmp: Path
    temporal_address: str
    configs: dict[bool, Path] = field(default_factory=dict)

    def temporal_server(self) -> TemporalServer:
        """The stack's Temporal dev server (its own state dir, on region A's unused Temporal ports)."""
        return TemporalServer(
            Layout(state_dir=self.tmp / "temporal", port_base=self.dr.region("A").port_base)
        )

    def config_path(self, *, auto_approve: bool = False) -> Path:
        if auto_approve not in self.configs:
            path = self.tmp / f"deploy-code-dr-{auto_approve}.yaml"
            path.write_text(
                textwrap.dedent(CONFIG)
                % {
                    "auto_approve": str(auto_approve).lower(),
                    "state_dir": self.dr.state_dir,
                    "port_base": self.dr.port_base,
                }
            )
            self.configs[auto_approve] = path
        return self.configs[auto_approve]

    def spec(self, *, auto_approve: bool = False) -> DrSpec:
        return resolve_dr(parse_config(self.config_path(auto_approve=auto_approve).read_text()))

    def env(self, task_queue: str) -> dict[str, str]:
        return {
            **os.environ,
            "TEMPORAL_ADDRESS": self.temporal_address,
            "DEPLOY_TASK_QUEUE": task_queue,
            "PATH": f"{Path(temporal_binary()).parent}:{os.environ.get('PATH', '')}",
        }

    async def run_starter(
        self,
        task_queue: str,
        script: str,
        *args: str,
        limit: float = 120,
        auto_approve: bool = False,
    ) -> subprocess.CompletedProcess[str]:
        """A starter as a subprocess, off the event loop (the in-process worker runs on it)."""
        return await asyncio.to_thread(
            self.starter, task_queue, script, *args, timeout=limit, auto_approve=auto_approve
        )

    def starter(
        self,
        task_queue: str,
        script: str,
        *args: str,
        timeout: float = 120,
        auto_approve: bool = False,
    ) -> subprocess.CompletedProcess[str]:
        config = self.config_path(auto_approve=auto_approve)
        return subprocess.run(
            [sys.executable, f"starters/{script}", *args, "--config", str(config)],
            cwd=REPO,
            env=self.env(task_queue),
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )

    # ---- reading the platform ---------------------------------------------------------------
    def conn(self, region: str) -> psycopg.Connection:
        return local_dr.node(self.dr, region).connect(timeout=3)

    def orders(self, region: str) -> set[int]:
        with self.conn(region) as conn:
            return {row[0] for row in conn.execute("SELECT id FROM orders").fetchall()}

    def write_directly(self, region: str, order: int) -> None:
        with self.conn(region) as conn:
            conn.execute("INSERT INTO orders (id) VALUES (%s)", (order,))

    def topology(self) -> dict[str, object]:
        """What a test compares before and after: roles, fences, replication, users, writers."""
        st = platform.status(self.dr)
        out: dict[str, object] = {"active": st["active_region"]}
        for name, region in st["regions"].items():
            db = region["database"]
            replicas = sorted((r["name"], r["state"], r["sync"]) for r in db.get("replicas", []))
            out[name] = (db.get("role"), db.get("fenced"), replicas, region["writes_to"])
        return out

    def is_home(self) -> bool:
        return self.topology() == {
            "active": "A",
            "A": ("primary", False, [("region_b", "streaming", "sync")], "A"),
            "B": ("standby", False, [], "B"),
        }

    def up(self) -> None:
        """Both regions up in the home topology (two instances in A, one in B, synchronous standby)."""
        platform.regions_up(self.dr, instances=2, standby_instances=1, synchronous=True)

    def reset(self) -> None:
        """Back to the home topology (a fresh pair if a test left it elsewhere)."""
        if self.is_home():
            return
        platform.down(self.dr, purge=True)
        self.up()
        assert self.is_home(), self.topology()


class Writer:
    """A bounded client writing numbered orders through the global entry; keeps the acknowledged ids."""

    def __init__(self, url: str, start: int = 1) -> None:
        self.url, self.next = url, start
        self.acked: list[int] = []
        self.failed = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        with httpx.Client(base_url=self.url, timeout=3) as http:
            while not self._stop.is_set():
                order = self.next
                try:
                    ok = http.post("/orders", json={"id": order}).status_code == 201
                except httpx.HTTPError:
                    ok = False
                if ok:
                    self.acked.append(order)
                    self.next += 1
                else:
                    self.failed += 1
                    time.sleep(0.02)

    def __enter__(self) -> Writer:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(10)


@contextlib.contextmanager
def running_dr_stack(tmp: Path) -> Iterator[DrStack]:
    """The two regions in ``tmp`` in their home topology and a Temporal dev server; torn down on exit."""
    stack = DrStack(dr=PlatformLayout.for_tests(tmp), tmp=tmp, temporal_address="")
    # Its own state dir (reset() purges the stack's), on region A's unused Temporal ports.
    tserver = stack.temporal_server()
    try:
        tserver.start()
        stack.temporal_address = tserver.address
        stack.up()
        yield stack
    finally:
        platform.down(stack.dr, purge=False)
        tserver.stop()
