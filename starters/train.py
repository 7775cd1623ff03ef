"""A promotion train from the command line: start it (``deploy.py ... --through``), show it, stop it.

``deploy.py VERSION STRATEGY --through staging:30m,production`` (or ``--train``: the stages of
deploy-code.yaml's ``promotion`` section) starts one ``PromotionTrain`` workflow; ``control.py
status --train`` shows its stages (which one runs, how long the soak has left) and the running
stage's release; ``control.py abort --train`` stops it. Approvals of a stage go to that stage's
release as usual: ``control.py approve --env production``.
"""

from __future__ import annotations

import argparse
import json

from temporalio.client import WorkflowExecutionStatus, WorkflowHandle

from engine import temporal
from engine.client import Refused, follow_train, start_train
from engine.config import DeployConfig
from engine.contracts import ReleaseStatus
from engine.contracts.promotion import TrainResult, TrainSpec, TrainStatus
from engine.promotion import train_stages
from starters.common import EXIT_OK, EXIT_REFUSED, EXIT_RELEASE_FAILED, fail, format_decision


def train_id(config: DeployConfig, through: str | None) -> str:
    """The workflow id of the train ``--through`` names (None: the promotion section's)."""
    return temporal.train_workflow_id(
        config.app.name, [s.environment for _, s in train_stages(config, through)]
    )


def print_train_plan(spec: TrainSpec) -> None:
    print(f"DRY RUN: nothing is started. Promotion train {spec.train_id} ({spec.strategy}):")
    for i, stage in enumerate(spec.stages, start=1):
        env = stage.pipeline.release.environment
        soak = f"soak {stage.soak}" if stage.soak else "no soak"
        watch = ", ".join(r.name for r in stage.analysis) or "no analysis"
        carry = "promote the CI tag's digest" if i == 1 else "the same digest, verified (not re-resolved)"
        approvers = ", ".join(env.approvers) or "none"
        print(f"  {i}. {env.name}: release ({spec.strategy}); {carry}; approvers {approvers}")
        print(f"     then {soak} ({watch})")


def format_train(status: TrainStatus) -> str:
    lines = [
        f"train {status.train} ({status.strategy}): {status.phase.upper()}; digest {status.digest or '-'}"
    ]
    for i, s in enumerate(status.stages, start=1):
        now = " <- now" if status.current == i - 1 else ""
        soak = f" soak {s.soak}" + (f" (soaked {s.soaked_s:g}s)" if s.soaked_s is not None else "")
        if now and status.soak_remaining_s is not None:
            soak += f", {status.soak_remaining_s:g}s left"
        digest = f" image {s.digest}" if s.digest else ""
        lines.append(f"  {i}. {s.environment:<12} {s.verdict:<12}{soak}{digest} [{s.workflow_id}]{now}")
        if s.detail:
            lines.append(f"       {s.detail}")
        lines += [f"       {m.metric} = {m.value} ({m.phase})" for m in s.measurements]
    return "\n".join(lines)


class TrainPrinter:
    """Prints the train's stage lines when they change, and each new decision once."""

    def __init__(self) -> None:
        self._last = ""
        self._decisions = 0

    def show(self, status: TrainStatus) -> None:
        for d in status.decisions[self._decisions :]:
            print(format_decision(d))
        self._decisions = len(status.decisions)
        text = format_train(status.model_copy(update={"soak_remaining_s": None}))
        if text != self._last:
            print(text)
            self._last = text


async def start(args: argparse.Namespace, spec: TrainSpec) -> int:
    """Start (or attach to) the train; with ``--wait`` follow it to its end."""
    client = await temporal.connect()
    try:
        handle, attached = await start_train(client, spec, redeploy=args.redeploy)
    except Refused as exc:
        return fail(str(exc), EXIT_REFUSED)
    verb = "attached to" if attached else "started"
    print(f"{verb} promotion train {spec.train_id}: {temporal.ui_link(handle.id, handle.result_run_id)}")
    if attached and (await handle.describe()).status != WorkflowExecutionStatus.RUNNING:
        ended: TrainResult = await handle.result()
        print(f"this train ran before and ended {ended.outcome.upper()}: {ended.reason}")
        print("to run it again: add --redeploy")
        return EXIT_OK if ended.outcome == "succeeded" else EXIT_RELEASE_FAILED
    if not args.wait:
        return EXIT_OK
    result = await follow_train(handle, TrainPrinter().show)
    print(f"{result.outcome.upper()}: {result.reason}")
    return EXIT_OK if result.outcome == "succeeded" else EXIT_RELEASE_FAILED


async def show(handle: WorkflowHandle, *, as_json: bool) -> None:
    """The train's status and, while a stage releases, that release's status line."""
    status = await handle.query("status", result_type=TrainStatus)
    if as_json:
        print(json.dumps(status.model_dump(mode="json"), indent=2))
        return
    print(format_train(status))
    for d in status.decisions:
        print(format_decision(d))
    if status.child_workflow_id:
        child = await handle._client.get_workflow_handle(status.child_workflow_id).query(
            "status", result_type=ReleaseStatus
        )
        print(f"\nNOW RUNNING ({status.child_workflow_id}): {child.release} {child.phase.value} {child.step}")
        print(f"  its controls: python starters/control.py status|approve|abort --env {child.environment}")
