"""The seed's own commands, as its document shows them, on the real local platform.

``./scripts/deploy-production.sh``, ``./scripts/smoke-tests.sh`` and ``python deploy_code.py``
are thin wrappers over the starters; here they run as processes against this session's stack
(``DEPLOY_ENVIRONMENT=local``, a test ``DEPLOY_CONFIG`` with the release pipeline, the stack's
registry, Temporal and a worker of the test's task queue). Versions are this process's own.
"""

from __future__ import annotations

import asyncio
import os
import sys
import time
from pathlib import Path
from typing import Any

import pytest
import yaml
from temporalio.client import Client

from clients.oci import RegistryClient
from engine import temporal
from engine.contracts import ReleaseResult
from harness.pipeline import pipeline_config, snapshot
from harness.stack import Stack, new_version
from harness.support import REPO
from infrastructure.local import images
from infrastructure.local.sample_service import clear_behaviour, set_behaviour

BLUE_GREEN = {
    "auto_promotion_enabled": True,
    "auto_promotion_delay": "0s",
    "preview_requests": 5,
    "scale_down_delay": "1s",
}


def write_config(stack: Stack, name: str, steps: str, *, ci: str | None = None) -> Path:
    """The stack's pipeline config (checks, registry, Terraform) with a fast blue-green too;
    ``ci``: the CI repository (``latest`` looks there) instead of ci/sample-api."""
    data: dict[str, Any] = yaml.safe_load(pipeline_config(stack, steps=steps))
    if ci:
        data["environments"]["local"]["release"]["images"]["ci_repository"] = ci
    data["strategies"]["blue_green"] = BLUE_GREEN
    data["strategies"]["rolling"] = {"max_surge": 1, "max_unavailable": 0}
    path = stack.tmp / f"seed-{name}.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


async def sh(stack: Stack, task_queue: str, config: Path, *argv: str, **env: str) -> tuple[int, str]:
    """Run a command from the repository root aimed at this stack; (exit code, stdout+stderr)."""
    environ = {k: v for k, v in stack.env(task_queue).items() if k not in ("DRY_RUN", "CANARY_WEIGHT")}
    environ.update({"DEPLOY_ENVIRONMENT": "local", "DEPLOY_CONFIG": str(config), **env})
    proc = await asyncio.create_subprocess_exec(
        *argv,
        cwd=REPO,
        env=environ,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    try:
        out, _ = await asyncio.wait_for(proc.communicate(), timeout=240)
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
    return proc.returncode or 0, out.decode()


async def releases_of(client: Client, version: str) -> int:
    workflow_id = temporal.release_workflow_id("sample-api", "local")
    query = f'WorkflowId = "{workflow_id}" AND DeployVersion = "{version}"'
    return len([w async for w in client.list_workflows(query)])


async def last_result(client: Client) -> ReleaseResult:
    workflow_id = temporal.release_workflow_id("sample-api", "local")
    result: ReleaseResult = await client.get_workflow_handle(workflow_id, result_type=ReleaseResult).result()
    return result


def promoted_digest(result: ReleaseResult) -> str:
    stage = next(s for s in result.status.stages if s.name == "image promotion")
    return str(stage.measurements["digest"])


@pytest.mark.usefixtures("worker")
async def test_deploy_production_blue_green(client: Client, stack: Stack, task_queue: str) -> None:
    version = new_version()
    built = images.push(images.registry_url(stack.layout), version)
    config = write_config(stack, "blue-green", "- set_weight: 50")

    code, out = await sh(stack, task_queue, config, "./scripts/deploy-production.sh", "blue-green", version)

    assert code == 0, out
    assert out.startswith(f"started sample-api/local@{version} (blue-green)"), out
    assert f"SUCCEEDED: {version} is live" in out
    assert stack.count_versions(50) == {version: 50}
    result = await last_result(client)
    assert result.status.strategy == "blue-green"
    assert promoted_digest(result) == built


@pytest.mark.usefixtures("worker")
async def test_canary_latest_with_first_weight_releases_the_newest_semver_by_digest(
    client: Client, stack: Stack, task_queue: str
) -> None:
    major = 900 + os.getpid() % 1000  # versions no other test deploys
    url, ci = images.registry_url(stack.layout), "ci/canary-latest/sample-api"  # only this test's tags
    tags = (f"v{major}.9.0", f"v{major}.10.0-rc.1", f"v{major}.10.0", f"v{major}.2.0")
    digests = {v: images.push(url, v, ci) for v in tags}
    images.push(url, "latest", ci)  # a floating tag is not a version: ignored
    newest = f"v{major}.10.0"
    assert max(digests) == f"v{major}.9.0"  # string order would pick this one
    config = write_config(stack, "canary-latest", "- set_weight: 10\n- set_weight: 50", ci=ci)

    code, out = await sh(
        stack, task_queue, config, "./scripts/deploy-production.sh", "canary", "latest", CANARY_WEIGHT="25"
    )

    assert code == 0, out
    lines = out.splitlines()
    registry_url = f"http://127.0.0.1:{stack.layout.registry_port}"
    assert lines[0] == f"latest: {newest} ({registry_url}/{ci}@{digests[newest]})"
    assert lines[1].startswith(f"started sample-api/local@{newest} (canary)")
    assert f"SUCCEEDED: {newest} is live" in out
    result = await last_result(client)
    assert result.live_version == newest
    assert promoted_digest(result) == digests[newest]  # recorded by digest
    registry = RegistryClient(url)
    try:
        assert registry.resolve(images.PRODUCTION_REPOSITORY, newest) == digests[newest]
    finally:
        registry.close()
    # CANARY_WEIGHT: the canary's first weight was 25 %, then 50 % (10 % never happened).
    weights = [d.what for d in result.status.decisions if d.what.startswith("canary weight")]
    assert [w.split(" (")[0] for w in weights][:2] == ["canary weight 25%", "canary weight 50%"], weights
    assert stack.count_versions(50) == {newest: 50}


async def test_dry_run_rolling_prints_the_plan_and_starts_nothing(
    client: Client, stack: Stack, task_queue: str
) -> None:
    version = new_version()
    digest = images.push(images.registry_url(stack.layout), version)
    config = write_config(stack, "dry-run", "- set_weight: 50")
    before = snapshot(stack)

    code, out = await sh(
        stack, task_queue, config, "./scripts/deploy-production.sh", "rolling", version, DRY_RUN="true"
    )

    assert code == 0, out
    assert out.startswith(f"DRY RUN: nothing is started. Plan for sample-api/local@{version} (rolling):")
    assert f"batch 1: start 1 x {version}" in out
    assert f"ci/sample-api:{version} = {digest}" in out
    assert await releases_of(client, version) == 0
    assert snapshot(stack) == before


async def test_bad_strategy_is_refused_before_any_side_effect(
    client: Client, stack: Stack, task_queue: str
) -> None:
    version = new_version()
    images.push(images.registry_url(stack.layout), version)
    config = write_config(stack, "bad", "- set_weight: 50")
    before = snapshot(stack)

    code, out = await sh(stack, task_queue, config, "./scripts/deploy-production.sh", "blue_green", version)
    assert code == 2, out
    assert out.strip() == (
        "error: unknown strategy 'blue_green'; this engine ships: canary, blue-green, rolling"
    )
    code, out = await sh(stack, task_queue, config, "./scripts/deploy-production.sh", "canary")
    assert code == 2
    assert "usage: ./scripts/deploy-production.sh STRATEGY VERSION" in out
    assert await releases_of(client, version) == 0
    assert snapshot(stack) == before


async def test_smoke_tests_check_the_live_version_and_fail_on_an_unhealthy_instance(
    stack: Stack, task_queue: str
) -> None:
    config = write_config(stack, "smoke", "- set_weight: 50")
    live = stack.stable_version()

    code, out = await sh(stack, task_queue, config, "./scripts/smoke-tests.sh")
    assert code == 0, out
    assert out.startswith(f"PASSED: smoke tests of sample-api in local: {live} live (")
    assert "2 instance(s) answer /healthz" in out

    set_behaviour(stack.layout, live, healthy=False)
    try:
        await asyncio.sleep(0.5)  # instances read their behaviour file every ~0.2 s
        code, out = await sh(stack, task_queue, config, "./scripts/smoke-tests.sh")
    finally:
        set_behaviour(stack.layout, live)  # healthy (a removed file would leave them as they are)
    assert code == 1, out
    # Failed either way: the instances answer 503 (and the router's own checks may already have
    # taken them out of traffic).
    assert out.startswith(
        (f"FAILED: smoke tests of sample-api in local ({live};", "FAILED: no instance of sample-api")
    ), out
    assert out.count("/healthz: HTTP 503") == 2, out
    deadline = time.monotonic() + 30  # healthy again (the router's checks too) before the next test
    while True:
        code, out = await sh(stack, task_queue, config, "./scripts/smoke-tests.sh")
        seen = await asyncio.to_thread(stack.count_versions, 10)
        if code == 0 and seen == {live: 10}:
            break
        assert time.monotonic() < deadline, (out, seen)
        await asyncio.sleep(0.5)
    clear_behaviour(stack.layout, live)

    code, out = await sh(stack, task_queue, config, "./scripts/smoke-tests.sh", DEPLOY_ENVIRONMENT="prod")
    assert code == 2
    assert "unknown environment 'prod'" in out


@pytest.mark.usefixtures("worker")
async def test_deploy_code_py_version_and_strategy(client: Client, stack: Stack, task_queue: str) -> None:
    version = new_version()
    built = images.push(images.registry_url(stack.layout), version)
    config = write_config(stack, "deploy-code-py", "- set_weight: 50")

    argv = (sys.executable, "deploy_code.py", "--version", version, "--strategy", "blue-green")
    code, out = await sh(stack, task_queue, config, *argv)

    assert code == 0, out
    assert out.startswith(f"started sample-api/local@{version} (blue-green)"), out
    assert f"SUCCEEDED: {version} is live" in out
    assert promoted_digest(await last_result(client)) == built
    assert stack.count_versions(30) == {version: 30}


async def test_deploy_code_py_config_and_environment_releases_latest(
    client: Client, stack: Stack, task_queue: str
) -> None:
    """``--config X --environment E`` without a version: the newest CI version by canary (here its plan)."""
    major = 800 + os.getpid() % 1000
    url, ci = images.registry_url(stack.layout), "ci/deploy-code-latest/sample-api"
    digests = {v: images.push(url, v, ci) for v in (f"v{major}.2.0", f"v{major}.11.0", f"v{major}.3.0")}
    config = write_config(stack, "deploy-code-latest", "- set_weight: 50", ci=ci)
    before = snapshot(stack)

    # The seed's command; DEPLOY_ENVIRONMENT (production) is overridden by --environment.
    argv = (sys.executable, "deploy_code.py", "--config", str(config), "--environment", "local")
    code, out = await sh(stack, task_queue, config, *argv, DEPLOY_ENVIRONMENT="production", DRY_RUN="true")

    assert code == 0, out
    lines = out.splitlines()
    newest = f"v{major}.11.0"
    assert (
        lines[0] == f"latest: {newest} (http://127.0.0.1:{stack.layout.registry_port}/{ci}@{digests[newest]})"
    )
    assert lines[1] == f"DRY RUN: nothing is started. Plan for sample-api/local@{newest} (canary):"
    assert f"{ci}:{newest} = {digests[newest]}" in out
    assert "step 1: set weight 50%" in out
    assert await releases_of(client, newest) == 0
    assert snapshot(stack) == before
