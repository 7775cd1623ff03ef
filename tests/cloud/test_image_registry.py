"""ECR behind the ``images`` capability: deploy-code.yaml selects it, the pipeline activities use it.

The image plan is resolved by ``engine.pipeline.resolve_pipeline`` from an environment whose
``release.images`` says ``provider: ecr`` (region and role from its ``aws`` settings, pointed at
moto), and the real ``image.resolve`` / ``image.promote`` activity functions run against moto.
moto computes a wrong digest unless ``imageDigest`` is passed: CI's image is put with its digest,
and the provider always passes it (as against AWS).
"""

from __future__ import annotations

import hashlib
import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from temporalio.exceptions import ApplicationError

from activities import registry
from activities.pipeline_definitions import promote_image, resolve_image
from clients import aws
from clients.ecr import EcrImages
from clients.oci import RegistryClient
from engine.config import InputError, parse_config, resolve_release
from engine.contracts import AwsSettings
from engine.contracts.pipeline import ImageLookup, ImageSpec, PipelineSpec, PromoteRequest
from engine.pipeline import resolve_pipeline
from harness.cloud import unique
from starters.pipeline import print_pipeline_plan

REPO = Path(__file__).resolve().parents[2]
CONFIG = """
app: {name: sample-api}
default_environment: staging
environments:
  staging:
    providers: {platform: local, router: haproxy, analysis: prometheus}  # only the images provider is on AWS
    instances: 2
    %(aws)s
    release:
      images: {provider: %(provider)s, ci_repository: "%(ci)s", production_repository: "%(prod)s"}
strategies:
  canary: {steps: [{set_weight: 50}]}
"""


def _manifest(build: str) -> str:
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


def pipeline_spec(settings: AwsSettings | None, ci: str, prod: str, provider: str = "ecr") -> PipelineSpec:
    aws_line = f"aws: {settings.model_dump_json(exclude_none=True)}" if settings else ""
    config = parse_config(CONFIG % {"aws": aws_line, "provider": provider, "ci": ci, "prod": prod})
    return resolve_pipeline(config, resolve_release(config, "v1.4.0", "canary", "staging"))


def image_spec(settings: AwsSettings | None, ci: str, prod: str, provider: str = "ecr") -> ImageSpec:
    image = pipeline_spec(settings, ci, prod, provider).image
    assert image is not None
    return image


def test_ecr_is_selected_by_config_and_promotes_through_the_activities(
    aws_settings: AwsSettings, capsys: pytest.CaptureFixture[str]
) -> None:
    ecr = aws.client(aws_settings, "ecr")
    ci, prod = unique("ci/sample-api"), unique("sample-api")
    ecr.create_repository(repositoryName=ci)
    ecr.create_repository(repositoryName=prod, imageTagMutability="IMMUTABLE")
    digests = {}
    for build in ("build-1", "build-2"):
        body = _manifest(build)
        digests[build] = "sha256:" + hashlib.sha256(body.encode()).hexdigest()
        ecr.put_image(repositoryName=ci, imageManifest=body, imageTag=build, imageDigest=digests[build])
    ecr.put_image(repositoryName=ci, imageManifest=_manifest("build-1"), imageTag="v1.4.0")

    pipeline = pipeline_spec(aws_settings, ci, prod)
    image = pipeline.image
    assert image is not None
    assert (image.provider, image.aws, image.tag) == ("ecr", aws_settings, "v1.4.0")
    assert isinstance(registry.images(image), EcrImages)
    # The starter's dry run resolves CI's digest through the same provider.
    print_pipeline_plan(pipeline)
    assert (
        f"would promote ECR eu-west-1/{ci}:v1.4.0 = {digests['build-1']} to {prod}:v1.4.0"
        in capsys.readouterr().out
    )

    found = resolve_image(ImageLookup(image=image, repository=image.ci_repository))
    assert found.digest == digests["build-1"]
    result = promote_image(PromoteRequest(image=image, digest=digests["build-1"]))
    assert (result.digest, result.previous_digest) == (digests["build-1"], None)
    stored = ecr.batch_get_image(repositoryName=prod, imageIds=[{"imageTag": "v1.4.0"}])["images"][0]
    assert stored["imageId"]["imageDigest"] == digests["build-1"]
    # Idempotent: promoting again is success and changes nothing.
    again = promote_image(PromoteRequest(image=image, digest=digests["build-1"]))
    assert again.previous_digest == digests["build-1"]
    # A release tag does not move: another digest under v1.4.0 is refused, non-retryable.
    with pytest.raises(ApplicationError, match="already points to") as refused:
        promote_image(PromoteRequest(image=image, digest=digests["build-2"]))
    assert refused.value.non_retryable
    stored = ecr.batch_get_image(repositoryName=prod, imageIds=[{"imageTag": "v1.4.0"}])["images"][0]
    assert stored["imageId"]["imageDigest"] == digests["build-1"]


def test_image_provider_is_refused_at_resolve_when_it_cannot_work() -> None:
    with pytest.raises(
        InputError, match=r"provider ecr takes region and role from environments\.staging\.aws"
    ):
        image_spec(None, "ci/{app}", "{app}")
    with pytest.raises(InputError, match="no images provider named 'gcr'"):
        image_spec(AwsSettings(region="eu-west-1"), "ci/{app}", "{app}", provider="gcr")


def test_oci_is_the_default_images_provider() -> None:
    spec = ImageSpec(registry="http://127.0.0.1:1", ci_repository="ci/a", production_repository="a", tag="v1")
    client = registry.images(spec)
    try:
        assert isinstance(client, RegistryClient)
        assert client.url == "http://127.0.0.1:1"
    finally:
        client.close()


PROTOCOL_CHECK = """
from clients.ecr import EcrImages
from clients.oci import RegistryClient
from activities.interfaces import ImageRegistry
from engine.contracts.pipeline import ImageSpec


def check(spec: ImageSpec) -> None:
    oci: ImageRegistry = RegistryClient.from_spec(spec)
    ecr: ImageRegistry = EcrImages.from_spec(spec)
"""


@pytest.mark.skipif(shutil.which("mypy", path=str(Path(sys.executable).parent)) is None, reason="no mypy")
def test_both_image_providers_satisfy_the_protocol(tmp_path: Path) -> None:
    def mypy(source: str) -> subprocess.CompletedProcess[str]:
        path = tmp_path / "image_protocol_check.py"
        path.write_text(source)
        argv = [sys.executable, "-m", "mypy", "--follow-imports=silent", "--ignore-missing-imports"]
        argv += ["--no-error-summary", "--cache-dir", str(tmp_path / "mypy-cache"), str(path)]
        return subprocess.run(argv, cwd=REPO, capture_output=True, text=True, timeout=180, check=False)

    ok = mypy(PROTOCOL_CHECK)
    assert ok.returncode == 0, ok.stdout + ok.stderr
    wrong = mypy(PROTOCOL_CHECK.replace("EcrImages.from_spec(spec)", "object()"))  # the check can fail
    assert wrong.returncode != 0
