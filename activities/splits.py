"""What every router checks of a split before applying it (shared by the routers that keep it
themselves: the simulated one and the local workers' dispatch)."""

from __future__ import annotations

from collections.abc import Iterable

from engine.contracts import Instance
from engine.errors import BadRequest


def check_split(
    weights: dict[str, int], members: dict[str, list[Instance]], pools: Iterable[str], *, kind: str
) -> None:
    """Known pools only; some pool takes traffic; a pool asked for traffic has ``kind`` behind it."""
    known = list(pools)
    unknown = set(weights) - set(known)
    if unknown:
        msg = f"unknown pool(s) {sorted(unknown)} (pools: {', '.join(known)})"
        raise BadRequest(msg)
    if not any(w > 0 for w in weights.values()):
        raise BadRequest("a split must send traffic somewhere")
    for pool, weight in weights.items():
        if weight > 0 and not members.get(pool):
            msg = f"pool {pool!r} is asked {weight}% but has no {kind} behind it"
            raise BadRequest(msg)
