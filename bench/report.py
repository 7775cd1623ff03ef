"""The bench's report: one table (metric | measured | target | verdict), then the raw samples.

:class:`Row` is one line of the table (every metric module gives its rows as tuples of
these four cells); :func:`build_rows` makes P1's and P2's, :func:`render_table` the
table, :func:`render_raw` P1's and P2's raw samples with the router watcher's
statistics, :func:`render_run` the line about the whole run.
"""

from __future__ import annotations

import os
import statistics
from dataclasses import dataclass
from typing import Any

from bench.bad_canary import P2_TARGET_S, RollbackSample
from bench.common import pct
from bench.router_watch import RouterWatch
from bench.step_overhead import P1_TARGET_MS, GateSample


@dataclass
class Row:
    metric: str
    measured: str
    target: str
    verdict: str


def build_rows(p1: list[GateSample], p2: list[RollbackSample]) -> list[Row]:
    rows: list[Row] = []
    if p1:
        live = [s.live_ms for s in p1]
        hist = [s.history_ms for s in p1]
        med = statistics.median(live)
        rows += [
            Row(
                "P1 gate -> weight live at router, median",
                f"{med:.1f} ms (n={len(live)})",
                f"<= {P1_TARGET_MS:g} ms",
                "PASS" if med <= P1_TARGET_MS else "FAIL",
            ),
            Row("P1 gate -> weight live at router, p95", f"{pct(live, 95):.1f} ms", "-", "info"),
            Row(
                "P1 cross-check (history: gate -> set_traffic completed)",
                f"median {statistics.median(hist):.1f} ms, p95 {pct(hist, 95):.1f} ms",
                "-",
                "info",
            ),
        ]
        for kind in ("pause", "analysis"):
            sub = [s.live_ms for s in p1 if s.kind == kind]
            if sub:
                rows.append(
                    Row(
                        f"P1   {kind} gates only, median / max",
                        f"{statistics.median(sub):.1f} / {max(sub):.1f} ms (n={len(sub)})",
                        "-",
                        "info",
                    )
                )
    if p2:
        totals = [s.total_s for s in p2]
        rows += [
            Row(
                "P2 bad canary -> 100 % stable, max",
                f"{max(totals):.2f} s (n={len(totals)}: " + ", ".join(f"{t:.2f}" for t in totals) + ")",
                f"<= {P2_TARGET_S:g} s",
                "PASS" if max(totals) <= P2_TARGET_S else "FAIL",
            ),
            Row(
                "P2   detection: T0 -> 'rolling back', max",
                f"{max(s.to_decision_s for s in p2):.2f} s",
                "-",
                "info",
            ),
            Row(
                "P2   shift: 'rolling back' -> canary 0 %, max",
                f"{max(s.shift_s for s in p2) * 1000:.0f} ms",
                "-",
                "info",
            ),
        ]
    return rows


def render_table(rows: list[Row]) -> str:
    head = Row("metric", "measured", "target", "verdict")
    widths = [
        max(len(getattr(r, f)) for r in [head, *rows]) for f in ("metric", "measured", "target", "verdict")
    ]

    def line(r: Row) -> str:
        cells = (r.metric, r.measured, r.target, r.verdict)
        return "| " + " | ".join(c.ljust(w) for c, w in zip(cells, widths, strict=True)) + " |"

    sep = "|" + "|".join("-" * (w + 2) for w in widths) + "|"
    return "\n".join([line(head), sep, *(line(r) for r in rows)])


def render_raw(
    p1: list[GateSample], p2: list[RollbackSample], watch: RouterWatch, extra: dict[str, Any]
) -> str:
    out = ["", "Raw samples", "", "P1 (ms; gate = TimerFired / analysis.run completed; live = router read)"]
    out.append(
        f"{'#':>3} {'gate':<8} {'weight':>6} {'live':>7} {'history':>7} | "
        f"{'->wft':>6} {'wft':>6} {'->sched':>7} {'->start':>7} {'->live':>7} {'->done':>7}"
    )
    for s in p1:
        out.append(
            f"{s.index:>3} {s.kind:<8} {s.weight:>6} {s.live_ms:>7.1f} {s.history_ms:>7.1f} | "
            f"{s.to_wft_started_ms:>6.1f} {s.wft_ms:>6.1f} {s.to_scheduled_ms:>7.1f} {s.to_started_ms:>7.1f} "
            f"{s.started_to_live_ms:>7.1f} {s.live_to_completed_ms:>7.1f}"
        )
    out += [
        "    live/history: gate -> weight live at the router / -> set_traffic completed (history);",
        "    ->wft: gate -> workflow task started; wft: workflow task started -> completed;",
        "    ->sched: gate -> set_traffic scheduled; ->start: scheduled -> activity started;",
        "    ->live: activity started -> weight live; ->done: live -> activity completed.",
    ]
    if extra.get("timer_late_ms"):
        late = extra["timer_late_ms"]
        out.append(f"    pause timers fired late by (ms, not part of the overhead): {late}")
    if extra.get("baseline"):
        b = extra["baseline"]

        def med(key: str) -> float:
            return statistics.median(x[key] for x in b)

        out.append(
            f"    floor (do-nothing workflow: 1 s timer -> no-op activity, n={len(b)}, medians): "
            f"->wft {med('to_wft_started_ms'):.1f}, wft {med('wft_ms'):.1f}, "
            f"->sched {med('to_scheduled_ms'):.1f}, history {med('history_ms'):.1f} ms"
        )
    if extra.get("router_direct"):
        rd = extra["router_direct"]
        out.append(
            "    the router provider called directly (no Temporal, preview backend, n="
            f"{rd['n']}): set_traffic median {rd['set_traffic_ms_median']:.2f} ms, "
            f"read median {rd['read_ms_median']:.2f} ms"
        )
    out += ["", "P2 (s; T0 = errors injected, T1 = canary at 0 % in the router)"]
    out.append(
        f"{'version':<8} {'total':>6} {'detect':>7} {'decide':>7} {'shift':>7} {'value':>6}  outcome / reason"
    )
    for r in p2:
        value = f"{r.failed_value:.3f}" if r.failed_value is not None else "-"
        out.append(
            f"{r.version:<8} {r.total_s:>6.3f} {r.detect_s:>7.3f} {r.decide_s:>7.3f} {r.shift_s:>7.3f} "
            f"{value:>6}  {r.outcome}: {r.reason}"
        )
    out += [
        "",
        f"router watcher: {watch.polls} reads, median interval {watch.resolution_ms():.2f} ms, "
        f"{watch.errors} read errors, {len(watch.changes)} changes seen",
    ]
    transient = [
        c for c in watch.changes if any(abs(v / 5 - round(v / 5)) > 0.002 for v in c.weights.values())
    ]
    if transient:
        shown = ", ".join("/".join(f"{p} {v:.1f}%" for p, v in c.weights.items()) for c in transient[:5])
        out.append(
            f"router watcher saw {len(transient)} transient split(s) in the middle of a change "
            f"(not a planned weight): {shown}"
        )
    return "\n".join(out)


def render_run(report: dict[str, Any]) -> str:
    """The line about the whole run: its time, each phase's, and the machine's load."""
    load = ", ".join(f"{x:.1f}" for x in report["load_average_start"])
    load_end = ", ".join(f"{x:.1f}" for x in report["load_average_end"])
    phases_s = ", ".join(f"{k} {v}s" for k, v in report.get("phase_seconds", {}).items())
    up = f", platform up {report['platform_up_s']}s" if "platform_up_s" in report else ""
    return (
        f"\nwhole run {report['total_s']}s ({phases_s}{up}); load average {load} at the start, "
        f"{load_end} at the end ({os.cpu_count()} cores, shared with other work on this machine)"
    )
