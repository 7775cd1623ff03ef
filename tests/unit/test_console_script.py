"""The ``deploy-code`` console script ([project.scripts]), as installed by ``pip install -e .``.

Run for real: ``.venv/bin/deploy-code`` lists its commands, hands each to its starter, and a
refused deploy exits 2 naming the field before it connects anywhere (the Temporal address
points at a closed port: reaching it would fail differently).
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from harness.support import REPO, free_port

SCRIPT = Path(sys.executable).parent / "deploy-code"

CONFIG = """
app: {name: sample-api}
environments:
  local:
    providers: {platform: local, router: haproxy, analysis: prometheus}
    instances: 2
    approvers: [alice]
strategies:
  canary:
    steps:
      - set_weight: 10
      - pause: {duration: 1s}
      - set_weight: 50
"""


def deploy_code(*args: str, tmp: Path) -> subprocess.CompletedProcess[str]:
    assert SCRIPT.exists(), f"{SCRIPT} is not installed: run `pip install -e .` (scripts/dev.sh install)"
    env = {
        **os.environ,
        "TEMPORAL_ADDRESS": f"127.0.0.1:{free_port()}",  # nothing listens: a connection would fail
        "DEPLOY_STATE_DIR": str(tmp / "state"),
    }
    return subprocess.run(
        [str(SCRIPT), *args], cwd=tmp, env=env, capture_output=True, text=True, timeout=60, check=False
    )


@pytest.fixture
def config(tmp_path: Path) -> Path:
    path = tmp_path / "deploy-code.yaml"
    path.write_text(CONFIG)
    return path


def test_help_lists_the_starters(tmp_path: Path) -> None:
    done = deploy_code("--help", tmp=tmp_path)
    assert done.returncode == 0, done.stderr
    commands = [line.split()[0] for line in done.stdout.splitlines()[3:]]
    for command in ("deploy", "control", "failover", "dr-monitor", "drill-schedule", "dashboard", "history"):
        assert command in commands, done.stdout
    # A command's --help is its starter's, named after the console script.
    done = deploy_code("deploy", "--help", tmp=tmp_path)
    assert done.returncode == 0
    assert done.stdout.startswith("usage: deploy-code deploy [-h]")
    assert "--first-weight" in done.stdout and "--dry-run" in done.stdout
    done = deploy_code("history", "--help", tmp=tmp_path)
    assert done.returncode == 0 and "--limit" in done.stdout


def test_unknown_command_is_refused_listing_the_commands(tmp_path: Path) -> None:
    done = deploy_code("deploi", "v1.2.3", "canary", tmp=tmp_path)
    assert done.returncode == 2
    assert "error: unknown command 'deploi'" in done.stderr
    assert "deploy " in done.stderr


def test_bad_deploy_is_refused_naming_the_field_before_any_side_effect(tmp_path: Path, config: Path) -> None:
    done = deploy_code("deploy", "v1.2.3", "Canary", "--config", str(config), tmp=tmp_path)
    assert done.returncode == 2, done.stdout + done.stderr
    assert done.stderr.startswith("error: unknown strategy 'Canary' (strategy names are lower case)")
    assert "Traceback" not in done.stderr and done.stdout == ""
    done = deploy_code("deploy", "v1.2", "canary", "--config", str(config), tmp=tmp_path)
    assert done.returncode == 2
    assert "version 'v1.2' is malformed" in done.stderr
    done = deploy_code("deploy", "v1.2.3", "canary", "--env", "prod", "--config", str(config), tmp=tmp_path)
    assert done.returncode == 2
    assert "unknown environment 'prod'" in done.stderr
    assert not (tmp_path / "state").exists()  # nothing of the local platform was touched


def test_dry_run_goes_through_the_engine(tmp_path: Path, config: Path) -> None:
    args = ("deploy", "v1.2.3", "canary", "--config", str(config), "--dry-run", "--first-weight", "30")
    done = deploy_code(*args, tmp=tmp_path)
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert lines[0] == "DRY RUN: nothing is started. Plan for sample-api/local@v1.2.3 (canary):"
    assert [line.strip() for line in lines if line.strip().startswith("step ")] == [
        "step 1: set weight 30%",
        "step 2: pause 0:00:01",
        "step 3: set weight 50%",
    ]
    assert "stages: pre-validation -> infrastructure -> image promotion -> strategy" in done.stdout
    # --first-weight belongs to the canary: refused for another strategy, nothing started.
    args = ("deploy", "v1.2.3", "rolling", "--config", str(config), "--first-weight", "30")
    done = deploy_code(*args, tmp=tmp_path)
    assert done.returncode == 2
    assert "--first-weight is the canary's first traffic weight; 'rolling' has none" in done.stderr


def test_the_script_runs_from_anywhere(tmp_path: Path) -> None:
    """Installed in the venv, it needs no working directory in the repository (REPO is elsewhere)."""
    assert tmp_path.resolve() != REPO
    done = deploy_code("status", "--env", "nowhere", tmp=tmp_path)
    # The default deploy-code.yaml is found from the package, and the environment is refused by name.
    assert done.returncode == 2, done.stderr
    assert "unknown environment 'nowhere'" in done.stderr
