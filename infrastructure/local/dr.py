"""The two-region local stack for disaster recovery: up, down, status, and killing a region.

    python -m infrastructure.local.dr up [--sync|--async] [--instances 2] [--standby-instances 1]
    python -m infrastructure.local.dr status [--json]
    python -m infrastructure.local.dr kill-region A     # a regional outage: router, instances, database
    python -m infrastructure.local.dr down [--purge]

Region A runs the PostgreSQL primary, region B its streaming standby; each region has
its own router (HAProxy) and sample instances (pool ``blue``) writing to the region's
database; the global entry point sends users to one region. It is separate from the
single-region ``python -m infrastructure.local up`` (own state dir ``.state/dr`` and
port base 19000, or ``DEPLOY_DR_STATE_DIR`` / ``DEPLOY_DR_PORT_BASE``) and does not run
a Temporal server: use the single-region platform's (or any) Temporal.
``up`` is idempotent and keeps whatever roles the databases have (after a failover B
stays primary).
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

import psycopg
import structlog

from infrastructure.local import haproxy as haproxy_mod
from infrastructure.local.database import DatabaseError, PgNode
from infrastructure.local.global_entry import GlobalEntry
from infrastructure.local.haproxy import HAProxy, RouterError
from infrastructure.local.instances import InstanceManager
from infrastructure.local.logs import configure_logging
from infrastructure.local.regions import DrLayout

log = structlog.get_logger(__name__)
POOL = "blue"


def node(dr: DrLayout, region: str) -> PgNode:
    return PgNode(dr.db_application_name(region), dr.pg_data(region), dr.db_port(region), dr.pg_log(region))


def slot_name(dr: DrLayout, region: str) -> str:
    """The replication slot a standby in ``region`` uses on its primary."""
    return dr.db_application_name(region)


def write_database_file(dr: DrLayout, region: str, db_region: str | None) -> None:
    """Point the region's instances at ``db_region``'s database (None: writes refused)."""
    path = dr.database_file(region)
    path.parent.mkdir(parents=True, exist_ok=True)
    body = {"conninfo": node(dr, db_region).conninfo() if db_region else None, "node": db_region}
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(body))
    tmp.replace(path)


def read_database_file(dr: DrLayout, region: str) -> str | None:
    try:
        return json.loads(dr.database_file(region).read_text()).get("node")
    except (OSError, ValueError):
        return None


def scale_region(
    dr: DrLayout, region: str, version: str, count: int, progress: Any = None
) -> list[dict[str, Any]]:
    """Run ``count`` instances in the region and route its router to exactly them (idempotent)."""
    layout = dr.region(region)
    im, hap = InstanceManager(layout), HAProxy(layout)
    running = {i.slot: i for i in im.list(probe=False) if i.pool == POOL}
    if running and count:
        version = next(iter(running.values())).version
    if count:
        im.start(version, POOL, count, on_progress=progress)
        hap.route_pool("app", POOL, count)
    extra = [slot for slot in running if slot >= count]
    if extra:
        if not count:
            for s in extra:
                hap.set_server("app", f"{POOL}{s}", weight=0, state="maint")
        im.stop(POOL, extra, 5.0)
    return [i.model_dump() for i in im.list() if i.pool == POOL]


def _roles(dr: DrLayout) -> dict[str, str]:
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


def set_synchronous(dr: DrLayout, primary: str, standby: str | None) -> None:
    """synchronous_standby_names on the primary: the standby's name, or '' (asynchronous)."""
    names = f'"{dr.db_application_name(standby)}"' if standby else ""
    with node(dr, primary).connect() as conn:
        conn.execute(f"ALTER SYSTEM SET synchronous_standby_names = '{names}'")
        conn.execute("SELECT pg_reload_conf()")


def up(
    dr: DrLayout,
    *,
    version: str = "v1.0.0",
    instances: int = 2,
    standby_instances: int = 1,
    synchronous: bool = True,
) -> dict[str, Any]:
    """Start whatever of the two-region stack is not running; returns :func:`status`."""
    home, *others = dr.regions
    for region in dr.regions:
        layout = dr.region(region)
        layout.ensure_dirs()
        haproxy_mod.write_config(layout)
    roles = _roles(dr)
    if roles[home] == "absent" and all(roles[o] == "absent" for o in others):
        node(dr, home).init_primary()
        for other in others:
            node(dr, other).rebuild_from(node(dr, home), slot_name(dr, other))
        roles = _roles(dr)
    with ThreadPoolExecutor(max_workers=4) as ex:
        futures: list[Future[Any]] = [
            ex.submit(node(dr, r).start) for r, role in roles.items() if role != "absent"
        ]
        futures += [ex.submit(HAProxy(dr.region(r)).start) for r in dr.regions]
        for f in futures:
            f.result()
    primary = next((r for r, role in roles.items() if role == "primary"), home)
    standbys = [r for r, role in roles.items() if role == "standby"]
    if synchronous and standbys:
        set_synchronous(dr, primary, standbys[0])
    elif not synchronous:
        set_synchronous(dr, primary, None)
    entry = GlobalEntry(dr)
    entry.start()
    active = entry.active() or primary
    for region in dr.regions:
        if not dr.database_file(region).exists():
            write_database_file(dr, region, region)
    with ThreadPoolExecutor(max_workers=2) as ex:
        scaled: list[Future[Any]] = [
            ex.submit(scale_region, dr, r, version, instances if r == active else standby_instances)
            for r in dr.regions
        ]
        for f in scaled:
            f.result()
    entry.point_to(active)
    return status(dr)


def kill_region(dr: DrLayout, region: str) -> None:
    """A regional outage: the database crashes, the router and the instances die."""
    layout = dr.region(region)
    with ThreadPoolExecutor(max_workers=3) as ex:
        futures: list[Future[Any]] = [
            ex.submit(node(dr, region).stop, "immediate"),
            ex.submit(HAProxy(layout).stop, 2.0),
            ex.submit(InstanceManager(layout).stop, POOL, None, 1.0),
        ]
        for f in futures:
            f.result()
    log.warning("region_killed", region=region)


def down(dr: DrLayout, *, purge: bool = False) -> None:
    """Stop everything ``up`` started."""
    with ThreadPoolExecutor(max_workers=8) as ex:
        futures: list[Future[Any]] = [ex.submit(GlobalEntry(dr).stop)]
        for region in dr.regions:
            layout = dr.region(region)
            futures += [
                ex.submit(InstanceManager(layout).stop, POOL, None, 3.0),
                ex.submit(HAProxy(layout).stop),
                ex.submit(node(dr, region).stop, "fast"),
            ]
        for f in futures:
            f.result()
    if purge:
        for region in dr.regions:
            HAProxy(dr.region(region)).layout.haproxy_sock.unlink(missing_ok=True)
        shutil.rmtree(dr.pg_root, ignore_errors=True)
        shutil.rmtree(dr.state_dir, ignore_errors=True)


def database_status(dr: DrLayout, region: str) -> dict[str, Any]:
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


def status(dr: DrLayout) -> dict[str, Any]:
    entry = GlobalEntry(dr)
    active: str | None = None
    if entry.running():
        try:
            active = entry.active()
        except RouterError as exc:
            active = f"error: {exc}"
    regions = {}
    for region in dr.regions:
        layout = dr.region(region)
        regions[region] = {
            "router": {"pid": HAProxy(layout).pid(), "url": layout.router_url},
            "instances": [i.model_dump() for i in InstanceManager(layout).list() if i.pool == POOL],
            "writes_to": read_database_file(dr, region),
            "database": database_status(dr, region),
        }
    return {
        "state_dir": str(dr.state_dir),
        "port_base": dr.port_base,
        "global_entry": {"url": dr.global_url, "pid": entry.haproxy.pid(), "active": active},
        "regions": regions,
    }


def format_status(st: dict[str, Any]) -> str:
    g = st["global_entry"]
    lines = [
        f"state dir {st['state_dir']}  port base {st['port_base']}",
        f"global entry {g['url']} (pid {g['pid'] or '-'}) -> region {g['active'] or 'none'}",
        "",
        f"{'REGION':<7} {'ROUTER':>7} {'INSTANCES':>9}  {'DATABASE':<28} WRITES TO",
    ]
    for name, r in st["regions"].items():
        db = r["database"]
        if db["reachable"]:
            what = f"{db['role']}{' (fenced)' if db.get('fenced') else ''} :{db['port']}"
            for rep in db.get("replicas", []):
                what += f" -> {rep['name']} {rep['state']}/{rep['sync']} lag {rep['lag_bytes']}B"
        else:
            what = f"DOWN :{db['port']}"
        healthy = sum(1 for i in r["instances"] if i["healthy"])
        lines.append(
            f"{name:<7} {r['router']['pid'] or '-':>7} {healthy:>4}/{len(r['instances']):<4}  {what:<28} "
            f"{r['writes_to'] or '-'}"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--state-dir")
    parser.add_argument("--port-base", type=int)
    sub = parser.add_subparsers(dest="cmd", required=True)
    p_up = sub.add_parser("up", help="start the two-region stack (idempotent)")
    p_up.add_argument("--version", default="v1.0.0")
    p_up.add_argument("--instances", type=int, default=2, help="instances in the active region")
    p_up.add_argument("--standby-instances", type=int, default=1, help="instances in the standby region")
    mode = p_up.add_mutually_exclusive_group()
    mode.add_argument("--sync", dest="synchronous", action="store_true", default=True)
    mode.add_argument("--async", dest="synchronous", action="store_false")
    p_status = sub.add_parser("status")
    p_status.add_argument("--json", action="store_true")
    p_kill = sub.add_parser("kill-region", help="simulate a regional outage")
    p_kill.add_argument("region")
    p_down = sub.add_parser("down")
    p_down.add_argument("--purge", action="store_true", help="also delete the state dir and databases")
    args = parser.parse_args(argv)
    configure_logging()
    dr = DrLayout.from_env(state_dir=args.state_dir, port_base=args.port_base)
    if args.cmd == "up":
        st = up(
            dr,
            version=args.version,
            instances=args.instances,
            standby_instances=args.standby_instances,
            synchronous=args.synchronous,
        )
        print(format_status(st))
    elif args.cmd == "status":
        st = status(dr)
        print(json.dumps(st, indent=1) if args.json else format_status(st))
    elif args.cmd == "kill-region":
        kill_region(dr, dr.check_region(args.region))
    else:
        down(dr, purge=args.purge)
    return 0


if __name__ == "__main__":
    sys.exit(main())
