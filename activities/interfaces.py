"""The small typed interfaces every provider implements.

A provider is built from an :class:`~engine.contracts.EnvironmentSpec` and does
one capability for one kind of infrastructure. Providers raise
:class:`BadRequest` for input that can never succeed (the activity turns it into
a non-retryable error); any other exception is treated as transient and retried.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol

from engine.contracts import Instance, RouterState

Progress = Callable[[str], None]
"""Called by long operations while they wait, so the activity can heartbeat."""


class BadRequest(Exception):
    """The request can never succeed as asked; retrying will not help."""


class Platform(Protocol):
    """Runs instances of a version in named pools."""

    def list_instances(self) -> list[Instance]: ...

    def start(self, *, version: str, pool: str, count: int, progress: Progress) -> list[Instance]:
        """Make sure ``count`` healthy instances of ``version`` run in ``pool``; idempotent."""
        ...

    def stop(self, *, pool: str) -> None:
        """Stop every instance of ``pool``; idempotent."""
        ...


class Router(Protocol):
    """Splits traffic between pools."""

    def set_traffic(self, *, weights: dict[str, int], members: dict[str, list[Instance]]) -> dict[str, float]:
        """Apply the split; instances not in ``members`` take no traffic afterwards.

        Returns the split as it will be in force, percent per pool: a router with
        integer weights may only approximate what was asked.
        """
        ...

    def read(self) -> RouterState:
        """The split actually in force, as a percentage per pool."""
        ...


class Metrics(Protocol):
    """Answers one query with one number."""

    def query(self, query: str) -> float | None:
        """The query's single value; None when there is no data. Raises when unreachable."""
        ...


class Smoke(Protocol):
    """Checks that instances answer."""

    def check(self, *, instances: list[Instance], path: str) -> list[str]:
        """Failures, one line each; empty when every instance passed."""
        ...
