"""Every stored history must replay on today's workflow code (determinism, `workflow.patched`)."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from temporalio.client import WorkflowHistory
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.worker import Replayer

from worker import DR_WORKFLOWS, WORKFLOW_RUNNER, WORKFLOWS

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
        "canary_signed_two_person",
        "release_pipeline_single",  # the pipeline before components: no whole-app patch taken
        "release_whole_app",
        "release_whole_app_rolled_back",
        "dr_failover_converged",  # patch version-check: the standby's api drifted, converged first
        "release_kubernetes_rolled_back",  # staging's four targets (converges), restored latest first
        "release_window_wait",  # patch deploy-window: waited from Saturday until Monday 09:00 Berlin
        "release_window_closed_paused",  # the window closed mid-canary: window-closed signal to the child
        "canary_window_closed_paused",  # the child: paused after its hold, resumed by alice
        "promotion_train",  # staging soaked with its analysis, then the same digest to production
        "release_train_stage",  # production's Release inside the train: the expected digest verified
        "release_undo_fast",  # control.py undo within the window: signed over the run it undoes, fast path
    } <= names


@pytest.mark.parametrize("path", HISTORIES, ids=lambda p: p.stem)
async def test_history_replays(path: Path) -> None:
    # The run's workflow id where it was stored (a signed approval names it), else the file's name.
    named = path.with_suffix(".workflow-id")
    workflow_id = (await asyncio.to_thread(named.read_text)).strip() if named.exists() else path.stem
    history = WorkflowHistory.from_json(workflow_id, await asyncio.to_thread(path.read_text))
    replayer = Replayer(
        workflows=[*WORKFLOWS, *DR_WORKFLOWS],
        data_converter=pydantic_data_converter,
        workflow_runner=WORKFLOW_RUNNER,
    )
    result = await replayer.replay_workflow(history, raise_on_replay_failure=True)
    assert result.replay_failure is None


async def test_a_signed_approval_verifies_on_replay_only_for_the_run_it_names() -> None:
    """Replay verifies the stored signatures again: under another workflow id they prove nothing,
    the approvals are refused, and the replay diverges from the history."""
    path = Path(__file__).parent / "histories" / "canary_signed_two_person.json"
    history = WorkflowHistory.from_json("release-someone-else", await asyncio.to_thread(path.read_text))
    replayer = Replayer(
        workflows=WORKFLOWS, data_converter=pydantic_data_converter, workflow_runner=WORKFLOW_RUNNER
    )
    result = await replayer.replay_workflow(history, raise_on_replay_failure=False)
    assert result.replay_failure is not None and "Nondeterminism" in str(result.replay_failure)


async def test_a_signed_undo_verifies_on_replay_only_for_the_workflow_it_names() -> None:
    """The undo's signature (over the run it undoes, carried in the input) is verified again on replay:
    under another workflow id it proves nothing, the undo is refused, and the replay diverges."""
    path = Path(__file__).parent / "histories" / "release_undo_fast.json"
    history = WorkflowHistory.from_json("release-someone-else", await asyncio.to_thread(path.read_text))
    replayer = Replayer(
        workflows=WORKFLOWS, data_converter=pydantic_data_converter, workflow_runner=WORKFLOW_RUNNER
    )
    result = await replayer.replay_workflow(history, raise_on_replay_failure=False)
    assert result.replay_failure is not None and "Nondeterminism" in str(result.replay_failure)
