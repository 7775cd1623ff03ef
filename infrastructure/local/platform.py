"""Bring the whole local platform up and down, and report its status.

The platform has the seed's shape: regions (A, the home region, and B, its standby), each
with its router, API instances and workers, a PostgreSQL primary in A streaming to a standby
in B, and a global entry point (standing for DNS) sending users to one region. One Prometheus
scrapes all of it; Temporal, the release services (registry, Redis, an HTTP dependency) and
the load generators run beside region A. A one-region platform (``regions=("A",)``, what most
engine tests use) is region A alone, without the global entry.

``up`` is idempotent: configs are rewritten, missing components are started, running ones are
left alone, databases keep their roles (after a failover B stays primary). Everything is started
detached with pidfiles, so ``down`` (from any process) stops exactly what ``up`` started.
"""

from __future__ import annotations

import contextlib
import json
import os
import shlex
import shutil
import sys
import time
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import Any

import structlog

from engine.contracts import ALL_POOLS, POOLS
from infrastructure.local import dr as regions_mod
from infrastructure.local import haproxy as haproxy_mod
from infrastructure.local import processes, release_services
from infrastructure.local import prometheus as prometheus_mod
from infrastructure.local.global_entry import GlobalEntry
from infrastructure.local.haproxy import HAProxy, RouterError
from infrastructure.local.instances import InstanceManager
from infrastructure.local.layout import API, REPO_ROOT, WORKER, Layout
from infrastructure.local.prometheus import Prometheus
from infrastructure.local.regions import PlatformLayout
from infrastructure.local.sample_service import Behaviour, set_behaviour
from infrastructure.local.temporal_server import TemporalServer

log = structlog.get_logger(__name__)

LOAD_MODULE = "infrastructure.local.traffic"


def site_of(layout: Layout | PlatformLayout) -> PlatformLayout:
    """The platform of ``layout``: itself, or the one-region platform whose home it is."""
    return layout if isinstance(layout, PlatformLayout) else PlatformLayout.of(layout)


def _load_marker(url: str) -> list[str]:
    return [LOAD_MODULE, url]


def _worker_marker(layout: Layout, name: str = "worker") -> list[str]:
    """The command line of the detached ``name`` (the engine worker, the dashboard) as started."""
    try:
        return json.loads((layout.pids_dir / f"{name}.json").read_text())["marker"]
    except (OSError, ValueError, KeyError):
        return ["\0never\0"]


def load_summary_file(layout: Layout) -> Path:
    """Where the detached load generator writes its JSON summary."""
    return layout.logs_dir / "load-summary.json"


def jobs_summary_file(layout: Layout) -> Path:
    """Where the detached job generator (POST /jobs) writes its JSON summary."""
    return layout.logs_dir / "jobs-summary.json"


def entry_url(site: PlatformLayout) -> str:
    """Where users reach the service: the global entry, or the router of a one-region platform."""
    return site.global_url if len(site.regions) > 1 else site.home_layout.router_url


def _child_env(layout: Layout, temporal_address: str | None) -> dict[str, str]:
    env = layout.env()
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(REPO_ROOT), os.environ.get("PYTHONPATH", "")) if p)
    env["DEPLOY_WORKER_METRICS_PORT"] = str(layout.worker_metrics_port)
    if temporal_address:
        env["TEMPORAL_ADDRESS"] = temporal_address
    return env


def up(
    layout: Layout | PlatformLayout,
    *,
    stable_version: str = "v1.0.0",
    instances: int = 3,
    standby_instances: int = 1,
    workers: int = 0,
    standby_workers: int | None = None,
    traffic_rps: float = 100.0,
    jobs_rps: float = 0.0,
    synchronous: bool = True,
    temporal: bool = True,
    temporal_port: int | None = None,
    temporal_ui_port: int | None = None,
    prometheus: bool = True,
    services: bool = True,
    worker_cmd: str | None = None,
    dashboard_cmd: str | None = None,
    wait_targets: bool = True,
) -> dict[str, Any]:
    """Start whatever of the platform is not running yet; returns :func:`status` plus timings.

    ``instances`` API instances and ``workers`` workers run in the region users reach, the
    ``standby_*`` counts in every other region (``standby_workers``: one if there are workers).
    """
    t0 = time.monotonic()
    site = site_of(layout)
    home = site.home_layout
    timings: dict[str, float] = {}
    routers_were_running = _write_configs(site, prometheus=prometheus)
    tserver = TemporalServer(home, port=temporal_port, ui_port=temporal_ui_port) if temporal else None
    primary = _start(site, timings, stable_version, synchronous=synchronous, prometheus=prometheus,
                     services=services, tserver=tserver)  # fmt: skip
    entry = GlobalEntry(site) if len(site.regions) > 1 else None
    active = primary
    if entry is not None:
        entry.start()
        active = entry.active() or active
    for name in site.regions:
        if not site.database_file(name).exists():
            regions_mod.write_database_file(site, name, name)
    standby = (standby_instances, min(workers, 1) if standby_workers is None else standby_workers)
    sizes = {name: (instances, workers) if name == active else standby for name in site.regions}
    s = time.monotonic()
    with ThreadPoolExecutor(max_workers=len(site.regions)) as ex:
        jobs = [
            ex.submit(_instances_up, site.region(n), stable_version, *sizes[n], routers_were_running[n])
            for n in site.regions
        ]
        for f in jobs:
            f.result()
    timings["instances"] = round(time.monotonic() - s, 3)
    if entry is not None:
        entry.point_to(active)
    if prometheus and wait_targets:
        live = sum(
            len(InstanceManager(r, c).list(probe=False))
            for r in site.layouts().values()
            for c in (API, WORKER)
        )
        timings["prometheus_targets"] = round(Prometheus(home).wait_targets_up(live, timeout=30), 3)
    url = entry_url(site)
    if traffic_rps > 0:
        _generator(home, url, traffic_rps, "load", load_summary_file(home))
    if jobs_rps > 0:
        _generator(home, f"{url}/jobs", jobs_rps, "jobs", jobs_summary_file(home), method="POST")
    if worker_cmd:
        _engine_worker(home, worker_cmd, tserver.address if tserver else None)
    if dashboard_cmd:
        _engine_worker(home, dashboard_cmd, tserver.address if tserver else None, name="dashboard")
    timings["total"] = round(time.monotonic() - t0, 3)
    log.info("up", regions=list(site.regions), active=active, **timings)
    result = status(site)
    result["timings"] = timings
    return result


def regions_up(
    site: PlatformLayout, *, instances: int = 2, standby_instances: int = 1, synchronous: bool = True
) -> dict[str, Any]:
    """The regions alone (routers, databases, API instances, the global entry): no Temporal, no
    Prometheus, no release services, no load. What the DR tests and benchmark bring up."""
    return up(
        site, instances=instances, standby_instances=standby_instances, synchronous=synchronous,
        traffic_rps=0, temporal=False, prometheus=False, services=False,
    )  # fmt: skip


def _start(
    site: PlatformLayout,
    timings: dict[str, float],
    stable_version: str,
    *,
    synchronous: bool,
    prometheus: bool,
    services: bool,
    tserver: TemporalServer | None,
) -> str:
    """Routers, databases, Prometheus, the release services and Temporal, in parallel; returns the
    region of the database primary."""
    home = site.home_layout

    def timed(name: str, fn: Callable[[], Any]) -> Callable[[], Any]:
        def run() -> Any:
            s = time.monotonic()
            out = fn()
            timings[name] = round(time.monotonic() - s, 3)
            return out

        return run

    steps = [
        timed("haproxy", lambda: [HAProxy(r).start() for r in site.layouts().values()]),
        timed("databases", lambda: regions_mod.databases_up(site, synchronous=synchronous)),
    ]
    if prometheus:
        steps.append(timed("prometheus", Prometheus(home).start))
    if services:
        steps.append(lambda: timings.update(release_services.up(home, stable_version)))
    if tserver is not None:
        steps.append(timed("temporal", tserver.start))
    with ThreadPoolExecutor(max_workers=len(steps)) as ex:
        futures = [ex.submit(step) for step in steps]
        results = [f.result() for f in futures]
    return str(results[1])


def _write_configs(site: PlatformLayout, *, prometheus: bool) -> dict[str, bool]:
    """Every region's router config and Prometheus' (reloaded where they run and changed); returns
    which routers were running already."""
    running: dict[str, bool] = {}
    for name, region in site.layouts().items():
        region.ensure_dirs()
        changed, hap = haproxy_mod.write_config(region), HAProxy(region)
        running[name] = hap.running()
        if running[name] and changed:
            hap.reload()
    home = site.home_layout
    prom = Prometheus(home)
    if prometheus and prometheus_mod.write_config(home, site.layouts()) and prom.running():
        prom.reload()
    return running


def _engine_worker(home: Layout, worker_cmd: str, temporal_address: str | None, name: str = "worker") -> None:
    """The engine's worker (``worker_cmd``), or another engine process (the dashboard), detached, once."""
    if processes.running_pid(home.pidfile(name), _worker_marker(home, name)) is not None:
        return
    argv = shlex.split(worker_cmd)
    pid = processes.spawn(
        argv,
        log_file=home.log_file(name),
        pidfile=home.pidfile(name),
        cwd=REPO_ROOT,
        env=_child_env(home, temporal_address),
    )
    (home.pids_dir / f"{name}.json").write_text(
        json.dumps({"pid": pid, "marker": [" ".join(argv)], "cmd": worker_cmd})
    )


def _instances_up(layout: Layout, version: str, api: int, workers: int, router_was_running: bool) -> None:
    """The region's API instances (routed) and workers, unless some already run."""
    im, hap = InstanceManager(layout), HAProxy(layout)
    existing = im.list(probe=False)
    if not existing and api > 0:
        im.start(version, "blue", api)
        hap.route_pool("app", "blue", api)
        log.info("blue_live", region_dir=str(layout.state_dir), version=version, instances=api)
    elif existing and not router_was_running:
        _restore_routes(hap, existing)
    wm = InstanceManager(layout, WORKER)
    if workers > 0 and not wm.list(probe=False):
        wm.start(version, "blue", workers)


def _generator(
    layout: Layout, url: str, rps: float, name: str, summary: Path, *, method: str = "GET"
) -> None:
    """A detached traffic generator (``infrastructure.local.traffic``) against ``url``, once."""
    if processes.running_pid(layout.pidfile(name), _load_marker(url)) is not None:
        return
    processes.spawn(
        [sys.executable, "-m", LOAD_MODULE, "--url", url, "--rps", str(rps), "--summary", str(summary)]
        + (["--method", method] if method != "GET" else []),
        log_file=layout.log_file(name),
        pidfile=layout.pidfile(name),
        cwd=REPO_ROOT,
        env=_child_env(layout, None),
    )


def _restore_routes(hap: HAProxy, existing: list[Any]) -> None:
    """After a cold HAProxy start with instances already running, route to the only pool that runs."""
    pools = {i.pool for i in existing}
    if len(pools) == 1:
        pool = pools.pop()
        slots = sorted(i.slot for i in existing if i.pool == pool)
        if slots == list(range(len(slots))):
            hap.route_pool("app", pool, len(slots))
            log.warning("router_restored", pool=pool, slots=len(slots))
            return
    log.warning(
        "router_cold_start_with_instances", pools=sorted(pools), hint="the engine must set the weights again"
    )


def down(layout: Layout | PlatformLayout, *, purge: bool = False) -> None:
    """Stop everything ``up`` started (engine worker, generators, instances, routers, databases,
    the global entry, Prometheus, Temporal, the release services)."""
    site = _known_regions(site_of(layout))
    home = site.home_layout
    for name in ("dashboard", "worker"):
        processes.stop_pidfile(home.pidfile(name), _worker_marker(home, name), timeout=10)
        (home.pids_dir / f"{name}.json").unlink(missing_ok=True)
    url = entry_url(site)
    processes.stop_pidfile(home.pidfile("load"), _load_marker(url), timeout=5)
    processes.stop_pidfile(home.pidfile("jobs"), _load_marker(f"{url}/jobs"), timeout=5)
    with ThreadPoolExecutor(max_workers=8) as ex:
        futs: list[Future[Any]] = []
        for name, region in site.layouts().items():
            futs += [ex.submit(InstanceManager(region).stop, pool, None, 5.0) for pool in ALL_POOLS]
            futs += [ex.submit(InstanceManager(region, WORKER).stop, pool, None, 5.0) for pool in POOLS]
            futs += [ex.submit(HAProxy(region).stop), ex.submit(regions_mod.node(site, name).stop, "fast")]
        futs += [
            ex.submit(GlobalEntry(site).stop),
            ex.submit(Prometheus(home).stop),
            ex.submit(TemporalServer(home).stop),
            ex.submit(release_services.stop_all, home),
        ]
        for f in futs:
            f.result()
    if purge:
        for region in site.layouts().values():
            region.haproxy_sock.unlink(missing_ok=True)
        GlobalEntry(site).paths.haproxy_sock.unlink(missing_ok=True)
        shutil.rmtree(site.pg_root, ignore_errors=True)
        shutil.rmtree(site.state_dir, ignore_errors=True)
    log.info("down", state_dir=str(site.state_dir), purged=purge)


def _known_regions(site: PlatformLayout) -> PlatformLayout:
    """``site`` with every region that has state on disk (``down`` after an ``up`` of more regions)."""
    extra = sorted(p.name for p in (site.state_dir / "regions").glob("*") if p.is_dir())
    regions = (*site.regions, *(r for r in extra if r not in site.regions))
    if regions == site.regions:
        return site
    return PlatformLayout(site.state_dir, site.port_base, regions=regions, max_slots=site.max_slots)


def status(layout: Layout | PlatformLayout) -> dict[str, Any]:
    """Components, regions (routers, instances, databases) and the users' region, as a JSON-able dict.

    ``components``, ``instances`` (every region's, each with its ``region`` and ``component``),
    ``router`` (the home region's ``app`` backend) and ``load`` read as they did for one region.
    """
    site = site_of(layout)
    home = site.home_layout
    prom, tserver = Prometheus(home), TemporalServer(home)
    url = entry_url(site)
    components: dict[str, dict[str, Any]] = {
        "temporal": {
            "pid": tserver.pid(),
            "port": tserver.port,
            "url": tserver.ui_url,
            "address": tserver.address,
        },
        "haproxy": {
            "pid": HAProxy(home).pid(),
            "port": home.router_port,
            "url": home.router_url,
            "preview_url": home.preview_url,
        },
        "prometheus": {"pid": prom.pid(), "port": home.prometheus_port, "url": home.prometheus_url},
        "load": {
            "pid": processes.running_pid(home.pidfile("load"), _load_marker(url)),
            "port": None,
            "url": url,
        },
        "jobs": {
            "pid": processes.running_pid(home.pidfile("jobs"), _load_marker(f"{url}/jobs")),
            "port": None,
            "url": f"{url}/jobs",
        },
        "worker": {
            "pid": processes.running_pid(home.pidfile("worker"), _worker_marker(home)),
            "port": home.worker_metrics_port,
            "url": None,
        },
        **release_services.status_all(home),
    }
    if (home.pids_dir / "dashboard.json").exists():  # started with dashboard_cmd
        pid = processes.running_pid(home.pidfile("dashboard"), _worker_marker(home, "dashboard"))
        components["dashboard"] = {"pid": pid, "port": None, "url": None}
    active: str | None = site.home
    if len(site.regions) > 1:
        entry = GlobalEntry(site)
        components["global entry"] = {
            "pid": entry.haproxy.pid(),
            "port": site.global_port,
            "url": site.global_url,
        }
        active = None
        if entry.running():
            with contextlib.suppress(RouterError):
                active = entry.active()
    for c in components.values():
        c["running"] = c["pid"] is not None
    regions = {name: _region_status(site, name) for name in site.regions}
    load: Any = None
    with contextlib.suppress(OSError, ValueError):
        load = json.loads(load_summary_file(home).read_text())
    return {
        "state_dir": str(site.state_dir),
        "port_base": site.port_base,
        "active_region": active,
        "components": components,
        "instances": [i for r in regions.values() for i in r["instances"]],
        "router": regions[site.home]["router"],
        "regions": regions,
        "load": load,
    }


def _region_status(site: PlatformLayout, name: str) -> dict[str, Any]:
    layout = site.region(name)
    hap = HAProxy(layout)
    router: list[dict[str, Any]] = []
    if hap.running():
        try:
            router = [
                {
                    "server": s.name,
                    "weight": s.weight,
                    "admin": s.admin,
                    "status": s.status,
                    "check": s.check_status,
                }
                for s in hap.servers("app")
                if s.admin != "maint" or s.weight > 0
            ]
        except RouterError as exc:
            router = [{"error": str(exc)}]
    instances = [
        {**i.model_dump(), "region": name, "component": component}
        for component in (API, WORKER)
        for i in InstanceManager(layout, component).list()
    ]
    return {
        "router": {"backend": "app", "pid": hap.pid(), "url": layout.router_url, "servers": router},
        "instances": instances,
        "writes_to": regions_mod.read_database_file(site, name),
        "database": regions_mod.database_status(site, name),
    }


def behave(layout: Layout, version: str, *, component: str = API, **behaviour: Any) -> Behaviour:
    """Set the behaviour of every instance of ``version`` of ``component`` in every region (running
    ones pick it up within ~0.2 s); ``version`` ``_background`` sets the noise every version shares
    (see ``sample_service``)."""
    site = _known_regions(site_of(layout))
    out = Behaviour(**behaviour)
    for region in site.layouts().values():
        out = set_behaviour(region, version, component=component, **behaviour)
    return out


def kill_region(layout: Layout | PlatformLayout, region: str) -> None:
    """A regional outage: its database crashes, its router, API instances and workers die."""
    regions_mod.kill_region(site_of(layout), region)


def format_status(st: dict[str, Any]) -> str:
    """Human-readable tables for ``status``/``up``."""
    lines = [f"state dir {st['state_dir']}  port base {st['port_base']}", ""]
    lines.append(f"{'COMPONENT':<13} {'STATE':<8} {'PID':>7}  {'PORT':>5}  URL")
    for name, c in st["components"].items():
        state = "running" if c["running"] else "stopped"
        lines.append(
            f"{name:<13} {state:<8} {c['pid'] or '-':>7}  {c['port'] or '-':>5}  {c.get('url') or ''}"
        )
    multi = len(st["regions"]) > 1
    if multi:
        lines += ["", f"users reach region {st['active_region'] or 'none (global entry down)'}"]
    for name, r in st["regions"].items():
        db = r["database"]
        if db["reachable"]:
            what = f"{db['role']}{' (fenced)' if db.get('fenced') else ''} :{db['port']}"
            for rep in db.get("replicas", []):
                what += f" -> {rep['name']} {rep['state']}/{rep['sync']} lag {rep['lag_bytes']}B"
        else:
            what = f"DOWN :{db['port']}"
        title = f"REGION {name}: " if multi else ""
        lines += [
            "",
            f"{title}router {r['router']['url']}; database {what}; writes to {r['writes_to'] or '-'}",
        ]
        lines.append(
            f"{'COMPONENT':<9} {'POOL':<8} {'SLOT':>4}  {'VERSION':<12} {'PORT':>5} {'PID':>7}  HEALTHY"
        )
        for i in r["instances"]:
            lines.append(
                f"{i['component']:<9} {i['pool']:<8} {i['slot']:>4}  {i['version']:<12} {i['port']:>5} "
                f"{i['pid']:>7}  {'yes' if i['healthy'] else 'NO'}"
            )
        if not r["instances"]:
            lines.append("(no instances)")
        servers = r["router"]["servers"]
        routed = ", ".join(
            s.get("error") or f"{s['server']} w{s['weight']} {s['admin']} {s['status']}" for s in servers
        )
        lines.append(f"router app backend: {routed or '(nothing routed)'}")
    if st.get("load"):
        ld = st["load"]
        lines += [
            "",
            f"load: sent {ld['sent']} ok {ld['ok']} failed {ld['failed']} by version {ld['by_version']}",
        ]
    if "timings" in st:
        lines += ["", "timings (s): " + ", ".join(f"{k} {v}" for k, v in st["timings"].items())]
    return "\n".join(lines)
