"""A promotion train's stages, resolved before anything starts; bad input refused naming the field.

No platform and no Temporal: ``resolve_train`` (engine/promotion.py) and ``deploy.py``'s refusal
(exit 2) with a Temporal address that nothing answers on.
"""

from __future__ import annotations

import textwrap
from datetime import timedelta
from pathlib import Path

import pytest

from engine.config import parse_config
from engine.errors import ConfigError, InputError
from engine.promotion import parse_through, resolve_train
from starters import deploy

CONFIG = """
app: {name: sample-api}
default_environment: staging
environments:
  staging:
    providers: {platform: local, router: haproxy, analysis: prometheus}
    instances: 2
    approvers: [alice]
    local: {state_dir: /tmp/train-unit-staging, port_base: 21000}
    release: {images: {registry: local}}
  production:
    providers: {platform: local, router: haproxy, analysis: prometheus}
    instances: 2
    approvers: [alice, bob]
    local: {state_dir: /tmp/train-unit-production, port_base: 21100}
    release: {images: {registry: local}}
  bare:
    providers: {platform: local, router: haproxy, analysis: prometheus}
    instances: 2
    local: {state_dir: /tmp/train-unit-bare, port_base: 21200}
analysis_templates:
  error-rate:
    metrics:
      - name: error-ratio
        query: sum(rate(http_requests_total{version="{{canary_version}}",code=~"5.."}[5s]))
        failure_condition: result >= 0.05
        interval: 1s
  judge:
    requests: http_requests_total{pool="{{pool}}"}
    errors: http_requests_total{pool="{{pool}}",code=~"5.."}
    slo: {errors: 0.05}
strategies:
  canary:
    steps: [{set_weight: 50}]
    background_analysis: {templates: [error-rate, judge]}
"""


def config(promotion: str = "") -> str:
    return CONFIG + textwrap.dedent(promotion)


def test_the_promotion_section_gives_stages_soaks_and_analysis() -> None:
    cfg = parse_config(
        config("""
        promotion:
          stages:
            - {environment: staging, soak: 30m, analysis: {templates: [error-rate], chunk: 5s}}
            - {environment: production}
        """)
    )
    spec = resolve_train(cfg, "v1.2.3", "canary", requested_by="pytest")
    assert [s.environment for s in spec.stages] == ["staging", "production"]
    assert [s.soak for s in spec.stages] == [timedelta(minutes=30), timedelta(0)]
    assert [r.name for r in spec.stages[0].analysis] == ["error-rate"]
    assert spec.stages[0].chunk == timedelta(seconds=5)
    # production: no analysis of its own -> the environment's background analysis, threshold only
    assert [r.name for r in spec.stages[1].analysis] == ["error-rate"]
    assert spec.stages[1].chunk == timedelta(seconds=5)  # and its chunk
    # each stage is that environment's own release pipeline, on its own platform and registry
    assert spec.stages[1].pipeline.release.environment.approvers == ["alice", "bob"]
    assert spec.stages[1].pipeline.image is not None
    assert spec.stages[1].pipeline.image.registry == "http://127.0.0.1:21155"
    assert all(s.pipeline.expected_digest is None for s in spec.stages)  # the workflow sets it
    assert spec.train_id == "sample-api@v1.2.3: staging -> production"


def test_through_overrides_the_order_and_takes_section_soaks() -> None:
    cfg = parse_config(
        config("promotion: {stages: [{environment: staging, soak: 1h}, {environment: production}]}")
    )
    spec = resolve_train(cfg, "v1.2.3", "canary", through="staging,production")
    assert [s.soak for s in spec.stages] == [timedelta(hours=1), timedelta(0)]
    spec = resolve_train(cfg, "v1.2.3", "canary", through="staging:5s,production")
    assert [s.soak for s in spec.stages] == [timedelta(seconds=5), timedelta(0)]
    assert [s.environment for s in parse_through("production:2h")] == ["production"]


@pytest.mark.parametrize(
    ("promotion", "through", "field"),
    [
        (None, "staging,prod", "--through prod.environment: unknown environment 'prod'"),
        (None, "staging,staging", "--through: environment 'staging' named twice"),
        (None, "staging:soon,production", "--through: the soak of 'staging': 'soon' is not a duration"),
        (None, "staging:-5m,production", "--through: the soak of 'staging': '-5m' is not a duration"),
        (None, ",production", "--through: stage 1 names no environment"),
        (None, "staging,bare", "environments.bare.release.images: not configured"),
        (None, None, "no promotion train: deploy-code.yaml has no promotion section"),
        (
            "promotion: {stages: [{environment: staging, analysis: {templates: [judge]}}, "
            "{environment: production}]}",
            None,
            "promotion.stages.0.analysis.templates: 'judge' is a comparing judge",
        ),
        (
            "promotion: {stages: [{environment: staging, analysis: {templates: [nope]}}, "
            "{environment: production}]}",
            None,
            "promotion.stages.0.analysis.templates: unknown analysis template 'nope'",
        ),
        (
            "promotion: {stages: [{environment: qa}, {environment: production}]}",
            None,
            "promotion.stages.0.environment: unknown environment 'qa'",
        ),
    ],
)
def test_bad_trains_are_refused_naming_the_field(
    promotion: str | None, through: str | None, field: str
) -> None:
    cfg = parse_config(config(promotion or ""))
    with pytest.raises(InputError) as refused:
        resolve_train(cfg, "v1.2.3", "canary", through=through)
    assert field in str(refused.value)


@pytest.mark.parametrize(
    ("promotion", "field"),
    [
        (
            "promotion: {stages: [{environment: staging, soak: half an hour}, {environment: production}]}",
            "promotion.stages.0.soak",
        ),
        (
            "promotion: {stages: [{environment: staging}, {environment: staging}]}",
            "environment 'staging' named twice",
        ),
    ],
)
def test_a_bad_promotion_section_is_refused_at_load(promotion: str, field: str) -> None:
    with pytest.raises(ConfigError) as refused:
        parse_config(config(promotion))
    assert field in str(refused.value)


async def test_deploy_refuses_a_bad_train_with_exit_2_and_starts_nothing(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "deploy-code.yaml"
    path.write_text(config())
    monkeypatch.setenv("TEMPORAL_ADDRESS", "127.0.0.1:1")  # nothing listens: refused before connecting
    code = await deploy.main(["v1.2.3", "canary", "--config", str(path), "--through", "staging,staging"])
    assert code == 2
    assert "named twice" in capsys.readouterr().err
    code = await deploy.main(
        ["v1.2.3", "canary", "--config", str(path), "--through", "staging:5m,production", "--dry-run"]
    )
    assert code == 0
    out = capsys.readouterr().out
    assert "Promotion train sample-api@v1.2.3: staging -> production" in out
    assert "soak 0:05:00 (error-rate)" in out
    assert "the same digest, verified (not re-resolved)" in out
