"""The MN's Mobile IPv6 agent in a testbed: its config, key, start, stop, crash, and a client.

Owns: writing a config that fits the testbed (addresses and ports from the topology, the MN-HA
key freshly drawn per service and written root-only, state and socket under the testbed's state
directory), running `sdnmip mn-agent` in the MN namespace through `Testbed.spawn` (so `down`
kills it even after a crash of the caller), and waiting with deadlines for it to answer.
Used by the agent's integration tests, the controller's tests and the demo. The HA side takes
`nai`, `spi` and `key` from here.

Must not: be imported by the daemons, or reach into the agent's internals (it talks RPC).
"""

from __future__ import annotations

import os
import secrets
import signal
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import yaml

from sdnmip.mn_agent.api import Snapshot
from sdnmip.mn_agent.client import AgentClient, AgentUnavailable
from sdnmip.testbed.errors import TestbedError
from sdnmip.testbed.testbed import Testbed, TrackedProcess
from sdnmip.testbed.waiting import wait_until

T = TypeVar("T")

PRIMARY_HOA = "2001:db8:100::1000"  # docs/architecture.md, reference testbed
HOME_PREFIX = "2001:db8:100::/64"
HA_NODE, HA_IFACE = "ha", "home0"
DEFAULT_NAI = "mn1@sdnmip.test"
DEFAULT_SPI = 4096
START_TIMEOUT_S = 20.0
STOP_TIMEOUT_S = 10.0


class MnAgentService:
    """One `sdnmip mn-agent` in testbed `tb`. `overrides` replace config sections (e.g.
    `{"pool": {"size": 3}}`); everything else fits the testbed."""

    def __init__(
        self,
        tb: Testbed,
        *,
        name: str = "mn-agent",
        nai: str = DEFAULT_NAI,
        spi: int = DEFAULT_SPI,
        key: bytes | None = None,
        overrides: dict[str, Any] | None = None,
        log_level: str = "info",
    ) -> None:
        self.tb = tb
        self.name = name
        self.nai = nai
        self.spi = spi
        self.key = key if key is not None else secrets.token_bytes(16)
        self.dir = tb.state_dir / name
        self.overrides = dict(overrides or {})
        self.log_level = log_level
        self.proc: TrackedProcess | None = None

    # --- files ---------------------------------------------------------------------------------

    @property
    def config_path(self) -> Path:
        return self.dir / "mn.yaml"

    @property
    def key_path(self) -> Path:
        return self.dir / "mn.key"

    @property
    def state_dir(self) -> Path:
        return self.dir / "state"

    @property
    def socket_path(self) -> Path:
        return self.dir / "run" / "agent.sock"

    @property
    def log(self) -> Path:
        return self.tb.state_dir / "logs" / f"{self.name}.log"

    def config(self) -> dict[str, Any]:
        topo = self.tb.topology
        doc: dict[str, Any] = {
            "version": 1,
            "identity": {"nai": self.nai, "spi": self.spi, "key_file": str(self.key_path)},
            "home": {
                "agent": self.tb.addr(HA_NODE, HA_IFACE),
                "primary_hoa": PRIMARY_HOA,
                "prefixes": [HOME_PREFIX],
            },
            "uplinks": [
                {"name": u, "port": u, "kernel_port": kp, "cost": 10 * (i + 1)}
                for i, (u, kp) in enumerate(topo.mn.uplinks.items())
            ],
            "preferred_uplink": next(iter(topo.mn.uplinks)),
            "bridge": {
                "name": topo.mn.bridge,
                "datapath_type": "netdev",
                "hoa_port": topo.mn.hoa_port,
                "ovsdb": self.tb.db_remote,
            },
            "paths": {"state_dir": str(self.state_dir), "run_dir": str(self.socket_path.parent)},
        }
        for section, value in self.overrides.items():
            if isinstance(value, dict) and isinstance(doc.get(section), dict):
                doc[section] = {**doc[section], **value}
            else:
                doc[section] = value
        return doc

    def write_config(self) -> Path:
        self.dir.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.key_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        try:
            os.write(fd, self.key.hex().encode() + b"\n")
        finally:
            os.close(fd)
        os.chmod(self.key_path, 0o600)
        self.config_path.write_text(yaml.safe_dump(self.config(), sort_keys=False))
        return self.config_path

    # --- the process ---------------------------------------------------------------------------

    def start(self, timeout: float = START_TIMEOUT_S) -> None:
        """Start the agent and wait until it answers on its socket."""
        if self.proc is not None and self.proc.alive():
            raise TestbedError(f"{self.name} is already running (pid {self.proc.pid})")
        self.write_config()
        argv = self.tb.sdnmip_argv(
            "mn-agent", "--config", str(self.config_path), "--log-level", self.log_level
        )
        self.proc = self.tb.spawn(self.tb.topology.mn_node, argv, self.name)
        self.wait("the agent's RPC socket", self._answers, timeout)

    def _answers(self) -> bool | None:
        assert self.proc is not None
        if not self.proc.alive():
            raise TestbedError(f"{self.name} exited: {self.tail()}")
        try:
            with AgentClient(self.socket_path, timeout=1.0) as c:
                c.hello()
        except AgentUnavailable:
            return None
        return True

    def stop(self, timeout: float = STOP_TIMEOUT_S) -> int:
        """SIGTERM and wait: the agent removes its kernel data path and keeps its state.
        Returns the exit status."""
        proc = self._running()
        os.kill(proc.pid, signal.SIGTERM)
        return self._reap(proc, timeout)

    def kill(self) -> int:
        """SIGKILL: a crash (nothing cleaned up, the state file as last written)."""
        proc = self._running()
        os.kill(proc.pid, signal.SIGKILL)
        return self._reap(proc, STOP_TIMEOUT_S)

    def _running(self) -> TrackedProcess:
        if self.proc is None or not self.proc.alive():
            raise TestbedError(f"{self.name} is not running")
        return self.proc

    def _reap(self, proc: TrackedProcess, timeout: float) -> int:
        assert proc.popen is not None
        try:
            return proc.popen.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            proc.stop()  # SIGTERM again, then SIGKILL
            raise TestbedError(f"{self.name} did not stop within {timeout:g}s") from None
        finally:
            self.proc = None

    def alive(self) -> bool:
        return self.proc is not None and self.proc.alive()

    def tail(self, lines: int = 15) -> str:
        try:
            return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no log)"

    # --- talking to it -------------------------------------------------------------------------

    def client(self, timeout: float = 5.0) -> AgentClient:
        return AgentClient(self.socket_path, timeout=timeout).connect()

    def status(self) -> Snapshot:
        with self.client() as c:
            return c.status()

    def wait_status(
        self, what: str, ok: Callable[[Snapshot], bool], timeout: float = START_TIMEOUT_S
    ) -> Snapshot:
        """Poll the agent's status until `ok` holds; the failure names `what` and the log."""

        def probe() -> Snapshot | None:
            snap = self.status()
            return snap if ok(snap) else None

        return self.wait(what, probe, timeout)

    def wait(self, what: str, probe: Callable[[], T | None], timeout: float) -> T:
        return wait_until(what, probe, timeout, tail=self.tail, label=f"{self.name}: ")
