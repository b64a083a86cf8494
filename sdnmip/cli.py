"""The `sdnmip` command: dispatches a subcommand to the module that owns it.

Each subcommand lives in its component and exposes `main(argv: list[str]) -> int`. Modules are
imported only when their subcommand runs, so `sdnmip check-flows` does not pay for os-ken and
`sdnmip ha` never imports the MN side.
"""

from __future__ import annotations

import importlib
import os
import sys

EXIT_BROKEN_PIPE = 141  # 128 + SIGPIPE, what a shell reports for a tool killed by the signal

# name -> (module, one-line help). Keep sorted by workflow, not alphabetically.
COMMANDS: dict[str, tuple[str, str]] = {
    "testbed": ("sdnmip.testbed.cli", "build, inspect or remove the emulated namespace topology"),
    "ha": ("sdnmip.home_agent.cli", "run the standards-only Home Agent, or show its bindings"),
    "mn": ("sdnmip.mn.cli", "run the Mobile Node (agent + OpenFlow controller + northbound)"),
    "mn-agent": ("sdnmip.mn_agent.cli", "run only the Mobile Node's Mobile IPv6 agent"),
    "mn-controller": ("sdnmip.controller.cli", "run only the Mobile Node's OpenFlow controller"),
    "check-flows": ("sdnmip.northbound.check", "validate policy files offline"),
    "flows": ("sdnmip.northbound.client_cli", "list the Mobile Node's flows"),
    "hoas": ("sdnmip.northbound.client_cli", "list the Mobile Node's Home Addresses"),
    "move": ("sdnmip.northbound.client_cli", "move one flow to a network"),
    "rules": ("sdnmip.northbound.client_cli", "list, add or delete operator rules"),
    "demo": ("sdnmip.demo.run", "run the per-flow handover demo end to end"),
}


def _usage() -> str:
    width = max(len(n) for n in COMMANDS)
    lines = ["usage: sdnmip COMMAND [ARGS...]", "", "commands:"]
    lines += [f"  {name:<{width}}  {help_}" for name, (_, help_) in COMMANDS.items()]
    lines += ["", "`sdnmip COMMAND --help` describes a command."]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if not args or args[0] in ("-h", "--help"):
        print(_usage())
        return 0 if args else 2
    if args[0] == "--version":
        from sdnmip import __version__

        print(__version__)
        return 0
    name, rest = args[0], args[1:]
    if name not in COMMANDS:
        print(f"sdnmip: unknown command {name!r}\n\n{_usage()}", file=sys.stderr)
        return 2
    module = importlib.import_module(COMMANDS[name][0])
    try:
        # Modules serving several commands (the northbound client) get the command name first.
        if getattr(module, "MULTI_COMMAND", False):
            return int(module.main([name, *rest]))
        return int(module.main(rest))
    except BrokenPipeError:
        # The reader of our output went away (`sdnmip flows --json | head`): stop quietly, as
        # Unix tools do, instead of a traceback. Python would report the pipe again when it
        # flushes stdout at exit: point stdout at /dev/null first.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return EXIT_BROKEN_PIPE
