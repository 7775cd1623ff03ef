"""What ``control.py undo`` goes back to and how (engine/undo.py), from release runs, without a platform."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from engine.config import ConfigError, load_config, parse_config
from engine.contracts import Control
from engine.errors import InputError
from engine.undo import ReleaseRun, RollbackWindow, plan_undo, resolve_undo

NOW = datetime(2026, 12, 8, 12, 0, tzinfo=UTC)


def run(run_id: str, version: str, outcome: str | None, live: str | None, minutes_ago: int) -> ReleaseRun:
    at = NOW - timedelta(minutes=minutes_ago)
    return ReleaseRun(run_id, version, "canary", at, at + timedelta(seconds=30), outcome, live)


def test_the_previous_version_is_the_newest_earlier_success_with_another_version() -> None:
    runs = [
        run("r5", "v1.4.0", "failed", None, 1),  # refused before any change: no live version
        run("r4", "v1.3.0", "succeeded", "v1.3.0", 10),
        run("r3", "v1.3.1", "rolled_back", "v1.2.0", 20),
        run("r2", "v1.2.0", "no_change", "v1.2.0", 30),
        run("r1", "v1.2.0", "succeeded", "v1.2.0", 40),
    ]
    plan = plan_undo("local", runs, RollbackWindow(versions=1), NOW)
    assert (plan.live, plan.current.run_id, plan.previous.run_id) == ("v1.3.0", "r4", "r2")
    # v1.3.1 was tried (and rolled back) after v1.2.0: v1.2.0 is the 2nd newest version before v1.3.0.
    assert not plan.fast and "2nd newest" in plan.why
    assert plan_undo("local", runs, RollbackWindow(versions=2), NOW).fast
    assert plan_undo("local", runs, RollbackWindow(within=timedelta(minutes=10)), NOW).fast
    late = plan_undo("local", runs, RollbackWindow(within=timedelta(minutes=5)), NOW)
    assert not late.fast and "outside the rollback window" in late.why
    assert not plan_undo("local", runs, None, NOW).fast


def test_nothing_to_go_back_to_is_refused_naming_why() -> None:
    with pytest.raises(InputError, match="nothing to undo"):
        plan_undo("local", [], None, NOW)
    with pytest.raises(InputError, match="no previous version"):
        plan_undo("local", [run("r1", "v1.0.0", "succeeded", "v1.0.0", 5)], None, NOW)
    only_same = [
        run("r2", "v1.0.0", "succeeded", "v1.0.0", 5),
        run("r1", "v0.9.0", "rolled_back", "v1.0.0", 9),
    ]
    with pytest.raises(InputError, match="no previous version"):
        plan_undo("local", only_same, None, NOW)


def test_a_rollback_window_needs_versions_or_within() -> None:
    head = "app: {name: a}\nenvironments:\n  local:\n    providers: {platform: local, router: haproxy}\n"
    tail = "    instances: 1\nstrategies:\n  canary: {steps: [{set_weight: 50}]}\n"
    with pytest.raises(ConfigError, match=r"environments\.local\.rollback_window"):
        parse_config(head + "    rollback_window: {}\n" + tail)
    with pytest.raises(ConfigError, match=r"rollback_window\.versions"):
        parse_config(head + "    rollback_window: {versions: -1}\n" + tail)


def test_a_whole_app_undo_in_the_window_is_one_switch_and_one_batch_everywhere() -> None:
    config = load_config()  # local: api and worker in regions A and B, rollback_window {versions: 3}
    runs = [run("r2", "v1.3.0", "succeeded", "v1.3.0", 5), run("r1", "v1.2.3", "succeeded", "v1.2.3", 60)]
    plan = plan_undo("local", runs, config.environments["local"].rollback_window, NOW)
    pipeline = resolve_undo(config, plan, strategy="canary", approval=Control(identity="alice"))
    main = pipeline.release
    assert main.version == "v1.2.3" and main.strategy == "blue-green" and main.blue_green is not None
    assert main.blue_green.preview_requests == 0 and main.blue_green.pre_promotion_analysis == []
    assert main.blue_green.auto_promotion and not main.blue_green.auto_promotion_delay
    assert [t.name for t in pipeline.targets] == ["api in A", "worker in A", "api in B", "worker in B"]
    for target in pipeline.targets[1:]:
        assert target.release is not None and target.release.rolling is not None
        assert target.release.version == "v1.2.3"
        assert target.release.rolling.max_surge == target.release.environment.instances  # one batch
        assert target.release.rolling.analysis == [] and not target.bake_before
    assert pipeline.terraform is None and pipeline.ignore_windows  # undo ignores deploy windows
    assert pipeline.undo is not None and pipeline.undo.of_run_id == "r2" and pipeline.undo.fast
    # No dependency gate holds the way back to what ran (its image is still checked).
    assert pipeline.checks == [] and pipeline.image is not None
    # Outside the window: the chosen strategy with its steps and analysis, the worker behind its gate.
    late = plan_undo("local", runs, RollbackWindow(versions=0), NOW)
    normal = resolve_undo(config, late, strategy="canary", approval=Control(identity="alice"))
    assert normal.release.strategy == "canary" and normal.undo is not None and not normal.undo.fast
    worker = normal.targets[1].release
    assert worker is not None and worker.rolling is not None and worker.rolling.analysis
    assert normal.checks  # a normal release of the old version checks its dependencies first
