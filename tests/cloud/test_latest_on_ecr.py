"""``latest`` on ECR (moto): the newest semantic-version tag of the CI repository, and its digest."""

from __future__ import annotations

import hashlib
import json

import pytest

from clients import aws
from engine.config import parse_config
from engine.contracts import AwsSettings
from engine.errors import InputError
from harness.cloud import unique
from starters.latest import resolve_latest

CONFIG = """
app: {name: sample-api}
default_environment: staging
environments:
  staging:
    providers: {platform: local, router: haproxy, analysis: prometheus}  # only the images provider is on AWS
    instances: 2
    aws: %(aws)s
    release:
      images: {provider: ecr, ci_repository: "%(ci)s", production_repository: "%(ci)s-prod"}
strategies:
  canary: {steps: [{set_weight: 50}]}
"""


def manifest(build: str) -> str:
    return json.dumps(
        {
            "schemaVersion": 2,
            "mediaType": "application/vnd.docker.distribution.manifest.v2+json",
            "config": {
                "mediaType": "application/vnd.docker.container.image.v1+json",
                "size": 7,
                "digest": "sha256:" + hashlib.sha256(build.encode()).hexdigest(),
            },
            "layers": [],
        }
    )


def test_latest_is_the_newest_semver_tag_of_the_ecr_ci_repository(aws_settings: AwsSettings) -> None:
    ecr = aws.client(aws_settings, "ecr")
    ci = unique("ci/sample-api")
    ecr.create_repository(repositoryName=ci)
    digests = {}
    for tag in ("v1.9.0", "v1.10.0", "v1.10.1-rc.1", "latest", "main"):
        body = manifest(tag)
        digests[tag] = "sha256:" + hashlib.sha256(body.encode()).hexdigest()
        ecr.put_image(repositoryName=ci, imageManifest=body, imageTag=tag, imageDigest=digests[tag])
    config = parse_config(CONFIG % {"aws": aws_settings.model_dump_json(exclude_none=True), "ci": ci})

    found = resolve_latest(config, "canary", "staging")

    assert (found.version, found.digest) == ("v1.10.1-rc.1", digests["v1.10.1-rc.1"])
    assert found.repository == f"ECR {aws_settings.region}/{ci}"


def test_latest_without_a_version_tag_is_refused_naming_the_repository(aws_settings: AwsSettings) -> None:
    ecr = aws.client(aws_settings, "ecr")
    ci = unique("ci/sample-api")
    ecr.create_repository(repositoryName=ci)
    body = manifest("main")
    digest = "sha256:" + hashlib.sha256(body.encode()).hexdigest()
    ecr.put_image(repositoryName=ci, imageManifest=body, imageTag="main", imageDigest=digest)
    config = parse_config(CONFIG % {"aws": aws_settings.model_dump_json(exclude_none=True), "ci": ci})
    with pytest.raises(InputError, match=f"no semantic-version tag in ECR .*/{ci} \\(tags: main\\)"):
        resolve_latest(config, "canary", "staging")
    missing = parse_config(
        CONFIG % {"aws": aws_settings.model_dump_json(exclude_none=True), "ci": ci + "-gone"}
    )
    with pytest.raises(InputError, match="tags: none"):
        resolve_latest(missing, "canary", "staging")
