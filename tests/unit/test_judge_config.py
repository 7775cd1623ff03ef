"""Comparing-judge templates in deploy-code.yaml: refused at load or resolve, naming the field."""

from __future__ import annotations

import pytest

from engine.config import parse_config, resolve_release
from engine.errors import ConfigError, InputError

CONFIG = """
app: {name: sample-api}
environments:
  local:
    providers: {platform: local, router: %(router)s, analysis: prometheus}
    instances: 2
    kubernetes: {app: sample-api, image: registry/sample-api}
analysis_templates:
  judge:
%(template)s
strategies:
  canary:
    baseline: %(baseline)s
    steps:
      - set_weight: 25
      - analysis: {templates: [judge]}
"""
GOOD = """\
    requests: http_requests_total{pool="{{pool}}"}
    errors: http_requests_total{pool="{{pool}}",code=~"5.."}
    latency: http_request_duration_seconds_bucket{pool="{{pool}}"}
    slo: {errors: 0.001, latency: {quantile: 0.95, below: 0.5}}"""


def config(template: str = GOOD, *, router: str = "haproxy", baseline: str = "fresh") -> str:
    return CONFIG % {"template": template, "router": router, "baseline": baseline}


def test_a_sequential_judge_resolves_with_its_defaults() -> None:
    spec = resolve_release(parse_config(config()), "v1.2.3", "canary", "local")
    assert spec.canary is not None and spec.canary.baseline == "fresh"
    judge = spec.canary.steps[1].analyses[0].judge
    assert judge is not None
    assert (judge.judge, judge.alpha, judge.min_requests, judge.tolerance) == ("sequential", 0.01, 100, 1.0)
    assert spec.analysis_refs()[0].metrics == []


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (
            "    judge: bayes\n",
            r"analysis_templates\.judge: Input should be 'threshold', 'sequential' or 'mann-whitney'",
        ),
        ("    alpha: 0.7\n", r"analysis_templates\.judge\.alpha: Input should be less than or equal to 0\.5"),
        ("    alpha: 0\n", r"analysis_templates\.judge\.alpha: Input should be greater than 0"),
        (
            "    min_requests: 0\n",
            r"analysis_templates\.judge\.min_requests: Input should be greater than or equal to 1",
        ),
        ("    tolerance: 0.5\n", r"analysis_templates\.judge\.tolerance"),
        ("    judge: mann-whitney\n", r"a mann-whitney judge needs metrics to compare"),
        ("    window: 100ms\n", r"interval \(.*\) must be >= 500ms and window"),
    ],
)
def test_bad_judge_settings_are_refused_naming_the_field(change: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        parse_config(config(change + GOOD))


def test_an_slo_on_a_metric_the_template_does_not_define_is_refused() -> None:
    without_latency = "\n".join(line for line in GOOD.splitlines() if not line.startswith("    latency:"))
    with pytest.raises(
        ConfigError, match=r"slo\.latency guards the latency, but the template defines no latency"
    ):
        parse_config(config(without_latency))
    without_errors = "\n".join(line for line in GOOD.splitlines() if not line.startswith("    errors:"))
    with pytest.raises(
        ConfigError, match=r"slo\.errors guards the error ratio, but the template defines no errors"
    ):
        parse_config(config(without_errors))


def test_judge_fields_on_a_threshold_template_are_refused() -> None:
    threshold = "    metrics: [{name: m, query: q, success_condition: result < 1, count: 1}]\n    alpha: 0.05"
    with pytest.raises(ConfigError, match="alpha: only for a comparing judge"):
        parse_config(config(threshold))


def test_an_unknown_placeholder_is_refused() -> None:
    with pytest.raises(ConfigError, match=r"unknown placeholder \{\{tier\}\}"):
        parse_config(config(GOOD.replace("{{pool}}", "{{tier}}", 1)))


def test_a_fresh_baseline_needs_a_router_that_splits_three_ways() -> None:
    with pytest.raises(
        InputError, match=r"sends a third pool .* 'kubernetes', which cannot split traffic three ways"
    ):
        resolve_release(parse_config(config(router="kubernetes")), "v1.2.3", "canary", "local")
    stable = resolve_release(
        parse_config(config(router="kubernetes", baseline="stable")), "v1.2.3", "canary", "local"
    )
    assert stable.canary is not None and stable.canary.baseline == "stable"
