"""`sdnmip ha`: run the Home Agent, check its configuration, or show its bindings.

    sdnmip ha --config /etc/sdnmip/ha.yaml            run the daemon (until SIGTERM/SIGINT)
    sdnmip ha --config /etc/sdnmip/ha.yaml --check    validate ha.yaml and the keys file, exit
    sdnmip ha status [--config FILE | --socket PATH] [--json]

Owns: argument parsing, logging setup, the one-line error (exit status 2) for a bad
configuration or keys file, and the status client (a JSON line over the control socket).
Must not: contain HA logic (daemon.py and the cores do).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import socket
import sys
from pathlib import Path
from typing import Any

from sdnmip.home_agent.config import ConfigError, load_config
from sdnmip.home_agent.keys import KeysFileError, load_keys

EXIT_OK = 0
EXIT_RUNTIME = 1
EXIT_CONFIG = 2
DEFAULT_SOCKET = Path("/run/sdnmip/ha.sock")
STATUS_TIMEOUT = 10.0


def _run_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="sdnmip ha",
        description="Standards-only Mobile IPv6 Home Agent (RFC 6275, RFC 4285 authentication). "
        "`sdnmip ha status --help` shows the status command.",
    )
    p.add_argument("--config", type=Path, required=True, help="ha.yaml (see deploy/ha.yaml)")
    p.add_argument(
        "--check", action="store_true", help="validate the configuration and keys file, then exit"
    )
    return p


def _status_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="sdnmip ha status", description="List the HA's bindings.")
    where = p.add_mutually_exclusive_group()
    where.add_argument("--config", type=Path, help="ha.yaml, to find the control socket")
    where.add_argument("--socket", type=Path, help=f"control socket (default {DEFAULT_SOCKET})")
    p.add_argument("--json", action="store_true", help="print the whole status as JSON")
    return p


def main(argv: list[str]) -> int:
    if argv[:1] == ["status"]:
        return _status(argv[1:])
    args = _run_parser().parse_args(argv)
    try:
        cfg = load_config(args.config)
        keys = load_keys(cfg.keys_file)
    except (ConfigError, KeysFileError) as exc:
        print(f"sdnmip ha: {exc}", file=sys.stderr)
        return EXIT_CONFIG
    if args.check:
        print(f"{args.config}: valid; {len(keys)} mobile node key(s) in {cfg.keys_file}")
        return EXIT_OK
    # Libraries (pyroute2 logs every netlink message at debug) stay at warning.
    logging.basicConfig(
        level=logging.WARNING,
        format="%(asctime)s sdnmip-ha %(levelname)s %(message)s",
        stream=sys.stderr,
    )
    logging.getLogger("sdnmip").setLevel(getattr(logging, cfg.log_level.upper()))
    from sdnmip.home_agent.daemon import AlreadyRunning, HomeAgent
    from sdnmip.kernel.errors import KernelConfigError, KernelRequestError

    try:
        asyncio.run(HomeAgent(cfg, keys).run())
    except (KernelConfigError, KernelRequestError, AlreadyRunning) as exc:
        logging.getLogger("sdnmip.ha").error("cannot run: %s", exc)
        return EXIT_RUNTIME
    return EXIT_OK


def query(path: Path, command: str = "status", timeout: float = STATUS_TIMEOUT) -> dict[str, Any]:
    """Ask the daemon behind control socket `path`; returns its reply's `status`."""
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
        s.settimeout(timeout)
        s.connect(str(path))
        s.sendall(json.dumps({"command": command}).encode() + b"\n")
        chunks = []
        while True:
            chunk = s.recv(1 << 16)
            if not chunk:
                break
            chunks.append(chunk)
    reply = json.loads(b"".join(chunks))
    if not reply.get("ok"):
        raise RuntimeError(str(reply.get("error")))
    status: dict[str, Any] = reply["status"]
    return status


def format_status(st: dict[str, Any]) -> str:
    c = st["counters"]
    lines = [
        f"home agent {st['home_agent']} (pid {st['pid']}, up {st['uptime']:.0f} s): "
        f"{c['bindings']} bindings, {c['dad_running']} DAD running",
    ]
    rows = [("HOME ADDRESS", "CARE-OF ADDRESS", "NAI", "SEQ", "LIFETIME", "REMAINING")]
    rows += [
        (b["home_address"], b["careof"], b["nai"], str(b["sequence"]), f"{b['lifetime']} s",
         f"{b['remaining']:.0f} s")
        for b in st["bindings"]
    ]  # fmt: skip
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    for r in rows:
        lines.append("  ".join(v.ljust(w) for v, w in zip(r, widths, strict=True)).rstrip())
    by_status = ", ".join(f"{k}: {v}" for k, v in c["bu_by_status"].items()) or "none"
    lines += [
        "",
        f"BUs by BA status: {by_status}",
        f"BAs sent {c['ba_sent']}, Binding Errors sent {c['be_sent']} "
        f"(suppressed {c['be_suppressed']}), DAD run {c['dad_started']} / failed {c['dad_failed']}",
        f"registrations {c['registrations']}, handovers {c['handovers']}, refreshes "
        f"{c['refreshes']}, deregistrations {c['deregistrations']}, expired {c['expired']}",
    ]
    return "\n".join(lines)


def _status(argv: list[str]) -> int:
    args = _status_parser().parse_args(argv)
    path = args.socket or DEFAULT_SOCKET
    if args.config is not None:
        try:
            path = load_config(args.config).control_socket
        except ConfigError as exc:
            print(f"sdnmip ha status: {exc}", file=sys.stderr)
            return EXIT_CONFIG
    try:
        st = query(path)
    except (OSError, RuntimeError, json.JSONDecodeError) as exc:
        print(f"sdnmip ha status: no answer on {path}: {exc}", file=sys.stderr)
        return EXIT_RUNTIME
    print(json.dumps(st, indent=1) if args.json else format_status(st))
    return EXIT_OK
