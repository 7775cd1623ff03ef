"""Image provider: an OCI / Docker registry through its HTTP API (distribution v2).

Promotion copies by digest: the manifest is read from the source repository by
digest, its blobs are mounted into the target repository (no bytes move when both
live in one registry, pushed otherwise), and the same manifest bytes are put under
the release tag. The registry answers with the digest it stored, which must be the
one CI built. A release tag never moves: the tag already at that digest is success, at
another digest it is refused. The ``images`` provider ``oci`` (activities/registry.py).
"""

from __future__ import annotations

import hashlib
import json
import re
from typing import Any

import httpx

from engine import tracing
from engine.contracts.pipeline import ImageSpec
from engine.errors import BadRequest

MANIFEST_TYPES = ", ".join(
    (
        "application/vnd.oci.image.manifest.v1+json",
        "application/vnd.docker.distribution.manifest.v2+json",
        "application/vnd.oci.image.index.v1+json",
        "application/vnd.docker.distribution.manifest.list.v2+json",
    )
)
"""Without this Accept header the registry answers 404 to a manifest HEAD or GET."""
OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"


_API_PATH = re.compile(r"^/v2/(?P<repository>.+?)/(?P<kind>manifests|blobs|tags)(?:/(?P<reference>[^/?]+))?")


def sha256(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


class _TracedTransport(httpx.HTTPTransport):
    """Every registry call in a span: method, repository, what (manifests, blobs, tags), reference."""

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        found = _API_PATH.match(request.url.path)
        parts = found.groupdict() if found else {}
        name = f"registry {request.method} {parts.get('kind') or 'api'}"
        attrs = {f"registry.{k}": v for k, v in parts.items()} | {"registry.url": str(request.url)}
        with tracing.span(name, **attrs) as current:
            response = super().handle_request(request)
            if current is not None:
                current.set_attribute("http.response.status_code", response.status_code)
            return response


class RegistryClient:
    """A few calls of the distribution API, enough to push, resolve, read and promote."""

    def __init__(self, url: str, *, timeout: float = 10.0) -> None:
        self.url = url.rstrip("/")
        self._http = httpx.Client(base_url=self.url, timeout=timeout, transport=_TracedTransport())

    @classmethod
    def from_spec(cls, spec: ImageSpec) -> RegistryClient:
        return cls(spec.registry)

    # ---- reading -----------------------------------------------------------------------------
    def resolve(self, repository: str, reference: str) -> str | None:
        """The digest of ``repository:reference`` (a tag or a digest), or None if absent."""
        r = self._http.head(f"/v2/{repository}/manifests/{reference}", headers={"Accept": MANIFEST_TYPES})
        if r.status_code == 404:
            return None
        r.raise_for_status()
        return r.headers["Docker-Content-Digest"]

    def manifest(self, repository: str, reference: str) -> tuple[bytes, str, str]:
        """Raw manifest bytes, media type and digest (checked against the bytes)."""
        r = self._http.get(f"/v2/{repository}/manifests/{reference}", headers={"Accept": MANIFEST_TYPES})
        if r.status_code == 404:
            msg = f"{self.url}/{repository}:{reference} does not exist"
            raise BadRequest(msg)
        r.raise_for_status()
        digest = sha256(r.content)
        if reference.startswith("sha256:") and digest != reference:
            msg = f"registry returned a manifest of digest {digest} for {reference}"
            raise RuntimeError(msg)
        return r.content, r.headers.get("Content-Type", OCI_MANIFEST), digest

    def blob(self, repository: str, digest: str) -> bytes:
        r = self._http.get(f"/v2/{repository}/blobs/{digest}", follow_redirects=True)
        r.raise_for_status()
        if sha256(r.content) != digest:
            msg = f"blob {digest} of {repository} does not match its digest"
            raise RuntimeError(msg)
        return r.content

    def tags(self, repository: str) -> list[str]:
        r = self._http.get(f"/v2/{repository}/tags/list")
        if r.status_code == 404:
            return []
        r.raise_for_status()
        return sorted(r.json().get("tags") or [])

    # ---- writing -----------------------------------------------------------------------------
    def has_blob(self, repository: str, digest: str) -> bool:
        return self._http.head(f"/v2/{repository}/blobs/{digest}").status_code == 200

    def push_blob(self, repository: str, data: bytes) -> str:
        digest = sha256(data)
        if self.has_blob(repository, digest):
            return digest
        r = self._http.post(f"/v2/{repository}/blobs/uploads/")
        r.raise_for_status()
        location = r.headers["Location"]
        sep = "&" if "?" in location else "?"
        put = self._http.put(
            f"{location}{sep}digest={digest}",
            content=data,
            headers={"Content-Type": "application/octet-stream"},
        )
        put.raise_for_status()
        return digest

    def mount_blob(self, source: str, target: str, digest: str) -> None:
        """Make ``digest`` of ``source`` available in ``target`` (cross-repository mount)."""
        if self.has_blob(target, digest):
            return
        r = self._http.post(f"/v2/{target}/blobs/uploads/", params={"mount": digest, "from": source})
        if r.status_code == 201:
            return
        r.raise_for_status()
        # 202: the registry would rather take the bytes; cancel that upload and push them.
        self._http.delete(r.headers["Location"])
        self.push_blob(target, self.blob(source, digest))

    def put_manifest(self, repository: str, reference: str, body: bytes, media_type: str) -> str:
        r = self._http.put(
            f"/v2/{repository}/manifests/{reference}", content=body, headers={"Content-Type": media_type}
        )
        r.raise_for_status()
        return r.headers.get("Docker-Content-Digest") or sha256(body)

    # ---- the operations the pipeline uses ------------------------------------------------------
    def promote(self, source: str, digest: str, target: str, tag: str) -> str:
        """Copy ``source@digest`` to ``target:tag`` by digest; returns the digest now under the tag."""
        body, media_type, got = self.manifest(source, digest)
        manifest: dict[str, Any] = json.loads(body)
        if "manifests" in manifest:
            msg = f"{source}@{digest} is an index; promote a single-platform image"
            raise BadRequest(msg)
        current = self.resolve(target, tag)
        if current == got:
            return got
        if current is not None:
            msg = f"{target}:{tag} already points to {current}; a release tag does not move"
            raise BadRequest(msg)
        for blob in [manifest["config"], *manifest.get("layers", [])]:
            self.mount_blob(source, target, blob["digest"])
        stored = self.put_manifest(target, tag, body, media_type)
        if stored != got:
            msg = f"the registry stored {target}:{tag} as {stored}, not {got}"
            raise RuntimeError(msg)
        return stored

    def close(self) -> None:
        self._http.close()
