"""Provider settings and query languages are checked when a release is resolved, before anything runs.

Also: every environment of the shipped deploy-code.yaml resolves for every strategy it can run,
so a placeholder that no longer matches the contracts is caught here, not at the first real call.
"""

from __future__ import annotations

import textwrap

import pytest

from engine.config import DEFAULT_CONFIG, InputError, load_config, parse_config, resolve_release

PROMQL = 'sum(rate(http_requests_total{version="{{canary_version}}",code=~"5.."}[1m]))'
CLOUDWATCH = (
    '{"MetricStat": {"Metric": {"Namespace": "{{app}}", "MetricName": "http_5xx_ratio"}, "Stat": "Average"}}'
)
AWS = """
    aws:
      region: eu-west-1
      listener_arn: "arn:aws:elasticloadbalancing:eu-west-1:123456789012:listener/app/x/1/2"
      target_groups: {blue: "arn:tg-blue", green: "arn:tg-green"}
"""
KUBE = """
    kubernetes: {app: sample-api, image: registry/sample-api, namespace: shop}
"""


def config(providers: str, settings: str, query: str) -> str:
    return (
        textwrap.dedent(f"""
        app: {{name: sample-api}}
        default_environment: staging
        environments:
          staging:
            providers: {{{providers}}}
            instances: 2
            approvers: [alice]
        """)
        + textwrap.indent(textwrap.dedent(settings), "    ")
        + textwrap.dedent(f"""
        analysis_templates:
          errors:
            metrics:
              - name: errors
                query: '{query}'
                success_condition: result < 0.05
                count: 1
        strategies:
          canary:
            steps:
              - set_weight: 10
              - analysis: {{templates: [errors]}}
        """)
    )


def resolve(providers: str, settings: str, query: str) -> object:
    return resolve_release(parse_config(config(providers, settings, query)), "v1.2.3", "canary", "staging")


AWS_KUBE = "platform: kubernetes, router: alb, analysis: cloudwatch"


def test_a_complete_aws_environment_resolves() -> None:
    spec = resolve(AWS_KUBE, AWS + KUBE, CLOUDWATCH)
    assert spec.environment.aws is not None and spec.environment.kubernetes is not None  # type: ignore[attr-defined]


@pytest.mark.parametrize(
    ("providers", "settings", "query", "message"),
    [
        (AWS_KUBE, KUBE, CLOUDWATCH, "router and analysis on AWS need environments.staging.aws"),
        (AWS_KUBE, AWS, CLOUDWATCH, "platform on Kubernetes need environments.staging.kubernetes"),
        (
            AWS_KUBE,
            AWS.replace('      target_groups: {blue: "arn:tg-blue", green: "arn:tg-green"}\n', "") + KUBE,
            CLOUDWATCH,
            "the ALB router needs listener_arn (or rule_arn) and target_groups for blue and green",
        ),
        (AWS_KUBE, AWS + KUBE, PROMQL, "is not a CloudWatch query"),
        ("platform: local, router: haproxy, analysis: prometheus", "", CLOUDWATCH, "is a CloudWatch query"),
    ],
    ids=[
        "alb-without-aws",
        "kubernetes-without-settings",
        "alb-without-target-groups",
        "promql-on-cloudwatch",
        "cloudwatch-on-prometheus",
    ],
)
def test_missing_settings_and_wrong_query_language_are_refused(
    providers: str, settings: str, query: str, message: str
) -> None:
    with pytest.raises(InputError, match=message.replace("(", r"\(").replace(")", r"\)")):
        resolve(providers, settings, query)


# What each shipped environment's router cannot do (ROUTER_CAPABILITIES): refused, with the reason.
CANNOT = {("staging", "rolling"): "cannot drain", ("production", "rolling"): "cannot drain"}


@pytest.mark.parametrize("strategy", ["canary", "blue-green", "rolling"])
@pytest.mark.parametrize("environment", ["local", "staging", "production"])
def test_every_shipped_environment_resolves_each_strategy_it_can_run(environment: str, strategy: str) -> None:
    shipped = load_config(DEFAULT_CONFIG)
    if (environment, strategy) in CANNOT:
        with pytest.raises(InputError, match=CANNOT[environment, strategy]):
            resolve_release(shipped, "v1.2.3", strategy, environment)
        return
    spec = resolve_release(shipped, "v1.2.3", strategy, environment)
    assert spec.environment.name == environment and spec.strategy == strategy
