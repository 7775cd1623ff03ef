"""The regions of the local platform: their databases, their instances, and killing one.

Region A (the home region) runs the PostgreSQL primary, region B its streaming standby; each
region has its own router (HAProxy), API instances (pool ``blue`` at first) and workers, all
writing to (and taking jobs from) the database ``database.json`` names; the global entry
point sends users to one region. :mod:`infrastructure.local.platform` brings all of it up
and down (``python -m infrastructure.local up|down|status|kill-region``); this module is what
it and the DR providers share: which node is where, who writes to which, scaling a region.
``up`` keeps whatever roles the databases have (after a failover B stays primary).
"""

from __future__ import annotations

import json
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

import psycopg
import structlog

from engine.contracts import ALL_POOLS, POOLS
from infrastructure.local import dispatch
from infrastructure.local.database import DatabaseError, PgNode
from infrastructure.local.haproxy import HAProxy, RouterError
from infrastructure.local.instances import InstanceManager
from infrastructure.local.layout import API, WORKER
from infrastructure.local.regions import PlatformLayout

log = structlog.get_logger(__name__)
POOL = "blue"


def node(dr: PlatformLayout, region: str) -> PgNode:
    return PgNode(dr.db_application_name(region), dr.pg_data(region), dr.db_port(region), dr.pg_log(region))


def slot_name(dr: PlatformLayout, region: str) -> str:
    """The replication slot a standby in ``region`` uses on its primary."""
    return dr.db_application_name(region)


def write_database_file(dr: PlatformLayout, region: str, db_region: str | None) -> None:
    """Point the region's instances at ``db_region``'s database (None: writes refused)."""
    path = dr.database_file(region)
    path.parent.mkdir(parents=True, exist_ok=True)
    body = {"conninfo": node(dr, db_region).conninfo() if db_region else None, "node": db_region}
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(body))
    tmp.replace(path)


def read_database_file(dr: PlatformLayout, region: str) -> str | None:
    try:
        return json.loads(dr.database_file(region).read_text()).get("node")
    except (OSError, ValueError):
        return None


def serving_pool(dr: PlatformLayout, region: str) -> str:
    """The API pool the region's router sends traffic to (``blue`` when it sends none anywhere)."""
    try:
        shares = HAProxy(dr.region(region)).pool_shares("app")
    except RouterError:
        return POOL
    serving = [pool for pool, share in shares.items() if share > 0]
    return serving[0] if len(serving) == 1 else POOL


def scale_region(
    dr: PlatformLayout, region: str, version: str, count: int, progress: Any = None
) -> list[dict[str, Any]]:
    """Run ``count`` API instances in the region's serving pool and route its router to exactly
    them (idempotent); the version they run already, else ``version``."""
    layout = dr.region(region)
    im, hap = InstanceManager(layout), HAProxy(layout)
    pool = serving_pool(dr, region)
    running = {i.slot: i for i in im.list(probe=False) if i.pool == pool}
    if running and count:
        version = next(iter(running.values())).version
    if count:
        im.start(version, pool, count, on_progress=progress)
        hap.route_pool("app", pool, count)
    extra = [slot for slot in running if slot >= count]
    if extra:
        if not count:
            for s in extra:
                hap.set_server("app", f"{pool}{s}", weight=0, state="maint")
        im.stop(pool, extra, 5.0)
    return [i.model_dump() for i in im.list() if i.pool == pool]


def scale_workers(dr: PlatformLayout, region: str, version: str, count: int, progress: Any = None) -> int:
    """Run ``count`` workers in the region (in the pool that runs any; ``version`` if none runs)."""
    im = InstanceManager(dr.region(region), WORKER)
    running = im.list(probe=False)
    pool = running[0].pool if running else POOL
    if running and count:
        version = running[0].version
    if count:
        im.start(version, pool, count, on_progress=progress)
        dispatch.admit(dr.region(region), pool, list(range(count)))
    extra = [i.slot for i in running if i.pool == pool and i.slot >= count]
    if extra:
        im.stop(pool, extra, 5.0)
    return len([i for i in im.list(probe=False) if i.pool == pool])


def versions(dr: PlatformLayout, region: str) -> dict[str, str]:
    """Component -> the version it serves in ``region`` (the API: what its router sends traffic to;
    the workers: those that take jobs). Several versions: ``mixed: A, B``; nothing running (or a
    dead router): the component is absent."""
    layout = dr.region(region)
    found: dict[str, set[str]] = {}
    try:
        serving = [pool for pool, share in HAProxy(layout).pool_shares("app").items() if share > 0]
    except RouterError:
        serving = []
    found[API] = {i.version for i in InstanceManager(layout).list(probe=False) if i.pool in serving}
    taking = dispatch.read(layout)
    found[WORKER] = {
        i.version
        for i in InstanceManager(layout, WORKER).list(probe=False)
        if taking is None or taking.takes_jobs(i.pool, i.slot)
    }
    return {c: (v.pop() if len(v) == 1 else "mixed: " + ", ".join(sorted(v))) for c, v in found.items() if v}


def converge(dr: PlatformLayout, region: str, wanted: dict[str, str], progress: Any = None) -> dict[str, str]:
    """Make each component of ``wanted`` serve its version in ``region``, at the size it runs now:
    the version started in the idle pool (healthy), traffic or jobs moved to it, the old pool
    stopped. Idempotent: a component that serves its version already is left alone."""
    layout = dr.region(region)
    for component, version in sorted(wanted.items()):
        if versions(dr, region).get(component) == version:
            continue
        im = InstanceManager(layout, component)
        running = im.list(probe=False)
        pool = serving_pool(dr, region) if component == API else (running[0].pool if running else POOL)
        idle = next(p for p in POOLS if p != pool)
        count = max(1, len([i for i in running if i.pool == pool]))
        im.stop(idle, None, 5.0)  # a leftover of an interrupted convergence, or of an old release
        im.start(version, idle, count, on_progress=progress)
        if component == API:
            HAProxy(layout).route_pool("app", idle, count)
        else:
            dispatch.write(layout, dispatch.Dispatch(members={idle: list(range(count))}))
        im.stop(pool, None, 5.0)
        log.info("converged", region=region, component=component, version=version, pool=idle, count=count)
    return versions(dr, region)


def _roles(dr: PlatformLayout) -> dict[str, str]:
    out = {}
    for region in dr.regions:
        n = node(dr, region)
        if not n.initialized():
            out[region] = "absent"
        elif (n.data_dir / "standby.signal").exists():
            out[region] = "standby"
        else:
            out[region] = "primary"
    return out


def set_synchronous(dr: PlatformLayout, primary: str, standby: str | None) -> None:
    """synchronous_standby_names on the primary: the standby's name, or '' (asynchronous)."""
    names = f'"{dr.db_application_name(standby)}"' if standby else ""
    with node(dr, primary).connect() as conn:
        conn.execute(f"ALTER SYSTEM SET synchronous_standby_names = '{names}'")
        conn.execute("SELECT pg_reload_conf()")


def databases_up(dr: PlatformLayout, *, synchronous: bool = True) -> str:
    """Every region's PostgreSQL node running: a fresh platform gets a primary in the home region
    and a streaming standby of it in each other region; roles already there are kept. Returns
    the primary's region."""
    home, *others = dr.regions
    roles = _roles(dr)
    if all(role == "absent" for role in roles.values()):
        node(dr, home).init_primary()
        for other in others:
            node(dr, other).rebuild_from(node(dr, home), slot_name(dr, other))
        roles = _roles(dr)
    with ThreadPoolExecutor(max_workers=len(dr.regions)) as ex:
        for f in [ex.submit(node(dr, r).start) for r, role in roles.items() if role != "absent"]:
            f.result()
    primary = next((r for r, role in roles.items() if role == "primary"), home)
    node(dr, primary).init_primary()  # the app database and its tables (idempotent)
    standbys = [r for r, role in roles.items() if role == "standby"]
    set_synchronous(dr, primary, standbys[0] if synchronous and standbys else None)
    return primary


def kill_region(dr: PlatformLayout, region: str) -> None:
    """A regional outage: the database crashes, the router, the API instances and the workers die."""
    layout = dr.region(region)
    with ThreadPoolExecutor(max_workers=3) as ex:
        futures: list[Future[Any]] = [
            ex.submit(node(dr, region).stop, "immediate"),
            ex.submit(HAProxy(layout).stop, 2.0),
            *(ex.submit(InstanceManager(layout).stop, pool, None, 1.0) for pool in ALL_POOLS),
            *(ex.submit(InstanceManager(layout, WORKER).stop, pool, None, 1.0) for pool in POOLS),
        ]
        for f in futures:
            f.result()
    log.warning("region_killed", region=region)


def database_status(dr: PlatformLayout, region: str) -> dict[str, Any]:
    n = node(dr, region)
    out: dict[str, Any] = {"port": n.port, "pid": n.pid(), "reachable": False}
    try:
        with n.connect(timeout=1) as conn:
            row = conn.execute(
                "SELECT pg_is_in_recovery(), current_setting('default_transaction_read_only'),"
                " current_setting('synchronous_standby_names')"
            ).fetchone()
            assert row is not None
            out.update(reachable=True, role="standby" if row[0] else "primary")
            out.update(fenced=row[1] == "on", synchronous_standby_names=row[2])
            if not row[0]:
                out["replicas"] = [
                    {"name": r[0], "state": r[1], "sync": r[2], "lag_bytes": int(r[3] or 0)}
                    for r in conn.execute(
                        "SELECT application_name, state, sync_state,"
                        " pg_wal_lsn_diff(pg_current_wal_lsn(), replay_lsn) FROM pg_stat_replication"
                    ).fetchall()
                ]
    except (psycopg.Error, DatabaseError) as exc:
        out["error"] = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    return out
