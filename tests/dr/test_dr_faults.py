"""DR preconditions against a real fault: the standby's PostgreSQL is down."""

from __future__ import annotations

import asyncio
import time

import pytest
from conftest import DrStack

from infrastructure.local import dr as local_dr

pytestmark = pytest.mark.timeout(180)


async def test_failover_to_a_dead_standby_is_refused_and_changes_nothing(
    stack: DrStack, task_queue: str, worker: None
) -> None:
    before = stack.topology()
    standby = local_dr.node(stack.dr, "B")
    standby.stop()
    try:
        result = await stack.run_starter(
            task_queue, "failover.py", "--to", "B", "--yes", "--as", "alice", "--wait"
        )
        out = result.stdout + result.stderr
        assert result.returncode == 2, out
        assert "the standby database in B is unreachable" in out
        after = stack.topology()
        assert after["active"] == "A"
        assert after["A"][0:2] == ("primary", False) and after["A"][3] == "A"  # A still writes, unfenced
        assert after["B"][3] == "B"
    finally:
        standby.start()
    deadline = time.monotonic() + 60
    while stack.topology() != before:  # B streams again (synchronous), as before the fault
        assert time.monotonic() < deadline, stack.topology()
        await asyncio.sleep(0.5)
    stack.write_directly("A", 30_000_000)
