"""P2, bad canary to 100 % stable (target: <= 3 s, 1 s scrape, 1 s analysis interval).

A canary of a fresh version at 20 % with a long pause and a background error-ratio
analysis (``[3s]`` rate window, interval 1 s, no initial delay, failure limit 0, 5 s
chunks). Once weight 20 is live and a chunk has reported a successful measurement
(``status`` query), after a random 0-1 s offset (so that T0 falls anywhere in the 1 s
measurement grid), every canary instance is told to fail half its requests (T0,
``POST /admin/behaviour``). T1 = the first router observation (:mod:`bench.router_watch`)
with the canary pool at 0 %. P2 = T1 - T0, split into detection (T0 -> the failing
measurement), decision (-> the "rolling back" decision) and shift (-> T1). Repeated 3
times (1 with ``--quick``), each time waiting for the run to end ``rolled_back``.
"""

from __future__ import annotations

import asyncio
import random
import time
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import httpx
from temporalio.client import Client

from bench.common import CONFIG_HEAD, make_spec, start, status
from bench.router_watch import RouterWatch
from engine.contracts import ReleaseStatus
from infrastructure.local.layout import Layout

P2_TARGET_S = 3.0

P2_CONFIG = (
    CONFIG_HEAD
    + """strategies:
  canary:
    canary_instances: 1
    steps:
      - set_weight: 20
      - pause: {duration: 10m}
    background_analysis: {templates: [error-rate-background], chunk: 5s}
"""
)


@dataclass
class RollbackSample:
    version: str
    t0: float
    total_s: float  # T0 -> canary at 0 % at the router
    detect_s: float  # T0 -> the failing measurement was taken
    decide_s: float  # failing measurement -> "rolling back" decision
    shift_s: float  # "rolling back" -> canary at 0 % at the router
    to_decision_s: float  # T0 -> "rolling back" (detect + decide)
    outcome: str
    reason: str
    failed_value: float | None = None
    measurements_before_t0: int = 0
    extra: dict[str, Any] = field(default_factory=dict)


def _ts(d: datetime) -> float:
    return d.timestamp()


async def run_p2_once(
    client: Client, task_queue: str, layout: Layout, watch: RouterWatch, *, tag: str, version: str
) -> RollbackSample:
    spec = make_spec(P2_CONFIG, version, layout)
    t_start = time.time()
    handle = await start(client, spec, task_queue, tag)
    deadline = time.monotonic() + 40
    st: ReleaseStatus | None = None
    # Weight 20 live and a background chunk back with a successful measurement.
    while True:
        if time.monotonic() > deadline:
            msg = f"P2 {version}: no successful background measurement at 20% (status: {st})"
            raise TimeoutError(msg)
        st = await status(handle)
        if (
            st is not None
            and abs(st.canary_weight - 20) <= 1  # integer router weights may round
            and st.last_analysis
            and all(m.phase == "successful" for m in st.last_analysis)
        ):
            break
        if st is not None and st.phase.value in ("RolledBack", "Failed", "Paused"):
            msg = f"P2 {version}: the release is {st.phase.value} before T0: {st.decisions[-1:]}"
            raise RuntimeError(msg)
        await asyncio.sleep(0.1)
    canary_pool = st.canary_pool or ""
    live20 = watch.first(t_start, canary_pool, lambda share, t=st.canary_weight: abs(share - t) < 0.01)
    if live20 is None:
        msg = f"P2 {version}: status says 20% but the router never showed {canary_pool} at 20%"
        raise RuntimeError(msg)
    await asyncio.sleep(random.uniform(0.0, 1.0))

    t0 = time.time()
    async with httpx.AsyncClient(timeout=2.0) as http:
        for slot in range(spec.canary.canary_instances):
            url = f"http://127.0.0.1:{layout.instance_port(canary_pool, slot)}/admin/behaviour"
            (await http.post(url, json={"error_rate": 0.5})).raise_for_status()
    t1 = (await watch.wait_for(t0, canary_pool, lambda share: share == 0.0, within=30)).t
    result = await asyncio.wait_for(handle.result(), timeout=40)
    rolling = next((d for d in result.status.decisions if d.what == "rolling back"), None)
    failed = [m for m in result.status.last_analysis if m.phase == "failed"]
    t_decision = _ts(rolling.at) if rolling else float("nan")
    t_failed = _ts(failed[0].at) if failed else float("nan")
    return RollbackSample(
        version=version,
        t0=t0,
        total_s=t1 - t0,
        detect_s=t_failed - t0,
        decide_s=t_decision - t_failed,
        shift_s=t1 - t_decision,
        to_decision_s=t_decision - t0,
        outcome=result.outcome,
        reason=result.reason,
        failed_value=failed[0].value if failed else None,
        extra={"workflow_id": handle.id, "canary_pool": canary_pool, "weight20_live_t": live20.t},
    )
