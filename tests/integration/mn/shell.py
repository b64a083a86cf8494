"""The controller process in a testbed, with a scripted agent (for the shell tests).

Owns: a minimal mn.yaml for the testbed, starting the scripted agent and `sdnmip mn-controller`
through `Testbed.spawn` (so `down` kills them whatever happens), packets injected into the
bridge as if sent from a port (`ovs-ofctl packet-out ... actions=table`), and reading the
bridge's rules. The end-to-end tests use the real agent and HA instead (sdnmip/testbed/mn_full.py).
"""

from __future__ import annotations

import os
import re
import signal
import sys
from pathlib import Path
from typing import Any

import yaml

from sdnmip.controller.control import ControlClient, wait_for
from sdnmip.testbed import Testbed
from sdnmip.testbed.testbed import TrackedProcess

PRIMARY = "2001:db8:100::1000"
AGENT = Path(__file__).with_name("scripted_agent.py")
ROUTER_MAC = {"wlan": "02:aa:00:00:00:01", "lte": "02:aa:00:00:00:02"}


class ShellMn:
    def __init__(self, tb: Testbed) -> None:
        self.tb = tb
        self.dir = tb.state_dir / "shell"
        self.agent: TrackedProcess | None = None
        self.controller: TrackedProcess | None = None
        self.restarts = 0

    @property
    def control_path(self) -> Path:
        return self.dir / "run" / "controller.sock"

    @property
    def agent_log(self) -> Path:
        return self.dir / "run" / "agent.sock.log"

    def write_config(self) -> Path:
        self.dir.mkdir(parents=True, exist_ok=True)
        key = self.dir / "key"
        key.write_text("00112233445566778899aabbccddeeff\n")
        key.chmod(0o600)
        topo = self.tb.topology
        doc: dict[str, Any] = {
            "version": 1,
            "identity": {"nai": "mn1@sdnmip.test", "spi": 4096, "key_file": str(key)},
            "home": {"agent": self.tb.addr("ha", "home0"), "primary_hoa": PRIMARY},
            "uplinks": [
                {"name": u, "port": u, "kernel_port": kp} for u, kp in topo.mn.uplinks.items()
            ],
            "bridge": {"name": topo.mn.bridge, "datapath_type": "netdev",
                       "hoa_port": topo.mn.hoa_port, "ovsdb": self.tb.db_remote},
            "controller": {"udp_idle_timeout": 5, "tcp_idle_timeout": 30},
            "paths": {"state_dir": str(self.dir / "state"), "run_dir": str(self.dir / "run")},
        }  # fmt: skip
        path = self.dir / "mn.yaml"
        path.write_text(yaml.safe_dump(doc))
        return path

    def start_agent(self) -> None:
        coas = self.tb.wait_coas()
        argv = [sys.executable, str(AGENT), str(self.dir / "run" / "agent.sock"), PRIMARY,
                coas["wlan"], ROUTER_MAC["wlan"], coas["lte"], ROUTER_MAC["lte"]]  # fmt: skip
        (self.dir / "run").mkdir(parents=True, exist_ok=True)
        self.agent = self.tb.spawn("mn", argv, "scripted-agent")

    def start_controller(self, *extra: str) -> None:
        config = self.write_config()
        argv = self.tb.sdnmip_argv("mn-controller", "--config", str(config), *extra)
        self.restarts += 1
        self.controller = self.tb.spawn("mn", argv, f"mn-controller-{self.restarts}")
        self.wait_reconciled()

    def wait_reconciled(self, timeout: float = 20.0) -> dict[str, Any]:
        def ready(c: ControlClient) -> Any:
            st = c.call("status")
            return st if st["reconciled"] and st["agent_connected"] else None

        try:
            return wait_for(self.control_path, "the controller to reconcile", ready, timeout)  # type: ignore[no-any-return]
        except TimeoutError as exc:
            raise AssertionError(f"{exc}\n{self.log_tail()}") from None

    def log_tail(self, lines: int = 30) -> str:
        if self.controller is None:
            return "(no controller)"
        text = self.controller.log.read_text(errors="replace").splitlines()
        return "\n".join(line for line in text if "DEBUG" not in line)[-4000:]

    def stop_controller(self, sig: int = signal.SIGTERM) -> int:
        assert self.controller is not None and self.controller.popen is not None
        os.kill(self.controller.pid, sig)
        code = self.controller.popen.wait(timeout=10)
        (self.tb.state_dir / "pids" / f"{self.controller.name}.pid").unlink(missing_ok=True)
        self.controller = None
        return code

    def call(self, op: str, **args: Any) -> Any:
        with ControlClient(self.control_path) as c:
            return c.call(op, **args)

    # -- the bridge --------------------------------------------------------------------------

    def ofport(self, name: str) -> int:
        out = self.tb.ofctl("dump-ports-desc", self.tb.topology.mn.bridge).stdout
        m = re.search(rf"^\s*(\d+)\({re.escape(name)}\):", out, re.MULTILINE)
        assert m, out
        return int(m[1])

    def inject(self, port: str, frame: bytes) -> None:
        """The bridge receives `frame` on `port` (it goes through the pipeline from table 0)."""
        action = f"in_port={self.ofport(port)} packet={frame.hex()} actions=table"
        self.tb.ofctl("packet-out", self.tb.topology.mn.bridge, action)

    def rules(self, table: int | None = None) -> list[str]:
        args = [self.tb.topology.mn.bridge] + ([f"table={table}"] if table is not None else [])
        out = self.tb.ofctl("dump-flows", *args).stdout
        return [line.strip() for line in out.splitlines() if "cookie=" in line]
