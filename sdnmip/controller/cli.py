"""`sdnmip mn-controller --config mn.yaml`: the MN's OpenFlow controller process.

Owns the start-up order, which matters:
1. read and check the configuration (a mistake is one line naming the field, exit 1);
2. set up the bridge through OVSDB (python-ovs IDL, before eventlet patches anything), read its
   ports back, build the logic (restored from its snapshot if there is one) and the policy;
3. select os-ken's eventlet hub and monkey-patch (`hub.patch(thread=False)`), import os-ken's
   AppManager before `os_ken.controller.controller` (the other order is a circular import),
   configure where it listens, and start `ofp_handler` plus our app;
4. serve the control socket, run until SIGTERM/SIGINT (exit 0: the switch keeps forwarding with
   its rules, fail_mode secure) or a fatal condition (exit 1: the supervisor restarts us).
Must not: hold logic (sdnmip/controller/logic.py) or event handlers (app.py).
"""

from __future__ import annotations

import argparse
import gc
import importlib
import logging
import os
import signal
import sys
from pathlib import Path
from typing import Any

log = logging.getLogger("sdnmip.controller")

# Full collections over a table of many thousand flows cost milliseconds each; the objects the
# controller keeps are long-lived and almost never cyclic, so collect the young generation
# often and the old one rarely (the start-up objects are frozen out of collection altogether).
GC_THRESHOLDS = (20_000, 50, 1000)


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
    from sdnmip.ovsdb.idl import Ovsdb, OvsdbError

    try:
        cfg = load_config(args.config)
        engine, reloader = settings.policy_engine(cfg)
    except (ConfigError, PolicyError) as exc:
        print(f"sdnmip mn-controller: {exc}", file=sys.stderr)
        return 1
    spec = settings.bridge_spec(cfg)
    try:
        with Ovsdb(cfg.bridge.ovsdb) as db:
            ports = setup_bridge(db, spec)
    except (BridgeError, OvsdbError) as exc:
        print(f"sdnmip mn-controller: {exc}", file=sys.stderr)
        return 1
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
    return _run_os_ken(args, cfg, spec=spec, ports=ports, logic=logic, store=store, policy=reloader)


def _run_os_ken(
    args: argparse.Namespace,
    cfg: Any,
    *,
    spec: Any,
    ports: Any,
    logic: Any,
    store: Any,
    policy: Any,
) -> int:
    os.environ["OSKEN_HUB_TYPE"] = "eventlet"  # os-ken 4.x defaults to native threads
    from os_ken.lib import hub

    hub.patch(thread=False)
    # AppManager strictly before os_ken.controller.controller: the other order is a circular
    # import (ENVIRONMENT.md). Kept apart so that import sorting cannot swap them.
    from os_ken.base.app_manager import AppManager

    importlib.import_module("os_ken.controller.controller")
    from os_ken import cfg as os_ken_cfg

    from sdnmip.controller import control, settings
    from sdnmip.controller.agent_link import AgentLink
    from sdnmip.controller.app import MnControllerApp, Runtime, Timing
    from sdnmip.controller.facade import ControllerFacade

    host, port = settings.listen_address(cfg)
    os_ken_cfg.CONF(
        args=["--ofp-listen-host", host, "--ofp-tcp-listen-port", str(port)], project="os_ken"
    )
    agent = AgentLink(cfg.agent_socket)
    runtime = Runtime(
        logic=logic,
        spec=spec,
        ports=ports,
        store=store,
        agent=agent,
        timing=Timing(request_timeout=args.request_timeout, stats_interval=args.stats_interval),
        policy=policy,
    )
    mgr = AppManager.get_instance()
    mgr.load_apps(["os_ken.controller.ofp_handler", MnControllerApp.__module__])
    contexts = mgr.create_contexts()
    mgr.instantiate_apps(sdnmip=runtime, **contexts)
    app: MnControllerApp = mgr.applications["MnControllerApp"]
    facade = ControllerFacade(app, lambda: agent.connected)
    control.serve(facade, settings.control_socket(cfg), hub.spawn)
    stop: dict[str, int] = {}

    def on_signal(signum: int, frame: Any) -> None:
        stop["code"] = 0
        app.fatal_event.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    gc.collect()
    gc.freeze()
    gc.set_threshold(*GC_THRESHOLDS)
    profiler = None
    if args.profile is not None:
        import cProfile

        profiler = cProfile.Profile()
        profiler.enable()
    log.info("listening for the switch on %s:%d; control socket %s", host, port,
             settings.control_socket(cfg))  # fmt: skip
    while not app.fatal_event.is_set():
        app.fatal_event.wait(1.0)
    code = stop.get("code", 1)
    if profiler is not None:
        profiler.disable()
        profiler.dump_stats(args.profile)
    app.shutdown()
    log.info("stopped (%s)", "signal" if code == 0 else app.fatal)
    # os-ken's threads (the OpenFlow server, the datapath loops) do not all end on close();
    # the state is written, so leave without waiting for them.
    logging.shutdown()
    os._exit(code)
