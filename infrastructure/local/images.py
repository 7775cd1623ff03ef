"""OCI images of the sample service in the local registry, written without Docker.

    python -m infrastructure.local.images push v1.2.3 [--repository ci/sample-api]
    python -m infrastructure.local.images list

An image is a real OCI image: one tar.gz layer holding ``app/VERSION`` (the version
the service reports), a config blob and an OCI manifest. Built reproducibly (fixed
mtimes, gzip without timestamp), so one version always has one digest.

CI pushes to ``ci/APP``; a release promotes by digest to ``production/APP``. The
local platform then runs what the production repository holds: :func:`pin` reads
the image's ``app/VERSION`` and records the digest a pool was started from.
"""

from __future__ import annotations

import argparse
import gzip
import io
import json
import sys
import tarfile
from pathlib import Path

from clients.oci import OCI_MANIFEST, RegistryClient, sha256
from infrastructure.local import processes
from infrastructure.local.layout import APP_LABEL, Layout

CI_REPOSITORY = f"ci/{APP_LABEL}"
PRODUCTION_REPOSITORY = f"production/{APP_LABEL}"
VERSION_FILE = "app/VERSION"


class ImageError(RuntimeError):
    """An image is missing or does not hold what its tag says."""


def build(version: str) -> tuple[bytes, bytes, bytes]:
    """Layer (tar.gz), config and manifest bytes of the image of ``version``."""
    tar_buf = io.BytesIO()
    with tarfile.open(fileobj=tar_buf, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for name, data in ((VERSION_FILE, f"{version}\n".encode()), ("app/SERVICE", b"sample_service\n")):
            info = tarfile.TarInfo(name)
            info.size, info.mtime, info.mode = len(data), 0, 0o644
            tar.addfile(info, io.BytesIO(data))
    raw = tar_buf.getvalue()
    layer = gzip.compress(raw, mtime=0)
    config = json.dumps(
        {
            "architecture": "amd64",
            "os": "linux",
            "config": {
                "Cmd": ["python", "-m", "infrastructure.local.sample_service"],
                "Labels": {"org.opencontainers.image.version": version},
            },
            "rootfs": {"type": "layers", "diff_ids": [sha256(raw)]},
        },
        sort_keys=True,
    ).encode()
    manifest = json.dumps(
        {
            "schemaVersion": 2,
            "mediaType": OCI_MANIFEST,
            "config": {
                "mediaType": "application/vnd.oci.image.config.v1+json",
                "digest": sha256(config),
                "size": len(config),
            },
            "layers": [
                {
                    "mediaType": "application/vnd.oci.image.layer.v1.tar+gzip",
                    "digest": sha256(layer),
                    "size": len(layer),
                }
            ],
            "annotations": {"org.opencontainers.image.version": version},
        },
        sort_keys=True,
    ).encode()
    return layer, config, manifest


def registry_url(layout: Layout) -> str:
    return f"http://127.0.0.1:{layout.registry_port}"


def push(url: str, version: str, repository: str = CI_REPOSITORY) -> str:
    """Push the image of ``version`` as ``repository:version``; returns its digest (idempotent)."""
    layer, config, manifest = build(version)
    client = RegistryClient(url)
    try:
        client.push_blob(repository, layer)
        client.push_blob(repository, config)
        return client.put_manifest(repository, version, manifest, OCI_MANIFEST)
    finally:
        client.close()


def read_version(client: RegistryClient, repository: str, reference: str) -> tuple[str, str]:
    """``(digest, version)`` of an image: the version is read from the layer's ``app/VERSION``."""
    body, _, digest = client.manifest(repository, reference)
    manifest = json.loads(body)
    for layer in manifest.get("layers", []):
        data = gzip.decompress(client.blob(repository, layer["digest"]))
        with tarfile.open(fileobj=io.BytesIO(data)) as tar:
            try:
                member = tar.extractfile(VERSION_FILE)
            except KeyError:
                continue
            if member is not None:
                return digest, member.read().decode().strip()
    msg = f"{repository}@{digest} holds no {VERSION_FILE}"
    raise ImageError(msg)


def _pins_dir(layout: Layout) -> Path:
    return layout.state_dir / "registry" / "pins"


def registry_running(layout: Layout) -> bool:
    return processes.running_pid(layout.pidfile("registry"), ["registry"]) is not None


def pin(layout: Layout, pool: str, version: str) -> str | None:
    """Before a pool starts ``version``: the digest it runs, from the production repository.

    Returns None (nothing pinned) when the registry does not run or production has no
    ``version`` (a strategy started on its own, outside the release pipeline). Raises
    :class:`ImageError` when the promoted image holds another version than its tag.
    """
    pins = _pins_dir(layout)
    if not registry_running(layout):
        return None
    client = RegistryClient(registry_url(layout))
    try:
        if client.resolve(PRODUCTION_REPOSITORY, version) is None:
            (pins / f"{pool}.json").unlink(missing_ok=True)
            return None
        digest, content = read_version(client, PRODUCTION_REPOSITORY, version)
    finally:
        client.close()
    if content != version:
        msg = f"{PRODUCTION_REPOSITORY}:{version} ({digest}) holds version {content!r}"
        raise ImageError(msg)
    pins.mkdir(parents=True, exist_ok=True)
    (pins / f"{pool}.json").write_text(json.dumps({"pool": pool, "version": content, "digest": digest}))
    return digest


def unpin(layout: Layout, pool: str) -> None:
    (_pins_dir(layout) / f"{pool}.json").unlink(missing_ok=True)


def pins(layout: Layout) -> dict[str, dict[str, str]]:
    """Pool -> ``{version, digest}`` the pool's instances were started from."""
    out = {}
    for path in sorted(_pins_dir(layout).glob("*.json")):
        try:
            data = json.loads(path.read_text())
        except (OSError, ValueError):
            continue
        out[data["pool"]] = data
    return out


def seed(layout: Layout, versions: list[str], production: list[str]) -> dict[str, str]:
    """Push ``versions`` to CI and ``production`` to both repositories (what ``up`` does)."""
    url = registry_url(layout)
    digests = {v: push(url, v, CI_REPOSITORY) for v in versions}
    client = RegistryClient(url)
    try:
        for v in production:
            client.promote(CI_REPOSITORY, digests[v], PRODUCTION_REPOSITORY, v)
    finally:
        client.close()
    return digests


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m infrastructure.local.images", description=__doc__)
    parser.add_argument("--state-dir", type=Path, default=None)
    parser.add_argument("--port-base", type=int, default=None)
    sub = parser.add_subparsers(dest="cmd", required=True)
    p = sub.add_parser("push", help="build and push the image of a version (CI's job)")
    p.add_argument("version")
    p.add_argument("--repository", default=CI_REPOSITORY)
    sub.add_parser("list", help="tags and digests of the CI and production repositories")
    args = parser.parse_args(argv)
    layout = Layout.from_env(state_dir=args.state_dir, port_base=args.port_base)
    url = registry_url(layout)
    if args.cmd == "push":
        print(f"{args.repository}:{args.version} {push(url, args.version, args.repository)}")
        return 0
    client = RegistryClient(url)
    for repo in (CI_REPOSITORY, PRODUCTION_REPOSITORY):
        for tag in client.tags(repo):
            print(f"{repo}:{tag} {client.resolve(repo, tag)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
