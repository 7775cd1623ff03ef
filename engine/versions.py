"""Ordering release versions (semantic versions, optional leading ``v``), and picking the newest.

``latest`` on the command line (``deploy.py latest canary``, ``deploy-production.sh canary
latest``) means the newest version tag of the CI image repository: newest by semantic-version
precedence (v1.10.0 after v1.9.0, a release after its pre-releases), never by string order;
tags that are not versions (``latest``, ``sha-1a2b3c``, ``main``) are ignored.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

from engine.contracts.scalars import VERSION_PATTERN

LATEST = "latest"
"""The version word that resolves to the newest version tag in the CI repository."""

Key = tuple[int, int, int, int, tuple[tuple[int, int | str], ...]]


def version_key(version: str) -> Key:
    """A sort key giving semantic-version precedence (semver.org, section 11).

    ``v1.2.3-rc.1`` < ``v1.2.3`` < ``v1.10.0``; numeric pre-release identifiers compare as
    numbers and sort before alphanumeric ones.
    """
    if not re.fullmatch(VERSION_PATTERN, version):
        msg = f"{version!r} is not a semantic version"
        raise ValueError(msg)
    core, _, pre = version.removeprefix("v").partition("-")
    major, minor, patch = (int(p) for p in core.split("."))
    if not pre:
        return (major, minor, patch, 1, ())
    ids = tuple((0, int(p)) if p.isdigit() else (1, p) for p in pre.split("."))
    return (major, minor, patch, 0, ids)


def newest(tags: Iterable[str]) -> str | None:
    """The newest semantic version among ``tags`` (other tags ignored); None when there is none."""
    versions = [t for t in tags if re.fullmatch(VERSION_PATTERN, t)]
    return max(versions, key=version_key) if versions else None
