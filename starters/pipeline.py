"""What the starters print about the release pipeline: the dry-run plan and the report."""

from __future__ import annotations

from engine.contracts import ReleaseStatus
from engine.contracts.pipeline import STAGES, ImageSpec, PipelineSpec
from starters.common import format_approvals


def print_pipeline_plan(pipeline: PipelineSpec) -> None:
    """Stages, the Terraform plan summary and the digest to promote; reads only, changes nothing."""
    # Imported here: only a dry run needs them, and httpx alone costs a starter ~0.1 s to import.
    from clients.terraform import Terraform  # noqa: PLC0415

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
    print(f"  {_image_plan(pipeline.image)}")
    print(f"  notifications: {'webhook configured' if pipeline.webhook_url else 'none configured'}")


def _image_plan(image: ImageSpec | None) -> str:
    """What image promotion would do: the digest CI built, or why it cannot be read from here."""
    from clients.images import open_registry  # noqa: PLC0415 - a dry run only (see print_pipeline_plan)

    if image is None:
        return "image: no registry configured"
    source = f"{image.registry}/{image.ci_repository}:{image.tag}"
    try:
        client = open_registry(image)  # the environment's images provider (oci, ecr)
    except Exception as exc:  # e.g. no AWS credentials on this machine
        return f"image {source}: registry not reachable from here: {exc}"
    try:
        digest = client.resolve(image.ci_repository, image.tag)
    except Exception as exc:
        return f"image {source}: registry unreachable: {exc}"
    finally:
        client.close()
    if digest is None:
        return f"image {source}: MISSING: the release would fail at pre-validation"
    return f"image: would promote {source} = {digest} to {image.production_repository}:{image.tag}"


def format_report(status: ReleaseStatus) -> str:
    """The report of the release pipeline: one line per stage, then its measurements."""
    if not status.stages:
        return ""
    lines = ["REPORT", f"  {'STAGE':<17} {'VERDICT':<11} {'SECONDS':>8}  APPROVER  DETAIL"]
    for s in status.stages:
        seconds = "-" if s.duration_s is None else f"{s.duration_s:.1f}"
        lines.append(f"  {s.name:<17} {s.verdict:<11} {seconds:>8}  {s.approver or '-':<8}  {s.detail}")
        lines.extend(f"      {k}: {v}" for k, v in s.measurements.items())
    if status.targets:
        lines.append(f"  {'COMPONENT':<10} {'REGION':<7} {'ROLE':<8} {'BEFORE':<10} {'VERDICT':<15} DETAIL")
        for t in status.targets:
            row = f"  {t.component:<10} {t.region:<7} {t.role:<8} {t.previous or '-':<10} {t.verdict:<15}"
            lines.append(f"{row} {t.detail}")
    lines.extend(f"  {line}" for line in format_approvals(status.approvals))
    return "\n".join(lines)
