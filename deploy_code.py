"""The seed's ``deploy_code.py``: a thin wrapper over ``starters/deploy.py``.

    python deploy_code.py --config deploy-code.yaml --environment production
    python deploy_code.py --version v1.2.3 --strategy blue-green

``--version`` defaults to ``latest`` (the newest version tag of the environment's CI image
repository, released by its digest), ``--strategy`` to ``canary``, ``--environment`` to
``$DEPLOY_ENVIRONMENT`` or ``production``, ``--config`` to ``$DEPLOY_CONFIG`` or
deploy-code.yaml. It follows the release to its end (``--no-wait``: start it and return).
Any other option goes to the starter as it is (``--dry-run``, ``--first-weight 25``,
``--redeploy``, ``--as NAME``; see ``python starters/deploy.py --help``). Exit codes are the
starter's: 0 released, 1 rolled back or failed, 2 refused input (nothing changed), 3 another
release is running.
"""

from __future__ import annotations

import argparse
import os
import sys

from engine.versions import LATEST
from starters import deploy
from starters.common import run


def starter_argv(argv: list[str]) -> list[str]:
    """The arguments of ``starters/deploy.py`` for these ``deploy_code.py`` arguments."""
    parser = argparse.ArgumentParser(
        prog="deploy_code.py", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--config",
        default=os.environ.get("DEPLOY_CONFIG"),
        help="path of deploy-code.yaml (or DEPLOY_CONFIG)",
    )
    parser.add_argument(
        "--environment",
        default=os.environ.get("DEPLOY_ENVIRONMENT", "production"),
        help="environment of deploy-code.yaml (default: $DEPLOY_ENVIRONMENT or production)",
    )
    parser.add_argument("--version", default=LATEST, help="version to release (default: latest)")
    parser.add_argument(
        "--strategy", default="canary", help="canary, blue-green or rolling (default: canary)"
    )
    parser.add_argument("--no-wait", action="store_true", help="start the release and return")
    args, rest = parser.parse_known_args(argv)
    out = [args.version, args.strategy, "--env", args.environment]
    if args.config:
        out += ["--config", args.config]
    if not args.no_wait:
        out.append("--wait")
    return out + rest


def main() -> None:
    run(deploy.main(starter_argv(sys.argv[1:])))


if __name__ == "__main__":
    main()
