"""Fixtures for the disaster-recovery tests: a real two-region stack and a Temporal dev server.

One stack per pytest-xdist worker (PostgreSQL primary in A and streaming standby in B,
synchronous replication, a router and sample instances per region, the global entry
point), on its own ports and temp dir, torn down at the end of the session. Every test
starts from the home topology: users and writes in A, B its in-sync standby.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import textwrap
import threading
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import psycopg
import pytest
from temporalio.client import Client

import worker as worker_module
from engine import temporal
from engine.config import parse_config
from engine.contracts.dr import DrSpec
from engine.dr_config import resolve_dr
from infrastructure.local import dr as local_dr
from infrastructure.local.layout import Layout
from infrastructure.local.regions import DrLayout
from infrastructure.local.temporal_server import TemporalServer, temporal_binary
from tests.support import WorkerProcess

REPO = Path(__file__).resolve().parents[2]

CONFIG = """
app: {name: sample-api}
environments:
  local:
    providers: {platform: local, router: haproxy, analysis: prometheus}
    instances: 2
    approvers: [alice]
    approval_timeout: 2m
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
      local: {state_dir: "%(state_dir)s", port_base: %(port_base)s}
strategies:
  canary:
    steps:
      - set_weight: 50
"""


@dataclass
class DrStack:
    dr: DrLayout
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
        st = local_dr.status(self.dr)
        out: dict[str, object] = {"active": st["global_entry"]["active"]}
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

    def reset(self) -> None:
        """Back to the home topology (a fresh pair if a test left it elsewhere)."""
        if self.is_home():
            return
        local_dr.down(self.dr, purge=True)
        local_dr.up(self.dr, instances=2, standby_instances=1, synchronous=True)
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


@pytest.fixture(scope="session")
def dr_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DrStack]:
    tmp = tmp_path_factory.mktemp("dr")
    dr = DrLayout.for_tests(tmp)
    # Its own state dir (reset() purges the stack's), on region A's unused Temporal ports.
    tserver = DrStack(dr=dr, tmp=tmp, temporal_address="").temporal_server()
    try:
        tserver.start()
        local_dr.up(dr, instances=2, standby_instances=1, synchronous=True)
        yield DrStack(dr=dr, tmp=tmp, temporal_address=tserver.address)
    finally:
        local_dr.down(dr, purge=False)
        tserver.stop()


@pytest.fixture
def stack(dr_stack: DrStack) -> DrStack:
    """The two-region stack, in its home topology."""
    dr_stack.reset()
    return dr_stack


@pytest.fixture
async def client(dr_stack: DrStack) -> Client:
    return await temporal.connect(target_host=dr_stack.temporal_address)


@pytest.fixture
def task_queue() -> str:
    return f"dr-{uuid.uuid4().hex[:10]}"


@pytest.fixture
async def worker(client: Client, task_queue: str) -> AsyncIterator[None]:
    async with worker_module.running(client, task_queue):
        yield


@pytest.fixture
def worker_process(dr_stack: DrStack, task_queue: str) -> Iterator[WorkerProcess]:
    wp = WorkerProcess(dr_stack.env(task_queue), dr_stack.tmp / f"worker-{task_queue}.log", task_queue)
    try:
        yield wp
    finally:
        wp.stop()


@pytest.fixture
def writer(stack: DrStack) -> type[Writer]:
    """The bounded numbered-write client (a class: ``with writer(url) as w: ...``)."""
    return Writer
