"""``latest``: the newest version tag of the environment's CI image repository, and its digest.

``python starters/deploy.py latest canary`` (and ``deploy-production.sh canary latest``)
releases the newest semantic version tagged in the CI repository of the environment's
``release.images`` registry: by version precedence (v1.10.0 after v1.9.0, a release after its
release candidates), tags that are not versions ignored. The release then runs that version;
its pipeline promotes the tag's digest and records it (the image-promotion stage's ``digest``).
"""

from __future__ import annotations

from dataclasses import dataclass

from engine.config import DeployConfig, resolve_release
from engine.errors import InputError
from engine.pipeline import resolve_pipeline
from engine.versions import newest

PROBE_VERSION = "v0.0.0"
"""Resolves the environment's pipeline before the version is known (only its image registry is read)."""


@dataclass(frozen=True)
class Latest:
    version: str
    digest: str
    repository: str
    """Where it was found: ``REGISTRY/CI_REPOSITORY``."""


def resolve_latest(config: DeployConfig, strategy: str, environment: str | None) -> Latest:
    """The newest version tag of the environment's CI repository; refused (InputError) when none."""
    # Imported here: only `latest` needs a registry client (httpx, boto3).
    from clients.images import open_registry  # noqa: PLC0415

    probe = resolve_release(config, PROBE_VERSION, strategy, environment)
    image = resolve_pipeline(config, probe).image
    if image is None:
        msg = (
            f"version 'latest' needs an image registry to look in: "
            f"environments.{probe.environment.name}.release.images is not set"
        )
        raise InputError(msg)
    where = f"{image.registry}/{image.ci_repository}"
    try:
        client = open_registry(image)
        try:
            tags = client.tags(image.ci_repository)
            version = newest(tags)
            digest = client.resolve(image.ci_repository, version) if version else None
        finally:
            client.close()
    except InputError:
        raise
    except Exception as exc:
        msg = f"version 'latest': cannot list the tags of {where}: {exc}"
        raise InputError(msg) from None
    if version is None or digest is None:
        shown = ", ".join(tags[:10]) or "none"
        msg = f"version 'latest': no semantic-version tag in {where} (tags: {shown})"
        raise InputError(msg)
    return Latest(version=version, digest=digest, repository=where)
