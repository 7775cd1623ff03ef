"""The single-region stack of the engine's tests and of the crash-matrix bench.

:class:`Stack` is one running local platform (HAProxy, Prometheus, sample instances, a
load generator, a Temporal dev server) on its own port block and temp dir, with the base
YAML config the tests deploy from (:data:`BASE_CONFIG`) and readers of what the router
does. :func:`running_stack` brings one up and tears it down; :class:`Users` sends
requests through the router and keeps every answer; :func:`wait_for` polls a release's
status; :func:`new_version` hands out versions no other test deploys;
:func:`abort_leftover_release` cleans up after a test that left a release running.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import os
import textwrap
import threading
import time
import uuid
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx
from temporalio.client import WorkflowExecutionStatus, WorkflowHandle
from temporalio.service import RPCError

import worker as worker_module
from engine import temporal
from engine.config import parse_config, resolve_release
from engine.contracts import Control, LocalSettings, ReleaseSpec, ReleaseStatus
from infrastructure.local import platform
from infrastructure.local.haproxy import HAProxy
from infrastructure.local.layout import Layout
from infrastructure.local.temporal_server import temporal_binary

_versions = itertools.count(1)

BASE_CONFIG = """
app: {name: sample-api}
environments:
  local:
    providers: {platform: local, router: haproxy, analysis: prometheus}
    instances: 2
    approvers: [alice]
    approval_timeout: %(approval_timeout)s
analysis_templates:
  error-rate:
    metrics:
      - name: error-ratio
        query: >-
          (sum(rate(http_requests_total{version="{{canary_version}}",code=~"5.."}[4s])) or vector(0))
          / sum(rate(http_requests_total{version="{{canary_version}}"}[4s]))
        success_condition: result < 0.05
        failure_condition: result >= 0.05
        interval: 1s
        initial_delay: 2s
        count: %(count)s
        inconclusive_limit: 3
  judge:                      # the canary against its baseline (a comparing, sequential judge)
    requests: http_requests_total{pool="{{pool}}"}
    errors: http_requests_total{pool="{{pool}}",code=~"5.."}
    latency: http_request_duration_seconds_bucket{pool="{{pool}}"}
    slo: {errors: 0.05, latency: {quantile: 0.95, below: 0.5}}
    min_requests: %(min_requests)s
    interval: 1s
    window: %(window)s
  no-data:
    metrics:
      - name: missing
        query: sum(rate(metric_that_does_not_exist_total[5s]))
        success_condition: result < 1
        interval: 500ms
        count: 3
        inconclusive_limit: 1
strategies:
  canary:
    canary_instances: 1
    steps:
%(steps)s
"""


@dataclass
class Stack:
    """One running local platform."""

    layout: Layout
    tmp: Path
    temporal_address: str
    haproxy: HAProxy = field(init=False)

    def __post_init__(self) -> None:
        self.haproxy = HAProxy(self.layout)

    @property
    def local(self) -> LocalSettings:
        layout = self.layout
        return LocalSettings(
            state_dir=str(layout.state_dir), port_base=layout.port_base, max_slots=layout.max_slots
        )

    def config_text(
        self,
        steps: str,
        *,
        count: int = 3,
        approval_timeout: str = "24h",
        min_requests: int = 100,
        window: str = "15s",
        canary: str = "",
    ) -> str:
        """The base config with these canary ``steps`` (YAML list items); ``canary`` adds settings
        (``background_analysis: ...``, ``baseline: stable``) to ``strategies.canary``."""
        indented = textwrap.indent(textwrap.dedent(steps).strip(), " " * 6)
        extra = textwrap.indent(textwrap.dedent(canary).strip(), " " * 4) + "\n" if canary else ""
        values = {"approval_timeout": approval_timeout, "min_requests": min_requests, "window": window}
        return BASE_CONFIG % {"steps": indented, "count": count, **values} + extra

    def spec(self, version: str, steps: str, **kwargs: object) -> ReleaseSpec:
        config = parse_config(self.config_text(steps, **kwargs))  # type: ignore[arg-type]
        return resolve_release(config, version, "canary", "local", requested_by="pytest", local=self.local)

    def strategy_config(self, strategy: str, settings: str, *, templates: str = "") -> str:
        """The test config with ``strategies.<strategy>`` set to ``settings`` (YAML), plus ``templates``."""
        text = self.config_text("- set_weight: 50")
        if templates:
            extra = textwrap.indent(textwrap.dedent(templates).strip(), "  ")
            text = text.replace("analysis_templates:\n", f"analysis_templates:\n{extra}\n", 1)
        body = textwrap.indent(textwrap.dedent(settings).strip(), "    ")
        return f"{text}  {strategy.replace('-', '_')}:\n{body}\n"

    def strategy_spec(
        self, version: str, strategy: str, settings: str, *, templates: str = ""
    ) -> ReleaseSpec:
        """A blue-green or rolling release of ``version`` on this stack."""
        config = parse_config(self.strategy_config(strategy, settings, templates=templates))
        return resolve_release(config, version, strategy, "local", requested_by="pytest", local=self.local)

    def write_config(self, steps: str, **kwargs: object) -> Path:
        path = self.tmp / f"deploy-code-{uuid.uuid4().hex[:6]}.yaml"
        path.write_text(self.config_text(steps, **kwargs))  # type: ignore[arg-type]
        return path

    def env(self, task_queue: str) -> dict[str, str]:
        """Environment for a starter or worker subprocess aimed at this stack."""
        return {
            **os.environ,
            **self.layout.env(),
            "TEMPORAL_ADDRESS": self.temporal_address,
            "DEPLOY_TASK_QUEUE": task_queue,
            "PATH": f"{Path(temporal_binary()).parent}:{os.environ.get('PATH', '')}",
        }

    def weights(self) -> dict[str, int]:
        """Per-pool total of HAProxy weights of servers taking traffic (baseline: only while it has some)."""
        totals = {"blue": 0, "green": 0}
        for s in self.haproxy.servers("app"):
            if s.admin == "ready" and s.status.startswith("UP"):
                pool = s.name.rstrip("0123456789")
                totals[pool] = totals.get(pool, 0) + s.weight
        return totals

    def count_versions(self, requests: int = 200) -> dict[str, int]:
        """Send requests through the router and count which version answered."""
        seen: dict[str, int] = {}
        with httpx.Client(base_url=self.layout.router_url, timeout=5) as http:
            for _ in range(requests):
                version = http.get("/").headers.get("x-version", "none")
                seen[version] = seen.get(version, 0) + 1
        return seen

    def stable_version(self) -> str:
        live = {
            s.name.rstrip("0123456789")
            for s in self.haproxy.servers("app")
            if s.admin == "ready" and s.weight > 0
        }
        assert len(live) == 1, f"traffic split across {live}"
        versions = self.count_versions(20)
        assert len(versions) == 1, versions
        return next(iter(versions))


@dataclass
class Answer:
    """One request of :class:`Users`: when it was sent and answered (wall clock), and by whom."""

    sent: float
    answered: float
    version: str | None
    ok: bool


class Users(threading.Thread):
    """A user sending requests through the router one after another, keeping every answer."""

    def __init__(self, url: str, pause: float = 0.005) -> None:
        super().__init__(daemon=True, name="users")
        self.url, self.pause = url, pause
        self.answers: list[Answer] = []
        self._done = threading.Event()

    def run(self) -> None:
        with httpx.Client(timeout=5) as http:
            while not self._done.wait(self.pause):
                sent = time.time()
                try:
                    r = http.get(self.url)
                    ok, version = r.is_success, r.headers.get("x-version")
                except httpx.HTTPError:
                    ok, version = False, None
                self.answers.append(Answer(sent, time.time(), version, ok))

    def __enter__(self) -> Users:
        self.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._done.set()
        self.join(10)

    @property
    def failed(self) -> list[Answer]:
        return [a for a in self.answers if not a.ok]

    def versions(self) -> dict[str, int]:
        seen: dict[str, int] = {}
        for a in self.answers:
            seen[a.version or "none"] = seen.get(a.version or "none", 0) + 1
        return seen


async def wait_for(
    handle: WorkflowHandle,
    predicate: Callable[[ReleaseStatus], bool],
    within: float = 60,
    status: Callable[[WorkflowHandle], Awaitable[ReleaseStatus]] | None = None,
) -> ReleaseStatus:
    """Poll a release's status query until ``predicate`` holds (or fail after ``within`` s)."""
    deadline = time.monotonic() + within
    while True:
        s = await (status(handle) if status else handle.query("status", result_type=ReleaseStatus))
        if predicate(s):
            return s
        assert time.monotonic() < deadline, f"timed out; last status {s.phase} {s.step} {s.decisions[-3:]}"
        await asyncio.sleep(0.1)


def new_version() -> str:
    """A version no other test in this session deploys."""
    return f"v{os.getpid() % 1000}.{next(_versions)}.0"


@contextlib.contextmanager
def running_stack(tmp: Path, *, purge: bool = False) -> Iterator[Stack]:
    """The local platform (two instances, 40 requests/s of load) in ``tmp``, torn down on exit."""
    layout = Layout.for_tests(tmp)
    try:
        platform.up(layout, instances=2, traffic_rps=40)
        yield Stack(layout=layout, tmp=tmp, temporal_address=f"127.0.0.1:{layout.temporal_port}")
    finally:
        platform.down(layout, purge=purge)


async def abort_leftover_release(stack: Stack) -> None:
    """Abort a release a failed test left running, so its compensation restores the platform.

    The test's own worker is gone by now: a temporary one serves the run's task queue.
    Terminating would skip compensation and leave traffic split for the next test.
    """
    client = await temporal.connect(target_host=stack.temporal_address)
    handle = client.get_workflow_handle(temporal.release_workflow_id("sample-api", "local"))
    try:
        desc = await handle.describe()
    except RPCError:
        return
    if desc.status != WorkflowExecutionStatus.RUNNING:
        return
    async with worker_module.running(client, desc.task_queue):
        with contextlib.suppress(Exception):
            await asyncio.wait_for(
                handle.execute_update("abort", Control(identity="pytest", reason="test cleanup")), 30
            )
        with contextlib.suppress(Exception):
            await asyncio.wait_for(handle.result(), 60)
    if (await handle.describe()).status == WorkflowExecutionStatus.RUNNING:
        await handle.terminate("test cleanup: abort did not finish")
