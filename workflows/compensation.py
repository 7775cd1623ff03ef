"""The undo stack of a workflow: how to undo each side effect, run in reverse order on failure.

Used by the release and the DR workflows alike; deterministic (it only awaits what it is given).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

Undo = Callable[[], Awaitable[Any]]


class Compensations:
    """Register an undo right before its side effect; ``run`` undoes the latest first."""

    def __init__(self) -> None:
        self._steps: list[tuple[str, Undo]] = []

    def __bool__(self) -> bool:
        return bool(self._steps)

    def add(self, what: str, undo: Undo) -> None:
        self._steps.append((what, undo))

    def clear(self) -> None:
        """Past the point of no return: nothing is undone any more."""
        self._steps.clear()

    async def run(self, announce: Callable[[str], None]) -> None:
        """Undo in reverse order, announcing each step first; a failed undo propagates (the rest stay)."""
        while self._steps:
            what, undo = self._steps.pop()
            announce(what)
            await undo()
