"""CLI of the local platform: ``python -m infrastructure.local up|down|status|behave|kill-region``.

Two regions by default (A: users, the PostgreSQL primary, 3 API instances and 2 workers; B: its
standby, 1 and 1; the global entry in front); ``--regions A`` for one region alone."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from infrastructure.local import platform
from infrastructure.local.layout import COMPONENTS
from infrastructure.local.logs import configure_logging
from infrastructure.local.regions import REGIONS, PlatformLayout


def parser() -> argparse.ArgumentParser:
    """The CLI's arguments."""
    p = argparse.ArgumentParser(prog="python -m infrastructure.local", description=__doc__)
    p.add_argument("--state-dir", type=Path, default=None, help="overrides DEPLOY_STATE_DIR")
    p.add_argument("--port-base", type=int, default=None, help="overrides DEPLOY_PORT_BASE")
    p.add_argument("--regions", default=",".join(REGIONS), help="the platform's regions, home first")
    p.add_argument("-v", "--verbose", action="store_true", help="debug logs")
    sub = p.add_subparsers(dest="cmd", required=True)

    u = sub.add_parser(
        "up", help="start (idempotent) Temporal, routers, databases, Prometheus, instances, load"
    )
    u.add_argument("--stable-version", default="v1.0.0")
    u.add_argument("--instances", type=int, default=3, help="API instances where users are")
    u.add_argument("--workers", type=int, default=2, help="workers where users are")
    u.add_argument("--standby-instances", type=int, default=1, help="API instances in each standby region")
    u.add_argument("--standby-workers", type=int, default=1, help="workers in each standby region")
    u.add_argument("--jobs-rps", type=float, default=20.0, help="jobs posted through the entry (POST /jobs)")
    u.add_argument("--async", dest="synchronous", action="store_false", help="asynchronous replication")
    u.add_argument(
        "--traffic-rps",
        type=float,
        default=100.0,
        help="load through the router (the canary judge needs evidence: at 10%% a canary sees a tenth)",
    )
    u.add_argument("--no-temporal", action="store_true")
    u.add_argument("--temporal-port", type=int, default=None)
    u.add_argument("--temporal-ui-port", type=int, default=None)
    u.add_argument("--worker-cmd", default=None, help="command line of the engine worker to run detached")
    u.add_argument(
        "--dashboard-cmd", default=None, help="command line of the release dashboard to run detached"
    )
    u.add_argument("--json", action="store_true")

    d = sub.add_parser("down", help="stop everything up started")
    d.add_argument("--purge", action="store_true", help="also delete the state dir")

    s = sub.add_parser("status", help="what runs where")
    s.add_argument("--json", action="store_true")

    b = sub.add_parser(
        "behave",
        help="set errors / latency / health of a version (or of every version: _background)",
        description="Make a version misbehave, or (version _background) give every version noise. "
        "Example: behave v1.2.4 --error-probability 0.02; behave _background --error-probability 0.001 "
        "--latency-median-ms 20 --latency-p95-ms 80",
    )
    b.add_argument("version", help="a version, or _background for every version")
    b.add_argument("--component", choices=COMPONENTS, default="api", help="the API (default) or the worker")
    b.add_argument(
        "--error-rate", type=float, default=0.0, help="a deterministic share of 500s (0.2: every 5th)"
    )
    b.add_argument(
        "--error-probability", type=float, default=0.0, help="500s at random, with this probability"
    )
    b.add_argument("--latency-ms", type=int, default=0, help="fixed latency added to every request")
    b.add_argument("--latency-median-ms", type=float, default=0.0, help="lognormal latency: its median")
    b.add_argument("--latency-p95-ms", type=float, default=0.0, help="lognormal latency: its 95th percentile")
    b.add_argument("--unhealthy", action="store_true", help="/healthz answers 503")

    k = sub.add_parser("kill-region", help="a regional outage: its database, router and instances die")
    k.add_argument("region")
    return p


def main(argv: list[str] | None = None) -> int:
    """Parse arguments and run one command; returns the exit code."""
    a = parser().parse_args(argv)
    configure_logging(verbose=a.verbose)
    regions = tuple(r.strip() for r in a.regions.split(",") if r.strip())
    try:
        layout = PlatformLayout.from_env(state_dir=a.state_dir, port_base=a.port_base, regions=regions)
    except ValueError as exc:
        print(f"error: --regions: {exc}", file=sys.stderr)
        return 2

    if a.cmd == "up":
        st = platform.up(
            layout,
            stable_version=a.stable_version,
            instances=a.instances,
            workers=a.workers,
            standby_instances=a.standby_instances,
            standby_workers=a.standby_workers,
            jobs_rps=a.jobs_rps,
            synchronous=a.synchronous,
            traffic_rps=a.traffic_rps,
            temporal=not a.no_temporal,
            temporal_port=a.temporal_port,
            temporal_ui_port=a.temporal_ui_port,
            worker_cmd=a.worker_cmd,
            dashboard_cmd=a.dashboard_cmd,
        )
        print(json.dumps(st, indent=1) if a.json else platform.format_status(st))
    elif a.cmd == "down":
        platform.down(layout, purge=a.purge)
        print("down" + (" (state purged)" if a.purge else ""))
    elif a.cmd == "status":
        st = platform.status(layout)
        print(json.dumps(st, indent=1) if a.json else platform.format_status(st))
    elif a.cmd == "behave":
        try:
            beh = platform.behave(
                layout.home_layout,
                a.version,
                component=a.component,
                error_rate=a.error_rate,
                error_probability=a.error_probability,
                latency_ms=a.latency_ms,
                latency_median_ms=a.latency_median_ms,
                latency_p95_ms=a.latency_p95_ms,
                healthy=not a.unhealthy,
            )
        except ValueError as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 2
        print(f"{a.version}{' (worker)' if a.component != 'api' else ''}: {beh.model_dump_json()}")
    elif a.cmd == "kill-region":
        try:
            layout.check_region(a.region)
        except ValueError as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 2
        platform.kill_region(layout, a.region)
        print(f"region {a.region} killed: its database, router, API instances and workers")
    return 0


if __name__ == "__main__":
    sys.exit(main())
