"""Integer HAProxy weights for a percentage split: accurate, and safe while half applied."""

from __future__ import annotations

import itertools

import pytest

from activities.router.haproxy import MAX_WEIGHT, server_weights
from engine.errors import BadRequest

MEMBERS = [{"blue": 3, "green": 1}, {"blue": 2, "green": 1}, {"blue": 3, "green": 3}, {"blue": 8, "green": 2}]


def share(per_server: dict[str, int], members: dict[str, int], pool: str) -> float:
    totals = {p: per_server[p] * members[p] for p in per_server}
    return 100.0 * totals[pool] / sum(totals.values())


@pytest.mark.parametrize("members", MEMBERS)
def test_split_is_within_one_point_and_fits_haproxy(members: dict[str, int]) -> None:
    for canary in range(1, 100):
        weights = server_weights({"blue": 100 - canary, "green": canary}, members)
        assert min(weights.values()) >= 1 and max(weights.values()) <= MAX_WEIGHT
        assert abs(share(weights, members, "green") - canary) <= 1.0, (members, canary, weights)


@pytest.mark.parametrize("members", MEMBERS)
def test_a_half_applied_change_stays_between_old_and_new(members: dict[str, int]) -> None:
    """HAProxy applies a batch one server at a time: no moment may overshoot the new split."""
    steps = [0, 5, 10, 25, 35, 40, 50, 65, 70, 100]
    for old, new in itertools.pairwise(steps):
        before = server_weights({"blue": 100 - old, "green": old}, members)
        after = server_weights({"blue": 100 - new, "green": new}, members)
        servers = [(p, i) for p in ("blue", "green") for i in range(members[p])]
        for applied in range(len(servers) + 1):
            for order in (servers, servers[::-1]):
                done = set(order[:applied])
                totals = {"blue": 0, "green": 0}
                for pool, i in servers:
                    totals[pool] += (after if (pool, i) in done else before)[pool]
                green = 100.0 * totals["green"] / sum(totals.values())
                assert old - 0.5 <= green <= new + 0.5, (members, old, new, applied, green)


def test_refuses_a_share_for_a_pool_without_instances() -> None:
    with pytest.raises(BadRequest, match="no instances behind it"):
        server_weights({"blue": 90, "green": 10}, {"blue": 3, "green": 0})
