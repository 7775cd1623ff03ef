"""Drive the running release of an environment.

    python starters/control.py approve|promote|resume|pause|abort|status [--env local]
                               [--as NAME] [--reason TEXT] [--version V] [--json]

approve, promote and resume move a release forward and need an approver listed
for the environment in deploy-code.yaml; pause and abort stop it and anyone may
send them. Each is a Temporal update: the answer says at once whether it was
accepted. The same controls work from the CLI:

    temporal workflow update execute --workflow-id release-sample-api-local \\
        --name approve --input '{"identity": "alice", "reason": "dashboards look fine"}'
"""

from __future__ import annotations

import argparse
import asyncio
import json

from temporalio.client import WorkflowUpdateFailedError
from temporalio.exceptions import FailureError
from temporalio.service import RPCError

from engine import temporal
from engine.client import control_target
from engine.config import load_config, resolve_environment
from engine.contracts import Control, ReleaseStatus
from engine.errors import InputError
from starters.common import (
    EXIT_BAD_INPUT,
    EXIT_OK,
    EXIT_REFUSED,
    default_identity,
    fail,
    format_decision,
    format_evidence,
    format_status,
    run,
)
from starters.pipeline import format_report

ACTIONS = ("approve", "promote", "resume", "pause", "abort", "status")
ANSWER_WITHIN = 30.0
"""Seconds to wait for a worker to run the update."""


async def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("action", choices=ACTIONS)
    parser.add_argument("--env", default=None)
    parser.add_argument("--config", default=None)
    parser.add_argument("--as", dest="identity", default=default_identity())
    parser.add_argument("--reason", default="")
    parser.add_argument("--version", default=None, help="refuse unless this version is the running release")
    parser.add_argument("--json", action="store_true", help="status as JSON")
    args = parser.parse_args(argv)
    try:
        config = load_config(args.config)
        env = resolve_environment(config, args.env)
        control = Control(identity=args.identity, reason=args.reason, version=args.version)
    except (InputError, ValueError) as exc:
        return fail(str(exc), EXIT_BAD_INPUT)

    client = await temporal.connect()
    handle = client.get_workflow_handle(temporal.release_workflow_id(config.app.name, env.name))
    try:
        if args.action == "status":
            status = await handle.query("status", result_type=ReleaseStatus)
            if args.json:
                print(json.dumps(status.model_dump(mode="json"), indent=2))
            else:
                print(f"{status.release} ({status.strategy})")
                print(format_status(status))
                for d in status.decisions:
                    print(format_decision(d))
                for d in status.refused:
                    print("  REFUSED" + format_decision(d))
                if status.evidence:
                    print("EVIDENCE (each judge's tests: canary against baseline or SLO)")
                    for e in status.evidence:
                        print(format_evidence(e))
                if status.stages:
                    print(format_report(status))
            return EXIT_OK
        target = await asyncio.wait_for(control_target(handle), timeout=ANSWER_WITHIN)
        answer = await asyncio.wait_for(
            target.execute_update(args.action, control, result_type=str), timeout=ANSWER_WITHIN
        )
    except TimeoutError:
        msg = f"no worker answered within {ANSWER_WITHIN:g}s: is worker.py running on this task queue?"
        return fail(msg, EXIT_REFUSED)
    except WorkflowUpdateFailedError as exc:
        reason = exc.cause.message if isinstance(exc.cause, FailureError) else str(exc.cause)
        return fail(f"{args.action} refused: {reason}", EXIT_REFUSED)
    except RPCError as exc:
        return fail(f"no release to {args.action} in {env.name}: {exc.message}", EXIT_REFUSED)
    print(answer)
    return EXIT_OK


if __name__ == "__main__":
    run(main())
