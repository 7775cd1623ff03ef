"""Smoke-test what an environment serves now, with the engine's own providers.

    python smoke_tests.py [--env production] [--config deploy-code.yaml]    # ./scripts/smoke-tests.sh

The same checks as a release's post-deployment stage (workflows/release.py), run by hand:
observe the environment (its platform's instances, its router's split read back), then
GET the app's health path on every instance of the pools that take traffic, through the
environment's ``smoke`` provider. It changes nothing.

Exit codes: 0 every serving instance passed, 1 a check failed (or nothing serves traffic),
2 refused input (unknown environment, bad configuration).

An entry point like ``worker.py`` (it runs the activities' code in this process), so it lives
at the top of the repository, not in ``starters/`` (which never import activities).
"""

from __future__ import annotations

import argparse
import os
import sys

from activities.definitions import observe, smoke_check
from engine.config import load_config, resolve_environment
from engine.contracts import EnvironmentRef, SmokeRequest
from engine.errors import InputError


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="smoke_tests.py", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--env",
        default=os.environ.get("DEPLOY_ENVIRONMENT") or None,
        help="environment of deploy-code.yaml (default: $DEPLOY_ENVIRONMENT, else the file's default)",
    )
    parser.add_argument("--config", default=None, help="path of deploy-code.yaml")
    args = parser.parse_args(argv)
    try:
        config = load_config(args.config)
        env = resolve_environment(config, args.env)
    except InputError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    observed = observe(EnvironmentRef(environment=env))
    serving = sorted(p for p, w in observed.router.weights.items() if w > 0)
    split = ", ".join(f"{p} {w:g}%" for p, w in sorted(observed.router.weights.items()) if w > 0)
    instances = [i for i in observed.instances if i.pool in serving]
    versions = sorted({i.version for i in instances})
    what = f"{config.app.name} in {env.name}"
    if not instances:
        print(f"FAILED: no instance of {what} takes traffic (router: {split or 'no pool'})")
        # Why, most likely: the router's health checks took them out. Smoke whatever runs.
        result = smoke_check(
            SmokeRequest(environment=env, instances=observed.instances, path=config.app.health_path)
        )
        for failure in result.failures:
            print(f"  {failure}")
        return 1
    result = smoke_check(SmokeRequest(environment=env, instances=instances, path=config.app.health_path))
    live = ", ".join(versions)
    if not result.ok:
        print(f"FAILED: smoke tests of {what} ({live}; {split}): {len(result.failures)} of {result.checked}")
        for failure in result.failures:
            print(f"  {failure}")
        return 1
    path = config.app.health_path
    print(f"PASSED: smoke tests of {what}: {live} live ({split}), {result.checked} instance(s) answer {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
