"""Start a release, or attach to it if it already runs.

    python starters/deploy.py VERSION STRATEGY [--env local] [--wait] [--dry-run] [--first-weight N]
    python starters/deploy.py VERSION STRATEGY --through staging:30m,production [--wait] [--dry-run]

VERSION ``latest`` is the newest version tag of the environment's CI image repository
(semantic-version order; its digest is what the release promotes and records).

One release runs per app and environment at a time (the workflow id is
``release-APP-ENV``). Starting the release that already runs, or that already ran
(a CI re-run of the same tag), attaches to it instead of deploying twice; starting
a different version while one runs is refused, naming the running release.
``--redeploy`` starts a fresh run of a version that ran before. Outside the environment's
deploy window (``deploy_windows``) the release waits for it to open; ``--no-window-wait``
refuses instead, saying when it opens (exit 2, nothing started).

Exit codes: 0 released (or already live), 1 rolled back or failed,
2 refused input (nothing changed), 3 another release is running.
"""

from __future__ import annotations

import argparse
import os
from datetime import UTC, datetime

from temporalio.client import WorkflowExecutionStatus, WorkflowFailureError, WorkflowHandle

from engine import temporal, tracing
from engine.client import Refused, follow, start_or_attach
from engine.config import check_strategy, load_config, resolve_release, with_first_weight
from engine.contracts import (
    AnalysisRef,
    ReleaseResult,
    ReleaseSpec,
    describe_step,
    rolling_batches,
)
from engine.contracts.pipeline import PipelineSpec
from engine.errors import InputError
from engine.pipeline import resolve_pipeline
from engine.promotion import resolve_train
from engine.versions import LATEST
from engine.windows import closes_at, local_and_utc, next_opening, open_at, why_closed
from starters import train
from starters.common import (
    EXIT_BAD_INPUT,
    EXIT_OK,
    EXIT_REFUSED,
    EXIT_RELEASE_FAILED,
    ProgressPrinter,
    dashboard_link,
    default_identity,
    fail,
    run,
)
from starters.latest import resolve_latest
from starters.pipeline import format_report, print_pipeline_plan


def print_plan(spec: ReleaseSpec) -> None:
    env = spec.environment
    print(f"DRY RUN: nothing is started. Plan for {spec.release_id} ({spec.strategy}):")
    print(f"  environment {env.name}: providers {env.providers.model_dump()}, {env.instances} instances")
    print(f"  approvers: {', '.join(env.approvers) or 'none'}; approval timeout {env.approval_timeout}")
    if spec.blue_green is not None:
        _print_blue_green(spec)
        return
    if spec.rolling is not None:
        _print_rolling(spec)
        return
    if spec.canary is None:
        return
    print(f"  start {spec.canary.canary_instances} canary instance(s) of {spec.version} beside stable")
    for i, resolved in enumerate(spec.canary.steps, start=1):
        print(f"  step {i}: {describe_step(resolved.step)}")
        _print_gates("    ", resolved.analyses)
    for ref in spec.canary.background_analysis:
        print(f"  background analysis: {ref.name} ({', '.join(m.name for m in ref.metrics) or 'judge'})")
    judged = [r for r in spec.analysis_refs() if r.judge is not None]
    if judged:
        how = (
            f"{spec.canary.canary_instances} fresh instance(s) of the stable version (pool baseline), "
            "the canary's traffic share beside it"
            if spec.canary.baseline == "fresh"
            else "the stable pool itself (baseline: stable)"
        )
        print(f"  baseline: {how}; the judges watch from the first traffic until promotion")
    print(f"  promote: scale {spec.version} to {env.instances}, send it 100%, retire the old version")


def describe_judge(ref: AnalysisRef) -> str:
    """What a comparing judge decides on, in one line (the dry run's and the docs' wording)."""
    j = ref.judge
    assert j is not None
    tests = (
        []
        if j.judge == "mann-whitney"
        else [f"{name} vs baseline" for name in ("errors", "latency") if getattr(j, name)]
    )
    if j.judge == "mann-whitney":
        tests.append(f"Kayenta score of {', '.join(m.name for m in j.compare)} (pass {j.pass_score:g})")
    if j.slo.errors is not None:
        tests.append(f"SLO errors < {j.slo.errors * 100:g}%")
    if j.slo.latency is not None:
        tests.append(f"SLO P{j.slo.latency.quantile * 100:g} < {j.slo.latency.below:g}s")
    tolerance = f", worse by more than x{j.tolerance:g}" if j.tolerance > 1 else ""
    return (
        f"{ref.name}: {j.judge} judge, alpha {j.alpha:g}{tolerance}: {'; '.join(tests)}; "
        f"reads every {j.interval.total_seconds():g}s, a gate looks {j.window.total_seconds():g}s "
        f"and passes only on >= {j.min_requests} requests per version"
    )


def _print_gates(what: str, refs: list[AnalysisRef]) -> None:
    for ref in refs:
        if ref.judge is not None:
            print(f"  {what} {describe_judge(ref)}")
        for m in ref.metrics:
            fails, passes = m.failure_condition, m.success_condition
            rule = f"fail if {fails}" if fails else f"pass if {passes}"
            print(f"  {what} {ref.name}/{m.name}: every {m.interval.total_seconds():g}s x{m.count}, {rule}")


def _print_blue_green(spec: ReleaseSpec) -> None:
    plan, n = spec.blue_green, spec.environment.instances
    assert plan is not None
    print(f"  1. start green: {n} x {spec.version} beside blue (the live pool); smoke-test it")
    print(f"  2. preview route -> green only; {plan.preview_requests} requests through it must reach green")
    _print_gates("3. pre-promotion analysis", plan.pre_promotion_analysis)
    if plan.auto_promotion:
        print(f"  4. promote automatically after {plan.auto_promotion_delay}")
    else:
        print("  4. promote when an approver approves")
    print("  5. switch every user from blue to green at once; read the router back")
    _print_gates("6. post-promotion analysis", plan.post_promotion_analysis)
    print(f"  7. keep blue {plan.scale_down_delay} (rollback = flip back), then stop it")


def _print_rolling(spec: ReleaseSpec) -> None:
    plan, n = spec.rolling, spec.environment.instances
    assert plan is not None
    batches = rolling_batches(n, n, plan.max_surge, plan.max_unavailable)
    print(
        f"  max surge {plan.max_surge}, max unavailable {plan.max_unavailable} (assuming {n} live instances):"
    )
    for i, (up, down) in enumerate(batches, start=1):
        gate = ", gate: " + ", ".join(r.name for r in plan.analysis) if up and plan.analysis else ""
        print(f"  batch {i}: start {up} x {spec.version}, smoke{gate}; drain and stop {down} old")
    print(f"  drain timeout {plan.drain_timeout}; pause between batches {plan.batch_pause}")


def outside_window(pipeline: PipelineSpec, now: datetime) -> str | None:
    """Why a release may not start at ``now`` (``--no-window-wait``), saying when it may; None: it may."""
    windows = pipeline.windows
    if windows is None or pipeline.ignore_windows or open_at(windows, now):
        return None
    opens = next_opening(windows, now)
    when = f"it opens at {local_and_utc(windows, opens)}" if opens else "no window opens within two years"
    env = pipeline.release.environment.name
    return (
        f"environments.{env}.deploy_windows: outside the deploy window ({why_closed(windows, now)}); "
        f"{when}. Nothing was started (without --no-window-wait the release waits for the window; "
        "an approver can override-window with a reason)"
    )


def window_state(pipeline: PipelineSpec, now: datetime) -> str | None:
    """The dry run's line on the deploy window (None: the environment has none)."""
    windows = pipeline.windows
    if windows is None or pipeline.ignore_windows:
        return None
    if open_at(windows, now):
        closes = closes_at(windows, now)
        until = f"closes at {local_and_utc(windows, closes)}" if closes else "does not close"
        return f"deploy window: open now, {until}"
    opens = next_opening(windows, now)
    when = f"opens at {local_and_utc(windows, opens)}" if opens else "no window opens within two years"
    return f"deploy window: closed ({why_closed(windows, now)}); the release would wait: {when}"


async def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("version")
    parser.add_argument("strategy")
    parser.add_argument(
        "--env", default=None, help="environment from deploy-code.yaml (default: its default)"
    )
    parser.add_argument("--config", default=None, help="path of deploy-code.yaml")
    parser.add_argument(
        "--wait", action="store_true", help="follow the release; exit non-zero unless it succeeds"
    )
    parser.add_argument(
        "--dry-run",
        action="store_true",
        default=os.environ.get("DRY_RUN", "").lower() in ("1", "true", "yes"),
        help="print the plan and start nothing (also DRY_RUN=true)",
    )
    parser.add_argument(
        "--redeploy", action="store_true", help="start a new run of a version that ran before"
    )
    parser.add_argument("--as", dest="identity", default=default_identity(), help="who requests the release")
    parser.add_argument(
        "--first-weight",
        type=int,
        default=None,
        metavar="PERCENT",
        help="canary: the traffic share of its first step (later steps at or below it are skipped)",
    )
    parser.add_argument(
        "--no-window-wait",
        action="store_true",
        help="outside the environment's deploy window, refuse (exit 2, nothing started) instead of "
        "starting a release that waits for the window to open",
    )
    parser.add_argument(
        "--through",
        default=None,
        metavar="ENV[:SOAK],ENV...",
        help="a promotion train: release to each environment in order, soaking after each, the same "
        "image digest all the way (e.g. staging:30m,production; soaks default to the promotion section's)",
    )
    parser.add_argument(
        "--train", action="store_true", help="a promotion train through deploy-code.yaml's promotion stages"
    )
    args = parser.parse_args(argv)
    if args.through is not None or args.train:
        return await _train(args)

    try:
        config = load_config(args.config)
        if args.first_weight is not None:
            if check_strategy(args.strategy) != "canary":
                msg = f"--first-weight is the canary's first traffic weight; {args.strategy!r} has none"
                raise InputError(msg)
            config = with_first_weight(config, args.first_weight, args.env)
        if args.version == LATEST:
            latest = resolve_latest(config, args.strategy, args.env)
            print(f"latest: {latest.version} ({latest.repository}@{latest.digest})")
            args.version = latest.version
        spec = resolve_release(config, args.version, args.strategy, args.env, requested_by=args.identity)
        pipeline = resolve_pipeline(config, spec)
    except InputError as exc:
        return fail(str(exc), EXIT_BAD_INPUT)
    if args.dry_run:
        print_plan(spec)
        print_pipeline_plan(pipeline)
        if window := window_state(pipeline, datetime.now(UTC)):
            print(f"  {window}")
        return EXIT_OK
    if args.no_window_wait and (refusal := outside_window(pipeline, datetime.now(UTC))):
        return fail(refusal, EXIT_BAD_INPUT)
    tracing.configure("deploy-code-starter")  # on when OTEL_EXPORTER_OTLP_ENDPOINT is set
    try:
        what = {"app": spec.app.name, "environment": spec.environment.name}
        what |= {"version": spec.version, "strategy": spec.strategy}
        with tracing.span("deploy", **{f"deploy.{k}": v for k, v in what.items()}) as root:
            code = await _release(args, spec, pipeline)
            if root is not None:
                root.set_attribute("deploy.exit_code", code)
            return code
    finally:
        tracing.shutdown()  # run() ends the process with os._exit: flush first


async def _train(args: argparse.Namespace) -> int:
    """``--through`` / ``--train``: one PromotionTrain workflow (starters/train.py)."""
    try:
        if args.env is not None:
            msg = "--env names one environment; a promotion train names its environments with --through"
            raise InputError(msg)
        if args.first_weight is not None or args.version == LATEST:
            msg = "a promotion train takes an exact version (not latest) and each environment's own canary"
            raise InputError(msg)
        config = load_config(args.config)
        spec = resolve_train(
            config, args.version, args.strategy, through=args.through, requested_by=args.identity
        )
    except InputError as exc:
        return fail(str(exc), EXIT_BAD_INPUT)
    if args.dry_run:
        train.print_train_plan(spec)
        return EXIT_OK
    return await train.start(args, spec)


async def _release(args: argparse.Namespace, spec: ReleaseSpec, pipeline: PipelineSpec) -> int:
    """Start or attach to the release and, with --wait, follow it (the root span's body)."""
    client = await temporal.connect()
    try:
        handle, attached = await start_or_attach(client, pipeline, redeploy=args.redeploy)
    except Refused as exc:
        return fail(str(exc), EXIT_REFUSED)
    verb = "attached to" if attached else "started"
    print(f"{verb} {spec.release_id} ({spec.strategy}): {temporal.ui_link(handle.id, handle.result_run_id)}")
    if link := await dashboard_link(handle.id, handle.result_run_id):
        print(f"  dashboard: {link}")
    if attached and (ended := await _ended(handle)) is not None:
        again = "to run it again" + ("" if ended.outcome in ("succeeded", "no_change") else " (cause fixed)")
        print(f"this release ran before and ended {ended.outcome.upper()}: {ended.reason}")
        print(f"{again}: add --redeploy")
    if not args.wait:
        return EXIT_OK
    printed: set[tuple[datetime, str]] = set()  # a child's decisions, copied by the pipeline, once
    printer = ProgressPrinter(printed=printed)
    strategy_printer = ProgressPrinter(lambda line: print("  |" + line), printed=printed)
    result = await follow(handle, printer.show, strategy_printer.show)
    if result.status.stages:
        print(format_report(result.status))
    live = result.live_version or ("unchanged" if result.outcome != "succeeded" else "unknown")
    print(f"{result.outcome.upper()}: {result.reason} (live: {live})")
    return EXIT_OK if result.outcome in ("succeeded", "no_change") else EXIT_RELEASE_FAILED


async def _ended(handle: WorkflowHandle) -> ReleaseResult | None:
    """The result of the run attached to, when it has ended (None while it runs)."""
    if (await handle.describe()).status == WorkflowExecutionStatus.RUNNING:
        return None
    try:
        return await handle.result()
    except WorkflowFailureError:
        return None


if __name__ == "__main__":
    run(main())
