"""`sdnmip mn-agent --config mn.yaml`: run the Mobile Node's Mobile IPv6 agent, or show its state.

    sdnmip mn-agent --config /etc/sdnmip/mn.yaml           run (until SIGTERM/SIGINT)
    sdnmip mn-agent --config /etc/sdnmip/mn.yaml status    print the agent's HoAs and uplinks

Exit status: 0 after a clean stop, 1 when the config, the key file or the state file is refused
(one line naming the field or file), 2 for a usage error.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import signal
import sys

from sdnmip.mn.config import ConfigError, MnConfig, load_config
from sdnmip.mn_agent.state import StateError

DEFAULT_CONFIG = "/etc/sdnmip/mn.yaml"


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="sdnmip mn-agent",
        description="The Mobile Node's Mobile IPv6 agent: Home Addresses, bindings, CoA tracking.",
    )
    p.add_argument("--config", default=DEFAULT_CONFIG, help=f"MN config (default {DEFAULT_CONFIG})")
    p.add_argument("--log-level", default="info", choices=["debug", "info", "warning", "error"])
    p.add_argument("command", nargs="?", choices=["run", "status"], default="run")
    p.add_argument("--json", action="store_true", help="status: print the snapshot as JSON")
    return p


def main(argv: list[str]) -> int:
    args = _parser().parse_args(argv)
    logging.basicConfig(
        level=getattr(logging, args.log_level.upper()),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    for noisy in ("pyroute2", "asyncio"):  # their debug output drowns the agent's
        logging.getLogger(noisy).setLevel(max(logging.INFO, logging.getLogger().level))
    try:
        cfg = load_config(args.config)
        if args.command == "status":
            return _status(cfg, as_json=args.json)
        key = cfg.identity.read_key()
    except ConfigError as exc:
        print(f"sdnmip mn-agent: {exc}", file=sys.stderr)
        return 1
    try:
        asyncio.run(_run(cfg, key))
    except StateError as exc:
        print(f"sdnmip mn-agent: {exc}", file=sys.stderr)
        return 1
    return 0


async def _run(cfg: MnConfig, key: bytes) -> None:
    from sdnmip.mn_agent.agent import Agent  # the kernel helpers are needed only to run

    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    await Agent(cfg, key).run(stop)


def _status(cfg: MnConfig, *, as_json: bool) -> int:
    from sdnmip.mn_agent.client import AgentClient, AgentUnavailable

    try:
        with AgentClient(cfg.agent_socket) as c:
            snap = c.status()
    except AgentUnavailable as exc:
        print(f"sdnmip mn-agent: {exc}", file=sys.stderr)
        return 1
    if as_json:
        print(json.dumps(snap.to_json(), indent=1))
        return 0
    print(f"home agent {snap.hello.home_agent}, primary HoA {snap.hello.primary_hoa}")
    for u in snap.uplinks:
        state = "usable" if u.usable else ("no carrier" if not u.carrier else "no CoA/router")
        print(f"uplink {u.name:<6} {state:<13} CoA {u.coa}  router {u.router}")
    for h in snap.hoas:
        left = "" if h.expires_in is None else f" expires in {h.expires_in:.0f}s"
        print(
            f"HoA {h.hoa!s:<28} {h.role.value:<13} {h.state.value:<13} via {h.uplink} "
            f"(CoA {h.coa}){left}"
        )
    print(f"spares: {', '.join(map(str, snap.spares)) or 'none'}")
    return 0
