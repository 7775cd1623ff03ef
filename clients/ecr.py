"""Image promotion provider: Amazon ECR, copy by digest.

``promote`` reads the manifest from the CI repository by digest (``batch_get_image``),
checks that its bytes hash to that digest, and puts the same bytes into the production
repository under the release tag (``put_image`` with ``imageDigest``, so ECR stores exactly
that digest). Idempotent: the tag already at that digest is success. A tag already at
another digest is refused (immutable repositories refuse it anyway; a mutable one would
silently move a release tag). The stored digest is read back and compared.

ECR needs the image's layers in the target repository; within one registry, enable ECR's
blob mounting (or copy the layers first). The ``images`` provider ``ecr``
(activities/registry.py, :class:`~activities.interfaces.ImageRegistry`): region, role and
endpoint are the environment's ``aws`` settings; repositories are names or repository URLs.
"""

from __future__ import annotations

import hashlib
from typing import Any

from clients import aws
from engine.contracts import AwsSettings
from engine.contracts.pipeline import ImageSpec
from engine.errors import BadRequest

MEDIA_TYPES = [
    "application/vnd.oci.image.manifest.v1+json",
    "application/vnd.docker.distribution.manifest.v2+json",
]


def repository_name(url_or_name: str) -> str:
    """``123.dkr.ecr.eu-west-1.amazonaws.com/team/app`` -> ``team/app`` (names pass through)."""
    host, _, rest = url_or_name.partition("/")
    return rest if rest and ".dkr.ecr." in host else url_or_name


class EcrImages:
    def __init__(self, settings: AwsSettings) -> None:
        self._ecr = aws.client(settings, "ecr")

    @classmethod
    def from_spec(cls, spec: ImageSpec) -> EcrImages:
        if spec.aws is None:
            msg = "ECR image promotion needs the environment's aws settings (region, role)"
            raise BadRequest(msg)
        return cls(spec.aws)

    def close(self) -> None:
        """Nothing to release (boto3 clients hold pooled connections of their own)."""

    def _get(self, repository: str, image_id: dict[str, str]) -> dict[str, Any] | None:
        with aws.refusals("RepositoryNotFoundException", what=f"repository {repository}"):
            r = self._ecr.batch_get_image(
                repositoryName=repository, imageIds=[image_id], acceptedMediaTypes=MEDIA_TYPES
            )
        return r["images"][0] if r["images"] else None

    def resolve(self, repository: str, reference: str) -> str | None:
        repo = repository_name(repository)
        key = "imageDigest" if reference.startswith("sha256:") else "imageTag"
        image = self._get(repo, {key: reference})
        return image["imageId"]["imageDigest"] if image else None

    def tags(self, repository: str) -> list[str]:
        repo = repository_name(repository)
        found: list[str] = []
        try:
            pages = self._ecr.get_paginator("list_images").paginate(
                repositoryName=repo, filter={"tagStatus": "TAGGED"}
            )
            for page in pages:
                found += [i["imageTag"] for i in page["imageIds"] if "imageTag" in i]
        except self._ecr.exceptions.RepositoryNotFoundException:
            return []
        return sorted(found)

    def promote(self, source: str, digest: str, target: str, tag: str) -> str:
        src, dst = repository_name(source), repository_name(target)
        image = self._get(src, {"imageDigest": digest})
        if image is None:
            msg = f"{src}@{digest} does not exist"
            raise BadRequest(msg)
        manifest: str = image["imageManifest"]
        actual = "sha256:" + hashlib.sha256(manifest.encode()).hexdigest()
        if actual != digest:
            msg = f"ECR returned a manifest of digest {actual} for {src}@{digest}"
            raise RuntimeError(msg)
        current = self.resolve(dst, tag)
        if current == digest:
            return digest
        if current is not None:
            with aws.refusals(what=f"repository {dst}"):
                repo = self._ecr.describe_repositories(repositoryNames=[dst])["repositories"][0]
            kind = repo.get("imageTagMutability", "MUTABLE")
            msg = (
                f"{dst}:{tag} already points to {current} ({kind.lower()} tags); a release tag does not move"
            )
            raise BadRequest(msg)
        with aws.refusals(
            "ImageTagAlreadyExistsException",
            "LayersNotFoundException",
            "RepositoryNotFoundException",
            what=f"put {dst}:{tag}",
        ):
            self._ecr.put_image(
                repositoryName=dst,
                imageManifest=manifest,
                imageManifestMediaType=image.get("imageManifestMediaType", MEDIA_TYPES[0]),
                imageTag=tag,
                imageDigest=digest,
            )
        stored = self.resolve(dst, tag)
        if stored != digest:
            msg = f"ECR stored {dst}:{tag} as {stored}, not {digest}"
            raise RuntimeError(msg)
        return digest
