"""What every activity module shares: registering a function under its declaration, heartbeats.

``implements(DECLARATION)`` registers a function as the activity declared in
``engine.contracts.activities`` (its name, request and result: mypy checks the function's
signature against them) and turns a provider's :class:`~engine.errors.BadRequest` into a
non-retryable ``ApplicationError(type="BadRequest")``; any other exception stays retryable.
"""

from __future__ import annotations

import functools
from collections.abc import Awaitable, Callable
from typing import TypeVar

from temporalio import activity
from temporalio.exceptions import ApplicationError

from engine.contracts.activities import Activity
from engine.errors import BadRequest

Req = TypeVar("Req")
Res = TypeVar("Res")


def _refuse_bad_requests(fn: Callable[[Req], Res]) -> Callable[[Req], Res]:
    @functools.wraps(fn)
    def wrapper(req: Req) -> Res:
        try:
            return fn(req)
        except BadRequest as exc:
            raise ApplicationError(str(exc), type="BadRequest", non_retryable=True) from exc

    return wrapper


def implements(declared: Activity[Req, Res]) -> Callable[[Callable[[Req], Res]], Callable[[Req], Res]]:
    """Register a synchronous function (run in the worker's thread pool) as ``declared``."""

    def register(fn: Callable[[Req], Res]) -> Callable[[Req], Res]:
        return activity.defn(name=declared.name)(_refuse_bad_requests(fn))

    return register


def implements_async(
    declared: Activity[Req, Res],
) -> Callable[[Callable[[Req], Awaitable[Res]]], Callable[[Req], Awaitable[Res]]]:
    """Register a coroutine function (it must not block the event loop) as ``declared``."""

    def register(fn: Callable[[Req], Awaitable[Res]]) -> Callable[[Req], Awaitable[Res]]:
        return activity.defn(name=declared.name)(fn)

    return register


def heartbeat(message: str) -> None:
    """A provider's progress callback: tell Temporal this activity is alive (and how far it is)."""
    activity.heartbeat(message)
