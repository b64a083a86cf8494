"""The MN's private Open vSwitch: its own database and daemons, all under the testbed's state dir.

Owns: creating the database, starting ovsdb-server and ovs-vswitchd inside the MN namespace (the
userspace datapath needs no kernel module), their pid files, and the environment that points OVS
tools at this instance. Bridge and port configuration goes through `sdnmip.ovsdb` (OVSDB), flows
through OpenFlow; nothing here parses `ovs-vsctl` output.

Must not: touch the system's OVS (/run/openvswitch, /etc/openvswitch).
"""

from __future__ import annotations

import subprocess
from pathlib import Path

from sdnmip.testbed import prereq
from sdnmip.testbed.errors import TestbedError

START_TIMEOUT_S = 20.0  # `--detach` returns once the daemon is ready


class PrivateOvs:
    def __init__(self, run_dir: Path, netns: str) -> None:
        self.dir = run_dir
        self.netns = netns

    @property
    def db_path(self) -> Path:
        return self.dir / "conf.db"

    @property
    def db_sock(self) -> Path:
        return self.dir / "db.sock"

    @property
    def remote(self) -> str:
        """The OVSDB remote for `sdnmip.ovsdb.Ovsdb` and `--db=` of OVS tools."""
        return f"unix:{self.db_sock}"

    def pidfile(self, daemon: str) -> Path:
        return self.dir / f"{daemon}.pid"

    def env(self) -> dict[str, str]:
        """Variables that make OVS tools (ovs-ofctl, ovs-appctl, ovs-vsctl) use this instance."""
        d = str(self.dir)
        return {"OVS_RUNDIR": d, "OVS_DBDIR": d, "OVS_LOGDIR": d, "OVS_SYSCONFDIR": d}

    def start(self, base_env: dict[str, str]) -> None:
        self.dir.mkdir(parents=True, exist_ok=True)
        env = {**base_env, **self.env()}
        self._run(
            [prereq.which("ovsdb-tool"), "create", str(self.db_path), str(prereq.VSWITCH_SCHEMA)],
            env,
            "create the OVS database",
        )
        common = ["--detach", "--no-chdir", "-vconsole:off"]
        self._run(
            [
                "ip",
                "netns",
                "exec",
                self.netns,
                prereq.which("ovsdb-server"),
                str(self.db_path),
                f"--remote=punix:{self.db_sock}",
                f"--pidfile={self.pidfile('ovsdb-server')}",
                f"--unixctl={self.dir / 'ovsdb-server.ctl'}",
                f"--log-file={self.dir / 'ovsdb-server.log'}",
                *common,
            ],
            env,
            "start ovsdb-server",
        )
        self._run(
            [
                "ip", "netns", "exec", self.netns, prereq.which("ovs-vswitchd"), self.remote,
                f"--pidfile={self.pidfile('ovs-vswitchd')}",
                f"--unixctl={self.dir / 'ovs-vswitchd.ctl'}",
                f"--log-file={self.dir / 'ovs-vswitchd.log'}",
                *common,
            ],
            env,
            "start ovs-vswitchd",
        )  # fmt: skip

    def _run(self, argv: list[str], env: dict[str, str], what: str) -> None:
        try:
            proc = subprocess.run(
                argv, env=env, capture_output=True, text=True, timeout=START_TIMEOUT_S, check=False
            )
        except subprocess.TimeoutExpired:
            raise TestbedError(f"{what}: no answer after {START_TIMEOUT_S:g}s") from None
        if proc.returncode != 0:
            detail = (proc.stderr.strip().splitlines() or ["no message"])[-1]
            raise TestbedError(f"{what} failed: {detail} (logs in {self.dir})")
