"""What the starters share: finding the release of an environment, printing progress."""

from __future__ import annotations

import asyncio
import getpass
import math
import os
import re
import sys
import time
from collections.abc import Callable, Coroutine, Sequence
from datetime import datetime
from typing import Any, NoReturn
from urllib.parse import quote, urlsplit

from engine.contracts import Approval, Decision, Evidence, ReleaseStatus
from engine.temporal import ConnectionSettingsError

EXIT_OK, EXIT_RELEASE_FAILED, EXIT_BAD_INPUT, EXIT_REFUSED = 0, 1, 2, 3
"""Exit codes: succeeded; rolled back or failed; refused input; refused by a running release."""
EXIT_BROKEN_PIPE = 141
"""What a shell reports for a process its reader stopped listening to (128 + SIGPIPE)."""


def run(main: Coroutine[Any, Any, int]) -> NoReturn:
    """Run a starter's main and exit with its code.

    Exits with ``os._exit`` after flushing: the Temporal client's Rust threads can abort
    interpreter finalization of a short-lived process (temporalio/sdk-python#300),
    turning a successful run into SIGABRT.
    """
    try:
        code = asyncio.run(main)
        sys.stdout.flush()
    except ConnectionSettingsError as exc:
        code = fail(str(exc), EXIT_BAD_INPUT)
    except BrokenPipeError:  # `control.py status | head`: the reader has what it wanted
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        code = EXIT_BROKEN_PIPE
    sys.stderr.flush()
    os._exit(code)


DASHBOARD_URL = "http://localhost:8400"
"""Where ``starters/dashboard.py`` serves by default (``scripts/dev.sh up`` starts it there)."""


async def dashboard_link(workflow_id: str, run_id: str | None) -> str | None:
    """The release's page on the dashboard: at ``DEPLOY_DASHBOARD_URL`` when set (empty: none),
    else at the default address when a dashboard answers there and this starter talks to the
    default Temporal (the one ``scripts/dev.sh up`` starts both for)."""
    base = os.environ.get("DEPLOY_DASHBOARD_URL")
    if base is None and os.environ.get("TEMPORAL_ADDRESS", "localhost:7233") in (
        "localhost:7233",
        "127.0.0.1:7233",
    ):
        try:
            where = urlsplit(DASHBOARD_URL)
            _, writer = await asyncio.wait_for(asyncio.open_connection(where.hostname, where.port), 0.3)
        except (OSError, TimeoutError):
            return None
        writer.close()
        base = DASHBOARD_URL
    if not base or not run_id:
        return None
    return f"{base.rstrip('/')}/run/{quote(workflow_id)}/{quote(run_id)}"


def default_identity() -> str:
    return os.environ.get("DEPLOY_IDENTITY") or getpass.getuser()


def fail(message: str, code: int) -> int:
    print(f"error: {message}", file=sys.stderr)
    return code


def format_decision(d: Decision) -> str:
    by = "" if d.by == "engine" else f" [{d.by}]"
    reason = f": {d.reason}" if d.reason else ""
    return f"  {d.at:%H:%M:%S} {d.what}{by}{reason}"


def format_approvals(
    approvals: Sequence[Approval], needed: int = 0, approvers: Sequence[str] = ()
) -> list[str]:
    """Each approval (who, the key's fingerprint where signed, when), and who is still needed."""
    if not approvals and not needed:
        return []
    head = "APPROVALS"
    if needed:
        last = approvals[-1].action if approvals else None
        given = {a.by for a in approvals if a.action == last}
        waiting = [a for a in approvers if a not in given]
        head += f" ({needed} more distinct approver(s) needed now" + (
            f", from: {', '.join(waiting)})" if waiting else ")"
        )
    lines = [head]
    for a in approvals:
        key = f" key {a.fingerprint}" if a.fingerprint else " (by name)"
        reason = f": {a.reason}" if a.reason else ""
        lines.append(f"  {a.at:%Y-%m-%d %H:%M:%S}Z {a.action} by {a.by}{key}{reason}")
    return lines


def format_status(s: ReleaseStatus) -> str:
    analysis = ", ".join(
        f"{m.metric}={'-' if m.value is None else f'{m.value:.4g}'} {m.phase}" for m in s.last_analysis
    )
    parts = [
        f"[{s.phase.value}]",
        f"step {s.step_index}/{s.step_count} {s.step}".rstrip(),
        f"canary {round(s.canary_weight, 1):g}%",
    ]
    if s.targets:  # a whole-app release: where it is, not the api's canary weight
        released = sum(t.verdict in ("released", "no_change") for t in s.targets)
        now = next((f"{t.component} in {t.region}" for t in s.targets if t.verdict == "running"), None)
        parts[1:] = [
            f"{released}/{len(s.targets)} released" + (f", now {now}" if now else ""),
            *([s.step] if s.step.startswith("bake") else []),
        ]
    if analysis:
        parts.append(f"analysis: {analysis}")
    if s.paused:
        parts.append(f"PAUSED: {s.pause_reason}")
    if s.awaiting_approval:
        parts.append("AWAITING APPROVAL")
    return " | ".join(parts)


def _num(value: float | None, unit: str = "") -> str:
    if value is None:
        return "-"
    if value == math.inf:
        return "inf"
    if "ratio" in unit:
        return f"{value * 100:.3g}%"
    if "seconds" in unit:
        return f"{value * 1000:.4g} ms"
    return f"{value:.4g}"


def format_evidence(e: Evidence) -> str:
    """One test of a judge: both sides, sizes, statistic against its bound, effect, verdict."""
    name = f"{e.template}/{e.metric}" if e.template else e.metric
    if e.statistic == "score":
        return f"    {name}: {e.verdict.upper()} score {_num(e.value)} (pass at {_num(e.bound)}): {e.rule}"
    what = e.unit.split(" (")[0]
    other = "SLO" if "SLO" in e.unit else "baseline"
    sides = f"canary {_num(e.canary, e.unit)}, {other} {_num(e.baseline, e.unit)}"
    line = f"    {name}: {e.verdict.upper()} {what}: {sides}"
    line += f"; requests {e.canary_requests}/{e.baseline_requests}; {e.statistic} {_num(e.value)}"
    line += f" (fails at {_num(e.bound)})" if e.bound is not None and e.statistic == "e-value" else ""
    if e.effect is not None:
        interval = ""
        if e.effect_low is not None and e.effect_high is not None:
            interval = f" [{_num(e.effect_low)}, {_num(e.effect_high)}]"
        line += f"; {e.effect_name} {_num(e.effect)}{interval}"
    return line


def summarize_evidence(evidence: list[Evidence]) -> list[str]:
    """One line per judge: each test's verdict and statistic, and the requests it has seen."""
    by_template: dict[str, list[Evidence]] = {}
    for e in evidence:
        by_template.setdefault(e.template, []).append(e)
    lines = []
    for template, tests in by_template.items():
        parts = ", ".join(f"{e.metric} {e.verdict} ({e.statistic} {_num(e.value)})" for e in tests)
        sizes = f"{tests[0].canary_requests}/{tests[0].baseline_requests}"
        lines.append(f"  judge {template}: {parts}; requests canary/baseline {sizes}")
    return lines


EVIDENCE_EVERY = 15.0
"""Seconds between two progress lines of a judge whose verdicts have not changed."""


_TAG = re.compile(r"^\[[\w-]+ [\w-]+\] ")
"""``[worker A] `` in front of a child's decision the release pipeline copied into its own log."""


class ProgressPrinter:
    """Prints new decisions and status changes, once each.

    Printers that share ``printed`` print a decision once among them: the release pipeline copies
    its children's decisions into its own log when each ends, after they were printed live.
    """

    def __init__(
        self, out: Callable[[str], Any] = print, printed: set[tuple[datetime, str]] | None = None
    ) -> None:
        self._printed = printed if printed is not None else set()
        self._last = ""
        self._verdicts: list[tuple[str, str, str]] = []
        self._evidence_at = 0.0
        self._evidence: list[Evidence] = []
        self._out = out

    def show(self, status: ReleaseStatus) -> None:
        for d in status.decisions:
            key = (d.at, _TAG.sub("", d.what))
            if key not in self._printed:
                self._printed.add(key)
                self._out(format_decision(d))
        line = format_status(status)
        if line != self._last:
            self._out(line)
            self._last = line
        # The judges' evidence: when a verdict changes, and otherwise every EVIDENCE_EVERY seconds
        # while it moves (a judge that finished, or waits paused, is not printed again).
        verdicts: list[tuple[str, str, str]] = [(e.template, e.metric, e.verdict) for e in status.evidence]
        now = time.monotonic()
        moved = status.evidence != self._evidence and now - self._evidence_at >= EVIDENCE_EVERY
        if status.evidence and (verdicts != self._verdicts or moved):
            for line in summarize_evidence(status.evidence):
                self._out(line)
            self._verdicts, self._evidence_at, self._evidence = verdicts, now, list(status.evidence)
