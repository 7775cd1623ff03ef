"""Two local platforms for a promotion train: ``staging`` and ``production``, each its own stack.

Staging is :func:`harness.stack.running_stack` (with the Temporal dev server the train runs on);
production is a second local platform on its own port block and temp dir (HAProxy, Prometheus,
its own instances and load, its own image registry), without a Temporal server of its own. Both
run v1.0.0 at first. :func:`train_config` is the deploy-code.yaml of the two environments (each
pipeline promotes images in its own registry), :func:`train_spec` resolves a train on them,
:func:`push_both` is CI pushing one build to both registries, :func:`retag` CI pushing another
build under the same tag.
"""

from __future__ import annotations

import contextlib
import textwrap
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from clients.oci import OCI_MANIFEST, RegistryClient
from engine.config import parse_config
from engine.contracts.promotion import TrainSpec
from engine.promotion import resolve_train
from harness.stack import Stack, running_stack
from infrastructure.local import images, platform
from infrastructure.local.layout import Layout

TRAIN_CONFIG = """
app: {name: sample-api}
default_environment: staging
environments:
  staging:
    providers: {platform: local, router: haproxy, analysis: prometheus}
    instances: 2
    approvers: [alice]
    local: {state_dir: %(staging_state)s, port_base: %(staging_port)s}
    release: {images: {registry: local}}
  production:
    providers: {platform: local, router: haproxy, analysis: prometheus}
    instances: 2
    approvers: [alice, bob]
    local: {state_dir: %(production_state)s, port_base: %(production_port)s}
    release: {images: {registry: local}}
%(production_strategies)s
analysis_templates:
  error-rate:
    metrics:
      - name: error-ratio
        query: >-
          (sum(rate(http_requests_total{version="{{canary_version}}",code=~"5.."}[4s])) or vector(0))
          / sum(rate(http_requests_total{version="{{canary_version}}"}[4s]))
        success_condition: result < 0.05
        failure_condition: result >= 0.05
        interval: 1s
        initial_delay: 1s
        inconclusive_limit: 3
strategies:
  canary:
    canary_instances: 1
    steps:
      - set_weight: 50
promotion:
  stages:
    - {environment: staging, soak: %(soak)s, analysis: {templates: [error-rate], chunk: 2s}}
    - {environment: production}
"""
PAUSED_PRODUCTION = """
    strategies:
      canary:
        canary_instances: 1
        steps:
          - set_weight: 50
          - pause: {}
"""
"""Production's canary holds for an approver at 50 %: where an abort of the train finds it."""


@dataclass
class Stacks:
    staging: Stack
    production: Stack

    def config_text(self, *, soak: str = "5s", paused_production: bool = False) -> str:
        return TRAIN_CONFIG % {
            "staging_state": self.staging.layout.state_dir,
            "staging_port": self.staging.layout.port_base,
            "production_state": self.production.layout.state_dir,
            "production_port": self.production.layout.port_base,
            "production_strategies": textwrap.indent(textwrap.dedent(PAUSED_PRODUCTION).strip(), "    ")
            if paused_production
            else "",
            "soak": soak,
        }

    def write_config(self, name: str, **kwargs: object) -> Path:
        path = self.staging.tmp / f"train-{name}.yaml"
        path.write_text(self.config_text(**kwargs))  # type: ignore[arg-type]
        return path

    def train_spec(self, version: str, **kwargs: object) -> TrainSpec:
        config = parse_config(self.config_text(**kwargs))  # type: ignore[arg-type]
        local = {"staging": self.staging.local, "production": self.production.local}
        return resolve_train(config, version, "canary", requested_by="pytest", local=local)

    def push_both(self, version: str) -> str:
        """CI pushes one build of ``version`` to both registries: the same digest in each."""
        digests = {
            images.push(images.registry_url(s.layout), version) for s in (self.staging, self.production)
        }
        assert len(digests) == 1, digests
        return digests.pop()


def retag(stack: Stack, version: str) -> str:
    """CI pushes another build under ``version`` in the stack's CI repository: a new digest."""
    layer, config, manifest = images.build(f"{version}-rebuilt")
    client = RegistryClient(images.registry_url(stack.layout))
    try:
        client.push_blob(images.CI_REPOSITORY, layer)
        client.push_blob(images.CI_REPOSITORY, config)
        return client.put_manifest(images.CI_REPOSITORY, version, manifest, OCI_MANIFEST)
    finally:
        client.close()


@contextlib.contextmanager
def running_stacks(tmp: Path) -> Iterator[Stacks]:
    """Staging (with Temporal) and production, two local platforms, torn down on exit."""
    for name in ("staging", "production"):
        (tmp / name).mkdir(parents=True, exist_ok=True)
    with running_stack(tmp / "staging") as staging:
        layout = Layout.for_tests(tmp / "production")
        try:
            platform.up(layout, instances=2, traffic_rps=40, temporal=False)
            production = Stack(
                layout=layout, tmp=tmp / "production", temporal_address=staging.temporal_address
            )
            yield Stacks(staging=staging, production=production)
        finally:
            platform.down(layout)
