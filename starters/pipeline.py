"""What the starters print about the release pipeline: the dry-run plan and the report."""

from __future__ import annotations

from temporalio.client import WorkflowHandle

from engine.contracts import ReleaseStatus
from engine.contracts.pipeline import STAGES, PipelineSpec


def print_pipeline_plan(pipeline: PipelineSpec) -> None:
    """Stages, the Terraform plan summary and the digest to promote; reads only, changes nothing."""
    # Imported here: only a dry run needs them, and httpx alone costs a starter ~0.1 s to import.
    from activities import registry  # noqa: PLC0415
    from activities.infra.terraform import Terraform  # noqa: PLC0415

    print(f"  stages: {' -> '.join(STAGES)} (strategy as child workflow {pipeline.workflow_type})")
    checks = ", ".join(f"{c.name} ({c.target})" for c in pipeline.checks) or "none configured"
    print(f"  pre-validation: {checks}")
    tf = pipeline.terraform
    if tf is None:
        print("  terraform: no root configured")
    else:
        try:
            plan = Terraform(tf).plan("dry-run", dry_run=True)  # -lock=false, temp plan file
        except Exception as exc:
            print(f"  terraform plan ({tf.root}): could not plan: {exc}")
        else:
            if not plan.changes:
                print(f"  terraform plan ({tf.root}): no changes")
            else:
                print(f"  terraform plan ({tf.root}): changes, an approver must approve:")
                for line in plan.summary:
                    print(f"      {line}")
    image = pipeline.image
    if image is None:
        print("  image: no registry configured")
    else:
        client = registry.images(image)  # the environment's images provider (oci, ecr)
        try:
            digest = client.resolve(image.ci_repository, image.tag)
        except Exception as exc:
            digest, problem = None, f"registry unreachable: {exc}"
        else:
            problem = "MISSING: the release would fail at pre-validation"
        finally:
            client.close()
        source = f"{image.registry}/{image.ci_repository}:{image.tag}"
        target = f"{image.production_repository}:{image.tag}"
        print(
            f"  image: would promote {source} = {digest} to {target}"
            if digest
            else f"  image {source}: {problem}"
        )
    print(f"  notifications: {'webhook configured' if pipeline.webhook_url else 'none configured'}")


def format_report(status: ReleaseStatus) -> str:
    """The report of the release pipeline: one line per stage, then its measurements."""
    if not status.stages:
        return ""
    lines = ["REPORT", f"  {'STAGE':<17} {'VERDICT':<11} {'SECONDS':>8}  APPROVER  DETAIL"]
    for s in status.stages:
        seconds = "-" if s.duration_s is None else f"{s.duration_s:.1f}"
        lines.append(f"  {s.name:<17} {s.verdict:<11} {seconds:>8}  {s.approver or '-':<8}  {s.detail}")
        lines.extend(f"      {k}: {v}" for k, v in s.measurements.items())
    return "\n".join(lines)


async def control_target(handle: WorkflowHandle) -> WorkflowHandle:
    """Where a control goes: the strategy's child workflow while the pipeline runs it
    (and waits for nothing itself), else the release workflow."""
    status = await handle.query("status", result_type=ReleaseStatus)
    if status.child_workflow_id and not status.awaiting_approval:
        return handle._client.get_workflow_handle(status.child_workflow_id)
    return handle
