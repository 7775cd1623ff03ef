"""The release dashboard (starters/dashboard.py) in a real browser, during a real canary.

A release runs on the local platform (pipeline, canary with a fresh baseline, the sequential judge,
a pause for approval); headless Chromium renders its page and the list page, and the rendered DOM
must show the current step, the weight the router read back, and charts drawn from data. The
screenshot is kept: the test's tmp dir and ``.state/artifacts/dashboard.png``. The Abort button's
POST must really roll the canary back: checked on the router, not in a mock.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
import shutil
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

import httpx
import pytest
from temporalio.client import Client, WorkflowHandle

import worker as worker_module
from engine import temporal
from engine.client import start_or_attach
from engine.codec import ENCODING, new_key
from engine.contracts import Control, ReleaseResult, ReleaseStatus
from harness.browser import Chromium, Element, elements
from harness.pipeline import pipeline_spec
from harness.stack import Stack, new_version, wait_for
from harness.support import REPO
from infrastructure.local import images

STEPS = """
- set_weight: 30
- analysis: {templates: [judge]}
- pause: {}
- set_weight: 60
"""
Serve = Callable[[Client], Awaitable[str]]
"""The ``serve_dashboard`` fixture: serve the dashboard through this client, get its URL."""
ARTIFACT = REPO / ".state" / "artifacts" / "dashboard.png"


async def strategy_awaiting_approval(handle: WorkflowHandle, within: float = 120) -> ReleaseStatus:
    """The pipeline's canary child once it waits for an approver (its analysis passed)."""
    deadline = time.monotonic() + within
    while True:
        status = await handle.query("status", result_type=ReleaseStatus)
        if status.child_workflow_id:
            child = handle._client.get_workflow_handle(status.child_workflow_id)
            s = await child.query("status", result_type=ReleaseStatus)
            if s.awaiting_approval:
                return s
        assert time.monotonic() < deadline, f"no approval wait; last: {status.decisions[-3:]}"
        await asyncio.sleep(0.5)


def points(svg_testid: str, dom: str) -> int:
    (chart,) = elements(dom, svg_testid)
    return int(chart.attrs["data-points"])


@pytest.fixture
def shot(tmp_path: Path) -> Path:
    """Where the screenshot goes (kept with the test's tmp dir, and copied to .state/artifacts)."""
    return tmp_path / "dashboard.png"


def keep(shot: Path) -> None:
    """Keep a screenshot: beside the test's tmp dir and in .state/artifacts (gitignored)."""
    assert shot.stat().st_size > 10_000, f"no real screenshot at {shot}"
    ARTIFACT.parent.mkdir(parents=True, exist_ok=True)
    shutil.copy(shot, ARTIFACT.with_name(shot.name))
    print(f"dashboard screenshot: {shot} (copied to {ARTIFACT.with_name(shot.name)})")


async def press(http: httpx.AsyncClient, base: str, page: str, button: str, *, who: str, why: str) -> str:
    """Submit the page's form of ``button`` as the browser does (its hidden fields, identity and
    reason); the message the dashboard answers with."""
    form = re.search(rf'<form[^>]*action="([^"]+)"[^>]*data-testid="form-{button}">(.*?)</form>', page, re.S)
    assert form is not None, f"no {button} button"
    fields = dict(re.findall(r'<input type="hidden" name="(\w+)" value="([^"]*)">', form.group(2)))
    answer = await http.post(
        base + form.group(1), data={**fields, "identity": who, "reason": why}, follow_redirects=True
    )
    assert answer.status_code == 200
    return elements(answer.text, "message")[0].text


@pytest.mark.usefixtures("worker")
async def test_release_page_shows_the_canary_live_in_chromium(
    client: Client, stack: Stack, task_queue: str, *, chromium: Chromium, dashboard_url: str, shot: Path
) -> None:
    version = new_version()
    images.push(images.registry_url(stack.layout), version)
    handle, attached = await start_or_attach(
        client, pipeline_spec(stack, version, steps=STEPS), task_queue=task_queue
    )
    assert not attached
    child = await strategy_awaiting_approval(handle)
    assert child.canary_weight == 30 and child.step_index == 3

    url = f"{dashboard_url}/run/{handle.id}/{handle.result_run_id}"
    dom = await chromium.dom(url)

    (current,) = elements(dom, "current-step")
    assert current.attrs["data-index"] == "3" and "pause for approval" in current.text
    assert [s.attrs["data-index"] for s in elements(dom, "step-item")] == ["1", "2", "4"]
    (weight,) = elements(dom, "weight")
    assert weight.attrs["data-value"] == "30" and weight.text.strip() == "30%"
    # The weights the router read back over time, per pool: all on stable when the release looked,
    # then 30 % to the canary (and as much to its baseline).
    assert points("chart-weight", dom) >= 4
    (chart,) = elements(dom, "chart-weight")
    stable_values = [c.attrs["data-v"] for c in chart.all("circle") if c.text.startswith("stable")]
    assert stable_values[0] == "100" and stable_values[-1] == "40", stable_values
    canary_line = [p for p in chart.all("polyline") if p.attrs["data-series"].startswith("canary")]
    assert len(canary_line) == 1
    canary_values = [c.attrs["data-v"] for c in chart.all("circle") if "canary" in c.text]
    assert canary_values[-1] == "30", canary_values
    # The judge's evidence: the canary's error rate against its baseline's, and its e-value against 1/alpha.
    rows = {r.attrs["data-test"]: r.attrs["data-verdict"] for r in elements(dom, "evidence-row")}
    assert rows.get("judge/errors") in ("pass", "running", "passed"), rows
    assert points("chart-evidence-judge-errors", dom) > 0
    assert points("chart-statistic-judge-errors", dom) > 0
    assert elements(dom, "chart-statistic-judge-errors-bound")
    # The pipeline around it, the controls, the decision log.
    stages = {s.attrs["data-stage"]: s.attrs["data-verdict"] for s in elements(dom, "stage")}
    assert stages["pre-validation"] == "passed" and stages["strategy"] == "running"
    assert {b.attrs["data-testid"] for b in parse_buttons(dom)} == {
        "button-pause",
        "button-abort",
        "button-approve",
    }
    decisions = " ".join(d.text for d in elements(dom, "decision"))
    assert "canary weight 30% (router reads back 30%)" in decisions

    keep(await chromium.screenshot(url, shot))

    listing = await chromium.dom(dashboard_url)
    ours = [r for r in elements(listing, "run") if r.attrs["data-version"] == version]
    assert len(ours) == 1 and ours[0].attrs["data-run-id"] == handle.result_run_id
    (outcome,) = ours[0].find("outcome")
    assert "Progressing" in outcome.text or "AwaitingApproval" in outcome.text
    keep(await chromium.screenshot(dashboard_url, shot.with_name("dashboard-list.png"), size="1400,900"))

    # Approvals are by name in this environment: the Approve button approves, as alice.
    async with httpx.AsyncClient(timeout=60) as http:
        page = (await http.get(url)).text
        assert (
            await press(http, dashboard_url, page, "approve", who="alice", why="charts look fine")
        ).startswith("approve: ")
    result: ReleaseResult = await asyncio.wait_for(handle.result(), 120)
    assert result.outcome == "succeeded", result.reason
    assert stack.count_versions(50) == {version: 50}  # on the router: every request on the new version
    canary = await client.get_workflow_handle(f"{handle.id}-canary", result_type=ReleaseResult).result()
    assert [(a.by, a.reason) for a in canary.status.approvals] == [("alice", "charts look fine")]


def parse_buttons(dom: str) -> list[Element]:
    (controls,) = elements(dom, "controls")
    return controls.all("button")


async def test_abort_button_rolls_the_canary_back_with_encrypted_payloads(
    stack: Stack, task_queue: str, serve_dashboard: Serve, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Everything the engine sends to Temporal encrypted: the dashboard reads it through a client with
    the keys (as engine.temporal.connect builds it), and its Abort button stops the canary."""
    monkeypatch.setenv("DEPLOY_CODEC_KEYS", new_key("k1"))
    client = await temporal.connect(target_host=stack.temporal_address)
    stable, version = stack.stable_version(), new_version()
    spec = stack.spec(version, "- set_weight: 40\n- pause: {}\n- set_weight: 80")
    async with worker_module.running(client, task_queue):
        handle, attached = await start_or_attach(client, spec, task_queue=task_queue)
        assert not attached
        try:
            await _abort_through_the_dashboard(client, stack, handle, await serve_dashboard(client), stable)
        finally:  # a failed test leaves no release the fixtures' plain client could not decode
            with contextlib.suppress(Exception):
                await handle.execute_update("abort", Control(identity="pytest", reason="cleanup"))
                await asyncio.wait_for(handle.result(), 60)
    # What the dashboard decoded was really ciphertext in Temporal.
    started = (await handle.fetch_history()).events[0]
    payload = started.workflow_execution_started_event_attributes.input.payloads[0]
    assert payload.metadata["encoding"] == ENCODING


async def _abort_through_the_dashboard(
    client: Client, stack: Stack, handle: WorkflowHandle, dashboard_url: str, stable: str
) -> None:
    held = await wait_for(handle, lambda s: s.awaiting_approval)
    assert stack.weights()[held.canary_pool or ""] > 0  # the canary takes traffic

    url = f"{dashboard_url}/run/{handle.id}/{handle.result_run_id}"
    async with httpx.AsyncClient(timeout=60) as http:
        page = (await http.get(url)).text
        (weight,) = elements(page, "weight")
        assert weight.attrs["data-value"] == "40"  # decrypted: the status and the history
        assert points("chart-weight", page) >= 3
        answer = await press(http, dashboard_url, page, "abort", who="carol", why="dashboard says no")
        assert answer.startswith("abort: ")

        result: ReleaseResult = await asyncio.wait_for(handle.result(), 60)
        assert result.outcome == "rolled_back" and "aborted by carol: dashboard says no" in result.reason
        # On the platform: the router sends everything to stable again, the canary takes nothing.
        assert stack.weights()[held.canary_pool or ""] == 0
        assert stack.count_versions(100) == {stable: 100}

        # A forged POST (no token) changes nothing.
        forged = await http.post(f"{url}/control", data={"action": "abort"})
        assert forged.status_code == 403
        ended = await http.get(url)
        assert "rolled_back" in elements(ended.text, "outcome")[0].text
