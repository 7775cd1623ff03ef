"""Fixtures for the production-artifact tests: offline tool lookup and a clean Terraform env."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest


def _require(binary: str, hint: str) -> str:
    path = shutil.which(binary)
    if path is None:
        pytest.fail(f"{binary} not found on PATH: {hint}", pytrace=False)
    return path


@pytest.fixture(scope="session")
def promtool_bin() -> str:
    return _require("promtool", "apt-get install prometheus")


@pytest.fixture(scope="session")
def amtool_bin() -> str:
    return _require("amtool", "apt-get install --no-install-recommends prometheus-alertmanager")


@pytest.fixture
def tf_env(tmp_path: Path) -> dict[str, str]:
    """Environment for terraform with an empty CLI config (the ambient one may not exist)."""
    _require("terraform", "install terraform >= 1.6")
    rc = tmp_path / "terraformrc"
    rc.write_text("")
    return {**os.environ, "TF_CLI_CONFIG_FILE": str(rc), "TF_IN_AUTOMATION": "1", "CHECKPOINT_DISABLE": "1"}
