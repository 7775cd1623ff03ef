"""Every stored history must replay on today's workflow code (determinism, `workflow.patched`)."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from temporalio.client import WorkflowHistory
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.worker import Replayer

from worker import DR_WORKFLOWS, WORKFLOWS

HISTORIES = sorted((Path(__file__).parent / "histories").glob("*.json"))


def test_histories_are_stored() -> None:
    names = {p.stem for p in HISTORIES}
    assert {
        "canary_succeeded_with_approval",
        "canary_rolled_back",
        "canary_checked_queries",
        "blue_green_promoted",
        "rolling_succeeded",
        "dr_drill",
        "dr_failover",
    } <= names


@pytest.mark.parametrize("path", HISTORIES, ids=lambda p: p.stem)
async def test_history_replays(path: Path) -> None:
    history = WorkflowHistory.from_json(path.stem, await asyncio.to_thread(path.read_text))
    replayer = Replayer(workflows=[*WORKFLOWS, *DR_WORKFLOWS], data_converter=pydantic_data_converter)
    result = await replayer.replay_workflow(history, raise_on_replay_failure=True)
    assert result.replay_failure is None
