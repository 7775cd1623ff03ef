"""Activity options and retry policies of every workflow, and the one way workflows call activities.

Each option set says how long an activity may take, how it is retried, and how soon a dead
worker is noticed (heartbeat timeout). :func:`call` runs an activity through its declaration in
:mod:`engine.contracts.activities`, so its name is written once and its request and result are
typed.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any, TypedDict, TypeVar, Unpack, cast

from temporalio import workflow
from temporalio.common import RetryPolicy

with workflow.unsafe.imports_passed_through():
    from engine.contracts.activities import NONE, Activity

Req = TypeVar("Req")
Res = TypeVar("Res")


class ActivityOptions(TypedDict, total=False):
    """The keyword arguments of ``workflow.execute_activity`` that this engine sets."""

    start_to_close_timeout: timedelta
    retry_policy: RetryPolicy
    heartbeat_timeout: timedelta


NON_RETRYABLE = ["BadRequest"]


def retry(first: timedelta, most: timedelta, attempts: int = 0) -> RetryPolicy:
    """Exponential retry from ``first`` up to ``most`` apart; 0 attempts means until it succeeds.

    Bad input (``BadRequest``) is never retried.
    """
    return RetryPolicy(
        initial_interval=first,
        maximum_interval=most,
        maximum_attempts=attempts,
        non_retryable_error_types=NON_RETRYABLE,
    )


def options(timeout: timedelta, policy: RetryPolicy, heartbeat: timedelta | None = None) -> ActivityOptions:
    """Options of an activity: its timeout, retry policy and (if it heartbeats) heartbeat timeout."""
    out = ActivityOptions(start_to_close_timeout=timeout, retry_policy=policy)
    if heartbeat is not None:
        out["heartbeat_timeout"] = heartbeat
    return out


async def call(
    declared: Activity[Req, Res], request: Req, *, summary: str, **opts: Unpack[ActivityOptions]
) -> Res:
    """Run the declared activity with ``request`` and return its typed result."""
    result_type: Any = None if declared.result is NONE else declared.result
    result = await workflow.execute_activity(
        declared.name, request, result_type=result_type, summary=summary, **opts
    )
    return cast(Res, result)


MS, S = timedelta(milliseconds=1), timedelta(seconds=1)

# ---- releases ----------------------------------------------------------------------------------
QUICK = options(15 * S, retry(200 * MS, 3 * S, attempts=20))
"""Router changes, observations and smoke checks: fast, retried for about a minute."""
SLOW = options(5 * 60 * S, retry(1 * S, 10 * S, attempts=5), heartbeat=10 * S)
"""Starting and stopping instances: heartbeats while instances come up."""
COMPENSATE = options(5 * 60 * S, retry(200 * MS, 10 * S), heartbeat=10 * S)
"""Undo steps, and steps past the point of no return, retry until they succeed and cannot be
interrupted (``finish=True``): a half-undone release is worse than a slow one."""
ANALYSIS_RETRY = retry(200 * MS, 2 * S, attempts=10)
ANALYSIS_HEARTBEAT = 2 * S
"""A worker killed mid-analysis is noticed within this, and the analysis resumes elsewhere."""
APPROVAL_TICK = 5 * 60 * S
"""How often a release waiting for approval republishes deploy_awaiting_approval_seconds."""

# ---- the release pipeline ----------------------------------------------------------------------
CHECK = ActivityOptions(
    start_to_close_timeout=20 * S,
    retry_policy=RetryPolicy(maximum_attempts=3, non_retryable_error_types=NON_RETRYABLE),
)
"""A check answers its verdict (an unhealthy dependency is a result); errors retry briefly."""
PLAN = ActivityOptions(
    start_to_close_timeout=10 * 60 * S,
    heartbeat_timeout=3 * 60 * S,
    retry_policy=RetryPolicy(
        initial_interval=1 * S, maximum_attempts=3, non_retryable_error_types=NON_RETRYABLE
    ),
)
APPLY = ActivityOptions(
    start_to_close_timeout=30 * 60 * S,
    heartbeat_timeout=10 * S,
    retry_policy=RetryPolicy(
        initial_interval=1 * S,
        maximum_interval=30 * S,
        maximum_attempts=10,
        non_retryable_error_types=NON_RETRYABLE,
    ),
)
"""Apply heartbeats every 0.5 s; a worker crash is noticed within 10 s and the retry finds
the journal of the first attempt instead of applying twice."""
DELIVER = ActivityOptions(
    start_to_close_timeout=10 * S,
    retry_policy=RetryPolicy(
        initial_interval=500 * MS, maximum_attempts=3, non_retryable_error_types=NON_RETRYABLE
    ),
)
"""A notification that cannot be delivered is logged; it never fails a release."""

# ---- disaster recovery -------------------------------------------------------------------------
DR_QUICK = options(20 * S, retry(200 * MS, 2 * S, attempts=15))
"""Fence, promote, switch, observe: quick, retried for about half a minute."""
DR_SLOW = options(10 * 60 * S, retry(1 * S, 5 * S, attempts=5), heartbeat=3 * S)
"""Rebuilds, catch-up, scaling, probes: heartbeat, so a dead worker is noticed within seconds."""
DR_UNDO = options(10 * 60 * S, retry(500 * MS, 10 * S, attempts=30), heartbeat=3 * S)
"""Undo steps: retried for several minutes."""
