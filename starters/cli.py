"""``deploy-code``: one console script for every starter (``[project.scripts]`` in pyproject.toml).

    deploy-code deploy v1.2.3 canary [--env local] [--wait] [--dry-run]   # starters/deploy.py
    deploy-code control status|approve|promote|resume|pause|abort|history # starters/control.py
    deploy-code status | history | approve | ...                          # the same, shorter
    deploy-code undo --as NAME --reason TEXT [--wait]                     # back to the previous version
    deploy-code failover --to B [--drill] [--wait]                        # starters/failover.py
    deploy-code dr-monitor start|status|stop                              # starters/dr_monitor.py
    deploy-code drill-schedule create|trigger|describe|...                # starters/schedule_dr_drill.py
    deploy-code sign-approval approve --env production --key KEY          # starters/sign_approval.py
    deploy-code codec-server [--bind 127.0.0.1:8081]                      # starters/codec_server.py
    deploy-code dashboard [--port 8400]                                   # starters/dashboard.py

Each command is the starter itself (its ``main(argv)``, its options, its exit codes), so
``deploy-code deploy ...`` and ``python starters/deploy.py ...`` do the same thing;
``deploy-code COMMAND --help`` shows the starter's help.
"""

from __future__ import annotations

import importlib
import inspect
import os
import sys
from typing import NoReturn

from starters.common import EXIT_BAD_INPUT, EXIT_BROKEN_PIPE, run

COMMANDS: dict[str, tuple[str, list[str], str]] = {
    # command: (starter module, arguments put before the user's, what it does)
    "deploy": ("starters.deploy", [], "start a release (or attach to it): VERSION STRATEGY"),
    "control": ("starters.control", [], "drive the running release: status, approve, pause, abort, ..."),
    "failover": ("starters.failover", [], "fail over to a region, fail back, or run a DR drill"),
    "dr-monitor": ("starters.dr_monitor", [], "start, inspect or stop the DR monitor"),
    "drill-schedule": ("starters.schedule_dr_drill", [], "manage the schedule of DR drills"),
    "sign-approval": ("starters.sign_approval", [], "print a signed control for the temporal CLI"),
    "codec-server": ("starters.codec_server", [], "serve the payload codec to the Temporal web UI"),
    "dashboard": ("starters.dashboard", [], "serve the release dashboard (releases, failovers, one live)"),
}
SHORTCUTS = ("status", "history", "approve", "promote", "resume", "pause", "abort", "undo")
"""``deploy-code status`` is ``deploy-code control status`` (the same for each control action)."""
for _action in SHORTCUTS:
    COMMANDS[_action] = ("starters.control", [_action], f"= control {_action}")


def usage() -> str:
    width = max(len(c) for c in COMMANDS)
    lines = [
        "usage: deploy-code COMMAND [ARGS...]   (deploy-code COMMAND --help: the command's options)",
        "",
        "commands:",
    ]
    lines += [f"  {name:<{width}}  {what}" for name, (_, _, what) in COMMANDS.items()]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> NoReturn:
    """Run the starter named by the first argument with the rest; exit with its code."""
    try:
        dispatch(sys.argv[1:] if argv is None else list(argv))
    except BrokenPipeError:  # `deploy-code --help | head`: the reader has what it wanted
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        os._exit(EXIT_BROKEN_PIPE)


def dispatch(args: list[str]) -> NoReturn:
    if not args or args[0] in ("-h", "--help", "help"):
        print(usage())
        sys.exit(0 if args else EXIT_BAD_INPUT)
    command, rest = args[0], args[1:]
    if command not in COMMANDS:
        print(usage(), file=sys.stderr)
        print(f"\nerror: unknown command {command!r}", file=sys.stderr)
        sys.exit(EXIT_BAD_INPUT)
    module, before, _ = COMMANDS[command]
    sys.argv[0] = f"deploy-code {command}"  # the starter's argparse names itself after this
    code = importlib.import_module(module).main([*before, *rest])
    if inspect.iscoroutine(code):
        run(code)  # exits (os._exit after flushing; see starters.common.run)
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(int(code))


if __name__ == "__main__":
    main()
