"""`sdnmip testbed up|down|status`: the command-line face of sdnmip.testbed."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from sdnmip.testbed.errors import TestbedError
from sdnmip.testbed.names import DEFAULT_PREFIX
from sdnmip.testbed.spec import SpecError, load_topology

EXIT_OK = 0
EXIT_ERROR = 1
EXIT_USAGE = 2


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="sdnmip testbed",
        description="Build, inspect or remove the reference topology in network namespaces "
        "(MN with a private OVS and two uplinks, two access routers, core, HA, CN1, CN2).",
    )
    sub = parser.add_subparsers(dest="action", required=True, metavar="{up,down,status}")

    def with_prefix(p: argparse.ArgumentParser) -> None:
        p.add_argument(
            "--prefix",
            default=DEFAULT_PREFIX,
            help=f"namespaces are named PREFIX-<node> (default {DEFAULT_PREFIX}); "
            "testbeds with different prefixes coexist",
        )

    up = sub.add_parser("up", help="build the testbed and wait until the MN has its CoAs")
    with_prefix(up)
    up.add_argument("--topology", type=Path, help="topology YAML (default: the shipped one)")
    up.add_argument("--profile", help="link profile from the topology (default, delay, fast, ...)")
    up.add_argument(
        "--set",
        dest="overrides",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="override a topology value, e.g. --set profiles.default.lte.delay_ms=40 (repeatable)",
    )
    down = sub.add_parser("down", help="remove every namespace, process and file of the testbed")
    with_prefix(down)
    status = sub.add_parser("status", help="show namespaces, processes, CoAs and link profiles")
    with_prefix(status)
    return parser


def main(argv: list[str]) -> int:
    if argv[:1] == ["wire"]:
        # Internal, not in the usage: the link emulator that `up` runs on a shaped uplink.
        from sdnmip.testbed import wire

        return wire.main(argv[1:])
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # argparse exits 2 on a usage error, 0 for --help
        return int(exc.code or 0)
    from sdnmip.testbed.testbed import Testbed, format_status, teardown

    try:
        if args.action == "up":
            topology = load_topology(args.topology, profile=args.profile, overrides=args.overrides)
            testbed = Testbed(topology, args.prefix)
            testbed.up()
            format_status(testbed.status(), sys.stdout)
            return EXIT_OK
        if args.action == "down":
            report = teardown(args.prefix)
            if not report.namespaces and not report.state_dir_removed:
                print(f"testbed {args.prefix}: nothing to remove")
            else:
                print(
                    f"testbed {args.prefix}: removed {len(report.namespaces)} namespaces, "
                    f"stopped {len(report.killed)} processes"
                )
            return EXIT_OK
        # status
        try:
            testbed = Testbed.attach(args.prefix)
        except TestbedError:
            testbed = Testbed(load_topology(), args.prefix)  # names still tell what is left over
        st = testbed.status()
        format_status(st, sys.stdout)
        return EXIT_OK if st.healthy else EXIT_ERROR
    except SpecError as exc:
        print(f"sdnmip testbed: topology: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except TestbedError as exc:
        print(f"sdnmip testbed: {exc}", file=sys.stderr)
        return EXIT_ERROR
    except KeyboardInterrupt:
        print("sdnmip testbed: interrupted (what `up` had built was removed)", file=sys.stderr)
        return 130
