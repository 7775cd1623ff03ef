"""The small typed interfaces every provider implements.

A provider is built from an :class:`~engine.contracts.EnvironmentSpec` and does
one capability for one kind of infrastructure. Providers raise
``engine.errors.BadRequest`` for input that can never succeed (the activity turns it into
a non-retryable error); any other exception is treated as transient and retried.
"""

from __future__ import annotations

from datetime import datetime
from typing import Protocol

from clients import Progress
from clients.images import ImageRegistry
from engine.contracts import Instance, RouterState
from engine.contracts.dr import DbNode

__all__ = [  # Progress and ImageRegistry are defined with the clients that use them
    "Database",
    "DrainRouter",
    "GlobalEntry",
    "ImageRegistry",
    "Metrics",
    "Platform",
    "PreviewRouter",
    "Progress",
    "Regions",
    "Router",
    "Smoke",
]


class Platform(Protocol):
    """Runs instances of a version in named pools."""

    def list_instances(self) -> list[Instance]: ...

    def start(self, *, version: str, pool: str, count: int, progress: Progress) -> list[Instance]:
        """Make sure ``count`` healthy instances of ``version`` run in ``pool``; idempotent."""
        ...

    def stop(self, *, pool: str, slots: list[int] | None = None) -> None:
        """Stop every instance of ``pool`` (or only those in ``slots``); idempotent."""
        ...

    def running_images(self) -> dict[str, set[str]]:
        """Pool -> the image digests (``sha256:...``) its instances run; a pool the platform cannot
        tell about is absent (the pipeline then says "not verified", never "verified")."""
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


class PreviewRouter(Router, Protocol):
    """A router with a preview route (catalog extra ``preview``; blue-green needs it)."""

    def set_preview(self, *, members: list[Instance]) -> None:
        """Make the preview route serve exactly ``members`` (nothing when empty)."""
        ...

    def read_preview(self) -> list[str]:
        """Addresses of the instances the preview route serves right now."""
        ...

    def preview_url(self) -> str:
        """Where the preview route answers."""
        ...


class DrainRouter(Router, Protocol):
    """A router that drains single instances (catalog extra ``drain``; rolling needs it)."""

    def drain(self, *, instances: list[Instance]) -> dict[str, int]:
        """Send no new requests to ``instances``; returns the requests each still has in flight.

        Called again, it only reports (draining is idempotent); an instance that takes no
        traffic is left alone.
        """
        ...


class Metrics(Protocol):
    """Answers queries: one number (threshold metrics), or counter series (the comparing judges)."""

    def query(self, query: str) -> float | None:
        """The query's single value; None when there is no data. Raises when unreachable."""
        ...

    def counters(self, query: str, *, since: datetime) -> list[tuple[dict[str, str], float]]:
        """Every counter series the query selects, as (labels, current value). A backend without
        counters (CloudWatch) answers one series: the query's sum since ``since``. Raises when
        unreachable."""
        ...


class Smoke(Protocol):
    """Checks that instances answer."""

    def check(self, *, instances: list[Instance], path: str) -> list[str]:
        """Failures, one line each; empty when every instance passed."""
        ...

    def check_route(
        self, *, url: str, requests: int, version: str, duration: float = 0.0, judge_codes: bool = True
    ) -> list[str]:
        """GET ``url`` ``requests`` times (spread over ``duration`` s); each answer must come from
        ``version`` (and be 2xx if ``judge_codes``). Failures, one line each."""
        ...


# Disaster recovery: built from a DrSpec (engine.contracts.dr), one provider per file under
# activities/database/, activities/global_entry/, activities/regions/.


class Database(Protocol):
    """The replicated database of a two-region environment; nodes are named by region."""

    def node(self, region: str) -> DbNode:
        """Role, fence and replication state of the region's node (``reachable=False`` when down)."""
        ...

    def fence(self, region: str) -> bool:
        """Stop the node taking writes, also after a restart; idempotent. False if it was unreachable
        (then it is fenced where it lies, so it cannot come back writable)."""
        ...

    def unfence(self, region: str) -> None:
        """Undo :meth:`fence`; idempotent."""
        ...

    def promote(self, region: str) -> bool:
        """Make the standby a writable primary; True if it already was one (not an error)."""
        ...

    def rebuild_as_standby(self, region: str, *, primary: str, progress: Progress) -> None:
        """Replace the node's data with a streaming copy of ``primary``; idempotent."""
        ...

    def set_replication(self, *, primary: str, standby: str | None, synchronous: bool) -> None:
        """Synchronous (commits wait for ``standby``) or asynchronous replication on ``primary``."""
        ...

    def catch_up(self, *, standby: str, primary: str, timeout: float, progress: Progress) -> int:
        """Wait until the standby replayed all the primary wrote; returns bytes still missing."""
        ...


class GlobalEntry(Protocol):
    """Which region users reach (DNS on AWS: Route53 failover records)."""

    def active(self) -> str | None: ...

    def switch(self, region: str) -> None:
        """Send every user to ``region``; idempotent."""
        ...

    def url(self) -> str:
        """Where users (and the write probe) reach the service."""
        ...


class Regions(Protocol):
    """The service's instances in each region."""

    def scale(self, region: str, count: int, *, progress: Progress) -> int:
        """Run ``count`` healthy instances in ``region`` behind its router; returns how many run."""
        ...

    def use_database(self, region: str, database: str | None) -> None:
        """Make the region's instances write to ``database``'s node (None: refuse writes)."""
        ...

    def writes_to(self, region: str) -> str | None: ...

    def versions(self, region: str) -> dict[str, str]:
        """Component -> the version it serves in ``region``; raises when the region does not answer."""
        ...

    def converge(self, region: str, versions: dict[str, str], *, progress: Progress) -> dict[str, str]:
        """Make each component serve its version in ``region`` at its current size (healthy before it
        takes over); idempotent; returns :meth:`versions` after."""
        ...

    def health(self, region: str) -> list[str]:
        """Failures of the region's health check (router and database), one line each."""
        ...
