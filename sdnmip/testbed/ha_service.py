"""Run the sdnmip Home Agent in a testbed's HA namespace: files, start, stop, crash, status.

    from sdnmip.testbed.ha_service import HaService
    ha = HaService.prepare(tb, {"mn1@sdnmip.example": (4096, secret)})
    ha.start()                 # `sdnmip ha --config ...` in <prefix>-ha; waits for its socket
    ha.status()["bindings"]    # what `sdnmip ha status --json` shows
    ha.stop()                  # SIGTERM: kernel state removed, bindings persisted

Owns: the HA's files under the testbed's state directory (`<state>/ha/`: ha.yaml, the keys file
with mode 0600, the SQLite store, the control socket, the log), writing ha.yaml from the
topology (home link, HA address, home prefix), and the process's life. Used by the HA's
integration tests, the Mobile Node's tests and the demo.

Must not: be imported by the daemons (the HA runs inside the testbed; it does not build it).
"""

from __future__ import annotations

import json
import os
import secrets
import signal
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from ipaddress import IPv6Interface
from pathlib import Path
from typing import Any

import yaml

from sdnmip.testbed.errors import TestbedError
from sdnmip.testbed.processes import alive
from sdnmip.testbed.testbed import TrackedProcess

HA_NODE = "ha"
HA_LINK = "home0"
PROCESS_NAME = "ha"
START_TIMEOUT_S = 15.0
STOP_TIMEOUT_S = 10.0
POLL_S = 0.05
DEFAULT_NAI = "mn1@sdnmip.example"
DEFAULT_SPI = 4096


def new_secret() -> bytes:
    """A fresh 16-octet MN-HA shared key (RFC 4285 §5.1)."""
    return secrets.token_bytes(16)


@dataclass
class HaService:
    """One HA in a testbed (see the module docstring)."""

    tb: Any  # sdnmip.testbed.Testbed (typed loosely to keep this module import-light)
    dir: Path
    mobile_nodes: dict[str, tuple[int, bytes]]
    overrides: dict[str, Any] = field(default_factory=dict)
    process: TrackedProcess | None = None

    @classmethod
    def prepare(
        cls,
        tb: Any,
        mobile_nodes: Mapping[str, tuple[int, bytes]] | None = None,
        **overrides: Any,
    ) -> HaService:
        """Write ha.yaml and the keys file for testbed `tb`; `overrides` are ha.yaml keys
        (e.g. `dad={"transmits": 1, "retrans_timer": 0.5}`, `max_binding_lifetime=60`)."""
        nodes = dict(mobile_nodes or {DEFAULT_NAI: (DEFAULT_SPI, new_secret())})
        svc = cls(tb, Path(tb.state_dir) / "ha", nodes, dict(overrides))
        svc.write_files()
        return svc

    # ------------------------------------------------------------------------------ files
    @property
    def config_path(self) -> Path:
        return self.dir / "ha.yaml"

    @property
    def keys_path(self) -> Path:
        return self.dir / "ha-keys.yaml"

    @property
    def database(self) -> Path:
        return self.dir / "ha-bindings.sqlite"

    @property
    def socket_path(self) -> Path:
        return self.dir / "ha.sock"

    @property
    def log_path(self) -> Path:
        return self.dir / "ha.log"

    @property
    def address(self) -> str:
        return str(self.tb.addr(HA_NODE, HA_LINK))

    @property
    def home_prefix(self) -> str:
        end = self.tb.topology.end(HA_NODE, HA_LINK)
        return str(IPv6Interface(end.addresses[0]).network)

    def config(self) -> dict[str, Any]:
        doc: dict[str, Any] = {
            "home_link": HA_LINK,
            "address": self.address,
            "home_prefixes": [{"prefix": self.home_prefix}],
            "keys_file": str(self.keys_path),
            "database": str(self.database),
            "control_socket": str(self.socket_path),
            "log_level": "debug",
        }
        doc.update(self.overrides)
        return doc

    def write_files(self) -> None:
        self.dir.mkdir(mode=0o700, parents=True, exist_ok=True)
        self.config_path.write_text(yaml.safe_dump(self.config(), sort_keys=False))
        keys = {
            "mobile_nodes": {
                nai: {"spi": spi, "secret": key.hex()}
                for nai, (spi, key) in self.mobile_nodes.items()
            }
        }
        fd = os.open(self.keys_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as f:
            yaml.safe_dump(keys, f)
        os.chmod(self.keys_path, 0o600)

    # ------------------------------------------------------------------------------ process
    def argv(self) -> list[str]:
        return list(self.tb.sdnmip_argv("ha", "--config", str(self.config_path)))

    def start(self, timeout: float = START_TIMEOUT_S) -> None:
        """Start the HA and wait until its control socket answers."""
        if self.process is not None and self.process.alive():
            raise TestbedError("the HA is already running")
        self.socket_path.unlink(missing_ok=True)
        self.process = self.tb.spawn(HA_NODE, self.argv(), PROCESS_NAME, log=self.log_path)
        deadline = time.monotonic() + timeout
        while True:
            if not self.process.alive():
                raise TestbedError(f"the HA exited during start-up: {self.log_tail()}")
            if self.socket_path.exists():
                try:
                    self.status()
                    return
                except (OSError, ValueError):
                    pass  # listening socket not accepting yet
            if time.monotonic() >= deadline:
                raise TestbedError(f"the HA did not answer within {timeout:g}s: {self.log_tail()}")
            time.sleep(POLL_S)

    def stop(self, timeout: float = STOP_TIMEOUT_S) -> int:
        """SIGTERM, wait for a clean exit; returns the exit status."""
        proc = self._running()
        os.kill(proc.pid, signal.SIGTERM)
        return self._wait(proc, timeout)

    def kill(self) -> None:
        """SIGKILL: a crash (kernel state stays behind, as after a real crash)."""
        proc = self._running()
        os.kill(proc.pid, signal.SIGKILL)
        self._wait(proc, STOP_TIMEOUT_S)

    def restart(self) -> None:
        self.stop()
        self.start()

    def _running(self) -> TrackedProcess:
        if self.process is None or not self.process.alive():
            raise TestbedError("the HA is not running")
        return self.process

    def _wait(self, proc: TrackedProcess, timeout: float) -> int:
        if proc.popen is not None:
            code = proc.popen.wait(timeout=timeout)
        else:
            deadline = time.monotonic() + timeout
            while alive(proc.pid):
                if time.monotonic() >= deadline:
                    raise TestbedError(f"the HA (pid {proc.pid}) did not exit")
                time.sleep(POLL_S)
            code = 0
        (self.tb.state_dir / "pids" / f"{PROCESS_NAME}.pid").unlink(missing_ok=True)
        return code

    def alive(self) -> bool:
        return self.process is not None and self.process.alive()

    # ------------------------------------------------------------------------------ inspection
    def status(self) -> dict[str, Any]:
        """The daemon's status (bindings, counters), from its control socket."""
        from sdnmip.home_agent.cli import query

        return query(self.socket_path)

    def bindings(self) -> dict[str, dict[str, Any]]:
        return {b["home_address"]: b for b in self.status()["bindings"]}

    def log_text(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")
        except FileNotFoundError:
            return ""

    def log_tail(self, lines: int = 15) -> str:
        return " | ".join(self.log_text().strip().splitlines()[-lines:]) or "(empty log)"

    def status_json(self) -> str:
        return json.dumps(self.status(), indent=1)
