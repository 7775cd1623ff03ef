"""What the starters print: each decision once, no traceback into a closed pipe, a duplicate key named."""

from __future__ import annotations

import subprocess
import sys
from datetime import UTC, datetime

import pytest

from engine.config import check_version, parse_config
from engine.contracts import Decision, Phase, ReleaseStatus
from engine.errors import ConfigError, InputError
from harness.support import REPO
from starters.common import EXIT_BROKEN_PIPE, ProgressPrinter


def _status(*decisions: Decision) -> ReleaseStatus:
    return ReleaseStatus(
        release="app/local@v2", version="v2", strategy="canary", environment="local",
        phase=Phase.PROGRESSING, decisions=list(decisions),
    )  # fmt: skip


def test_a_childs_decisions_print_once_though_the_pipeline_copies_them() -> None:
    at = datetime(2026, 12, 7, 10, 0, 0, tzinfo=UTC)
    child = [
        Decision(at=at, what="smoke check passed on 1 instances"),
        Decision(at=at, what="batch 1/1 passed"),
    ]
    lines: list[str] = []
    printed: set[tuple[datetime, str]] = set()
    parent, strategy = (
        ProgressPrinter(lines.append, printed),
        ProgressPrinter(lambda x: lines.append("|" + x), printed),
    )
    strategy.show(_status(*child))
    second = Decision(at=at.replace(second=5), what="release sample-api/local@v2 (rolling) requested by ci")
    strategy.show(_status(second))  # the next child: its decisions start from 0 again
    copied = [d.model_copy(update={"what": f"[worker A] {d.what}"}) for d in (*child, second)]
    parent.show(_status(Decision(at=at, what="stage strategy: passed"), *copied))
    decisions = [line for line in lines if "10:00:0" in line]
    assert [line.split(" ", 3)[-1] for line in decisions] == [
        "smoke check passed on 1 instances",
        "batch 1/1 passed",
        "release sample-api/local@v2 (rolling) requested by ci",
        "stage strategy: passed",
    ]


def test_a_starter_piped_into_head_exits_quietly() -> None:
    script = (
        "from starters.common import run\n"
        "async def main():\n"
        "    for i in range(100000):\n"
        "        print('line', i)\n"
        "    return 0\n"
        "run(main())\n"
    )
    shell = f'{sys.executable} -c "$SCRIPT" | head -1; echo "status ${{PIPESTATUS[0]}}"'
    done = subprocess.run(
        ["bash", "-c", shell],
        env={"SCRIPT": script, "PYTHONPATH": str(REPO)},
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    assert done.stdout.splitlines() == ["line 0", f"status {EXIT_BROKEN_PIPE}"]
    assert done.stderr == ""


def test_a_key_given_twice_is_refused_naming_it_and_both_lines() -> None:
    text = "app: {name: sample-api}\nenvironments:\n  local:\n    instances: 1\n    instances: 2\n"
    with pytest.raises(
        ConfigError, match=r"line 5, column 5: key 'instances' is given twice \(first at line 4\)"
    ):
        parse_config(text)


def test_a_version_with_build_metadata_is_refused_saying_why() -> None:
    with pytest.raises(
        InputError, match=r"build metadata \(\+build\.5\).*image tag cannot hold '\+'.*'v1\.2\.3-rc\.1'"
    ):
        check_version("v1.2.3-rc.1+build.5")
    with pytest.raises(InputError, match="expected a semantic version"):
        check_version("v1.2+x")  # not a semantic version at all
    assert check_version("v1.2.3-rc.1") == "v1.2.3-rc.1"
