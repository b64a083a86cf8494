"""`sdnmip check-flows FILE...`: validate policy files offline with the daemon's own parser.

Prints `OK FILE (N rules)` for each good file on stdout and `FILE:LINE: field: reason` for each
refusal on stderr. Exit status 0 when every file is good and they fit together (unique rule ids,
one default), 1 otherwise, 2 for a usage error. Needs no root and no running daemon.
"""

from __future__ import annotations

import argparse
import sys
from ipaddress import IPv6Network

from sdnmip.core.policy_model import PolicyError
from sdnmip.core.policy_parse import Context
from sdnmip.northbound.policy_file import check_paths, expand


def _uplinks(text: str) -> frozenset[str]:
    names = frozenset(n.strip() for n in text.split(",") if n.strip())
    if not names:
        raise argparse.ArgumentTypeError("expected names separated by commas, e.g. wlan,lte")
    return names


def _prefix(text: str) -> IPv6Network:
    try:
        return IPv6Network(text, strict=True)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"{text!r} is not an IPv6 prefix: {exc}") from None


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="sdnmip check-flows",
        description="Validate sdnmip policy files (see docs/policy.md) without running anything.",
    )
    parser.add_argument(
        "files", nargs="+", metavar="FILE", help="policy files, or directories of them"
    )
    parser.add_argument(
        "--uplinks",
        type=_uplinks,
        metavar="NAMES",
        help="comma-separated uplink names the rules may use (default: any name)",
    )
    parser.add_argument(
        "--home-prefix",
        type=_prefix,
        action="append",
        metavar="PREFIX",
        help="home prefix a dedicated_hoa must lie in (repeatable; default: not checked)",
    )
    return parser


def main(argv: list[str]) -> int:
    args = _parser().parse_args(argv)
    prefixes = tuple(args.home_prefix) if args.home_prefix else None
    context = Context(uplinks=args.uplinks, home_prefixes=prefixes)
    try:
        paths = expand(args.files)
    except PolicyError as exc:
        print(exc, file=sys.stderr)
        return 1
    if not paths:
        print("no policy files (*.yaml, *.yml) found", file=sys.stderr)
        return 1
    good, errors = check_paths(paths, context)
    for path, count in good:
        print(f"OK {path} ({count} rule{'s' if count != 1 else ''})")
    for error in errors:
        print(error, file=sys.stderr)
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
