"""The dashboard during and after a whole-app release (the api and its workers, in region A then B)
on the two-region local platform, rendered by headless Chromium: while the workers of A roll, the
page shows that child; once released, one row per component and region, each linked to its page."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Iterator

import pytest

import worker as worker_module
from engine import temporal
from engine.client import start_or_attach
from engine.contracts import ReleaseResult, ReleaseStatus
from harness import whole_app
from harness.browser import Chromium, elements
from harness.support import free_port
from infrastructure.local import platform
from infrastructure.local.regions import PlatformLayout
from starters import dashboard

pytestmark = [
    pytest.mark.timeout(420),
    pytest.mark.xdist_group("whole-app"),
]  # one two-region platform at once


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PlatformLayout]:
    lay = PlatformLayout.for_tests(tmp_path_factory.mktemp("dash-whole"))
    try:
        whole_app.site_up(lay)
        yield lay
    finally:
        platform.down(lay, purge=True)


async def test_whole_app_release_page_shows_each_component_and_region(
    site: PlatformLayout, chromium: Chromium
) -> None:
    client = await temporal.connect(target_host=f"127.0.0.1:{site.home_layout.temporal_port}")
    queue = f"dash-whole-{uuid.uuid4().hex[:8]}"
    port = free_port()
    board = dashboard.Dashboard(client, whole_app.config(site), ["local"])
    runner = await dashboard.serve(board, "127.0.0.1", port)
    try:
        async with worker_module.running(client, queue):
            handle, _ = await start_or_attach(client, whole_app.pipeline(site, "v2.0.0"), task_queue=queue)
            url = f"http://127.0.0.1:{port}/run/{handle.id}/{handle.result_run_id}"
            deadline = time.monotonic() + 180
            while not (
                s := await handle.query("status", result_type=ReleaseStatus)
            ).child_workflow_id or not (s.child_workflow_id.endswith("-worker-A")):
                assert time.monotonic() < deadline, s.decisions[-3:]
                await asyncio.sleep(0.3)
            live = await chromium.dom(url)
            result: ReleaseResult = await asyncio.wait_for(handle.result(), 300)
        assert result.outcome == "succeeded", result.reason

        # Live: the strategy shown is the one running now, the workers of A, and A's api is released.
        (shown,) = elements(live, "strategy-workflow")
        assert shown.text == f"{handle.id}-worker-A"
        verdicts = {
            (t.attrs["data-component"], t.attrs["data-region"]): t.attrs["data-verdict"]
            for t in elements(live, "target")
        }
        assert verdicts[("api", "A")] == "released" and verdicts[("worker", "A")] == "running", verdicts

        # Ended: every component in every region released, in order, each linked to its own page.
        done = await chromium.dom(url)
        rows = elements(done, "target")
        assert [(t.attrs["data-component"], t.attrs["data-region"]) for t in rows] == whole_app.TARGETS
        assert {t.attrs["data-verdict"] for t in rows} == {"released"}
        links = [a.attrs["href"] for t in rows for a in t.all("a")]
        assert len(links) == 4 and all(link.startswith(f"/run/{handle.id}-") for link in links)
        (outcome,) = elements(done, "outcome")
        assert outcome.text.startswith("succeeded")
        # A target's page: the api of B, released by its own child workflow.
        api_b = await chromium.dom(f"http://127.0.0.1:{port}{links[2]}")
        (phase,) = elements(api_b, "strategy-phase")
        assert phase.text == "Succeeded"
        assert int(elements(api_b, "chart-weight")[0].attrs["data-points"]) > 0
    finally:
        await runner.cleanup()
