"""Record workflow histories for the replay tests (tests/engine/test_replay.py).

    .venv/bin/python scripts/record_histories.py [NAME ...]

Records the histories not stored yet (or those NAMEd). Keep the ones recorded before a
``workflow.patched`` change: they prove the old runs still replay.
Runs real releases on a throwaway local platform and stores their histories as
JSON. Re-record only for a deliberate change of a workflow's commands; a change
to a shipped workflow must stay replayable (``workflow.patched``), which is what
the replay tests check against the histories recorded before it.
"""

from __future__ import annotations

import asyncio
import sys
import tempfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import worker as worker_module
from engine import temporal
from engine.config import parse_config, resolve_release
from engine.contracts import Control, LocalSettings, ReleaseStatus
from infrastructure.local import platform
from infrastructure.local.layout import Layout
from infrastructure.local.sample_service import set_behaviour
from starters.deploy import start_or_attach

OUT = Path(__file__).resolve().parent.parent / "tests" / "engine" / "histories"
CONFIG = """
app: {name: sample-api}
environments:
  local:
    providers: {platform: local, router: haproxy, analysis: prometheus}
    instances: 2
    approvers: [alice]
analysis_templates:
  error-rate:
    metrics:
      - name: error-ratio
        query: >-
          (sum(rate(http_requests_total{version="{{canary_version}}",code=~"5.."}[4s])) or vector(0))
          / sum(rate(http_requests_total{version="{{canary_version}}"}[4s]))
        success_condition: result < 0.05
        failure_condition: result >= 0.05
        initial_delay: 2s
        count: 3
        inconclusive_limit: 3
strategies:
  canary:
    steps:
      - set_weight: 20
      - analysis: {templates: [error-rate]}
      - pause: {}
      - set_weight: 50
      - pause: {duration: 1s}
    background_analysis: {templates: [error-rate], chunk: 2s}
"""


async def record(name: str, version: str, layout: Layout, *, bad: bool) -> None:
    client = await temporal.connect(target_host=f"127.0.0.1:{layout.temporal_port}")
    local = LocalSettings(state_dir=str(layout.state_dir), port_base=layout.port_base)
    spec = resolve_release(
        parse_config(CONFIG), version, "canary", "local", requested_by="recorder", local=local
    )
    if bad:
        set_behaviour(layout, version, error_rate=0.5)
    with ThreadPoolExecutor(max_workers=64) as executor:
        async with worker_module.build_worker(client, "record", executor):
            handle, _ = await start_or_attach(client, spec, task_queue="record")
            if not bad:
                while not (await handle.query("status", result_type=ReleaseStatus)).awaiting_approval:  # noqa: ASYNC110
                    await asyncio.sleep(0.2)
                await handle.execute_update("approve", Control(identity="alice", reason="recorded"))
            result = await handle.result()
            print(name, result.outcome, result.reason)
            history = await handle.fetch_history()
    (OUT / f"{name}.json").write_text(history.to_json())


RECORDINGS = {
    "canary_succeeded_with_approval": ("v9.0.1", False),
    "canary_rolled_back": ("v9.0.2", True),
    "canary_checked_queries": ("v9.0.3", False),  # patch check-queries-before-start taken
    "canary_approval_gauge": ("v9.0.4", False),  # patch approval-wait-gauge taken too
}


async def main(names: list[str]) -> None:
    OUT.mkdir(parents=True, exist_ok=True)
    names = names or [n for n in RECORDINGS if not (OUT / f"{n}.json").exists()]
    with tempfile.TemporaryDirectory() as tmp:
        layout = Layout.for_tests(Path(tmp))
        try:
            platform.up(layout, instances=2, traffic_rps=40)
            for name in names:
                version, bad = RECORDINGS[name]
                await record(name, version, layout, bad=bad)
        finally:
            platform.down(layout, purge=True)


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1:]))
