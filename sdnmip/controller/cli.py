"""`sdnmip mn-controller --config mn.yaml`: the MN's OpenFlow controller process.

Owns the start-up order, which matters:
1. read and check the configuration (a mistake is one line naming the field, exit 1);
2. set up the bridge through OVSDB (python-ovs IDL, before eventlet patches anything), read its
   ports back, build the logic (restored from its snapshot if there is one) and the policy;
3. hand over to sdnmip/controller/runner.py: eventlet, os-ken, our app, the control socket,
   until SIGTERM/SIGINT (exit 0: the switch keeps forwarding with its rules, fail_mode secure)
   or a fatal condition (exit 1: the supervisor restarts us).
Must not: hold logic (sdnmip/controller/logic.py) or event handlers (app.py).
"""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path
from typing import Any

log = logging.getLogger("sdnmip.controller")


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="sdnmip mn-controller",
        description="Run the Mobile Node's OpenFlow controller (os-ken) on its OVS bridge.",
    )
    p.add_argument("--config", required=True, type=Path, help="the MN configuration (mn.yaml)")
    p.add_argument("--stats-interval", type=float, default=10.0, metavar="S",
                   help="seconds between flow/port counter polls (default 10)")  # fmt: skip
    p.add_argument("--request-timeout", type=float, default=10.0, metavar="S",
                   help="deadline of every request to the switch (default 10)")  # fmt: skip
    p.add_argument("--log-level", default="info", choices=["debug", "info", "warning", "error"])
    p.add_argument(
        "--profile", type=Path, metavar="FILE", help="write a cProfile of the run to FILE on exit"
    )
    return p


def main(argv: list[str]) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(
        level=args.log_level.upper(),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    from sdnmip.controller import settings
    from sdnmip.controller.bridge import BridgeError, setup_bridge
    from sdnmip.controller.logic import MnLogic
    from sdnmip.controller.persist import SnapshotStore, StateError
    from sdnmip.core.policy_model import PolicyError
    from sdnmip.mn.config import ConfigError, load_config
    from sdnmip.northbound.server import Northbound, StartError
    from sdnmip.ovsdb.idl import Ovsdb, OvsdbError

    try:
        cfg = load_config(args.config)
        northbound = Northbound.from_config(cfg)
    except (ConfigError, PolicyError, StartError) as exc:
        print(f"sdnmip mn-controller: {exc}", file=sys.stderr)
        return 1
    spec = settings.bridge_spec(cfg)
    try:
        with Ovsdb(cfg.bridge.ovsdb) as db:
            ports = setup_bridge(db, spec)
    except (BridgeError, OvsdbError) as exc:
        print(f"sdnmip mn-controller: {exc}", file=sys.stderr)
        return 1
    engine = northbound.engine
    logic_cfg = settings.logic_config(cfg, ports)
    store = SnapshotStore(settings.snapshot_path(cfg))
    try:
        saved = store.load()
        logic = MnLogic.restore(logic_cfg, engine, saved) if saved else None
    except (StateError, KeyError, TypeError, ValueError) as exc:
        log.error("cannot use the saved tables (%s): starting with empty ones; reconciliation "
                  "removes the rules of the flows it does not know", exc)  # fmt: skip
        logic = None
    if logic is None:
        logic = MnLogic(logic_cfg, engine)
    else:
        log.info("restored %d flows and %d HoAs from %s", len(logic.flows), len(logic.hoas),
                 store.path)  # fmt: skip
    log.info("bridge %s (dpid %016x): hoa port %d, uplinks %s", spec.name, ports.datapath_id,
             ports.hoa_port,
             ", ".join(f"{u.name} {u.phys_port}/{u.tun_port}" for u in ports.uplinks))  # fmt: skip
    return _run_os_ken(args, cfg, spec=spec, ports=ports, logic=logic, store=store,
                       northbound=northbound)  # fmt: skip


def _run_os_ken(
    args: argparse.Namespace,
    cfg: Any,
    *,
    spec: Any,
    ports: Any,
    logic: Any,
    store: Any,
    northbound: Any,
) -> int:
    from sdnmip.controller import runner, settings

    runner.patch()
    from sdnmip.controller.agent_link import AgentLink
    from sdnmip.controller.app import MnControllerApp, Runtime, Timing

    def make_runtime() -> Runtime:
        from os_ken.lib import hub

        from sdnmip.mn_agent.client import AgentUnavailable

        agent = AgentLink(cfg.agent_socket)

        def agent_view() -> Any:
            try:
                return agent.status()
            except AgentUnavailable:
                return None

        def started(app: MnControllerApp) -> None:
            northbound.start(app, hub.spawn, agent=agent_view,
                             agent_connected=lambda: agent.connected)  # fmt: skip

        return Runtime(
            logic=logic,
            spec=spec,
            ports=ports,
            store=store,
            agent=agent,
            timing=Timing(request_timeout=args.request_timeout, stats_interval=args.stats_interval),
            on_started=started,
            flow_setup=northbound.flow_setup.observe,
        )

    host, port = settings.listen_address(cfg)
    return runner.serve(make_runtime, host, port, settings.control_socket(cfg), args.profile)
