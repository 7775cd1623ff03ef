"""A do-nothing workflow: the floor under the engine's per-step overhead on this machine.

It waits on a timer, then runs one trivial synchronous activity, N times, so that
"TimerFired -> activity scheduled / completed" can be read from its history just
like a canary step of the engine. The difference between the two is what the
engine's own workflow and activity code costs; the floor is what Temporal (dev
server, Python SDK, thread-pool activity) costs on this box.
"""

from __future__ import annotations

from datetime import timedelta

from temporalio import activity, workflow


@activity.defn(name="bench.noop")
def noop(index: int) -> int:
    """The cheapest activity there is."""
    return index


@workflow.defn(name="BenchBaseline")
class BenchBaseline:
    """``rounds`` times: a 1 s timer, then the no-op activity."""

    @workflow.run
    async def run(self, rounds: int) -> int:
        for i in range(rounds):
            await workflow.sleep(timedelta(seconds=1))
            await workflow.execute_activity(noop, i, start_to_close_timeout=timedelta(seconds=10))
        return rounds
