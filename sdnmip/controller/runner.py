"""Running the os-ken application: eventlet, os-ken's start-up order, signals, exit.

Owns: selecting os-ken's eventlet hub and monkey-patching (`patch`, which must come after any
OVSDB work: the python-ovs IDL runs on plain sockets), importing os-ken's AppManager before
`os_ken.controller.controller` (the other order is a circular import, ENVIRONMENT.md),
configuring where os-ken listens, starting `ofp_handler` and MnControllerApp with a Runtime,
the control socket, garbage-collector tuning, an optional cProfile of the run, and the exit on
SIGTERM/SIGINT (0) or on a fatal condition the app reports (1). Shared by the CLI and the
controller benchmark.
Must not: build the logic or read the configuration (the caller does).
"""

from __future__ import annotations

import gc
import importlib
import logging
import os
import signal
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from sdnmip.controller.app import Runtime

log = logging.getLogger("sdnmip.controller")

# Full collections over a table of many thousand flows cost milliseconds each; the objects the
# controller keeps are long-lived and almost never cyclic, so collect the young generation
# often and the old one rarely (the start-up objects are frozen out of collection altogether).
GC_THRESHOLDS = (20_000, 50, 1000)


def patch() -> None:
    """eventlet for os-ken (4.x defaults to native threads), then monkey-patch the stdlib."""
    os.environ["OSKEN_HUB_TYPE"] = "eventlet"
    from os_ken.lib import hub

    hub.patch(thread=False)


def serve(
    make_runtime: Callable[[], Runtime],
    host: str,
    port: int,
    control_path: Path | None,
    profile: Path | None = None,
) -> int:
    """Run until a signal or a fatal condition; returns the exit status (after `patch`)."""
    # AppManager strictly before os_ken.controller.controller; kept apart so that import
    # sorting cannot swap them.
    from os_ken.base.app_manager import AppManager
    from os_ken.lib import hub

    importlib.import_module("os_ken.controller.controller")
    from os_ken import cfg as os_ken_cfg

    from sdnmip.controller import control
    from sdnmip.controller.app import MnControllerApp
    from sdnmip.controller.facade import ControllerFacade

    os_ken_cfg.CONF(
        args=["--ofp-listen-host", host, "--ofp-tcp-listen-port", str(port)], project="os_ken"
    )
    runtime = make_runtime()
    mgr = AppManager.get_instance()
    mgr.load_apps(["os_ken.controller.ofp_handler", MnControllerApp.__module__])
    contexts = mgr.create_contexts()
    mgr.instantiate_apps(sdnmip=runtime, **contexts)
    app: MnControllerApp = mgr.applications["MnControllerApp"]
    if control_path is not None:
        facade = ControllerFacade(app, lambda: runtime.agent.connected)
        control.serve(facade, control_path, hub.spawn)
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
    if profile is not None:
        import cProfile

        profiler = cProfile.Profile()
        profiler.enable()
    log.info("listening for the switch on %s:%d; control socket %s", host, port, control_path)
    while not app.fatal_event.is_set():
        app.fatal_event.wait(1.0)
    code = stop.get("code", 1)
    if profiler is not None and profile is not None:
        profiler.disable()
        profiler.dump_stats(profile)
    app.shutdown()
    log.info("stopped (%s)", "signal" if code == 0 else app.fatal)
    logging.shutdown()
    # os-ken's threads (the OpenFlow server, the datapath loops) do not all end on close(); the
    # state is written, so leave without waiting for them.
    os._exit(code)
