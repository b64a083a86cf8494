"""A private Open vSwitch for controller tests: dummy datapath and ports, no kernel devices.

`ovs-vswitchd --enable-dummy=override` turns every port into a dummy netdev, so the test needs
no namespace and leaves nothing in the kernel. Both daemons run in the foreground under Popen
and are stopped by PID. `OFClient` speaks OpenFlow 1.3 over the bridge's management socket with
os-ken's message classes.
"""

from __future__ import annotations

import os
import re
import shutil
import socket
import struct
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any

from os_ken.ofproto import ofproto_parser
from os_ken.ofproto import ofproto_v1_3 as ofp
from os_ken.ofproto import ofproto_v1_3_parser as parser
from os_ken.ofproto.ofproto_protocol import ProtocolDesc

SCHEMA = "/usr/share/openvswitch/vswitch.ovsschema"


def _wait(cond, what: str, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not cond():
        if time.monotonic() > deadline:
            raise TimeoutError(f"timed out waiting for {what}")
        time.sleep(0.05)


class PrivateOVS:
    def __init__(self) -> None:
        self.dir = Path(tempfile.mkdtemp(prefix="sdnmip-ofc-"))
        self.procs: list[subprocess.Popen[bytes]] = []
        self.env = dict(
            os.environ,
            OVS_RUNDIR=str(self.dir),
            OVS_DBDIR=str(self.dir),
            OVS_LOGDIR=str(self.dir),
            OVS_SYSCONFDIR=str(self.dir),
        )
        self.db = f"unix:{self.dir}/db.sock"
        self.ctl = str(self.dir / "vswitchd.ctl")

    def start(self, ports: dict[str, int]) -> None:
        subprocess.run(["ovsdb-tool", "create", str(self.dir / "conf.db"), SCHEMA], check=True)
        self._spawn(
            [
                "ovsdb-server",
                str(self.dir / "conf.db"),
                f"--remote=p{self.db}",
                f"--unixctl={self.dir}/ovsdb.ctl",
                f"--log-file={self.dir}/ovsdb.log",
            ]
        )
        _wait((self.dir / "db.sock").exists, "ovsdb-server")
        self._spawn(
            [
                "ovs-vswitchd",
                self.db,
                "--enable-dummy=override",
                f"--unixctl={self.ctl}",
                f"--log-file={self.dir}/vswitchd.log",
            ]
        )
        cmd = [
            "--",
            "add-br",
            "br0",
            "--",
            "set",
            "bridge",
            "br0",
            "datapath_type=dummy",
            "fail_mode=secure",
            "protocols=OpenFlow13",
        ]
        for name, ofport in ports.items():
            cmd += [
                "--",
                "add-port",
                "br0",
                name,
                "--",
                "set",
                "interface",
                name,
                "type=dummy",
                f"ofport_request={ofport}",
            ]
        self.vsctl(*cmd)
        _wait((self.dir / "br0.mgmt").exists, "the management socket of br0")

    def _spawn(self, argv: list[str]) -> None:
        self.procs.append(
            subprocess.Popen(
                argv, env=self.env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
            )
        )

    def vsctl(self, *args: str) -> str:
        return subprocess.run(
            ["ovs-vsctl", f"--db={self.db}", "--timeout=10", *args],
            env=self.env,
            check=True,
            capture_output=True,
            text=True,
        ).stdout

    def trace(self, flow: str) -> tuple[list[int], bool]:
        """Where real OVS sends `flow` (ovs-ofctl syntax): OpenFlow output ports, and whether
        the controller gets it. The OpenFlow-level lines are read, not "Datapath actions": a
        dummy datapath numbers its ports differently from OpenFlow."""
        out = subprocess.run(
            ["ovs-appctl", "-t", self.ctl, "ofproto/trace", "br0", flow],
            env=self.env,
            check=True,
            capture_output=True,
            text=True,
        ).stdout
        body = out.split("Final flow:")[0]
        ports = [int(p) for p in re.findall(r"^\s+output:(\d+)$", body, re.MULTILINE)]
        return ports, "CONTROLLER:" in body

    def stop(self) -> None:
        for p in reversed(self.procs):
            if p.poll() is None:
                p.terminate()
                try:
                    p.wait(timeout=10)
                except subprocess.TimeoutExpired:
                    p.kill()
                    p.wait()
        shutil.rmtree(self.dir, ignore_errors=True)


class OFClient:
    """A minimal OpenFlow 1.3 connection: send os-ken messages, read parsed replies."""

    def __init__(self, path: Path) -> None:
        self.dp = ProtocolDesc(ofp.OFP_VERSION)
        self.sock = socket.socket(socket.AF_UNIX)
        self.sock.settimeout(10)
        self.sock.connect(str(path))
        self.buf = b""
        self.xid = 0
        self.pending: list[Any] = []  # asynchronous messages (flow-removed, packet-in)
        self.send(parser.OFPHello(self.dp))
        # A service connection gets no asynchronous messages unless it asks (OF 1.3 §7.3.10).
        removed = 1 << ofp.OFPRR_IDLE_TIMEOUT | 1 << ofp.OFPRR_HARD_TIMEOUT | 1 << ofp.OFPRR_DELETE
        self.send(parser.OFPSetAsync(self.dp, [0, 0], [0, 0], [removed, removed]))

    def send(self, msg: Any) -> int:
        msg.datapath = self.dp
        self.xid += 1
        msg.set_xid(self.xid)
        msg.serialize()
        self.sock.sendall(bytes(msg.buf))
        return self.xid

    def _read(self) -> Any:
        while len(self.buf) < 8:
            self.buf += self.sock.recv(65536)
        version, typ, length, xid = struct.unpack("!BBHI", self.buf[:8])
        while len(self.buf) < length:
            self.buf += self.sock.recv(65536)
        raw, self.buf = self.buf[:length], self.buf[length:]
        return ofproto_parser.msg(self.dp, version, typ, length, xid, raw)

    def request(self, msg: Any) -> list[Any]:
        """Send `msg` and a barrier; return every message answering them (errors included)."""
        xid = self.send(msg)
        return self.sync(first_xid=xid)

    def sync(self, first_xid: int | None = None) -> list[Any]:
        barrier = self.send(parser.OFPBarrierRequest(self.dp))
        replies = []
        while True:
            m = self._read()
            if isinstance(m, parser.OFPBarrierReply) and m.xid == barrier:
                return replies
            if isinstance(m, parser.OFPHello | parser.OFPPortStatus):
                continue
            if isinstance(m, parser.OFPFlowRemoved | parser.OFPPacketIn):
                self.pending.append(m)
            else:
                replies.append(m)

    def wait_async(self, kind: type, timeout: float) -> list[Any]:
        deadline = time.monotonic() + timeout
        while not any(isinstance(m, kind) for m in self.pending):
            if time.monotonic() > deadline:
                raise TimeoutError(f"no {kind.__name__} within {timeout} s")
            self.sync()
        got = [m for m in self.pending if isinstance(m, kind)]
        self.pending = [m for m in self.pending if not isinstance(m, kind)]
        return got

    def close(self) -> None:
        self.sock.close()
