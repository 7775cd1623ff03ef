"""``latest`` picks by semantic-version precedence; ``CANARY_WEIGHT`` starts the canary there."""

from __future__ import annotations

import pytest

from engine.config import load_config, resolve_release, with_first_weight
from engine.contracts import describe_step
from engine.errors import InputError
from engine.versions import newest, version_key


def test_newest_is_by_semantic_version_not_by_string() -> None:
    tags = ["v1.9.0", "v1.10.0", "v1.10.0-rc.1", "v1.2.30", "latest", "sha-1a2b3c", "main", "v2.0"]
    assert max(t for t in tags if t.startswith("v1.")) == "v1.9.0"  # what string order would pick
    assert newest(tags) == "v1.10.0"
    assert newest(["v1.10.0-rc.2", "v1.10.0-rc.10", "v1.9.9"]) == "v1.10.0-rc.10"
    assert newest(["1.2.3", "v1.2.4"]) == "v1.2.4"  # the leading v does not order
    assert newest(["latest", "main"]) is None
    assert newest([]) is None


def test_precedence_follows_semver_section_11() -> None:
    ordered = [
        "1.0.0-alpha",
        "1.0.0-alpha.1",
        "1.0.0-alpha.beta",
        "1.0.0-beta",
        "1.0.0-beta.2",
        "1.0.0-beta.11",
        "1.0.0-rc.1",
        "1.0.0",
        "1.0.1",
        "1.1.0",
        "2.0.0",
    ]
    assert sorted(reversed(ordered), key=version_key) == ordered
    with pytest.raises(ValueError, match="not a semantic version"):
        version_key("latest")


def steps(environment: str, weight: int) -> list[str]:
    config = with_first_weight(load_config(), weight, environment)
    spec = resolve_release(config, "v1.2.3", "canary", environment)
    assert spec.canary is not None
    return [describe_step(s.step) for s in spec.canary.steps]


def test_first_weight_replaces_the_first_step_and_skips_lower_ones() -> None:
    # local: 10, analysis, 25, pause 3s, 50, analysis
    assert steps("local", 25) == [
        "set weight 25%",
        "analysis canary-vs-baseline",
        "pause 0:00:03",
        "set weight 50%",
        "analysis canary-vs-baseline",
    ]
    assert steps("local", 5)[:3] == ["set weight 5%", "analysis canary-vs-baseline", "set weight 25%"]
    # production has its own canary (5, analysis, approval, 25, ...): the override lands there.
    production = steps("production", 25)
    assert production[0] == "set weight 25%"
    assert [s for s in production if s.startswith("set weight")] == ["set weight 25%", "set weight 50%"]
    assert "pause for approval" in production  # the human gate stays


def test_first_weight_out_of_range_is_refused_naming_it() -> None:
    for weight in (0, 100, 250):
        with pytest.raises(InputError, match=f"first canary weight {weight}: expected 1 to 99"):
            with_first_weight(load_config(), weight, "local")
