"""Image registries (an OCI registry's HTTP API, Amazon ECR) behind one small Protocol.

The release pipeline's image stage and the starters' dry run both open the environment's
registry here, by the provider name of ``release.images`` (``engine/catalog.py``).
"""

from __future__ import annotations

import importlib
from typing import Protocol, cast

from engine import catalog
from engine.contracts.pipeline import ImageSpec


class ImageRegistry(Protocol):
    """Where release images live (built from an ``ImageSpec``); promotion copies by digest."""

    def resolve(self, repository: str, reference: str) -> str | None:
        """The digest of ``repository:reference`` (a tag or a digest); None when it is not there."""
        ...

    def tags(self, repository: str) -> list[str]:
        """Every tag of ``repository`` (empty when the repository is not there)."""
        ...

    def promote(self, source: str, digest: str, target: str, tag: str) -> str:
        """Copy ``source@digest`` to ``target:tag`` by digest and return the digest stored under the tag.

        Idempotent (the tag already at ``digest`` is success). A release tag never moves: the tag
        at another digest is refused (:class:`BadRequest`), whatever the repository allows.
        """
        ...

    def close(self) -> None: ...


def open_registry(spec: ImageSpec) -> ImageRegistry:
    """A fresh client of the release's image registry (the caller closes it)."""
    module, cls = catalog.require("images", spec.provider, "release.images.provider").target.split(":")
    return cast(ImageRegistry, getattr(importlib.import_module(module), cls).from_spec(spec))
