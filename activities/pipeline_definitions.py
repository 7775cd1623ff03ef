"""The release pipeline's activities: checks, images, Terraform, notifications.

Same rules as ``activities/definitions.py``: synchronous, idempotent, heartbeating while
they wait, a provider's :class:`BadRequest` becomes a non-retryable error.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager

import httpx
import structlog
from temporalio import activity
from temporalio.exceptions import ApplicationError

from activities import registry
from activities.checks.dependencies import CHECKS
from activities.common import implements
from activities.notify import webhook
from clients.terraform import Terraform
from engine.contracts.activities import (
    CHECK_DEPENDENCY,
    IMAGE_PROMOTE,
    IMAGE_RESOLVE,
    IMAGE_VERIFY_LIVE,
    NOTIFY,
    TERRAFORM_APPLY,
    TERRAFORM_PLAN,
)
from engine.contracts.pipeline import (
    CheckResult,
    DependencyCheck,
    ImageFound,
    ImageLookup,
    LiveImageRequest,
    LiveImageResult,
    Notification,
    PromoteRequest,
    PromoteResult,
    TerraformApplied,
    TerraformApplyRequest,
    TerraformPlan,
    TerraformPlanRequest,
)
from engine.errors import BadRequest

log = structlog.get_logger()


@contextmanager
def _registry_reachable(url: str) -> Iterator[None]:
    """A registry that cannot be reached is a retryable error naming the registry."""
    try:
        yield
    except httpx.TransportError as exc:
        msg = f"image registry {url} unreachable: {type(exc).__name__}: {exc}"
        raise ApplicationError(msg, type="RegistryUnreachable") from exc


@implements(CHECK_DEPENDENCY)
def check_dependency(req: DependencyCheck) -> CheckResult:
    """One dependency's verdict; an unhealthy dependency is a result, not an error."""
    started = time.monotonic()
    ok, message = CHECKS[req.kind](req.target)
    latency = round((time.monotonic() - started) * 1000, 1)
    log.info("check", name=req.name, ok=ok, message=message)
    return CheckResult(
        kind=req.kind, name=req.name, target=req.target, ok=ok, message=message, latency_ms=latency
    )


@implements(IMAGE_RESOLVE)
def resolve_image(req: ImageLookup) -> ImageFound:
    """The digest of the release's tag in a repository (None when it is not there)."""
    client = registry.images(req.image)
    try:
        with _registry_reachable(req.image.registry):
            digest = client.resolve(req.repository, req.image.tag)
    finally:
        client.close()
    return ImageFound(repository=req.repository, tag=req.image.tag, digest=digest)


@implements(IMAGE_PROMOTE)
def promote_image(req: PromoteRequest) -> PromoteResult:
    """Copy the CI image to production by digest and verify the digest stored (idempotent).

    Any ``images`` provider (OCI registry, ECR); a production tag already at another digest is
    refused by the provider: release tags do not move.
    """
    image = req.image
    client = registry.images(image)
    try:
        with _registry_reachable(image.registry):
            previous = client.resolve(image.production_repository, image.tag)
            if previous == req.digest:
                return PromoteResult(
                    repository=image.production_repository,
                    tag=image.tag,
                    digest=previous,
                    previous_digest=previous,
                )
            ci = client.resolve(image.ci_repository, req.digest)
            if ci is None:
                msg = f"{image.ci_repository}@{req.digest} is gone from the registry"
                raise BadRequest(msg)
            stored = client.promote(image.ci_repository, req.digest, image.production_repository, image.tag)
            check = client.resolve(image.production_repository, image.tag)
    finally:
        client.close()
    if stored != req.digest or check != req.digest:
        msg = f"promotion of {req.digest} left {image.production_repository}:{image.tag} at {check}"
        raise BadRequest(msg)
    log.info("promoted", repository=image.production_repository, tag=image.tag, digest=stored)
    return PromoteResult(
        repository=image.production_repository, tag=image.tag, digest=stored, previous_digest=previous
    )


@implements(IMAGE_VERIFY_LIVE)
def verify_live_image(req: LiveImageRequest) -> LiveImageResult:
    """The instances of the release run the promoted digest, as the platform reports it (local: its
    pool pins; Kubernetes: the pods' imageID)."""
    platform = registry.platform(req.environment)
    instances = [i for i in platform.list_instances() if i.version == req.version]
    if not instances:
        return LiveImageResult(ok=False, message=f"no instance runs {req.version}")
    running = platform.running_images()
    pools = sorted({i.pool for i in instances})
    unknown = [p for p in pools if not running.get(p)]
    wrong = [
        f"pool {p} runs {', '.join(sorted(running[p]))}"
        for p in pools
        if running.get(p, {req.digest}) != {req.digest}
    ]
    pins = {p: {"digest": ", ".join(sorted(running[p]))} for p in pools if running.get(p)}
    if wrong:
        return LiveImageResult(ok=False, message=f"expected {req.digest}: " + "; ".join(wrong), pins=pins)
    if unknown:
        return LiveImageResult(
            ok=True, message=f"the platform reports no image digest for {', '.join(unknown)}; not verified"
        )
    return LiveImageResult(
        ok=True, message=f"{len(instances)} instance(s) of {req.version} run {req.digest}", pins=pins
    )


@implements(TERRAFORM_PLAN)
def terraform_plan(req: TerraformPlanRequest) -> TerraformPlan:
    """``terraform plan -detailed-exitcode -out`` and the saved plan's summary."""
    activity.heartbeat("planning")
    return Terraform(req.terraform).plan(req.plan_id, dry_run=req.dry_run)


@implements(TERRAFORM_APPLY)
def terraform_apply(req: TerraformApplyRequest) -> TerraformApplied:
    """Apply exactly the saved, approved plan; once, even across a worker crash."""
    tf = Terraform(req.terraform)
    serial, resumed = tf.apply(req.plan, progress=activity.heartbeat)
    log.info("terraform applied", serial=serial, resumed=resumed)
    return TerraformApplied(serial=serial, resumed=resumed, outputs=tf.outputs())


@implements(NOTIFY)
def notify(req: Notification) -> None:
    """Post to a Slack-compatible incoming webhook."""
    webhook.post(req.url, req.text)


ALL: list[Callable[..., object]] = [
    check_dependency,
    resolve_image,
    promote_image,
    verify_live_image,
    terraform_plan,
    terraform_apply,
    notify,
]
