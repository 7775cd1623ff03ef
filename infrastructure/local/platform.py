"""Bring the whole local platform up and down, and report its status.

``up`` is idempotent: configs are rewritten, missing components are started, running
ones are left alone.  Everything is started detached with pidfiles, so ``down`` (from
any process) stops exactly what ``up`` started.
"""

from __future__ import annotations

import contextlib
import json
import os
import shlex
import shutil
import sys
import time
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import Any

import structlog

from engine.contracts import ALL_POOLS
from infrastructure.local import haproxy as haproxy_mod
from infrastructure.local import processes, release_services
from infrastructure.local import prometheus as prometheus_mod
from infrastructure.local.haproxy import HAProxy, RouterError
from infrastructure.local.instances import InstanceManager
from infrastructure.local.layout import REPO_ROOT, Layout
from infrastructure.local.prometheus import Prometheus
from infrastructure.local.sample_service import Behaviour, set_behaviour
from infrastructure.local.temporal_server import TemporalServer

log = structlog.get_logger(__name__)

LOAD_MODULE = "infrastructure.local.traffic"


def _load_marker(layout: Layout) -> list[str]:
    return [LOAD_MODULE, layout.router_url]


def _worker_marker(layout: Layout) -> list[str]:
    try:
        return json.loads((layout.pids_dir / "worker.json").read_text())["marker"]
    except (OSError, ValueError, KeyError):
        return ["\0never\0"]


def load_summary_file(layout: Layout) -> Path:
    """Where the detached load generator writes its JSON summary."""
    return layout.logs_dir / "load-summary.json"


def _child_env(layout: Layout, temporal_address: str | None) -> dict[str, str]:
    env = layout.env()
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(REPO_ROOT), os.environ.get("PYTHONPATH", "")) if p)
    env["DEPLOY_WORKER_METRICS_PORT"] = str(layout.worker_metrics_port)
    if temporal_address:
        env["TEMPORAL_ADDRESS"] = temporal_address
    return env


def up(
    layout: Layout,
    *,
    stable_version: str = "v1.0.0",
    instances: int = 3,
    traffic_rps: float = 100.0,
    temporal: bool = True,
    temporal_port: int | None = None,
    temporal_ui_port: int | None = None,
    worker_cmd: str | None = None,
    wait_targets: bool = True,
) -> dict[str, Any]:
    """Start whatever of the platform is not running yet; returns :func:`status` plus timings."""
    t0 = time.monotonic()
    layout.ensure_dirs()
    hap, prom = HAProxy(layout), Prometheus(layout)
    tserver = TemporalServer(layout, port=temporal_port, ui_port=temporal_ui_port) if temporal else None
    hap_cfg_changed = haproxy_mod.write_config(layout)
    prom_cfg_changed = prometheus_mod.write_config(layout)
    hap_was_running = hap.running()
    if hap_was_running and hap_cfg_changed:
        hap.reload()
    if prom_cfg_changed and prom.running():
        prom.reload()
    timings: dict[str, float] = {}

    def timed(name: str, fn: Any) -> Any:
        s = time.monotonic()
        out = fn()
        timings[name] = round(time.monotonic() - s, 3)
        return out

    im = InstanceManager(layout)
    existing = im.list(probe=False)
    with ThreadPoolExecutor(max_workers=5) as ex:
        futs = [ex.submit(timed, "haproxy", hap.start), ex.submit(timed, "prometheus", prom.start)]
        futs.append(ex.submit(lambda: timings.update(release_services.up(layout, stable_version))))
        if tserver is not None:
            futs.append(ex.submit(timed, "temporal", tserver.start))
        if not existing and instances > 0:
            futs.append(ex.submit(timed, "instances", lambda: im.start(stable_version, "blue", instances)))
        for f in futs:
            f.result()
    if not existing and instances > 0:
        timed("route", lambda: hap.route_pool("app", "blue", instances))
        log.info("blue_live", version=stable_version, instances=instances)
    elif existing and not hap_was_running:
        _restore_routes(hap, existing)
    live = len(im.list(probe=False))
    if wait_targets:
        timings["prometheus_targets"] = round(prom.wait_targets_up(live, timeout=30), 3)
    if traffic_rps > 0 and processes.running_pid(layout.pidfile("load"), _load_marker(layout)) is None:
        processes.spawn(
            [
                sys.executable,
                "-m",
                LOAD_MODULE,
                "--url",
                layout.router_url,
                "--rps",
                str(traffic_rps),
                "--summary",
                str(load_summary_file(layout)),
            ],
            log_file=layout.log_file("load"),
            pidfile=layout.pidfile("load"),
            cwd=REPO_ROOT,
            env=_child_env(layout, None),
        )
    if worker_cmd and processes.running_pid(layout.pidfile("worker"), _worker_marker(layout)) is None:
        argv = shlex.split(worker_cmd)
        marker = [" ".join(argv)]
        pid = processes.spawn(
            argv,
            log_file=layout.log_file("worker"),
            pidfile=layout.pidfile("worker"),
            cwd=REPO_ROOT,
            env=_child_env(layout, tserver.address if tserver else None),
        )
        (layout.pids_dir / "worker.json").write_text(
            json.dumps({"pid": pid, "marker": marker, "cmd": worker_cmd})
        )
    timings["total"] = round(time.monotonic() - t0, 3)
    log.info("up", **timings)
    result = status(layout)
    result["timings"] = timings
    return result


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


def down(layout: Layout, *, purge: bool = False) -> None:
    """Stop everything ``up`` started (worker, load, instances, Prometheus, HAProxy, Temporal)."""
    processes.stop_pidfile(layout.pidfile("worker"), _worker_marker(layout), timeout=10)
    (layout.pids_dir / "worker.json").unlink(missing_ok=True)
    processes.stop_pidfile(layout.pidfile("load"), _load_marker(layout), timeout=5)
    im = InstanceManager(layout)
    with ThreadPoolExecutor(max_workers=5) as ex:
        futs: list[Future[Any]] = [ex.submit(im.stop, pool, None, 5.0) for pool in ALL_POOLS]
        futs += [
            ex.submit(Prometheus(layout).stop),
            ex.submit(HAProxy(layout).stop),
            ex.submit(TemporalServer(layout).stop),
            ex.submit(release_services.stop_all, layout, purge=purge),
        ]
        for f in futs:
            f.result()
    if purge:
        sock = layout.haproxy_sock
        shutil.rmtree(layout.state_dir, ignore_errors=True)
        sock.unlink(missing_ok=True)
    log.info("down", state_dir=str(layout.state_dir), purged=purge)


def status(layout: Layout) -> dict[str, Any]:
    """Components, instances and the router's ``app`` weights as a JSON-able dict."""
    hap, prom, tserver = HAProxy(layout), Prometheus(layout), TemporalServer(layout)
    components: dict[str, dict[str, Any]] = {
        "temporal": {
            "pid": tserver.pid(),
            "port": tserver.port,
            "url": tserver.ui_url,
            "address": tserver.address,
        },
        "haproxy": {
            "pid": hap.pid(),
            "port": layout.router_port,
            "url": layout.router_url,
            "preview_url": layout.preview_url,
        },
        "prometheus": {"pid": prom.pid(), "port": layout.prometheus_port, "url": layout.prometheus_url},
        "load": {
            "pid": processes.running_pid(layout.pidfile("load"), _load_marker(layout)),
            "port": None,
            "url": layout.router_url,
        },
        "worker": {
            "pid": processes.running_pid(layout.pidfile("worker"), _worker_marker(layout)),
            "port": layout.worker_metrics_port,
            "url": None,
        },
        **release_services.status_all(layout),
    }
    for c in components.values():
        c["running"] = c["pid"] is not None
    router: list[dict[str, Any]] = []
    if components["haproxy"]["running"]:
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
    load: Any = None
    with contextlib.suppress(OSError, ValueError):
        load = json.loads(load_summary_file(layout).read_text())
    return {
        "state_dir": str(layout.state_dir),
        "port_base": layout.port_base,
        "components": components,
        "instances": [i.model_dump() for i in InstanceManager(layout).list()],
        "router": {"backend": "app", "servers": router},
        "load": load,
    }


def behave(layout: Layout, version: str, **behaviour: Any) -> Behaviour:
    """Set the behaviour of every instance of ``version`` (running ones pick it up within ~0.2 s);
    ``version`` ``_background`` sets the noise every version shares (see ``sample_service``)."""
    return set_behaviour(layout, version, **behaviour)


def format_status(st: dict[str, Any]) -> str:
    """Human-readable tables for ``status``/``up``."""
    lines = [f"state dir {st['state_dir']}  port base {st['port_base']}", ""]
    lines.append(f"{'COMPONENT':<11} {'STATE':<8} {'PID':>7}  {'PORT':>5}  URL")
    for name, c in st["components"].items():
        state = "running" if c["running"] else "stopped"
        lines.append(
            f"{name:<11} {state:<8} {c['pid'] or '-':>7}  {c['port'] or '-':>5}  {c.get('url') or ''}"
        )
    lines += ["", f"{'POOL':<6} {'SLOT':>4}  {'VERSION':<12} {'PORT':>5} {'PID':>7}  HEALTHY"]
    for i in st["instances"]:
        lines.append(
            f"{i['pool']:<6} {i['slot']:>4}  {i['version']:<12} {i['port']:>5} {i['pid']:>7}  "
            f"{'yes' if i['healthy'] else 'NO'}"
        )
    if not st["instances"]:
        lines.append("(no instances)")
    lines += ["", f"{'SERVER':<8} {'WEIGHT':>6}  {'ADMIN':<6} {'STATUS':<9} CHECK   (haproxy backend app)"]
    for s in st["router"]["servers"]:
        if "error" in s:
            lines.append(s["error"])
            continue
        lines.append(f"{s['server']:<8} {s['weight']:>6}  {s['admin']:<6} {s['status']:<9} {s['check']}")
    if st.get("load"):
        ld = st["load"]
        lines += [
            "",
            f"load: sent {ld['sent']} ok {ld['ok']} failed {ld['failed']} by version {ld['by_version']}",
        ]
    if "timings" in st:
        lines += ["", "timings (s): " + ", ".join(f"{k} {v}" for k, v in st["timings"].items())]
    return "\n".join(lines)
