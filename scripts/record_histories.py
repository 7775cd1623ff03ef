"""Record workflow histories for the replay tests (tests/engine/test_replay.py).

    .venv/bin/python scripts/record_histories.py [NAME ...]

Records the histories not stored yet (or those NAMEd). Keep the ones recorded before a
``workflow.patched`` change: they prove the old runs still replay.
Runs real releases on a throwaway local platform and stores their histories as
JSON. Re-record only for a deliberate change of a workflow's commands; a change
to a shipped workflow must stay replayable (``workflow.patched``), which is what
the replay tests check against the histories recorded before it.
"""

from __future__ import annotations

import asyncio
import sys
import tempfile
from datetime import UTC, datetime
from pathlib import Path

from temporalio.client import WorkflowHandle, WorkflowHistory

import worker as worker_module
from engine import temporal
from engine.client import release_runs, start_or_attach
from engine.config import parse_config, resolve_release
from engine.contracts import Control, LocalSettings, ReleaseStatus
from engine.contracts.dr import DrillRequest, DrResult, FailoverRequest
from engine.dr_config import resolve_dr
from engine.pipeline import resolve_pipeline
from engine.undo import plan_undo, resolve_undo
from harness.support import allowed_signers
from infrastructure.local import dr as local_dr
from infrastructure.local import platform
from infrastructure.local.layout import Layout
from infrastructure.local.regions import PlatformLayout
from infrastructure.local.sample_service import set_behaviour
from starters.signing import sign, sign_for

OUT = Path(__file__).resolve().parent.parent / "tests" / "engine" / "histories"
CONFIG = """
app: {name: sample-api}
environments:
  local:
    providers: {platform: local, router: haproxy, analysis: prometheus}
    instances: 2
    approvers: [alice]
analysis_templates:
  error-rate:
    metrics:
      - name: error-ratio
        query: >-
          (sum(rate(http_requests_total{version="{{canary_version}}",code=~"5.."}[4s])) or vector(0))
          / sum(rate(http_requests_total{version="{{canary_version}}"}[4s]))
        success_condition: result < 0.05
        failure_condition: result >= 0.05
        initial_delay: 2s
        count: 3
        inconclusive_limit: 3
strategies:
  canary:
    steps:
      - set_weight: 20
      - analysis: {templates: [error-rate]}
      - pause: {}
      - set_weight: 50
      - pause: {duration: 1s}
    background_analysis: {templates: [error-rate], chunk: 2s}
  blue_green:
    auto_promotion_enabled: true
    scale_down_delay: 1s
    preview_requests: 5
    pre_promotion_analysis: {templates: [error-rate]}
  rolling:
    max_surge: 1
    max_unavailable: 0
    analysis: {templates: [error-rate]}
"""
JUDGE_CONFIG = """
app: {name: sample-api}
environments:
  local:
    providers: {platform: local, router: haproxy, analysis: prometheus}
    instances: 2
    approvers: [alice]
analysis_templates:
  judge:
    requests: http_requests_total{pool="{{pool}}"}
    errors: http_requests_total{pool="{{pool}}",code=~"5.."}
    latency: http_request_duration_seconds_bucket{pool="{{pool}}"}
    slo: {errors: 0.05, latency: {quantile: 0.95, below: 0.5}}
    min_requests: 50
    interval: 1s
    window: 8s
  no-data:
    metrics:
      - name: missing
        query: sum(rate(metric_that_does_not_exist_total[5s]))
        success_condition: result < 1
        interval: 500ms
        count: 2
        inconclusive_limit: 0
strategies:
  canary:
    steps:
      - set_weight: 25
      - analysis: {templates: [%(gate)s]}
    background_analysis: {templates: [judge], chunk: 3s}
"""
DR_CONFIG = """
app: {name: sample-api}
environments:
  local:
    providers: {platform: local, router: haproxy, analysis: prometheus}
    instances: 2
    approvers: [alice]
    local: {state_dir: "%(state_dir)s", port_base: %(port_base)s}
    dr:
      regions: [A, B]
      health_check_interval: 500ms
      catch_up_timeout: 20s
strategies:
  canary:
    steps:
      - set_weight: 50
"""


def signed_config(keys: Path) -> str:
    """CONFIG with approvals signed by alice's and bob's fresh keys, two of them required."""
    signers = allowed_signers(keys, "alice", "bob")
    return CONFIG.replace(
        "    approvers: [alice]\n",
        f"    approvers: [alice, bob]\n    approvals: signed\n    allowed_signers: {signers}\n"
        "    required_approvals: 2\n",
        1,
    )


async def approve(handle: WorkflowHandle, who: str, keys: Path | None) -> None:
    """Approve as ``who``: by name, or signed with their key when ``keys`` holds it."""
    signature = None if keys is None else await sign_for(handle, str(keys / who), "approve", "local")
    await handle.execute_update("approve", Control(identity=who, reason="recorded", signature=signature))


async def record(name: str, version: str, layout: Layout, *, bad: bool, strategy: str = "canary") -> None:
    client = await temporal.connect(target_host=f"127.0.0.1:{layout.temporal_port}")
    local = LocalSettings(state_dir=str(layout.state_dir), port_base=layout.port_base)
    text, keys = CONFIG, None
    if name == "canary_signed_two_person":
        keys = layout.state_dir.parent / "keys"
        text = signed_config(keys)
    elif name.startswith("canary_judged"):
        text = JUDGE_CONFIG % {"gate": "judge"}
    elif name == "canary_remeasured":
        text = JUDGE_CONFIG % {"gate": "no-data"}
    spec = resolve_release(
        parse_config(text), version, strategy, "local", requested_by="recorder", local=local
    )
    if bad:
        set_behaviour(layout, version, error_rate=0.5)
    async with worker_module.running(client, "record"):
        handle, _ = await start_or_attach(client, spec, task_queue="record")
        if name == "canary_remeasured":  # inconclusive, resumed (measured again), then promoted
            for action in ("resume", "promote"):
                while not (await handle.query("status", result_type=ReleaseStatus)).paused:  # noqa: ASYNC110
                    await asyncio.sleep(0.2)
                await handle.execute_update(action, Control(identity="alice", reason="recorded"))
        elif not bad and strategy == "canary" and not name.startswith("canary_judged"):
            while not (await handle.query("status", result_type=ReleaseStatus)).awaiting_approval:  # noqa: ASYNC110
                await asyncio.sleep(0.2)
            for who in ("alice", "bob") if keys else ("alice",):
                await approve(handle, who, keys)
        result = await handle.result()
        print(name, result.outcome, result.reason)
        history = await handle.fetch_history()
    store(name, history)


async def record_release(name: str, version: str, layout: Layout) -> None:
    """The release pipeline around a canary, the api alone in one region (as before components)."""
    client = await temporal.connect(target_host=f"127.0.0.1:{layout.temporal_port}")
    local = LocalSettings(state_dir=str(layout.state_dir), port_base=layout.port_base)
    config = parse_config(CONFIG)
    spec = resolve_release(config, version, "canary", "local", requested_by="recorder", local=local)
    async with worker_module.running(client, "record"):
        handle, _ = await start_or_attach(client, resolve_pipeline(config, spec), task_queue="record")
        while not (await handle.query("status", result_type=ReleaseStatus)).child_workflow_id:  # noqa: ASYNC110
            await asyncio.sleep(0.2)
        child = client.get_workflow_handle(
            (await handle.query("status", result_type=ReleaseStatus)).child_workflow_id or ""
        )
        while not (await child.query("status", result_type=ReleaseStatus)).awaiting_approval:  # noqa: ASYNC110
            await asyncio.sleep(0.2)
        await child.execute_update("approve", Control(identity="alice", reason="recorded"))
        result = await handle.result()
        print(name, result.outcome, result.reason)
        history = await handle.fetch_history()
    store(name, history)


async def record_whole_app(name: str, tmp: Path) -> None:
    """A whole-app release (api and worker, regions A and B) on the two-region platform; the
    rolled-back one ships a worker whose jobs fail, so the api in A is restored after it."""
    from harness import whole_app  # noqa: PLC0415 - only this recording needs it

    site = PlatformLayout.for_tests(tmp / name)
    try:
        whole_app.site_up(site)
        client = await temporal.connect(target_host=f"127.0.0.1:{site.home_layout.temporal_port}")
        version = "v9.4.1"
        if name.endswith("rolled_back"):
            version = "v9.4.2"
            platform.behave(site.home_layout, version, component="worker", error_probability=0.5)
        async with worker_module.running(client, "record"):
            handle, _ = await start_or_attach(
                client, whole_app.pipeline(site, version, requested_by="recorder"), task_queue="record"
            )
            result = await handle.result()
            print(name, result.outcome, result.reason)
            history = await handle.fetch_history()
        store(name, history)
    finally:
        platform.down(site, purge=True)


async def record_undo(name: str, layout: Layout) -> None:
    """control.py undo's Release run within the rollback window: two rolling releases of an app of
    its own, then the undo back to the first by the fast path, its approval signed by alice over the
    run it undoes (verified again on replay, under the run id the signature names)."""
    client = await temporal.connect(target_host=f"127.0.0.1:{layout.temporal_port}")
    local = LocalSettings(state_dir=str(layout.state_dir), port_base=layout.port_base)
    keys = layout.state_dir.parent / "undo-keys"
    signers = allowed_signers(keys, "alice", "bob")
    text = CONFIG.replace("app: {name: sample-api}", "app: {name: undo-api}", 1).replace(
        "    approvers: [alice]\n",
        f"    approvers: [alice, bob]\n    approvals: signed\n    allowed_signers: {signers}\n"
        "    rollback_window: {versions: 3}\n",
        1,
    )
    config = parse_config(text)
    workflow_id = temporal.release_workflow_id("undo-api", "local")
    async with worker_module.running(client, "record"):
        for version in UNDO_RECORDINGS[name]:
            spec = resolve_release(config, version, "rolling", "local", requested_by="recorder", local=local)
            handle, _ = await start_or_attach(
                client, resolve_pipeline(config, spec), redeploy=True, task_queue="record"
            )
            print(name, version, (await handle.result()).outcome)
        window = config.environments["local"].rollback_window
        plan = plan_undo("local", await release_runs(client, workflow_id), window, datetime.now(UTC))
        signature = sign(
            str(keys / "alice"),
            workflow_id=workflow_id,
            run_id=plan.current.run_id,
            action="undo",
            environment="local",
            subject=plan.previous.version,
        )
        approval = Control(identity="alice", reason="recorded", signature=signature)
        pipeline = resolve_undo(config, plan, strategy="rolling", approval=approval, local=local)
        handle, _ = await start_or_attach(client, pipeline, redeploy=True, task_queue="record")
        result = await handle.result()
        print(name, result.outcome, result.reason)
        history = await handle.fetch_history()
    store(name, history)


def store(name: str, history: WorkflowHistory) -> None:
    """The history, and its workflow id beside it (a signed approval names the run it approves)."""
    (OUT / f"{name}.json").write_text(history.to_json())
    (OUT / f"{name}.workflow-id").write_text(history.workflow_id + "\n")


async def record_dr(name: str, dr: PlatformLayout, temporal_address: str) -> None:
    """A drill (fail over to B and back) or a failover to B, on the two-region stack."""
    client = await temporal.connect(target_host=temporal_address)
    spec = resolve_dr(parse_config(DR_CONFIG % {"state_dir": dr.state_dir, "port_base": dr.port_base}))
    request: DrillRequest | FailoverRequest
    if name == "dr_failover_converged":  # B's api drifted to another version: converged first
        local_dr.converge(dr, "B", {"api": "v0.9.0"})
    if name == "dr_drill":
        workflow, request = "DrDrill", DrillRequest(dr=spec, requested_by="recorder")
    else:
        workflow = "DrFailover"
        request = FailoverRequest(dr=spec, to_region="B", requested_by="recorder", approved_by="alice")
    async with worker_module.running(client, "record"):
        handle = await client.start_workflow(
            workflow, request, id=name, task_queue="record", result_type=DrResult
        )
        result = await handle.result()
        print(name, result.outcome, result.reason)
        history = await handle.fetch_history()
    store(name, history)


RECORDINGS = {
    "canary_succeeded_with_approval": ("v9.0.1", False, "canary"),
    "canary_rolled_back": ("v9.0.2", True, "canary"),
    "canary_checked_queries": ("v9.0.3", False, "canary"),  # patch check-queries-before-start taken
    "canary_approval_gauge": ("v9.0.4", False, "canary"),  # patch approval-wait-gauge taken too
    "blue_green_promoted": ("v9.1.1", False, "blue-green"),
    "rolling_succeeded": ("v9.1.2", False, "rolling"),
    "canary_judged_promoted": ("v9.2.1", False, "canary"),  # patch canary-baseline: a fresh baseline
    "canary_judged_rolled_back": ("v9.2.2", True, "canary"),
    "canary_remeasured": ("v9.2.3", False, "canary"),  # patch resume-re-measures taken
    "canary_signed_two_person": ("v9.3.1", False, "canary"),  # two SSH-signed approvals, verified on replay
}
DR_RECORDINGS = ("dr_drill", "dr_failover")  # in this order: the drill leaves the stack at home
CONVERGED = "dr_failover_converged"  # patch version-check taken (its own two-region stack)
PIPELINE_RECORDINGS = {"release_pipeline_single": "v9.4.0"}  # recorded before components (patch whole-app)
WHOLE_APP_RECORDINGS = ("release_whole_app", "release_whole_app_rolled_back")  # patch whole-app taken
UNDO_RECORDINGS = {"release_undo_fast": ("v9.5.1", "v9.5.2")}  # control.py undo within the window, signed


async def main(names: list[str]) -> None:
    OUT.mkdir(parents=True, exist_ok=True)
    every = (
        *RECORDINGS,
        *PIPELINE_RECORDINGS,
        *DR_RECORDINGS,
        CONVERGED,
        *WHOLE_APP_RECORDINGS,
        *UNDO_RECORDINGS,
    )
    names = names or [n for n in every if not (OUT / f"{n}.json").exists()]
    releases = [n for n in names if n in RECORDINGS]
    pipelines = [n for n in names if n in PIPELINE_RECORDINGS]
    drs = [n for n in DR_RECORDINGS if n in names]
    with tempfile.TemporaryDirectory() as tmp:
        layout = Layout.for_tests(Path(tmp) / "release")
        try:
            platform.up(layout, instances=2, traffic_rps=40)
            for name in releases:
                version, bad, strategy = RECORDINGS[name]
                await record(name, version, layout, bad=bad, strategy=strategy)
            for name in pipelines:
                await record_release(name, PIPELINE_RECORDINGS[name], layout)
            for name in (n for n in UNDO_RECORDINGS if n in names):
                await record_undo(name, layout)
            if drs:
                dr = PlatformLayout.for_tests(Path(tmp) / "dr")
                try:
                    platform.regions_up(dr, instances=2, standby_instances=1, synchronous=True)
                    for name in drs:
                        await record_dr(name, dr, f"127.0.0.1:{layout.temporal_port}")
                finally:
                    platform.down(dr, purge=True)
            if CONVERGED in names:
                dr = PlatformLayout.for_tests(Path(tmp) / "converged")
                try:
                    platform.regions_up(dr, instances=2, standby_instances=1, synchronous=True)
                    await record_dr(CONVERGED, dr, f"127.0.0.1:{layout.temporal_port}")
                finally:
                    platform.down(dr, purge=True)
        finally:
            platform.down(layout, purge=True)
        for name in (n for n in WHOLE_APP_RECORDINGS if n in names):
            await record_whole_app(name, Path(tmp))


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1:]))
