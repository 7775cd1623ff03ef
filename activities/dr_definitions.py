"""The disaster-recovery activities: observe, fence, promote, rebuild, switch, probe.

Same rules as :mod:`activities.definitions`: synchronous, idempotent, heartbeating while
they wait, a provider's ``BadRequest`` becomes a non-retryable ``ApplicationError``.
Workflows call them by these names and never import a provider.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from datetime import UTC, datetime

import httpx
import structlog
from temporalio import activity

from activities import registry
from activities.common import heartbeat, implements, implements_async
from engine import temporal
from engine.contracts.activities import (
    DR_CATCH_UP,
    DR_CONVERGE,
    DR_FENCE,
    DR_OBSERVE,
    DR_PROBE,
    DR_PROMOTE,
    DR_REBUILD_STANDBY,
    DR_REGION_HEALTH,
    DR_RUNNING_WORKFLOWS,
    DR_SCALE_REGION,
    DR_SET_REPLICATION,
    DR_SWITCH_ENTRY,
    DR_UNFENCE,
    DR_USE_DATABASE,
    DR_VERSIONS,
)
from engine.contracts.dr import (
    BusyRequest,
    CatchUp,
    CatchUpRequest,
    ConvergeRequest,
    DrRef,
    Fenced,
    Health,
    PointRequest,
    Probe,
    Promoted,
    RebuildRequest,
    RegionRef,
    ReplicationRequest,
    ScaleRequest,
    SwitchRequest,
    Topology,
)

log = structlog.get_logger()
PROBE_WITHIN = 30.0
"""Seconds the write probe keeps trying before the verification fails."""


def _now() -> datetime:
    return datetime.now(UTC)


@implements(DR_OBSERVE)
def observe(req: DrRef) -> Topology:
    spec = req.dr
    db, entry, regions = registry.database(spec), registry.global_entry(spec), registry.regions(spec)
    versions: dict[str, dict[str, str]] = {}
    for r in spec.regions:
        try:
            versions[r] = regions.versions(r)
        except Exception as exc:  # a lost region must not stop the observation
            log.warning("versions_unknown", region=r, error=str(exc)[:200])
    return Topology(
        databases={r: db.node(r) for r in spec.regions},
        active_region=entry.active(),
        writes_to={r: regions.writes_to(r) for r in spec.regions},
        at=_now(),
        versions=versions,
    )


@implements(DR_VERSIONS)
def versions(req: RegionRef) -> dict[str, str]:
    """Component -> the version it runs in the region (what a release restores it to)."""
    return registry.regions(req.dr).versions(req.region)


@implements(DR_CONVERGE)
def converge(req: ConvergeRequest) -> dict[str, str]:
    """The region serves these versions (started, healthy, then taking over); idempotent."""
    return registry.regions(req.dr).converge(req.region, dict(req.versions), progress=heartbeat)


@implements(DR_REGION_HEALTH)
def region_health(req: RegionRef) -> Health:
    failures = registry.regions(req.dr).health(req.region)
    return Health(region=req.region, ok=not failures, failures=failures, at=_now())


@implements(DR_FENCE)
def fence(req: RegionRef) -> Fenced:
    db = registry.database(req.dr)
    reachable = db.fence(req.region)
    node = db.node(req.region)
    log.info("fenced", region=req.region, reachable=reachable)
    return Fenced(region=req.region, reachable=reachable, at=_now(), lsn=node.lsn)


@implements(DR_UNFENCE)
def unfence(req: RegionRef) -> None:
    registry.database(req.dr).unfence(req.region)
    log.info("unfenced", region=req.region)


@implements(DR_CATCH_UP)
def catch_up(req: CatchUpRequest) -> CatchUp:
    start = time.monotonic()
    missing = registry.database(req.dr).catch_up(
        standby=req.standby, primary=req.primary, timeout=req.timeout.total_seconds(), progress=heartbeat
    )
    return CatchUp(lag_bytes=missing, seconds=round(time.monotonic() - start, 3))


@implements(DR_PROMOTE)
def promote(req: RegionRef) -> Promoted:
    already = registry.database(req.dr).promote(req.region)
    log.info("promoted", region=req.region, already_primary=already)
    return Promoted(region=req.region, already_primary=already, at=_now())


@implements(DR_REBUILD_STANDBY)
def rebuild_standby(req: RebuildRequest) -> None:
    registry.database(req.dr).rebuild_as_standby(req.region, primary=req.primary, progress=heartbeat)


@implements(DR_SET_REPLICATION)
def set_replication(req: ReplicationRequest) -> None:
    registry.database(req.dr).set_replication(
        primary=req.primary, standby=req.standby, synchronous=req.synchronous
    )


@implements(DR_USE_DATABASE)
def use_database(req: PointRequest) -> None:
    registry.regions(req.dr).use_database(req.region, req.database)


@implements(DR_SCALE_REGION)
def scale_region(req: ScaleRequest) -> int:
    return registry.regions(req.dr).scale(req.region, req.count, progress=heartbeat)


@implements(DR_SWITCH_ENTRY)
def switch_entry(req: SwitchRequest) -> str:
    """Point the global entry at the region, then read it back: accepted is not in force."""
    entry = registry.global_entry(req.dr)
    entry.switch(req.region)
    active = entry.active()
    if active != req.region:
        msg = f"global entry reads back {active!r} after switching to {req.region!r}"
        raise RuntimeError(msg)
    return active


@implements(DR_PROBE)
def probe(req: SwitchRequest) -> Probe:
    """A health check and a write through the global entry, until both land in the region."""
    url = registry.global_entry(req.dr).url()
    failures: list[str] = []
    deadline = time.monotonic() + PROBE_WITHIN
    attempts = 0
    with httpx.Client(base_url=url, timeout=3.0) as http:
        while True:
            attempts += 1
            try:
                health = http.get("/healthz")
                written = http.post("/orders", json={"id": -time.time_ns() // 1000})
                node = written.json().get("node") if written.status_code == 201 else None
                if health.status_code == 200 and node == req.region:
                    return Probe(ok=True, region=node, at=_now(), attempts=attempts, failures=failures[-5:])
                failures.append(f"health {health.status_code}, write {written.status_code} via {node}")
            except (httpx.HTTPError, ValueError) as exc:
                failures.append(f"{type(exc).__name__}: {exc}")
            if time.monotonic() > deadline:
                return Probe(ok=False, at=_now(), attempts=attempts, failures=failures[-5:])
            activity.heartbeat(failures[-1])
            time.sleep(0.1)


@implements_async(DR_RUNNING_WORKFLOWS)
async def running_workflows(req: BusyRequest) -> list[str]:
    """Which of these workflow ids have a running execution (a release, another DR operation)."""
    client = activity.client()
    found = await asyncio.gather(*(temporal.is_running(client, w) for w in req.workflow_ids))
    return [w for w, busy in zip(req.workflow_ids, found, strict=True) if busy]


ALL: list[Callable[..., object]] = [
    observe,
    region_health,
    fence,
    unfence,
    catch_up,
    promote,
    rebuild_standby,
    set_replication,
    use_database,
    scale_region,
    converge,
    versions,
    switch_entry,
    probe,
    running_workflows,
]
