"""engine/tracing.py when tracing is off: what turns it on, and that off costs nothing."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from engine import tracing
from harness.support import REPO


@pytest.mark.parametrize(
    ("environ", "on"),
    [
        ({}, False),
        ({"OTEL_EXPORTER_OTLP_ENDPOINT": "http://localhost:4318"}, True),
        ({"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": "http://tempo:4318/v1/traces"}, True),
        ({"OTEL_EXPORTER_OTLP_ENDPOINT": "  "}, False),
        ({"OTEL_EXPORTER_OTLP_ENDPOINT": "http://localhost:4318", "OTEL_SDK_DISABLED": "true"}, False),
    ],
)
def test_an_otlp_endpoint_turns_tracing_on(environ: dict[str, str], on: bool) -> None:
    assert tracing.requested(environ) is on


def test_without_an_endpoint_nothing_is_set_up_and_spans_are_no_ops(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in tracing.ENDPOINT_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    assert tracing.configure("deploy-code-test") is False
    assert not tracing.enabled()
    assert tracing.interceptors() == []
    with tracing.span("haproxy set server", command="set server app/blue0 weight 1") as span:
        assert span is None
    assert tracing.start("aws elbv2.DescribeLoadBalancers") is None
    tracing.end(None, "AccessDenied")
    tracing.shutdown()


def test_off_imports_nothing_of_opentelemetry() -> None:
    code = (
        "import sys\n"
        "from engine import tracing\n"
        "with tracing.span('prometheus query', query='up'):\n"
        "    pass\n"
        "print(sorted(m for m in sys.modules if m.startswith('opentelemetry')))\n"
    )
    env = {k: v for k, v in os.environ.items() if k not in tracing.ENDPOINT_VARIABLES}
    argv = [sys.executable, "-c", code]
    out = subprocess.run(argv, check=False, cwd=REPO, env=env, capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[]"
