"""Distributed tracing: one release is one trace, from the starter through the worker.

A local OTLP/HTTP receiver (harness/otlp.py: aiohttp, on a free port) takes what
``python worker.py`` and ``python starters/deploy.py`` export when ``OTEL_EXPORTER_OTLP_ENDPOINT``
points at it; both are real processes, so the tracer provider they set up stays in them. One short
pipeline release (canary: 50 %, one analysis, promote) runs; its spans are checked as a tree.
"""

from __future__ import annotations

import asyncio
import sys
from collections.abc import AsyncIterator

import pytest
from temporalio.client import Client
from temporalio.contrib.opentelemetry import TracingInterceptor
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.worker import Replayer

from harness.otlp import OtlpReceiver, ancestors
from harness.pipeline import write_pipeline_config
from harness.stack import Stack, new_version
from harness.support import REPO, WorkerProcess
from infrastructure.local import images
from worker import DR_WORKFLOWS, WORKFLOW_RUNNER, WORKFLOWS

STEPS = "- set_weight: 50\n- analysis: {templates: [error-rate]}"


@pytest.fixture
async def receiver() -> AsyncIterator[OtlpReceiver]:
    r = OtlpReceiver()
    await r.start()
    try:
        yield r
    finally:
        await r.stop()


async def test_a_release_is_one_trace_from_the_starter_through_its_child_and_activities(
    client: Client, stack: Stack, task_queue: str, receiver: OtlpReceiver
) -> None:
    version = new_version()
    images.push(images.registry_url(stack.layout), version)
    config = write_pipeline_config(stack, f"tracing-{version}", steps=STEPS)
    env = {**stack.env(task_queue), **receiver.env()}
    env.pop("OTEL_SERVICE_NAME", None)
    env.pop("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", None)
    worker = WorkerProcess(env, stack.tmp / f"worker-{task_queue}.log", task_queue)
    worker.start()
    try:
        proc = await asyncio.create_subprocess_exec(
            sys.executable,
            "starters/deploy.py",
            version,
            "canary",
            "--config",
            str(config),
            "--wait",
            cwd=REPO,
            env=env,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT,
        )
        out, _ = await asyncio.wait_for(proc.communicate(), timeout=150)
        assert proc.returncode == 0, out.decode()
        assert f"SUCCEEDED: {version} is live" in out.decode()
    finally:
        await asyncio.to_thread(worker.stop)  # SIGTERM: the worker flushes its spans, then exits
    assert worker.proc is not None and worker.proc.returncode == 0

    spans = receiver.spans
    by_id = {s.span_id: s for s in spans}
    assert len(by_id) == len(spans), "a span was exported twice"
    # One trace: every span of the starter and of the worker.
    assert {s.trace_id for s in spans} == {spans[0].trace_id}, {s.trace_id for s in spans}
    assert {s.service for s in spans} == {"deploy-code-starter", "deploy-code-worker"}
    # The starter's span is the root, and the only one.
    (root,) = [s for s in spans if s.parent_id is None]
    assert (root.service, root.name) == ("deploy-code-starter", "deploy")
    assert root.attributes["deploy.version"] == version
    assert root.attributes["deploy.exit_code"] == 0
    (start,) = [s for s in spans if s.name == "StartWorkflow:Release"]
    assert (start.service, start.parent_id) == ("deploy-code-starter", root.span_id)
    # The pipeline workflow, its strategy child and their activities all descend from it.
    pipeline_id = "release-sample-api-local"
    (release,) = [s for s in spans if s.name == "RunWorkflow:Release"]
    assert release.service == "deploy-code-worker"
    assert ancestors(release, by_id) == [start, root]
    (child,) = [s for s in spans if s.name == "RunWorkflow:CanaryRelease"]
    child_chain = ancestors(child, by_id)
    assert child_chain[0].name == "StartChildWorkflow:CanaryRelease"
    assert child_chain[0].attributes["temporalWorkflowID"] == pipeline_id  # started by the pipeline
    assert child_chain[-2:] == [start, root]
    child_id = child.attributes["temporalWorkflowID"]
    assert child_id == f"{pipeline_id}-canary"
    activities = [s for s in spans if s.name.startswith("RunActivity:")]
    for a in activities:
        assert ancestors(a, by_id)[-1] == root, a.name
    by_workflow = {
        wf: {a.name for a in activities if a.attributes["temporalWorkflowID"] == wf}
        for wf in (pipeline_id, child_id)
    }
    assert "RunActivity:router.set_traffic" in by_workflow[child_id], by_workflow
    assert "RunActivity:analysis.run" in by_workflow[child_id], by_workflow
    assert len(by_workflow[pipeline_id]) >= 3, by_workflow  # checks, image promotion, smoke, ...
    # Calls to the outside world: inside the activity that made them.
    for prefix, activity in (
        ("haproxy set server", "RunActivity:router.set_traffic"),
        ("prometheus query", "RunActivity:analysis.run"),
        ("registry PUT manifests", "RunActivity:image.promote"),
    ):
        calls = [s for s in spans if s.name.startswith(prefix)]
        assert calls, f"no {prefix} span: {sorted({s.name for s in spans})}"
        assert any(activity in {p.name for p in ancestors(c, by_id)} for c in calls), prefix
    haproxy = next(s for s in spans if s.name == "haproxy set server")
    assert str(haproxy.attributes["haproxy.command"]).startswith("set server app/")
    prometheus = next(s for s in spans if s.name == "prometheus query")
    assert "http_requests_total" in str(prometheus.attributes["prometheus.query"])
    names: dict[str, int] = {}
    for s in spans:
        key = s.name.split(":")[0] if ":" in s.name else s.name.rsplit(" ", 1)[0]
        names[key] = names.get(key, 0) + 1
    # Tracing changes no workflow command: both traced histories replay with and without it.
    for workflow_id in (pipeline_id, str(child_id)):
        history = await client.get_workflow_handle(workflow_id).fetch_history()
        for interceptors in ([], [TracingInterceptor()]):
            replayer = Replayer(
                workflows=[*WORKFLOWS, *DR_WORKFLOWS],
                data_converter=pydantic_data_converter,
                workflow_runner=WORKFLOW_RUNNER,
                interceptors=interceptors,
            )
            result = await replayer.replay_workflow(history, raise_on_replay_failure=False)
            assert result.replay_failure is None, (workflow_id, interceptors, result.replay_failure)
    print(f"\n{len(spans)} spans in {receiver.requests} exports, one trace: {sorted(names.items())}")
