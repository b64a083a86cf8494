"""The whole MN (`sdnmip mn`: agent + controller) and its HA in a testbed, for tests, the demo
and the benchmarks.

    stack = MnStack(tb, pool_size=2)
    stack.start()                     # HA, then `sdnmip mn --config ...` in the MN namespace
    stack.control("flows")            # the controller's control socket (facade)
    stack.ha.bindings()               # what `sdnmip ha status` holds
    stack.restart_controller()        # SIGTERM (or SIGKILL) the controller; the supervisor
                                      # restarts it; returns when it has reconciled
    stack.stop()

Owns: one HA (sdnmip/testbed/ha_service.py) and one supervised MN whose configuration is
written by the agent's testbed service (sdnmip/testbed/mn_service.py, so both agree on
addresses, key and paths), started through `Testbed.spawn` so that `down` kills everything even
after a crash of the caller; waiting with deadlines until the MN is ready (controller connected
and reconciled, agent subscribed, both uplinks usable, the Primary bound at the HA, the spare
pool full).
Must not: be imported by the daemons, or reach into their internals (it uses their sockets).
"""

from __future__ import annotations

import os
import signal
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

from sdnmip.controller.control import ControlClient, ControlError
from sdnmip.testbed.errors import TestbedError
from sdnmip.testbed.ha_service import HaService
from sdnmip.testbed.mn_service import PRIMARY_HOA, MnAgentService
from sdnmip.testbed.testbed import Testbed, TrackedProcess
from sdnmip.testbed.waiting import wait_until

T = TypeVar("T")

START_TIMEOUT_S = 40.0
STOP_TIMEOUT_S = 20.0


class MnStack:
    def __init__(
        self,
        tb: Testbed,
        *,
        pool_size: int = 2,
        hold_time: float = 1.0,
        lifetime: float = 60.0,
        controller: dict[str, Any] | None = None,
        overrides: dict[str, Any] | None = None,
        ha_overrides: dict[str, Any] | None = None,
    ) -> None:
        self.tb = tb
        sections: dict[str, Any] = {
            "pool": {"size": pool_size, "hold_time": hold_time, "max_hoas": 32},
            "binding": {"lifetime": lifetime},
            "controller": dict(controller or {}),
        }
        sections.update(overrides or {})
        # The agent's service writes mn.yaml (and the key) for the whole MN.
        self.config_writer = MnAgentService(tb, name="mn", overrides=sections)
        self.ha = HaService.prepare(
            tb,
            {self.config_writer.nai: (self.config_writer.spi, self.config_writer.key)},
            **(ha_overrides or {}),
        )
        self.proc: TrackedProcess | None = None

    # -- paths ----------------------------------------------------------------------------------

    @property
    def run_dir(self) -> Path:
        return self.config_writer.socket_path.parent

    @property
    def control_path(self) -> Path:
        return self.run_dir / "controller.sock"

    @property
    def log_dir(self) -> Path:
        return self.config_writer.dir / "logs"

    def log_tail(self, lines: int = 25) -> str:
        out = []
        paths = [self.log_dir / f"{name}.log" for name in ("mn-controller", "mn-agent")]
        if self.proc is not None:
            paths.append(self.proc.log)  # the supervisor's own messages
        for path in paths:
            try:
                text = path.read_text(errors="replace").splitlines()
            except OSError:
                continue
            keep = [t for t in text if " DEBUG " not in t][-lines:]
            out.append(f"--- {path}\n" + "\n".join(keep))
        return "\n".join(out) or "(no logs)"

    # -- life -----------------------------------------------------------------------------------

    def start(self, timeout: float = START_TIMEOUT_S) -> None:
        self.tb.wait_coas()
        if not self.ha.alive():
            self.ha.start()
        config = self.config_writer.write_config()
        argv = self.tb.sdnmip_argv("mn", "--config", str(config), "--log-dir", str(self.log_dir),
                                   "--log-level", "debug")  # fmt: skip
        self.proc = self.tb.spawn(self.tb.topology.mn_node, argv, "mn")
        self.wait_ready(timeout)

    def wait_ready(self, timeout: float = START_TIMEOUT_S) -> dict[str, Any]:
        """Until the controller has reconciled and sees the agent, both uplinks are usable, the
        Primary is bound at the HA and the pool is full."""
        pool = int(self.config_writer.config()["pool"]["size"])

        def ready() -> dict[str, Any] | None:
            st: dict[str, Any] | None = self.control_or_none("status")
            if st is None or not (st["reconciled"] and st["agent_connected"]):
                return None
            if not all(u["usable"] for u in self.control("uplinks")):
                return None
            if st["spares"] < pool or PRIMARY_HOA not in self.ha.bindings():
                return None
            return st

        return self.wait("the MN to be ready", ready, timeout)

    def stop(self) -> None:
        """SIGTERM the supervisor (it stops both children), then the HA."""
        if self.proc is not None and self.proc.alive():
            os.kill(self.proc.pid, signal.SIGTERM)
            assert self.proc.popen is not None
            try:
                self.proc.popen.wait(timeout=STOP_TIMEOUT_S)
            except subprocess.TimeoutExpired:
                self.proc.stop()
                raise TestbedError("sdnmip mn did not stop on SIGTERM") from None
            finally:
                self.proc = None
        if self.ha.alive():
            self.ha.stop()

    def controller_pid(self) -> int:
        return int(self.control("status")["pid"])

    def restart_controller(self, sig: int = signal.SIGTERM, timeout: float = 30.0) -> int:
        """Stop the controller process with `sig`; the supervisor starts a new one. Returns the
        new pid once it has reconciled."""
        old = self.controller_pid()
        os.kill(old, sig)

        def back() -> int | None:
            st = self.control_or_none("status")
            if st is None or st["pid"] == old or not st["reconciled"]:
                return None
            return int(st["pid"])

        return self.wait("a new controller to reconcile", back, timeout)

    # -- talking to it --------------------------------------------------------------------------

    def control(self, op: str, **args: Any) -> Any:
        with ControlClient(self.control_path, timeout=10.0) as c:
            return c.call(op, **args)

    def control_or_none(self, op: str, **args: Any) -> Any:
        try:
            return self.control(op, **args)
        except ControlError as exc:
            if exc.code == "unavailable":
                return None
            raise

    def agent_status(self) -> Any:
        return self.config_writer.status()

    def wait(self, what: str, probe: Callable[[], T | None], timeout: float) -> T:
        def gone() -> str | None:
            return "sdnmip mn exited" if self.proc is not None and not self.proc.alive() else None

        return wait_until(what, probe, timeout, tail=self.log_tail, gone=gone)
