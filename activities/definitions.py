"""The Temporal activities: one capability each, any provider behind it.

Every activity is synchronous (the worker runs them in a thread pool), idempotent
(safe to run twice), heartbeats while it waits, and turns a provider's
:class:`~engine.errors.BadRequest` into a non-retryable error. Each is registered
under its declaration in :mod:`engine.contracts.activities`, through which workflows
call it; workflows never import a provider.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import structlog
from temporalio import activity
from temporalio.exceptions import ApplicationError, CancelledError

from activities import registry
from activities.common import heartbeat, implements
from engine.analysis import judge as judging
from engine.analysis import threshold
from engine.analysis.judge import BASELINE, CANARY
from engine.contracts import (
    AnalysisRequest,
    AnalysisResult,
    DrainRequest,
    EnvironmentRef,
    Instance,
    JudgeRequest,
    JudgeResult,
    JudgeState,
    Measurement,
    MetricTally,
    Observed,
    PoolRequest,
    PreviewCheck,
    PreviewRequest,
    QueryCheckRequest,
    RouterState,
    Side,
    SmokeRequest,
    SmokeResult,
    StopRequest,
    TrafficRequest,
    render_query,
)
from engine.contracts.activities import (
    CHECK_QUERIES,
    DRAIN,
    JUDGE,
    OBSERVE,
    PREVIEW_CHECK,
    RUN_ANALYSIS,
    SET_PREVIEW,
    SET_TRAFFIC,
    SMOKE_CHECK,
    START_POOL,
    STOP_POOL,
)
from engine.errors import BadRequest

log = structlog.get_logger()

VERIFY_WITHIN = 5.0
"""Seconds a new split may take to be in force (health checks of servers just enabled)."""
WEIGHT_TOLERANCE = 0.5
"""Percentage points a read-back split may differ from the one the router set."""
ROUNDING_WARNING = 1.0
"""Percentage points of rounding (integer weights) worth a warning in the log."""


@implements(OBSERVE)
def observe(req: EnvironmentRef) -> Observed:
    """What runs, and how the router splits traffic right now."""
    env = req.environment
    return Observed(instances=registry.platform(env).list_instances(), router=registry.router(env).read())


@implements(START_POOL)
def start_pool(req: PoolRequest) -> list[Instance]:
    """Make sure ``count`` healthy instances of the version run in the pool."""
    log.info("start_pool", pool=req.pool, version=req.version, count=req.count)
    return registry.platform(req.environment).start(
        version=req.version, pool=req.pool, count=req.count, progress=heartbeat
    )


@implements(STOP_POOL)
def stop_pool(req: StopRequest) -> None:
    log.info("stop_pool", pool=req.pool, slots=req.slots)
    if req.slots is None:
        registry.platform(req.environment).stop(pool=req.pool)
    else:
        registry.platform(req.environment).stop(pool=req.pool, slots=list(req.slots))


@implements(SET_TRAFFIC)
def set_traffic(req: TrafficRequest) -> RouterState:
    """Apply a traffic split, then read it back: accepted is not the same as in force.

    A server that just left maintenance serves only after its first health check,
    so the read-back is polled for up to ``VERIFY_WITHIN`` seconds before failing.
    """
    router = registry.router(req.environment)
    intended = router.set_traffic(
        weights=dict(req.weights), members={k: list(v) for k, v in req.members.items()}
    )
    rounding = {p: round(intended.get(p, 0.0) - asked, 2) for p, asked in req.weights.items()}
    if any(abs(r) > ROUNDING_WARNING for r in rounding.values()):
        log.warning("router rounds the split", asked=dict(req.weights), intended=intended)
    deadline = time.monotonic() + VERIFY_WITHIN
    while True:
        state = router.read()
        off = {
            pool: (want, state.weights.get(pool, 0.0))
            for pool, want in intended.items()
            if abs(state.weights.get(pool, 0.0) - want) > WEIGHT_TOLERANCE
        }
        if not off:
            log.info("traffic", weights=state.weights)
            return state.model_copy(update={"detail": {**state.detail, "rounding": rounding}})
        if time.monotonic() > deadline:
            detail = ", ".join(f"{p}: set {a:.1f}%, in force {got:.1f}%" for p, (a, got) in off.items())
            msg = f"router did not apply the split ({detail})"
            raise ApplicationError(msg, type="WeightNotVerified")
        activity.heartbeat("verifying split")
        time.sleep(0.05)


@implements(SET_PREVIEW)
def set_preview(req: PreviewRequest) -> list[str]:
    """Point the preview route at exactly ``members``, then read it back until it is so."""
    router = registry.preview_router(req.environment)
    router.set_preview(members=list(req.members))
    wanted = sorted(i.address for i in req.members)
    deadline = time.monotonic() + VERIFY_WITHIN
    while (serving := router.read_preview()) != wanted:
        if time.monotonic() > deadline:
            msg = f"the preview route serves {serving}, not {wanted}"
            raise ApplicationError(msg, type="PreviewNotVerified")
        activity.heartbeat("verifying preview")
        time.sleep(0.05)
    log.info("preview", serving=serving)
    return serving


@implements(DRAIN)
def drain(req: DrainRequest) -> dict[str, int]:
    """Send no new requests to ``instances``; wait until none has a request in flight.

    Returns what each still had in flight when drained. Fails (retryably) after the
    timeout: the instances stay drained, a retry waits again.
    """
    router = registry.drain_router(req.environment)
    deadline = time.monotonic() + req.timeout.total_seconds()
    first = in_flight = router.drain(instances=list(req.instances))
    while any(in_flight.values()):
        if time.monotonic() > deadline:
            msg = f"requests still in flight after {req.timeout}: {in_flight}"
            raise ApplicationError(msg, type="DrainTimeout")
        activity.heartbeat(f"draining: {in_flight}")
        time.sleep(0.05)
        in_flight = router.drain(instances=list(req.instances))
    log.info("drained", servers=sorted(first), in_flight_at_start=first)
    return first


@implements(PREVIEW_CHECK)
def preview_check(req: PreviewCheck) -> SmokeResult:
    """Requests through the preview route: each answered by the new version (and 2xx)."""
    url = registry.preview_router(req.environment).preview_url().rstrip("/") + req.path
    failures = registry.smoke(req.environment).check_route(
        url=url,
        requests=req.requests,
        version=req.version,
        duration=req.duration.total_seconds() if req.duration else 0.0,
        judge_codes=req.judge_codes,
    )
    return SmokeResult(ok=not failures, checked=req.requests, failures=failures[:20])


@implements(SMOKE_CHECK)
def smoke_check(req: SmokeRequest) -> SmokeResult:
    failures = registry.smoke(req.environment).check(instances=list(req.instances), path=req.path)
    return SmokeResult(ok=not failures, checked=len(req.instances), failures=failures)


@implements(RUN_ANALYSIS)
def run_analysis(req: AnalysisRequest) -> AnalysisResult:
    """Measure and judge; resumes from the last heartbeat after a retry."""
    resume = None
    details = activity.info().heartbeat_details
    if details:
        saved: dict[str, Any] = details[0]
        resume = (
            [Measurement.model_validate(m) for m in saved["measurements"]],
            {k: MetricTally.model_validate(v) for k, v in saved["tallies"].items()},
            float(saved["elapsed"]),
        )
        log.info("analysis resumed", name=req.name, measurements=len(resume[0]))

    def heartbeat(measurements: list[Measurement], tallies: dict[str, MetricTally], elapsed: float) -> None:
        activity.heartbeat(
            {
                "measurements": [m.model_dump(mode="json") for m in measurements],
                "tallies": {k: v.model_dump() for k, v in tallies.items()},
                "elapsed": elapsed,
            }
        )

    def sleep(seconds: float) -> None:
        if activity.is_cancelled():  # sync activities see cancellation through heartbeats
            raise CancelledError
        time.sleep(seconds)

    return threshold.run(
        req,
        registry.metrics(req.environment),
        clock=time.monotonic,
        sleep=sleep,
        heartbeat=heartbeat,
        resume=resume,
    )


READ_ERRORS_IN_A_ROW = 5
"""Readings that fail one after the other before a comparing judge calls its evidence inconclusive."""


@implements(JUDGE)
def judge(req: JudgeRequest) -> JudgeResult:
    """A comparing judge for ``chunk``: read every query per side each ``interval``, feed the tests,
    return at once on a verdict (failed; passed or inconclusive when the gate's window ends).
    Resumes from the last heartbeat after a retry (its state is the judge's memory)."""
    provider, spec = registry.metrics(req.environment), req.spec
    sides = {CANARY: req.canary} | ({BASELINE: req.baseline} if req.baseline else {})
    state, elapsed, failing = req.state, 0.0, 0
    details = activity.info().heartbeat_details
    if details:
        saved: dict[str, Any] = details[0]
        state, elapsed, failing = (
            JudgeState.model_validate(saved["state"]),
            float(saved["elapsed"]),
            saved["failing"],
        )
        log.info("judge resumed", name=req.name, intervals=state.intervals)
    started = time.monotonic() - elapsed
    counter_queries = {k: v for k, v in spec.queries().items() if k in ("requests", "errors", "latency")}
    problem = ""
    while True:
        now = datetime.now(UTC)
        try:
            readings = {
                side: {
                    name: provider.counters(
                        render_query(q, _side_args(req, s)), since=state.started_at or now
                    )
                    for name, q in counter_queries.items()
                }
                for side, s in sides.items()
            }
            compared = {
                side: {
                    m.name: provider.query(render_query(m.query, _side_args(req, s))) for m in spec.compare
                }
                for side, s in sides.items()
            }
        except BadRequest:
            raise
        except Exception as exc:
            failing, problem = failing + 1, f"{type(exc).__name__}: {str(exc)[:200]}"
            log.warning("judge reading failed", name=req.name, error=problem, in_a_row=failing)
        else:
            failing = 0
            state = judging.observe(state, spec, readings, compared, now)
        gate_ended = req.gate_since is not None and now >= req.gate_since + spec.window
        phase, message, evidence = judging.verdict(
            state, spec, baseline=req.baseline is not None, gate_ended=gate_ended
        )
        if failing >= READ_ERRORS_IN_A_ROW and phase != "failed":
            phase, message = (
                "inconclusive",
                f"the metrics source failed {failing} readings in a row: {problem}",
            )
        elapsed = time.monotonic() - started
        activity.heartbeat({"state": state.model_dump(mode="json"), "elapsed": elapsed, "failing": failing})
        if phase != "running" or elapsed + spec.interval.total_seconds() > req.chunk.total_seconds():
            return JudgeResult(name=req.name, phase=phase, message=message, evidence=evidence, state=state)
        _sleep(spec.interval.total_seconds())


def _side_args(req: JudgeRequest, side: Side) -> dict[str, str]:
    return {**req.args, "pool": side.pool, "version": side.version}


def _sleep(seconds: float) -> None:
    """Sleep in short slices, heartbeating, so a cancelled judge stops within half a second."""
    deadline = time.monotonic() + seconds
    while (left := deadline - time.monotonic()) > 0:
        if activity.is_cancelled():  # sync activities see cancellation through heartbeats
            raise CancelledError
        time.sleep(min(left, 0.5))


@implements(CHECK_QUERIES)
def check_queries(req: QueryCheckRequest) -> int:
    """Ask the metrics provider to parse every query; BadRequest names the first that does not.

    Returns how many queries were checked (0 when the provider cannot check syntax).
    """
    metrics = registry.metrics(req.environment)
    check_syntax = getattr(metrics, "check_syntax", None)
    if check_syntax is None:
        return 0
    checked = 0
    args = {**req.args, "pool": "pool", "version": "version"}  # syntax only: any side's labels
    for ref in req.analyses:
        queries = ref.judge.queries().items() if ref.judge else [(m.name, m.query) for m in ref.metrics]
        for name, query in queries:
            error = check_syntax(render_query(query, args))
            if error is not None:
                msg = f"analysis template {ref.name!r}, metric {name!r}: the query does not parse: {error}"
                raise BadRequest(msg)
            checked += 1
    return checked


ALL: list[Callable[..., object]] = [
    observe,
    start_pool,
    stop_pool,
    set_traffic,
    set_preview,
    drain,
    smoke_check,
    preview_check,
    run_analysis,
    judge,
    check_queries,
]
