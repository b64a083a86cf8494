"""`sdnmip mn --config mn.yaml`: run the Mobile Node (the agent and the controller processes).

Checks the configuration first (one line naming the field, exit 1), then supervises
`sdnmip mn-agent` and `sdnmip mn-controller` (sdnmip/mn/supervisor.py) until SIGTERM/SIGINT.
Each child's output goes to `<run_dir>/logs/<child>.log` (or to our stderr with --log-dir -);
the supervisor's own messages go to stderr.
"""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

from sdnmip.mn.supervisor import Backoff, ChildSpec, Supervisor

DEFAULT_CONFIG = "/etc/sdnmip/mn.yaml"


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="sdnmip mn",
        description="Run the Mobile Node: its Mobile IPv6 agent and its OpenFlow controller.",
    )
    p.add_argument("--config", default=DEFAULT_CONFIG, help=f"MN config (default {DEFAULT_CONFIG})")
    p.add_argument(
        "--log-dir",
        default=None,
        help="directory for the children's logs (default <run_dir>/logs; '-': stderr)",
    )
    p.add_argument("--log-level", default="info", choices=["debug", "info", "warning", "error"])
    p.add_argument(
        "--grace",
        type=float,
        default=10.0,
        help="seconds a child has to stop after SIGTERM before SIGKILL (default 10)",
    )
    return p


def children(config: Path, log_dir: Path | None, log_level: str) -> list[ChildSpec]:
    me = [sys.executable, "-m", "sdnmip"]
    out = []
    for name in ("mn-agent", "mn-controller"):
        argv = [*me, name, "--config", str(config), "--log-level", log_level]
        out.append(ChildSpec(name, argv, None if log_dir is None else log_dir / f"{name}.log"))
    return out


def main(argv: list[str]) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(
        level=args.log_level.upper(),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    from sdnmip.mn.config import ConfigError, load_config

    config = Path(args.config).resolve()
    try:
        cfg = load_config(config)
    except ConfigError as exc:
        print(f"sdnmip mn: {exc}", file=sys.stderr)
        return 1
    if cfg.northbound.token_file is not None:
        # The controller reads the token; a bad token file found only there would have the
        # supervisor restart it again and again. Refuse before starting anything.
        from sdnmip.northbound.auth import TokenFileError, load_token

        try:
            load_token(cfg.northbound.token_file)
        except TokenFileError as exc:
            print(f"sdnmip mn: {exc}", file=sys.stderr)
            return 1
    if args.log_dir == "-":
        log_dir = None
    else:
        log_dir = Path(args.log_dir) if args.log_dir else Path(cfg.paths.run_dir) / "logs"
    sup = Supervisor(children(config, log_dir, args.log_level), backoff=Backoff(), grace=args.grace)
    sup.install_signal_handlers()
    return sup.run()
