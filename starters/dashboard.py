"""Release dashboard: recent releases and failovers per environment, and one release live.

    python starters/dashboard.py [--port 8400] [--bind 127.0.0.1] [--env local] [--config FILE]

Prints its URL and serves, from this machine only (no CDN, no JavaScript library; charts are SVG
drawn here):

- ``/``: per environment, its releases, failovers and drills, newest first (Temporal's visibility
  store, as ``control.py history``): version, strategy, outcome, duration, a link to each;
- ``/run/WORKFLOW_ID/RUN_ID``: one release, refreshed every few seconds while it runs: the
  pipeline's stages, the strategy's steps with the current one marked, the traffic weights read
  back from the router over time, each component and region of a whole-app release, every judge's
  evidence over time (canary against baseline or SLO, the statistic against its bound, the
  verdict), approvals and the decision log; Pause and Abort buttons (Temporal updates, as
  ``control.py`` sends them), Approve and Resume where the environment's approvals are by name (where
  they are signed, the page shows the ``control.py`` command to run instead);
- ``/env/ENV``: the environment's latest release.

Everything is read through the Temporal client (``engine.temporal.connect``, so encrypted payloads
are decrypted with ``DEPLOY_CODEC_KEYS``), never from a provider: the status query while a release
runs, its result once it has ended, and its event history for what the status does not keep (the
strategy's steps from its input; the weights the router read back, from each ``router.set_traffic``
result; each judge's evidence, from each ``analysis.judge`` result, with the time it was recorded).
"""

from __future__ import annotations

import argparse
import asyncio
import html
import math
import os
import secrets
import sys
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from urllib.parse import quote, urlsplit

from aiohttp import web
from temporalio.api.common.v1 import Payload
from temporalio.client import Client, WorkflowExecutionStatus, WorkflowUpdateFailedError
from temporalio.exceptions import FailureError
from temporalio.service import RPCError

from engine import temporal
from engine.client import control_target
from engine.config import DeployConfig, load_config
from engine.contracts import Approval, Control, Decision, Evidence, ReleaseResult, ReleaseSpec, ReleaseStatus
from engine.contracts.activities import JUDGE, OBSERVE, RUN_ANALYSIS, SET_TRAFFIC
from engine.contracts.analysis import AnalysisResult, JudgeResult
from engine.contracts.dr import DrResult, DrStatus
from engine.contracts.pipeline import STRATEGY_WORKFLOWS, PipelineSpec
from engine.contracts.platform import Observed, RouterState
from engine.contracts.promotion import TrainResult, TrainStatus
from engine.contracts.steps import describe_step
from engine.errors import InputError
from starters.common import DASHBOARD_URL, EXIT_BAD_INPUT, default_identity, fail, run

DEFAULT_PORT = urlsplit(DASHBOARD_URL).port or 8400
ANSWER_WITHIN = 10.0
"""Seconds to wait for a worker to answer a query or an update."""
REFRESH_SECONDS = 3
CONTROLS = ("pause", "abort", "approve", "resume")
BY_APPROVER = ("approve", "resume")
"""Controls that need an approver: offered in the browser only where approvals are by name."""
KINDS = {"DrFailover": "failover", "DrDrill": "drill"}
"""Workflow type -> kind of a row on the list page (anything else is a release)."""
TRAIN = "PromotionTrain"
"""The workflow type of a promotion train (workflows/train.py): its own list and page."""


# --------------------------------------------------------------------------- what is read


@dataclass
class Row:
    """One release, failover or drill on the list page."""

    kind: str
    workflow_id: str
    run_id: str
    started: datetime
    closed: datetime | None
    version: str
    strategy: str
    phase: str
    status: str

    @property
    def seconds(self) -> float | None:
        return None if self.closed is None else (self.closed - self.started).total_seconds()


async def recent_runs(client: Client, app: str, env: str, limit: int) -> list[Row]:
    """The environment's releases, failovers and drills (scheduled ones too), newest first."""
    ids = [
        temporal.release_workflow_id(app, env),
        *(temporal.dr_workflow_id(app, env, k) for k in KINDS.values()),
    ]
    query = " OR ".join(f'WorkflowId = "{i}"' for i in ids)
    query += f' OR TemporalScheduledById = "dr-drill-schedule-{app}-{env}"'
    rows = []
    async for ran in client.list_workflows(query, limit=limit):
        attrs = ran.typed_search_attributes
        rows.append(
            Row(
                kind=KINDS.get(ran.workflow_type, "release"),
                workflow_id=ran.id,
                run_id=ran.run_id,
                started=ran.start_time,
                closed=ran.close_time,
                version=attrs.get(temporal.VERSION) or "",
                strategy=attrs.get(temporal.STRATEGY) or "",
                phase=attrs.get(temporal.PHASE) or "",
                status=ran.status.name.lower() if ran.status else "?",
            )
        )
    return rows


async def recent_trains(client: Client, app: str, limit: int) -> list[Row]:
    """The app's promotion trains (one row each, its stages on its page), newest first."""
    rows = []
    async for ran in client.list_workflows(f'WorkflowType = "{TRAIN}"', limit=limit):
        if not ran.id.startswith(f"train-{app}-"):
            continue
        attrs = ran.typed_search_attributes
        rows.append(
            Row(
                kind="train " + ran.id.removeprefix(f"train-{app}-").replace("-", " -> "),
                workflow_id=ran.id,
                run_id=ran.run_id,
                started=ran.start_time,
                closed=ran.close_time,
                version=attrs.get(temporal.VERSION) or "",
                strategy=attrs.get(temporal.STRATEGY) or "",
                phase="",
                status=ran.status.name.lower() if ran.status else "?",
            )
        )
    return rows


@dataclass
class History:
    """What a run's event history holds beyond its status: input, result, children, and the
    results of the activities the dashboard charts, each with the time it was recorded."""

    workflow_type: str = ""
    input: list[Payload] = field(default_factory=list)
    result: list[Payload] | None = None
    children: list[tuple[str, str, str]] = field(default_factory=list)
    """(workflow type, workflow id, run id) of each child started."""
    weights: list[tuple[datetime, RouterState]] = field(default_factory=list)
    """The split read back from the router: when the release looked (observe) and after each change."""
    judged: list[tuple[datetime, JudgeResult]] = field(default_factory=list)
    measured: list[tuple[datetime, AnalysisResult]] = field(default_factory=list)


CHARTED: dict[str, type] = {OBSERVE.name: Observed, SET_TRAFFIC.name: RouterState, JUDGE.name: JudgeResult}
CHARTED[RUN_ANALYSIS.name] = AnalysisResult
"""Activities whose results the release page charts, and their result types."""


async def read_history(client: Client, workflow_id: str, run_id: str | None) -> History:
    handle = client.get_workflow_handle(workflow_id, run_id=run_id)
    found = History()
    scheduled: dict[int, str] = {}
    wanted: list[tuple[str, datetime, list[Payload]]] = []
    async for event in handle.fetch_history_events():
        kind = event.WhichOneof("attributes")
        if kind == "workflow_execution_started_event_attributes":
            a = event.workflow_execution_started_event_attributes
            found.workflow_type, found.input = a.workflow_type.name, list(a.input.payloads)
        elif kind == "workflow_execution_completed_event_attributes":
            found.result = list(event.workflow_execution_completed_event_attributes.result.payloads)
        elif kind == "child_workflow_execution_started_event_attributes":
            c = event.child_workflow_execution_started_event_attributes
            ran = c.workflow_execution
            found.children.append((c.workflow_type.name, ran.workflow_id, ran.run_id))
        elif kind == "activity_task_scheduled_event_attributes":
            scheduled[event.event_id] = event.activity_task_scheduled_event_attributes.activity_type.name
        elif kind == "activity_task_completed_event_attributes":
            done = event.activity_task_completed_event_attributes
            name = scheduled.get(done.scheduled_event_id, "")
            if name in CHARTED:
                wanted.append((name, event.event_time.ToDatetime(tzinfo=UTC), list(done.result.payloads)))
    decoded = await asyncio.gather(*(client.data_converter.decode(p, [CHARTED[n]]) for n, _, p in wanted))
    for (_, at, _), (value,) in zip(wanted, decoded, strict=True):
        if isinstance(value, Observed):
            found.weights.append((at, value.router))
        elif isinstance(value, RouterState):
            found.weights.append((at, value))
        elif isinstance(value, JudgeResult):
            found.judged.append((at, value))
        elif isinstance(value, AnalysisResult):
            found.measured.append((at, value))
    return found


@dataclass
class ReleaseView:
    """Everything the release page shows."""

    workflow_id: str
    run_id: str
    running: bool
    status: ReleaseStatus | None
    strategy_status: ReleaseStatus | None
    steps: list[str]
    history: History
    strategy_history: History
    approvals: str = "named"
    strategy_workflow_id: str = ""
    """The workflow whose strategy the page shows: the release's own, or a child of its pipeline."""
    outcome: str = ""
    note: str = ""


async def _query(client: Client, workflow_id: str, run_id: str | None) -> ReleaseStatus | None:
    try:
        handle = client.get_workflow_handle(workflow_id, run_id=run_id)
        status: ReleaseStatus = await asyncio.wait_for(
            handle.query("status", result_type=ReleaseStatus), timeout=ANSWER_WITHIN
        )
    except (RPCError, TimeoutError):
        return None
    return status


async def _ended(client: Client, history: History) -> ReleaseResult | None:
    if not history.result:
        return None
    (result,) = await client.data_converter.decode(history.result, [ReleaseResult])
    assert isinstance(result, ReleaseResult)
    return result


def _strategy_child(history: History, status: ReleaseStatus | None, main: str) -> tuple[str, str, str] | None:
    """The child (type, id, run id) the release page shows: the one running now, else ``main``,
    else the first strategy workflow the pipeline started."""
    now = status.child_workflow_id if status else None
    strategies = set(STRATEGY_WORKFLOWS.values())
    for wanted in (lambda c: c[1] == now, lambda c: c[1] == main, lambda c: c[0] in strategies):
        found = [c for c in history.children if wanted(c)]
        if found:
            return found[-1]
    return None


async def release_view(client: Client, config: DeployConfig, workflow_id: str, run_id: str) -> ReleaseView:
    desc = await client.get_workflow_handle(workflow_id, run_id=run_id).describe()
    running = desc.status == WorkflowExecutionStatus.RUNNING
    history = await read_history(client, workflow_id, run_id)
    (spec,) = await client.data_converter.decode(
        history.input, [PipelineSpec if history.workflow_type == "Release" else ReleaseSpec]
    )
    release: ReleaseSpec = spec.release if isinstance(spec, PipelineSpec) else spec
    ended = await _ended(client, history)
    status = (await _query(client, workflow_id, run_id)) if running or ended is None else ended.status
    # The strategy: the workflow itself, or a child of the pipeline: the one running now (a whole-app
    # release runs one per component and region), else the chosen strategy's (the api where users are).
    strategy_history, strategy_status, strategy_id = history, None, workflow_id
    if isinstance(spec, PipelineSpec):
        child = _strategy_child(history, status if running else None, f"{workflow_id}-{release.strategy}")
        if child is not None:
            strategy_id = child[1]
            strategy_history = await read_history(client, child[1], child[2])
            (release,) = await client.data_converter.decode(strategy_history.input, [ReleaseSpec])
            child_ended = await _ended(client, strategy_history)
            strategy_status = child_ended.status if child_ended else await _query(client, child[1], child[2])
    else:
        strategy_status = status
    steps = [describe_step(s.step) for s in release.canary.steps] if release.canary else []
    env = config.environments.get(release.environment.name)
    view = ReleaseView(
        workflow_id=workflow_id,
        run_id=run_id,
        running=running,
        status=status,
        strategy_status=strategy_status,
        steps=steps,
        history=history,
        strategy_history=strategy_history,
        approvals=env.approvals if env else "signed",
        strategy_workflow_id=strategy_id,
    )
    if ended is not None:
        view.outcome = f"{ended.outcome}: {ended.reason} (live: {ended.live_version or '-'})"
    elif not running:
        view.outcome = f"{desc.status.name.lower() if desc.status else 'ended'} (no result)"
    if status is None:
        view.note = "no worker answered the status query; showing what the history holds"
    return view


# --------------------------------------------------------------------------- SVG charts

PALETTE = ("#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#8c564b")
Series = dict[str, list[tuple[datetime, float]]]


def _fmt(v: float) -> str:
    if v == math.inf:
        return "inf"
    if v and (abs(v) >= 1e4 or abs(v) < 1e-2):
        return f"{v:.2g}"
    return f"{v:.3g}"


def svg_chart(
    testid: str,
    series: Series,
    *,
    title: str,
    y_range: tuple[float, float] | None = None,
    log: bool = False,
    bound: float | None = None,
    steps: bool = False,
    until: datetime | None = None,
    width: int = 640,
    height: int = 220,
) -> str:
    """A line chart of ``series`` over time, drawn here as SVG. ``steps``: a value holds until the
    next (traffic weights); ``log``: a log10 y axis (e-values); ``bound``: a dashed line (where the
    statistic decides); ``until``: extend the last value of a step chart to then (now)."""
    points = [(t, v) for s in series.values() for t, v in s if v is not None and math.isfinite(v)]
    n = sum(len(s) for s in series.values())
    head = (
        f'<figure class="chart"><figcaption>{html.escape(title)}</figcaption>'
        f'<svg data-testid="{html.escape(testid)}" data-points="{n}" data-series="{len(series)}" '
        f'width="{width}" height="{height}" viewBox="0 0 {width} {height}" role="img" '
        f'aria-label="{html.escape(title)}" xmlns="http://www.w3.org/2000/svg">'
    )
    if not points:
        return head + '<text x="20" y="40">no data yet</text></svg></figure>'
    left, right, top, bottom = 56, 130, 10, 28
    t0 = min(t for t, _ in points)
    t1 = max([t for t, _ in points] + ([until] if until else []))
    span = max((t1 - t0).total_seconds(), 1.0)

    def tf(v: float) -> float:
        return math.log10(max(v, 1e-6)) if log else v

    values = [tf(v) for _, v in points] + ([tf(bound)] if bound is not None and math.isfinite(bound) else [])
    lo, hi = (tf(y_range[0]), tf(y_range[1])) if y_range else (min(values), max(values))
    if hi - lo < 1e-9:  # a flat line: give it room, below only when values can go there
        lo, hi = (lo - 1 if lo < 0 or log else 0.0), hi + 1

    def x(t: datetime) -> float:
        return left + (width - left - right) * (t - t0).total_seconds() / span

    def y(v: float) -> float:
        return top + (height - top - bottom) * (1 - (tf(v) - lo) / (hi - lo))

    inner_w, inner_h = width - left - right, height - top - bottom
    parts = [
        head,
        f'<rect x="{left}" y="{top}" width="{inner_w}" height="{inner_h}" fill="#fafafa" stroke="#ccc"/>',
    ]
    for frac in (0.0, 0.5, 1.0):
        raw = lo + (hi - lo) * frac
        label = _fmt(10**raw if log else raw)
        yy = top + (height - top - bottom) * (1 - frac)
        parts.append(f'<text x="{left - 4}" y="{yy + 4:.1f}" text-anchor="end" font-size="11">{label}</text>')
    parts.append(f'<text x="{left}" y="{height - 8}" font-size="11">{t0:%H:%M:%S}</text>')
    parts.append(
        f'<text x="{width - right}" y="{height - 8}" text-anchor="end" font-size="11">{t1:%H:%M:%S}</text>'
    )
    if bound is not None and math.isfinite(bound):
        yb = y(bound)
        parts.append(
            f'<line data-testid="{html.escape(testid)}-bound" x1="{left}" x2="{width - right}" y1="{yb:.1f}" '
            f'y2="{yb:.1f}" stroke="#d62728" stroke-dasharray="5,4"/>'
            f'<text x="{width - right + 4}" y="{yb + 4:.1f}" font-size="11" fill="#d62728">'
            f"bound {_fmt(bound)}</text>"
        )
    for i, (name, raw_points) in enumerate(series.items()):
        color = PALETTE[i % len(PALETTE)]
        pts = [(t, v) for t, v in raw_points if v is not None and math.isfinite(v)]
        if not pts:
            continue
        coords: list[tuple[float, float]] = []
        for j, (t, v) in enumerate(pts):
            if steps and j:
                coords.append((x(t), y(pts[j - 1][1])))
            coords.append((x(t), y(v)))
        if steps and until is not None:
            coords.append((x(until), y(pts[-1][1])))
        line = " ".join(f"{a:.1f},{b:.1f}" for a, b in coords)
        parts.append(
            f'<polyline data-series="{html.escape(name)}" points="{line}" fill="none" '
            f'stroke="{color}" stroke-width="{max(1.5, 5 - 1.5 * i):g}"/>'
        )
        for t, v in pts:
            parts.append(
                f'<circle cx="{x(t):.1f}" cy="{y(v):.1f}" r="2.5" fill="{color}" '
                f'data-t="{t.isoformat()}" data-v="{_fmt(v)}">'
                f"<title>{html.escape(name)} {t:%H:%M:%S} {_fmt(v)}</title></circle>"
            )
        ly = top + 14 + 16 * i
        parts.append(
            f'<rect x="{width - right + 8}" y="{ly - 9}" width="10" height="10" fill="{color}"/>'
            f'<text x="{width - right + 22}" y="{ly}" font-size="11">{html.escape(name)}</text>'
        )
    parts.append("</svg></figure>")
    return "".join(parts)


# --------------------------------------------------------------------------- HTML

STYLE = """
body{font-family:system-ui,sans-serif;margin:1.5em;color:#222;max-width:1350px}
table{border-collapse:collapse;margin:.5em 0 1em}
td,th{border-bottom:1px solid #ddd;padding:3px 8px;text-align:left;font-size:14px;vertical-align:top}
th{background:#f3f3f3}.ok{color:#2a7d2a}.bad{color:#c62828}.run{color:#1565c0}
ol.steps li.current{font-weight:bold;background:#fff3c4}.charts{display:flex;flex-wrap:wrap;gap:1em}
figure.chart{margin:0}figcaption{font-size:13px;color:#555}form.inline{display:inline-block;margin-right:1em}
.msg{padding:.5em;background:#eef;border:1px solid #99c}code{background:#f3f3f3;padding:1px 4px}
.big{font-size:20px;font-weight:bold}
"""

RELOAD = (
    "<script>setTimeout(function r(){var a=document.activeElement;"
    "if(a&&a.tagName==='INPUT'){setTimeout(r,%d)}else{location.reload()}},%d)</script>"
)
"""Reload a live page every few seconds, unless someone is typing in it."""

COPY_INPUTS = (
    "<script>document.querySelectorAll('[data-testid=controls] form').forEach(function(f){"
    "f.addEventListener('submit',function(){['identity','reason'].forEach(function(n){"
    "var i=document.createElement('input');i.type='hidden';i.name=n;"
    "i.value=document.getElementById('control-'+n).value;f.appendChild(i)})})})</script>"
)
"""Each control's form carries the identity and reason typed once above the buttons."""


def e(value: object) -> str:
    return html.escape(str(value))


def page(title: str, body: str, *, live: bool = False) -> str:
    reload = RELOAD % (REFRESH_SECONDS * 1000, REFRESH_SECONDS * 1000) if live else ""
    return (
        f'<!doctype html><html><head><meta charset="utf-8"><title>{e(title)}</title>'
        f"<style>{STYLE}</style></head><body>"
        f'<p><a href="/">all releases</a></p>{body}{reload}</body></html>'
    )


def table(testid: str, headers: Sequence[str], rows: Sequence[str]) -> str:
    """A table of already rendered ``<tr>`` rows under a header row."""
    th = "".join(f"<th>{e(h)}</th>" for h in headers)
    return f'<table data-testid="{e(testid)}"><tr>{th}</tr>{"".join(rows)}</table>'


def tr(cells: Sequence[object], raw: str = "", **data: object) -> str:
    """A row of escaped cells, then ``raw`` HTML cells; ``data`` become attributes (``testid`` ->
    ``data-testid``)."""
    attrs = "".join(f' data-{k.replace("_", "-")}="{e(v)}"' for k, v in data.items())
    return f"<tr{attrs}>" + "".join(f"<td>{e(c)}</td>" for c in cells) + raw + "</tr>"


def _took(seconds: float | None) -> str:
    if seconds is None:
        return "running"
    return f"{seconds:.0f}s" if seconds < 600 else f"{seconds / 60:.1f}m"


def _outcome_class(text: str) -> str:
    low = text.lower()
    if "succeeded" in low or low in ("completed", "passed", "released"):
        return "ok"
    if any(w in low for w in ("rolled", "fail", "terminated", "timed", "canceled", "restored")):
        return "bad"
    return "run"


def _num(v: float | None) -> str:
    return "-" if v is None else _fmt(v)


def list_page(envs: dict[str, list[Row]], app: str, trains: list[Row] | None = None) -> str:
    body = [f"<h1>Releases of {e(app)}</h1>"]
    sections = [
        (env, rows, f'<small><a href="/env/{quote(env)}">latest release</a></small>')
        for env, rows in envs.items()
    ]
    if trains:
        sections.append(("trains", trains, "<small>promotion through environments</small>"))
    for env, rows, note in sections:
        body.append(f"<h2>{e(env)} {note}</h2>")
        if not rows:
            body.append(f'<p data-testid="runs-{e(env)}">nothing has run in {e(env)} yet</p>')
            continue
        out = []
        for r in rows:
            outcome = r.phase if r.status in ("completed", "running") else f"{r.phase} ({r.status})"
            outcome = outcome.strip() or r.status
            link = f"/run/{quote(r.workflow_id)}/{quote(r.run_id)}"
            ui = temporal.ui_link(r.workflow_id, r.run_id)
            out.append(
                f'<tr data-testid="run" data-kind="{e(r.kind)}" data-version="{e(r.version)}" '
                f'data-workflow-id="{e(r.workflow_id)}" data-run-id="{e(r.run_id)}">'
                f"<td>{r.started:%Y-%m-%d %H:%M:%S}</td><td>{e(r.kind)}</td><td>{e(r.version or '-')}</td>"
                f'<td>{e(r.strategy or "-")}</td><td class="{_outcome_class(outcome)}" data-testid="outcome">'
                f"{e(outcome)}</td><td>{_took(r.seconds)}</td>"
                f'<td><a href="{link}">open</a> · <a href="{e(ui)}">Temporal</a></td></tr>'
            )
        headers = ("started (UTC)", "kind", "version", "strategy", "outcome", "took", "links")
        body.append(table(f"runs-{env}", headers, out))
    return page(f"releases of {app}", "".join(body), live=True)


def _pool_names(s: ReleaseStatus | None) -> dict[str, str]:
    if s is None:
        return {}
    names = {s.canary_pool: "canary", s.stable_pool: "stable", s.baseline_pool: "baseline"}
    return {pool: f"{role} ({pool})" for pool, role in names.items() if pool}


def weight_chart(view: ReleaseView) -> str:
    names = _pool_names(view.strategy_status)
    series: Series = {}
    for at, state in view.strategy_history.weights:
        for pool, w in state.weights.items():
            series.setdefault(names.get(pool, pool), []).append((at, w))
    return svg_chart(
        "chart-weight",
        series,
        title="traffic weight per pool, % (read back from the router after each change)",
        y_range=(0, 100),
        steps=True,
        until=datetime.now(UTC) if view.running else None,
    )


def evidence_section(view: ReleaseView) -> str:
    """Each judge's tests over time: canary against baseline (or SLO), the statistic against its bound."""
    tests: dict[tuple[str, str], list[tuple[datetime, Evidence]]] = {}
    for at, result in view.strategy_history.judged:
        for ev in result.evidence:
            tests.setdefault((ev.template or result.name, ev.metric), []).append((at, ev))
    latest = view.strategy_status.evidence if view.strategy_status else []
    if not tests and not latest:
        return ""
    rows = []
    for ev in latest:
        name = f"{ev.template}/{ev.metric}" if ev.template else ev.metric
        cells = [
            name,
            ev.verdict,
            _num(ev.canary),
            _num(ev.baseline),
            f"{ev.canary_requests}/{ev.baseline_requests}",
        ]
        cells += [f"{ev.statistic} {_num(ev.value)}", _num(ev.bound), ev.rule]
        rows.append(tr(cells, testid="evidence-row", test=name, verdict=ev.verdict))
    headers = ("test", "verdict", "canary", "baseline / SLO", "requests", "statistic", "bound", "rule")
    out = [
        "<h2>Analysis: the judges' evidence</h2>",
        table("evidence", headers, rows),
        '<div class="charts">',
    ]
    for (template, metric), points in tests.items():
        last, slug = points[-1][1], f"{template}-{metric}"
        other = "SLO" if "SLO" in last.unit else "baseline"
        sides: Series = {
            "canary": [(t, ev.canary) for t, ev in points if ev.canary is not None],
            other: [(t, ev.baseline) for t, ev in points if ev.baseline is not None],
        }
        title = f"{template}/{metric}: {last.unit or 'value'}, canary against {other} (now {last.verdict})"
        out.append(svg_chart(f"chart-evidence-{slug}", sides, title=title, width=560))
        statistic: Series = {last.statistic: [(t, ev.value) for t, ev in points if ev.value is not None]}
        title = f"{template}/{metric}: {last.statistic} against its bound"
        log = last.statistic == "e-value"
        out.append(
            svg_chart(f"chart-statistic-{slug}", statistic, title=title, log=log, bound=last.bound, width=560)
        )
    out.append("</div>")
    return "".join(out)


def controls_section(view: ReleaseView, token: str, env: str) -> str:
    """Pause and Abort; Approve (or Resume) where approvals are by name, else the command to sign."""
    s = view.strategy_status or view.status
    if not view.running or s is None:
        return ""
    action = f"/run/{quote(view.workflow_id)}/{quote(view.run_id)}/control"
    waiting = bool(view.status and view.status.awaiting_approval) or s.awaiting_approval
    wanted = ["approve"] if waiting else ["resume"] if s.paused else []
    signed = view.approvals != "named"
    forms = [
        f'<form class="inline" method="post" action="{action}" data-testid="form-{what}">'
        f'<input type="hidden" name="csrf" value="{token}">'
        f'<input type="hidden" name="action" value="{what}">'
        f'<button type="submit" data-testid="button-{what}">{what.capitalize()}</button></form>'
        for what in ["pause", "abort", *([] if signed else wanted)]
    ]
    out = [
        '<h2>Controls</h2><div data-testid="controls">',
        f'<p>as <input id="control-identity" value="{e(default_identity())}" size="12"> '
        'reason <input id="control-reason" size="40"></p>',
        *forms,
    ]
    if signed and wanted:
        out.append(
            f'<p data-testid="signed-approval">Approvals in {e(env)} are signed: run '
            f"<code>python starters/control.py {wanted[0]} --env {e(env)} --key ~/.ssh/id_ed25519 "
            "--reason '...'</code></p>"
        )
    out.append("</div>" + COPY_INPUTS)
    return "".join(out)


def _header(view: ReleaseView, title: str, message: str) -> str:
    out = [f'<h1 data-testid="release">{e(title)}</h1>']
    if message:
        out.append(f'<p class="msg" data-testid="message">{e(message)}</p>')
    ui = temporal.ui_link(view.workflow_id, view.run_id)
    out.append(
        f"<p>workflow <code>{e(view.workflow_id)}</code> run <code>{e(view.run_id)}</code> · "
        f'<a href="{e(ui)}">Temporal UI</a></p>'
    )
    if view.outcome:
        out.append(
            f'<p class="big {_outcome_class(view.outcome)}" data-testid="outcome">{e(view.outcome)}</p>'
        )
    if view.note:
        out.append(f'<p class="msg">{e(view.note)}</p>')
    s = view.status
    if s is not None:
        state = " ".join(
            [
                s.phase.value,
                f"PAUSED: {s.pause_reason}" if s.paused else "",
                "AWAITING APPROVAL" * s.awaiting_approval,
            ]
        )
        stable = f" · stable {e(s.stable_version)} ({e(s.stable_pool)})" if s.stable_version else ""
        out.append(
            f'<p>phase <span data-testid="phase" class="{_outcome_class(s.phase.value)}">{e(state)}</span>'
            f"{stable}</p>"
        )
    return "".join(out)


def _stages(s: ReleaseStatus) -> str:
    rows = [
        tr(
            [
                st.name,
                st.verdict,
                "-" if st.duration_s is None else f"{st.duration_s:.1f}s",
                st.approver or "",
                st.detail,
            ],
            testid="stage",
            stage=st.name,
            verdict=st.verdict,
        )
        for st in s.stages
    ]
    return "<h2>Pipeline</h2>" + table("stages", ("stage", "verdict", "took", "approver", "detail"), rows)


def _strategy(view: ReleaseView, child: ReleaseStatus) -> str:
    weight = round(child.canary_weight, 1)
    out = [
        f"<h2>Strategy: {e(child.strategy)} <small>{e(child.release)} (workflow "
        f'<code data-testid="strategy-workflow">{e(view.strategy_workflow_id)}</code>)</small></h2>'
        f'<p>weight to the new version: <span class="big" data-testid="weight" data-value="{weight:g}">'
        f'{weight:g}%</span> · step <span data-testid="step-index">{child.step_index}</span>'
        f"/{child.step_count}: "
        f'<span data-testid="step">{e(child.step)}</span> · phase '
        f'<span data-testid="strategy-phase">{e(child.phase.value)}</span>'
        + (f" · PAUSED: {e(child.pause_reason)}" if child.paused else "")
        + (" · AWAITING APPROVAL" if child.awaiting_approval else "")
        + "</p>"
    ]
    if view.steps:
        out.append('<ol class="steps" data-testid="steps">')
        for i, text in enumerate(view.steps, start=1):
            now = i == child.step_index and view.running
            mark = ' class="current" data-testid="current-step"' if now else ' data-testid="step-item"'
            out.append(f'<li{mark} data-index="{i}">{e(text)}{" ◀ now" if now else ""}</li>')
        out.append("</ol>")
    return "".join(out)


def measurement_section(view: ReleaseView) -> str:
    """Threshold analyses (Argo's metrics): each metric's measurements over time, and the latest."""
    series: dict[str, list[tuple[datetime, float]]] = {}
    for _, result in view.strategy_history.measured:
        for m in result.measurements:
            if m.value is not None:
                series.setdefault(f"{result.name}/{m.metric}", []).append((m.at, m.value))
    latest = view.strategy_status.last_analysis if view.strategy_status else []
    if not series and not latest:
        return ""
    out = ["<h2>Threshold analyses</h2>"]
    if latest:
        rows = [tr([m.metric, _num(m.value), m.phase, m.message], testid="measurement") for m in latest]
        out.append(table("measurements", ("metric", "latest value", "phase", "message"), rows))
    out.append('<div class="charts">')
    for name, pts in series.items():
        slug = name.replace("/", "-")
        out.append(
            svg_chart(
                f"chart-analysis-{slug}", {name: sorted(pts)}, title=f"{name} per measurement", width=560
            )
        )
    out.append("</div>")
    return "".join(out)


def _targets(view: ReleaseView, s: ReleaseStatus) -> str:
    """Each component in each region, linked to the page of the child workflow that released it."""
    runs = {child_id: run_id for _, child_id, run_id in view.history.children}
    main = f"{view.workflow_id}-{s.strategy}"
    rows = []
    for index, t in enumerate(s.targets):
        # The first target is the chosen strategy's own child (release-APP-ENV-STRATEGY).
        child = t.workflow_id or (main if index == 0 else "")
        run = runs.get(child)
        link = f'<a href="/run/{quote(child)}/{quote(run)}">open</a>' if child and run else ""
        rows.append(
            tr(
                [t.component, t.region, t.role, t.previous or "-", t.verdict, t.detail],
                f"<td>{link}</td>",
                testid="target",
                component=t.component,
                region=t.region,
                verdict=t.verdict,
            )
        )
    headers = ("component", "region", "role", "before", "verdict", "detail", "workflow")
    return "<h2>Components and regions</h2>" + table("targets", headers, rows)


def _approvals(approvals: Sequence[Approval]) -> str:
    rows = [
        tr(
            [f"{a.at:%Y-%m-%d %H:%M:%S}", a.action, a.by, a.fingerprint or "(by name)", a.reason],
            testid="approval",
        )
        for a in approvals
    ]
    return "<h2>Approvals</h2>" + table("approvals", ("when (UTC)", "action", "by", "key", "reason"), rows)


def _decisions(title: str, testid: str, decisions: Sequence[Decision], refused: Sequence[Decision]) -> str:
    rows = [tr([f"{d.at:%H:%M:%S}", d.what, d.by, d.reason], testid="decision") for d in decisions]
    rows += [tr([f"{d.at:%H:%M:%S}", f"REFUSED {d.what}", d.by, d.reason], testid="refused") for d in refused]
    return f"<h2>{e(title)}</h2>" + table(testid, ("at (UTC)", "what", "by", "reason"), rows)


def release_page(view: ReleaseView, token: str, message: str = "") -> str:
    s, child = view.status, view.strategy_status
    head = s or child
    title = f"{head.release} ({head.strategy})" if head else view.workflow_id
    body = [_header(view, title, message), controls_section(view, token, head.environment if head else "")]
    if s is not None and s.stages:
        body.append(_stages(s))
    if child is not None:
        body.append(_strategy(view, child))
    body.append(weight_chart(view))
    if s is not None and s.targets:
        body.append(_targets(view, s))
    body.append(evidence_section(view))
    body.append(measurement_section(view))
    approvals = [a for st in {id(x): x for x in (s, child) if x is not None}.values() for a in st.approvals]
    if approvals:
        body.append(_approvals(approvals))
    if s is not None:
        body.append(_decisions("Decisions", "decisions", s.decisions, s.refused))
    if child is not None and child is not s:
        body.append(
            _decisions("Decisions of the strategy", "strategy-decisions", child.decisions, child.refused)
        )
    return page(title, "".join(body), live=view.running)


def _run_header(title: str, workflow_id: str, run_id: str, outcome: str) -> str:
    """A failover's or a train's title, its run with a link to Temporal's UI, and how it ended."""
    ui = temporal.ui_link(workflow_id, run_id)
    head = (
        f'<h1 data-testid="release">{e(title)}</h1><p>workflow <code>{e(workflow_id)}</code> run '
        f'<code>{e(run_id)}</code> · <a href="{e(ui)}">Temporal UI</a></p>'
    )
    if outcome:
        head += f'<p class="big {_outcome_class(outcome)}" data-testid="outcome">{e(outcome)}</p>'
    return head


def train_page(workflow_id: str, run_id: str, status: TrainStatus | None, outcome: str, running: bool) -> str:
    """A promotion train: its stages in order (each a link to that environment's release page), the
    one running now, the digest every stage releases, soak time, and the train's decisions."""
    title = f"train {status.train} of {status.version} ({status.strategy})" if status else workflow_id
    body = [_run_header(title, workflow_id, run_id, outcome)]
    if status is None:
        return page(workflow_id, "".join(body), live=running)
    body.append(
        f'<p>phase <span data-testid="train-phase">{e(status.phase)}</span> · digest '
        f'<code data-testid="digest">{e(status.digest or "not promoted yet")}</code>'
        + (f" · soak left {status.soak_remaining_s:.0f}s" if status.soak_remaining_s is not None else "")
        + "</p>"
    )
    if running:
        envs = ",".join(st.environment for st in status.stages)
        body.append(
            '<p data-testid="train-abort">abort the train (the stage being released rolls back): '
            f"<code>python starters/control.py abort --train {e(envs)} --reason ...</code></p>"
        )
    rows = []
    for i, st in enumerate(status.stages):
        now = " ◀ now" if running and status.current == i else ""
        link = (
            f'<a href="/run/{quote(st.workflow_id)}/{quote(st.run_id)}">{e(st.workflow_id)}</a>'
            if st.run_id
            else e(st.workflow_id)
        )
        soak = f"{st.soaked_s:.0f}s of {st.soak}" if st.soaked_s is not None else str(st.soak)
        cells = [f"{st.environment}{now}", st.verdict, soak, st.digest or "-", st.detail]
        rows.append(
            tr(
                cells,
                raw=f"<td>{link}</td>",
                testid="train-stage",
                environment=st.environment,
                verdict=st.verdict,
            )
        )
    headers = ("environment", "verdict", "soak", "digest", "detail", "release")
    body.append("<h2>Stages</h2>" + table("train-stages", headers, rows))
    body.append(_decisions("Decisions", "decisions", status.decisions, []))
    return page(workflow_id, "".join(body), live=running)


def dr_page(workflow_id: str, run_id: str, status: DrStatus | None, outcome: str, running: bool) -> str:
    body = [_run_header(status.operation if status else workflow_id, workflow_id, run_id, outcome)]
    if status is not None:
        body.append(f"<p>phase {e(status.phase.value)} · step {e(status.step)}</p>")
        if status.approvals:
            body.append(_approvals(status.approvals))
        body.append(_decisions("Decisions", "decisions", status.decisions, status.refused))
        if status.report is not None:  # what it measured (RTO, RPO, regions, versions), field by field
            fields = status.report.model_dump(mode="json", exclude_none=True)
            rows = [
                tr([k, v], testid="report-field", field=k) for k, v in fields.items() if v not in ([], {}, "")
            ]
            body.append("<h2>Report</h2>" + table("report", ("measure", "value"), rows))
    return page(workflow_id, "".join(body), live=running)


# --------------------------------------------------------------------------- the server


@dataclass
class Dashboard:
    client: Client
    config: DeployConfig
    envs: list[str]
    limit: int = 100
    token: str = field(default_factory=lambda: secrets.token_urlsafe(24))
    """Carried by every form and checked on POST: another site's page cannot press the buttons."""

    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_get("/", self.index)
        app.router.add_get("/env/{env}", self.latest)
        app.router.add_get("/run/{workflow_id}/{run_id}", self.run_page)
        app.router.add_post("/run/{workflow_id}/{run_id}/control", self.control)
        app.router.add_get("/healthz", self.healthz)
        return app

    async def healthz(self, _: web.Request) -> web.Response:
        return web.Response(text="ok")

    async def index(self, request: web.Request) -> web.Response:
        limit = int(request.query.get("limit", self.limit))
        app = self.config.app.name
        found, trains = await asyncio.gather(
            asyncio.gather(*(recent_runs(self.client, app, n, limit) for n in self.envs)),
            recent_trains(self.client, app, limit),
        )
        return _html(list_page(dict(zip(self.envs, found, strict=True)), app, trains))

    async def latest(self, request: web.Request) -> web.Response:
        env = request.match_info["env"]
        workflow_id = temporal.release_workflow_id(self.config.app.name, env)
        async for ran in self.client.list_workflows(f'WorkflowId = "{workflow_id}"', limit=1):
            raise web.HTTPFound(f"/run/{quote(ran.id)}/{quote(ran.run_id)}")
        raise web.HTTPNotFound(text=f"no release has run in {env} yet")

    async def run_page(self, request: web.Request) -> web.Response:
        workflow_id, run_id = request.match_info["workflow_id"], request.match_info["run_id"]
        try:
            desc = await self.client.get_workflow_handle(workflow_id, run_id=run_id).describe()
        except RPCError as exc:
            raise web.HTTPNotFound(text=f"{workflow_id} {run_id}: {exc.message}") from None
        message = request.query.get("msg", "")
        if desc.workflow_type in KINDS:
            return await self._dr_page(workflow_id, run_id, desc.status == WorkflowExecutionStatus.RUNNING)
        if desc.workflow_type == TRAIN:
            return await self._train_page(workflow_id, run_id, desc.status == WorkflowExecutionStatus.RUNNING)
        view = await release_view(self.client, self.config, workflow_id, run_id)
        return _html(release_page(view, self.token, message))

    async def _train_page(self, workflow_id: str, run_id: str, running: bool) -> web.Response:
        history = await read_history(self.client, workflow_id, run_id)
        status: TrainStatus | None = None
        outcome = ""
        if history.result:
            (result,) = await self.client.data_converter.decode(history.result, [TrainResult])
            status, outcome = result.status, f"{result.outcome}: {result.reason}"
        else:
            handle = self.client.get_workflow_handle(workflow_id, run_id=run_id)
            try:
                status = await asyncio.wait_for(
                    handle.query("status", result_type=TrainStatus), ANSWER_WITHIN
                )
            except (RPCError, TimeoutError):
                outcome = "no worker answered the status query"
        return _html(train_page(workflow_id, run_id, status, outcome, running))

    async def _dr_page(self, workflow_id: str, run_id: str, running: bool) -> web.Response:
        history = await read_history(self.client, workflow_id, run_id)
        status, outcome = None, ""
        if history.result:
            (result,) = await self.client.data_converter.decode(history.result, [DrResult])
            status, outcome = result.status, f"{result.outcome}: {result.reason}"
        else:
            handle = self.client.get_workflow_handle(workflow_id, run_id=run_id)
            try:
                status = await asyncio.wait_for(handle.query("status", result_type=DrStatus), ANSWER_WITHIN)
            except (RPCError, TimeoutError):
                outcome = "no worker answered the status query"
        return _html(dr_page(workflow_id, run_id, status, outcome, running))

    async def control(self, request: web.Request) -> web.Response:
        """Pause, abort (anyone), approve and resume (named approvals only) the release's run."""
        workflow_id, run_id = request.match_info["workflow_id"], request.match_info["run_id"]
        form = await request.post()
        if not secrets.compare_digest(str(form.get("csrf", "")), self.token):
            raise web.HTTPForbidden(text="stale or foreign form: reload the page")
        action = str(form.get("action", ""))
        back = f"/run/{quote(workflow_id)}/{quote(run_id)}"
        answer = await self._send(
            workflow_id, run_id, action, str(form.get("identity", "")), str(form.get("reason", ""))
        )
        raise web.HTTPSeeOther(f"{back}?msg={quote(answer)}")

    async def _send(self, workflow_id: str, run_id: str, action: str, identity: str, reason: str) -> str:
        """What to tell the operator: the workflow's answer, or why nothing was sent."""
        try:
            return f"{action}: {await self._update(workflow_id, run_id, action, identity, reason)}"
        except NotSent as exc:
            return str(exc)
        except TimeoutError:
            return f"no worker answered within {ANSWER_WITHIN:g}s: is worker.py running on this task queue?"
        except WorkflowUpdateFailedError as exc:
            why = exc.cause.message if isinstance(exc.cause, FailureError) else str(exc.cause)
            return f"{action} refused: {why}"
        except (RPCError, ValueError) as exc:
            return f"{action} failed: {exc}"

    async def _update(self, workflow_id: str, run_id: str, action: str, identity: str, reason: str) -> str:
        """The update ``control.py`` sends, to where ``control.py`` sends it (``control_target``)."""
        if action not in CONTROLS:
            raise NotSent(f"unknown action {action!r}")
        handle = self.client.get_workflow_handle(workflow_id, run_id=run_id)
        if (await handle.describe()).status != WorkflowExecutionStatus.RUNNING:
            raise NotSent(f"{action} refused: this run has ended")
        status = await asyncio.wait_for(handle.query("status", result_type=ReleaseStatus), ANSWER_WITHIN)
        env = self.config.environments.get(status.environment)
        if action in BY_APPROVER and (env is None or env.approvals != "named"):
            raise NotSent(
                f"{action} refused here: approvals in {status.environment} are signed; run "
                f"python starters/control.py {action} --env {status.environment} --key ~/.ssh/id_ed25519"
            )
        control = Control(identity=identity or default_identity(), reason=reason, version=status.version)
        target = await asyncio.wait_for(control_target(handle), ANSWER_WITHIN)
        answer: str = await asyncio.wait_for(
            target.execute_update(action, control, result_type=str), ANSWER_WITHIN
        )
        return answer


class NotSent(Exception):
    """A control the dashboard did not send, and why."""


def _html(text: str) -> web.Response:
    return web.Response(text=text, content_type="text/html", headers={"Cache-Control": "no-store"})


def dashboard_url(port: int = DEFAULT_PORT, host: str = "localhost") -> str:
    return f"http://{host}:{port}"


async def serve(dashboard: Dashboard, bind: str, port: int) -> web.AppRunner:
    """Start serving (returns the runner: ``await runner.cleanup()`` stops it)."""
    runner = web.AppRunner(dashboard.app(), access_log=None)
    await runner.setup()
    await web.TCPSite(runner, bind, port).start()
    return runner


async def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--port", type=int, default=int(os.environ.get("DEPLOY_DASHBOARD_PORT", DEFAULT_PORT))
    )
    parser.add_argument(
        "--bind", default="127.0.0.1", help="address to listen on (default: this machine only)"
    )
    parser.add_argument("--env", action="append", default=None, help="environment(s) to list (default: all)")
    parser.add_argument("--config", default=None)
    parser.add_argument("--limit", type=int, default=100, help="runs listed per environment")
    args = parser.parse_args(argv)
    try:
        config = load_config(args.config)
        envs = args.env or list(config.environments)
        unknown = [n for n in envs if n not in config.environments]
        if unknown:
            raise InputError(f"unknown environment(s): {', '.join(unknown)}")
    except (InputError, ValueError) as exc:
        return fail(str(exc), EXIT_BAD_INPUT)
    client = await temporal.connect()
    runner = await serve(Dashboard(client, config, envs, limit=args.limit), args.bind, args.port)
    # An address to open, not to bind: the wildcard and loopback are both reached as localhost.
    host = "localhost" if args.bind in ("127.0.0.1", "0.0.0.0") else args.bind  # nosec B104
    print(f"dashboard: {dashboard_url(args.port, host)}", flush=True)
    try:
        await asyncio.Event().wait()
    finally:
        await runner.cleanup()
    return 0


if __name__ == "__main__":
    try:
        run(main())
    except KeyboardInterrupt:
        sys.exit(130)
