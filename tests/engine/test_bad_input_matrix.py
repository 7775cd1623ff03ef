"""Bad input is refused with a clear message and changes nothing (issue 8, bad-input matrix).

Each case compares the platform before and after: instances, router weights and the
list of workflow runs. The starters run in-process (they connect to Temporal only
after validating their input). Also here: a PromQL query that does not parse fails the
release before any change, and two concurrent starts on one environment.
"""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Any

import pytest
from temporalio.api.enums.v1 import EventType
from temporalio.client import Client

from engine import temporal
from engine.client import Refused, control_target, start_or_attach
from engine.config import parse_config, resolve_release
from engine.contracts import Control, ReleaseResult, ReleaseSpec, ReleaseStatus
from harness.stack import Stack, new_version
from infrastructure.local.instances import InstanceManager
from starters import control, deploy

Snapshot = tuple[list[str], dict[str, int], list[str]]


async def snapshot(client: Client, stack: Stack) -> Snapshot:
    """Instances, router weights and workflow runs: what a refused request must not change."""
    return (
        sorted(i.model_dump_json() for i in InstanceManager(stack.layout).list(probe=False)),
        stack.weights(),
        sorted([w.run_id async for w in client.list_workflows()]),
    )


@pytest.fixture
def starters_env(stack: Stack, task_queue: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """The in-process starters aim at this stack and the test's task queue."""
    for name, value in stack.layout.env().items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("TEMPORAL_ADDRESS", stack.temporal_address)
    monkeypatch.setattr(temporal, "TASK_QUEUE", task_queue)


# --------------------------------------------------------------------------- #
# deploy: versions, strategies, environments, configuration
# --------------------------------------------------------------------------- #

QUERY = '{{canary_version}}",code'
CONDITION = "success_condition: result < 0.05"
# (id, version, strategy, extra args, steps, replacements in the config text, expected message)
Case = tuple[str, str, str, list[str], str, list[tuple[str, str]], str]
W20 = "- set_weight: 20"
CASES: list[Case] = [
    ("version-empty", "", "canary", [], W20, [], "version '' is malformed"),
    ("version-too-long", "v1.2.3-" + "a" * 60, "canary", [], W20, [], "is malformed: expected a semantic"),
    ("version-path", "../../etc/passwd", "canary", [], W20, [], "version '../../etc/passwd' is malformed"),
    ("version-path-suffix", "v1.2.3/../x", "canary", [], W20, [], "version 'v1.2.3/../x' is malformed"),
    ("version-semicolon", "v1.2.3;rm -rf /", "canary", [], W20, [], "'v1.2.3;rm -rf /' is malformed"),
    ("version-subshell", "v1.2.3$(reboot)", "canary", [], W20, [], "'v1.2.3$(reboot)' is malformed"),
    ("version-backticks", "v1.2.3`id`", "canary", [], W20, [], "'v1.2.3`id`' is malformed"),
    ("version-space", "v1.2.3 v1.2.4", "canary", [], W20, [], "'v1.2.3 v1.2.4' is malformed"),
    ("version-newline", "v1.2.3\n", "canary", [], W20, [], "'v1.2.3\\n' is malformed"),
    ("version-upper-v", "V1.2.3", "canary", [], W20, [], "version 'V1.2.3' is malformed"),
    ("version-two-parts", "1.2", "canary", [], W20, [], "version '1.2' is malformed"),
    ("strategy-case", "v1.2.3", "Canary", [], W20, [], "unknown strategy 'Canary' (strategy names are lower"),
    ("strategy-unknown", "v1.2.3", "teleport", [], W20, [], "unknown strategy 'teleport'; this engine ships"),
    ("strategy-underscore", "v1.2.3", "blue_green", [], W20, [], "unknown strategy 'blue_green'"),
    ("env-unknown", "v1.2.3", "canary", ["--env", "prod"], W20, [], "unknown environment 'prod'"),
    ("env-case", "v1.2.3", "canary", ["--env", "LOCAL"], W20, [], "(environment names are case-sensitive)"),
    (
        "weight-over-100",
        "v1.2.3",
        "canary",
        [],
        "- set_weight: 150",
        [],
        "strategies.canary.steps.0.set_weight: Input should be less than or equal to 100",
    ),
    (
        "weights-not-increasing",
        "v1.2.3",
        "canary",
        [],
        "- set_weight: 50\n- set_weight: 20",
        [],
        "set_weight steps must increase: 20 follows 50",
    ),
    (
        "weights-repeated",
        "v1.2.3",
        "canary",
        [],
        "- set_weight: 20\n- set_weight: 20",
        [],
        "set_weight steps must increase: 20 follows 20",
    ),
    (
        "duration-negative",
        "v1.2.3",
        "canary",
        [],
        "- set_weight: 20\n- pause: {duration: -5s}",
        [],
        "steps.1.pause.duration: a duration cannot be negative (-5s)",
    ),
    (
        "duration-absurd",
        "v1.2.3",
        "canary",
        [],
        "- set_weight: 20\n- pause: {duration: 31d}",
        [],
        "is longer than the 30-day maximum",
    ),
    (
        "yaml-malformed",
        "v1.2.3",
        "canary",
        [],
        W20,
        [("app: {name: sample-api}", "app: {name: sample-api")],
        "is not valid YAML at line",
    ),
    (
        "yaml-not-a-mapping",
        "v1.2.3",
        "canary",
        [],
        W20,
        [("", "- app\n- environments\n")],
        "must be a mapping with app, environments and strategies",
    ),
    (
        "unknown-top-level-key",
        "v1.2.3",
        "canary",
        [],
        W20,
        [("app: {name: sample-api}", "app: {name: sample-api}\ncolour: blue")],
        "colour: Extra inputs are not permitted",
    ),
    (
        "unknown-key-in-step",
        "v1.2.3",
        "canary",
        [],
        "- set_weight: 20\n- pause: {duration: 5s, until: tomorrow}",
        [],
        "strategies.canary.steps.1.pause.until: Extra inputs are not permitted",
    ),
    (
        "two-keys-in-step",
        "v1.2.3",
        "canary",
        [],
        "- {set_weight: 20, pause: {}}",
        [],
        "a step has exactly one key: set_weight, pause or analysis",
    ),
    (
        "unknown-key-in-metric",
        "v1.2.3",
        "canary",
        [],
        W20,
        [("inconclusive_limit: 3", "inconclusive_limit: 3\n        thresold: 0.1")],
        "analysis_templates.error-rate.metrics.0.thresold: Extra inputs are not permitted",
    ),
    (
        "condition-unknown-name",
        "v1.2.3",
        "canary",
        [],
        W20,
        [(CONDITION, "success_condition: latency < 0.05")],
        "condition 'latency < 0.05' names 'latency'; only `result` is known",
    ),
    (
        "condition-code",
        "v1.2.3",
        "canary",
        [],
        W20,
        [(CONDITION, "success_condition: __import__('os').system('id')")],
        "may only compare `result` with numbers",
    ),
    (
        "condition-string",
        "v1.2.3",
        "canary",
        [],
        W20,
        [(CONDITION, "success_condition: result < 'low'")],
        "compares with 'low'; only numbers are allowed",
    ),
    (
        "query-unknown-placeholder",
        "v1.2.3",
        "canary",
        [],
        W20,
        [(QUERY, '{{canary_verison}}",code')],
        "metric 'error-ratio': unknown placeholder {{canary_verison}}",
    ),
    (
        "template-not-defined",
        "v1.2.3",
        "canary",
        [],
        "- set_weight: 20\n- analysis: {templates: [latency]}",
        [],
        "strategies.canary names analysis template 'latency', which is not defined",
    ),
    (
        "approval-without-approvers",
        "v1.2.3",
        "canary",
        [],
        "- set_weight: 20\n- pause: {}",
        [("approvers: [alice]", "approvers: []")],
        "the canary pauses for approval, but environments.local.approvers is empty",
    ),
]


def write_config(stack: Stack, tmp_path: Path, steps: str, replacements: list[tuple[str, str]]) -> str:
    text = stack.config_text(steps)
    for old, new in replacements:
        assert old in text, old
        text = text.replace(old, new, 1) if old else new  # "" replaces the whole text
    path = tmp_path / "deploy-code.yaml"
    path.write_text(text)
    return str(path)


@pytest.mark.usefixtures("starters_env")
@pytest.mark.parametrize("case", CASES, ids=[c[0] for c in CASES])
async def test_deploy_refuses_bad_input_before_any_side_effect(
    case: Case, client: Client, stack: Stack, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    _, version, strategy, extra, steps, replacements, expected = case
    config = write_config(stack, tmp_path, steps, replacements)
    before = await snapshot(client, stack)
    code = await deploy.main([version, strategy, "--config", config, *extra])
    err = capsys.readouterr().err
    assert code == deploy.EXIT_BAD_INPUT, err
    assert err.startswith("error: ") and expected in err, err
    assert await snapshot(client, stack) == before


@pytest.mark.usefixtures("starters_env")
async def test_missing_configuration_and_leading_zeros(
    client: Client, stack: Stack, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    before = await snapshot(client, stack)
    code = await deploy.main(["v1.2.3", "canary", "--config", str(tmp_path / "nope.yaml")])
    assert code == deploy.EXIT_BAD_INPUT
    assert "cannot read configuration" in capsys.readouterr().err
    # Leading zeros are a valid version: the dry run prints the plan and starts nothing.
    config = write_config(stack, tmp_path, W20, [])
    code = await deploy.main(["v01.002.0003", "canary", "--config", config, "--dry-run"])
    assert code == deploy.EXIT_OK
    assert "Plan for sample-api/local@v01.002.0003 (canary)" in capsys.readouterr().out
    assert await snapshot(client, stack) == before


# --------------------------------------------------------------------------- #
# control: approvals
# --------------------------------------------------------------------------- #


async def strategy_status(client: Client) -> ReleaseStatus:
    handle = client.get_workflow_handle(temporal.release_workflow_id("sample-api", "local"))
    target = await control_target(handle)
    return await target.query("status", result_type=ReleaseStatus)


@pytest.mark.usefixtures("worker", "starters_env")
async def test_approvals_are_refused_unless_from_an_approver_for_this_release(
    client: Client, stack: Stack, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = write_config(stack, tmp_path, "- set_weight: 20\n- pause: {}\n- pause: {duration: 60s}", [])
    version = new_version()
    assert await deploy.main([version, "canary", "--config", config]) == deploy.EXIT_OK
    deadline = time.monotonic() + 60
    while not (await strategy_status(client)).awaiting_approval:
        assert time.monotonic() < deadline
        await asyncio.sleep(0.2)
    capsys.readouterr()

    async def refused(args: list[str], expected: str, code: int = control.EXIT_REFUSED) -> None:
        before = await snapshot(client, stack)
        assert await control.main([*args, "--config", config]) == code, args
        err = capsys.readouterr().err
        assert expected in err, (args, err)
        assert await snapshot(client, stack) == before, args

    await refused(["approve", "--as", "mallory"], "'mallory' may not approve in 'local' (approvers: alice)")
    await refused(["promote", "--as", "mallory"], "'mallory' may not promote in 'local' (approvers: alice)")
    await refused(
        ["approve", "--as", "alice", "--version", "v0.0.1"], f"this run releases {version}, not v0.0.1"
    )
    await refused(["approve", "--as", "alice", "--version", "v1;ls"], "String should match pattern", 2)
    await refused(["approve", "--as", "  "], "String should have at least 1 character", 2)
    await refused(["approve", "--as", "alice", "--env", "prod"], "unknown environment 'prod'", 2)
    await refused(["resume", "--as", "alice"], "resume refused: the release is not paused")

    assert await control.main(["approve", "--as", "alice", "--config", config]) == control.EXIT_OK
    assert capsys.readouterr().out.strip() == "approved by alice"
    # Sent twice: the second finds nothing awaiting approval (the run holds in its timed pause).
    await refused(["approve", "--as", "alice"], "approve refused: nothing awaits approval")
    status = await strategy_status(client)
    assert [(d.what, d.by) for d in status.refused] == [
        ("refused approve", "mallory"),
        ("refused promote", "mallory"),
    ]

    assert await control.main(["promote", "--as", "alice", "--config", config]) == control.EXIT_OK
    handle = client.get_workflow_handle(temporal.release_workflow_id("sample-api", "local"))
    await asyncio.wait_for(handle.result(), timeout=90)
    assert stack.stable_version() == version
    capsys.readouterr()
    # On a finished release: refused, nothing changes.
    await refused(
        ["approve", "--as", "alice"], "no release to approve in local: workflow execution already completed"
    )


# --------------------------------------------------------------------------- #
# PromQL checked against Prometheus before the release starts
# --------------------------------------------------------------------------- #

GOOD_QUERY = "sum(rate(metric_that_does_not_exist_total[5s]))"
BROKEN_QUERY = "sum(rate(x[5s])"


def broken_spec(stack: Stack, strategy: str, version: str) -> ReleaseSpec:
    if strategy == "canary":
        text = stack.config_text("- set_weight: 20\n- analysis: {templates: [no-data]}")
    else:
        settings = {
            "blue-green": "pre_promotion_analysis: {templates: [no-data]}",
            "rolling": "analysis: {templates: [no-data]}",
        }[strategy]
        text = stack.strategy_config(strategy, settings)
    config = parse_config(text.replace(GOOD_QUERY, BROKEN_QUERY))
    return resolve_release(config, version, strategy, "local", requested_by="pytest", local=stack.local)


@pytest.mark.usefixtures("worker")
@pytest.mark.parametrize("strategy", ["canary", "blue-green", "rolling"])
async def test_promql_syntax_error_fails_before_any_change(
    strategy: str, client: Client, stack: Stack, task_queue: str
) -> None:
    version = new_version()
    spec = broken_spec(stack, strategy, version)
    before = (await snapshot(client, stack))[:2]
    handle, _ = await start_or_attach(client, spec, task_queue=task_queue)
    result: ReleaseResult = await asyncio.wait_for(handle.result(), timeout=60)

    assert result.outcome == "failed", result
    assert "analysis template 'no-data', metric 'missing': the query does not parse" in result.reason
    assert "unclosed left parenthesis" in result.reason or "parse error" in result.reason, result.reason
    assert result.status.decisions[-1].what == "failed before any change"
    assert (await snapshot(client, stack))[:2] == before
    history = await handle.fetch_history()
    scheduled = [
        e.activity_task_scheduled_event_attributes.activity_type.name
        for e in history.events
        if e.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED
    ]
    assert scheduled == ["analysis.check_queries"]  # nothing observed, started or routed


# --------------------------------------------------------------------------- #
# Concurrency
# --------------------------------------------------------------------------- #


@pytest.mark.usefixtures("worker")
async def test_concurrent_starts_one_runs_the_other_is_refused_naming_it(
    client: Client, stack: Stack, task_queue: str
) -> None:
    first, second = new_version(), new_version()
    steps = "- set_weight: 20\n- pause: {}"
    outcomes: list[Any] = await asyncio.gather(
        start_or_attach(client, stack.spec(first, steps), task_queue=task_queue),
        start_or_attach(client, stack.spec(second, steps), task_queue=task_queue),
        return_exceptions=True,
    )
    started = [o for o in outcomes if not isinstance(o, BaseException)]
    refusals = [o for o in outcomes if isinstance(o, BaseException)]
    assert len(started) == 1 and len(refusals) == 1, outcomes
    assert isinstance(refusals[0], Refused), refusals
    handle, attached = started[0]
    assert not attached
    running = first if outcomes[0] is started[0] else second
    assert f"release {running} (canary) is running in local" in str(refusals[0])
    # The same version again attaches to the same run, concurrently too.
    again = await asyncio.gather(
        *(start_or_attach(client, stack.spec(running, steps), task_queue=task_queue) for _ in range(2))
    )
    assert {(h.id, h.result_run_id) for h, _ in again} == {(handle.id, handle.result_run_id)}
    assert all(attached for _, attached in again)

    await handle.execute_update("abort", Control(identity="pytest", reason="concurrency test done"))
    result: ReleaseResult = await asyncio.wait_for(handle.result(), timeout=60)
    assert result.outcome in ("rolled_back", "failed"), result
