"""``control.py undo`` of a whole-app release on the two-region local platform: every component in
every region back on the previous version, users counted through the global entry the whole time."""

from __future__ import annotations

import asyncio
import os
import sys
from collections import Counter
from pathlib import Path

import pytest
from temporalio.client import Client

from engine import temporal
from engine.client import start_or_attach
from engine.contracts import ReleaseResult
from harness import whole_app
from harness.stack import Users
from harness.support import REPO
from infrastructure.local.regions import PlatformLayout

pytestmark = [pytest.mark.timeout(420), pytest.mark.xdist_group("whole-app")]

SIZES = {("A", "api"): 2, ("A", "worker"): 2, ("B", "api"): 1, ("B", "worker"): 1}


def on(version: str) -> Counter[tuple[str, str, str]]:
    return Counter({(region, component, version): n for (region, component), n in SIZES.items()})


async def test_undo_returns_every_component_in_every_region_at_once(
    site: PlatformLayout, client: Client, task_queue: str, tmp_path: Path
) -> None:
    for version in ("v3.1.0", "v3.2.0"):
        handle, _ = await start_or_attach(
            client, whole_app.pipeline(site, version, gate=False), redeploy=True, task_queue=task_queue
        )
        released: ReleaseResult = await handle.result()
        assert released.outcome == "succeeded", released.reason
    assert whole_app.running(site) == on("v3.2.0")
    text = whole_app.CONFIG % {"state_dir": site.state_dir, "port_base": site.port_base}
    text = text.replace(
        "    approvers: [alice]\n", "    approvers: [alice]\n    rollback_window: {versions: 3}\n"
    )
    config = tmp_path / "undo.yaml"
    config.write_text(text + "  blue_green:\n    scale_down_delay: 2s\n")
    env = {
        **os.environ,
        "TEMPORAL_ADDRESS": f"127.0.0.1:{site.home_layout.temporal_port}",
        "DEPLOY_TASK_QUEUE": task_queue,
    }
    with Users(site.global_url) as users:
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "starters/control.py", "undo", "--config", str(config), "--as", "alice",
            "--reason", "whole app back", "--wait",
            cwd=REPO, env=env, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
        )  # fmt: skip
        out = (await asyncio.wait_for(proc.communicate(), timeout=300))[0].decode()
        await asyncio.sleep(0.5)
    assert proc.returncode == 0, out
    assert "v3.2.0 back to v3.1.0 by the fast path" in out, out
    handle = client.get_workflow_handle(
        temporal.release_workflow_id("sample-api", "local"), result_type=ReleaseResult
    )
    result = await handle.result()
    assert result.outcome == "succeeded" and result.live_version == "v3.1.0", result.reason
    assert [(t.component, t.region, t.previous, t.verdict) for t in result.status.targets] == [
        ("api", "A", "v3.2.0", "released"),
        ("worker", "A", "v3.2.0", "released"),
        ("api", "B", "v3.2.0", "released"),
        ("worker", "B", "v3.2.0", "released"),
    ]
    what = [d.what for d in result.status.decisions]
    judged = [w for w in what if "analysis" in w and not w.startswith("undo ")]
    assert judged == []  # no analysis, no gate: the api switched once, every other target one batch
    assert any(w.startswith("undo v3.2.0 back to v3.1.0 by the fast path") for w in what)
    assert whole_app.running(site) == on("v3.1.0")  # every component, every region, nothing else left
    assert users.failed == [], users.failed[:3]
    assert users.answers and users.answers[-1].version == "v3.1.0"
