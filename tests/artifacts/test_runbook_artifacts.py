"""Runbooks: required topics, and every engine command they name exists and accepts its options."""

from __future__ import annotations

from pathlib import Path

import pytest

from harness.artifact_checks import REPO, RUNBOOK_DIR, check_command, runbook_commands

RUNBOOKS = [RUNBOOK_DIR / "production-operations.md", RUNBOOK_DIR / "disaster-recovery.md"]
COMMANDS = runbook_commands(RUNBOOKS)


def test_runbooks_cover_required_topics() -> None:
    text = "\n".join(p.read_text() for p in RUNBOOKS).lower()
    topics = ("sev1", "sev2", "sev3", "sev4", "common failures", "failover", "failback")
    for topic in (*topics, "secret rotation", "certificate renewal", "rto", "rpo"):
        assert topic in text, topic


def test_runbooks_name_engine_commands() -> None:
    scripts = {script for script, _ in COMMANDS}
    assert {
        "starters/deploy.py",
        "starters/control.py",
        "starters/failover.py",
        "starters/schedule_dr_drill.py",
    } <= scripts


@pytest.mark.parametrize(("script", "argv"), COMMANDS, ids=[f"{s} {' '.join(a)}"[:80] for s, a in COMMANDS])
def test_runbook_command_exists_and_help_works(script: str, argv: list[str]) -> None:
    result = check_command(REPO, script, argv)
    if result == "missing":
        pytest.skip("starter not built yet")
    assert result is None, result


def _fake_repo(tmp_path: Path) -> Path:
    starters = tmp_path / "starters"
    starters.mkdir()
    (starters / "fake.py").write_text(
        "import argparse\n"
        "p = argparse.ArgumentParser()\n"
        "p.add_argument('action', choices=['start', 'stop'])\n"
        "p.add_argument('--env')\n"
        "p.parse_args()\n"
    )
    (starters / "crash.py").write_text("raise SystemExit('boom')\n")
    return tmp_path


def test_command_check_rejects_bad_commands(tmp_path: Path) -> None:
    repo = _fake_repo(tmp_path)
    runbook = tmp_path / "runbook.md"
    runbook.write_text(
        "```\npython starters/fake.py start --env production\n"
        "python starters/fake.py start --bogus\n"
        "python starters/fake.py restart --env production\n"
        "python starters/crash.py --env x\n"
        "python starters/absent.py --env x\n```\n"
    )
    results = [check_command(repo, s, a) for s, a in runbook_commands([runbook])]
    assert results[0] is None
    assert "--bogus" in str(results[1])
    assert "restart" in str(results[2])
    assert "exited" in str(results[3])
    assert results[4] == "missing"
