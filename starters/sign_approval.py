"""Print the JSON of a signed control, for the ``temporal`` CLI (where approvals are signed).

    python starters/sign_approval.py approve|promote|resume --env production --key ~/.ssh/id_ed25519
        [--as NAME] [--reason TEXT] [--failover] [--workflow-id ID --run-id RUN --subject VERSION]

It finds the run the control goes to (the release's strategy child while it runs, or the
release; ``--failover``: the environment's failover), signs this action of that run with your
SSH key (``ssh-keygen -Y sign``; the key never leaves this machine) and prints the input::

    temporal workflow update execute --workflow-id ID --name approve \\
        --input "$(python starters/sign_approval.py approve --env production --key ~/.ssh/id_ed25519)"

Without a Temporal connection, give ``--workflow-id``, ``--run-id`` and ``--subject`` (the
release's version, or the failover's operation as its status names it). The signature is valid
for the environment's ``signature_validity`` (15 minutes by default) and once.
"""

from __future__ import annotations

import argparse
import os

from engine import temporal
from engine.client import control_target
from engine.config import load_config, resolve_environment
from engine.contracts import Control
from engine.errors import InputError
from starters.common import EXIT_BAD_INPUT, EXIT_OK, fail, run
from starters.signing import identity_of, sign, subject_of


async def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("action", choices=("approve", "promote", "resume", "override-window"))
    parser.add_argument("--env", default=None)
    parser.add_argument("--config", default=None)
    parser.add_argument("--key", default=os.environ.get("DEPLOY_SIGNING_KEY"), help="your SSH key")
    parser.add_argument("--as", dest="identity", default=None)
    parser.add_argument("--reason", default="")
    parser.add_argument("--failover", action="store_true", help="the environment's running failover")
    parser.add_argument("--workflow-id", default=None)
    parser.add_argument("--run-id", default=None)
    parser.add_argument("--subject", default=None, help="the release's version / the failover's operation")
    args = parser.parse_args(argv)
    try:
        config = load_config(args.config)
        env = resolve_environment(config, args.env)
        if env.policy.approvals != "signed":
            raise InputError(f"approvals in {env.name!r} are named, not signed: no signature needed")
        if not args.key:
            raise InputError("--key (your SSH key, or DEPLOY_SIGNING_KEY) is needed to sign")
        identity = args.identity or identity_of(args.key, env.policy)
        given = (args.workflow_id, args.run_id, args.subject)
        if all(given):
            workflow_id, run_id, subject = given
        elif any(given):
            raise InputError(
                "--workflow-id, --run-id and --subject go together (or none: read from Temporal)"
            )
        else:
            workflow_id, run_id, subject = await _target(config.app.name, env.name, failover=args.failover)
        signature = sign(
            args.key,
            workflow_id=workflow_id,
            run_id=run_id,
            action=args.action,
            environment=env.name,
            subject=subject,
        )
    except InputError as exc:
        return fail(str(exc), EXIT_BAD_INPUT)
    print(Control(identity=identity, reason=args.reason, signature=signature).model_dump_json())
    return EXIT_OK


async def _target(app: str, environment: str, *, failover: bool) -> tuple[str, str, str]:
    """The run a control goes to now: its workflow id, run id and subject."""
    client = await temporal.connect()
    if failover:
        handle = client.get_workflow_handle(temporal.dr_workflow_id(app, environment, "failover"))
        return await subject_of(handle, failover=True)
    release = client.get_workflow_handle(temporal.release_workflow_id(app, environment))
    return await subject_of(await control_target(release))


if __name__ == "__main__":
    run(main())
