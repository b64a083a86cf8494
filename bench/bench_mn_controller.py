"""New flows per second and first-packet latency of the controller process alone.

The controller under test is the real one (os-ken, eventlet, MnControllerApp, the logic, the
fast encoder), started in a child process with a fabricated bridge and an agent that answers
at once. This process plays the switch over TCP with a minimal OpenFlow 1.3 speaker: it does
the handshake, answers the reconciliation (an empty switch) and then sends packet-ins for new
flows, reading the flow-mods and packet-outs that come back. No OVS and no kernel are involved,
so the figures are the controller's own ceiling; bench_mn_flows.py measures the whole MN.

  latency     packet-ins one at a time: time from sending a packet-in to receiving the
              packet-out that releases the packet (p50/p99), with Figure 6 reusing HoAs and
              with every flow taking a spare HoA from the pool (hoa_per_flow)
  throughput  packet-ins with up to --window outstanding: new flows per second

Run from the repository root:  /work/venv/bin/python bench/bench_mn_controller.py
Options: --flows N (throughput, default 30000), --latency-flows N (default 2000), --window W,
--profile FILE (cProfile of the controller during the run), --timing (time per stage).
"""

from __future__ import annotations

import argparse
import atexit
import os
import shutil
import socket
import statistics
import struct
import subprocess
import sys
import tempfile
import time
from ipaddress import IPv6Address, IPv6Network
from pathlib import Path
from typing import Any

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

PRIMARY = IPv6Address("2001:db8:100::1000")
HOME = IPv6Network("2001:db8:100::/64")
HA = IPv6Address("2001:db8:100::1")
DPID = 0x5D1F
PORTS = {1: ("hoa0", "02:00:00:00:00:01"), 2: ("wlan", "02:00:00:00:01:02"),
         3: ("iwlan", "02:00:00:00:01:03"), 4: ("lte", "02:00:00:00:02:04"),
         5: ("ilte", "02:00:00:00:02:05")}  # fmt: skip
HOA0, WLAN, IWLAN, LTE, ILTE = 1, 2, 3, 4, 5
UPLINK_TABLE = 2

OFP_VERSION = 4
HDR = struct.Struct("!BBHI")
T_HELLO, T_ECHO_REQ, T_ECHO_REP, T_FEATURES_REQ, T_FEATURES_REP = 0, 2, 3, 5, 6
T_PACKET_IN, T_PACKET_OUT, T_FLOW_MOD, T_MP_REQ, T_MP_REP, T_BARRIER_REQ, T_BARRIER_REP = (
    10, 13, 14, 18, 19, 20, 21,
)  # fmt: skip
MP_FLOW, MP_PORT_STATS, MP_PORT_DESC = 1, 4, 13


# ---------------------------------------------------------------------------- the controller


def install_timers() -> None:
    """Wall time per call of the stages of a new flow, printed to stderr at exit (--timing)."""
    from collections import Counter

    from os_ken.base import app_manager  # noqa: F401  (before controller: circular import)
    from os_ken.controller import controller
    from os_ken.ofproto import ofproto_parser

    from sdnmip.controller import app, logic, ofwire

    spent: Counter[str] = Counter()
    calls: Counter[str] = Counter()

    def wrap(obj: Any, name: str, label: str) -> None:
        fn = getattr(obj, name)

        def timed(*args: Any, **kwargs: Any) -> Any:
            t0 = time.perf_counter()
            try:
                return fn(*args, **kwargs)
            finally:
                spent[label] += time.perf_counter() - t0
                calls[label] += 1

        setattr(obj, name, timed)

    wrap(app.MnControllerApp, "_packet_in", "packet-in handler (all below)")
    wrap(logic.MnLogic, "packet_in", "  logic.packet_in")
    wrap(ofwire, "encode", "  encode (x3 per flow)")
    wrap(controller.Datapath, "send", "  queue for the send loop")
    wrap(ofproto_parser, "msg", "os-ken parses a message")
    exit_ = os._exit

    def report(code: int) -> None:
        for label in spent:
            sys.stderr.write(f"{label:32s} {spent[label] / calls[label] * 1e6:7.1f} us x "
                             f"{calls[label]}\n")  # fmt: skip
        sys.stderr.flush()
        exit_(code)

    os._exit = report  # type: ignore[assignment]


def serve_controller(
    port: int, state: Path, hoa_per_flow: bool, profile: Path | None, timing: bool
) -> int:
    """The child: the real controller app on a fabricated bridge (no OVSDB, no agent)."""
    from sdnmip.controller import runner

    runner.patch()
    if timing:
        install_timers()
    from sdnmip.controller.app import Runtime, Timing
    from sdnmip.controller.bridge import BridgePorts, BridgeSpec, UplinkSpec
    from sdnmip.controller.config import (
        BindHoas,
        HoaBound,
        LogicConfig,
        SparePool,
        UplinkPorts,
        UplinkState,
    )
    from sdnmip.controller.logic import MnLogic
    from sdnmip.controller.packet import address
    from sdnmip.controller.persist import SnapshotStore
    from sdnmip.core.policy_api import PreferredUplinkPolicy

    uplinks = (
        UplinkPorts("wlan", WLAN, IWLAN, PORTS[IWLAN][1]),
        UplinkPorts("lte", LTE, ILTE, PORTS[ILTE][1]),
    )
    primary, ha = address(PRIMARY.packed), address(HA.packed)
    cfg = LogicConfig(primary, (HOME,), (ha,), HOA0, PORTS[HOA0][1], uplinks,
                      idle_timeouts={6: 600, 17: 600}, hoa_per_flow=hoa_per_flow)  # fmt: skip
    spec = BridgeSpec("br-mn", "netdev", "hoa0",
                      (UplinkSpec("wlan", "wlan", "iwlan"), UplinkSpec("lte", "lte", "ilte")),
                      f"tcp:127.0.0.1:{port}")  # fmt: skip
    ports = BridgePorts(DPID, HOA0, PORTS[HOA0][1], uplinks)

    class InstantAgent:
        """Reports both uplinks and a large pool of registered spares; binds at once."""

        connected = True

        def start(self, deliver: Any) -> None:
            self.deliver = deliver
            deliver(UplinkState("wlan", True, IPv6Address("2001:db8:1::2"), "02:aa::1"))
            deliver(UplinkState("lte", True, IPv6Address("2001:db8:2::2"), "02:aa::2"))
            deliver(HoaBound(PRIMARY, "wlan"))
            base = int(IPv6Address("2001:db8:100::1:0"))
            # As the agent link hands them over (packet.address: hashed once).
            spares = tuple((address(IPv6Address(base + i).packed), "wlan") for i in range(5000))
            deliver(SparePool(spares))

        def submit(self, request: Any) -> None:
            if isinstance(request, BindHoas):
                for hoa, uplink in request.bindings:
                    self.deliver(HoaBound(hoa, uplink))

        def close(self) -> None:
            pass

    def make_runtime() -> Runtime:
        logic = MnLogic(cfg, PreferredUplinkPolicy(["wlan", "lte"]))
        return Runtime(logic=logic, spec=spec, ports=ports, store=SnapshotStore(state),
                       agent=InstantAgent(), timing=Timing(stats_interval=3600.0))  # fmt: skip

    return runner.serve(make_runtime, "127.0.0.1", port, None, profile)


# ---------------------------------------------------------------------------- the fake switch


def _msg(msg_type: int, xid: int, body: bytes = b"") -> bytes:
    return HDR.pack(OFP_VERSION, msg_type, 8 + len(body), xid) + body


def _port(no: int, name: str, mac: str) -> bytes:
    return struct.pack("!I4x6s2x16sIIIIIIII", no, bytes.fromhex(mac.replace(":", "")),
                       name.encode(), 0, 0, 0, 0, 0, 0, 0, 0)  # fmt: skip


def frame(sport: int, dst: IPv6Address) -> bytes:
    """A UDP packet from the application (Primary HoA) to `dst`: a new flow per source port."""
    udp = struct.pack("!HHHH", sport, 9, 8 + 16, 0) + b"sdnmip-bench-ctl"
    ip = struct.pack("!IHBB16s16s", 6 << 28, len(udp), 17, 64, PRIMARY.packed, dst.packed)
    return bytes.fromhex("025d1f000001" + "020000000001") + b"\x86\xdd" + ip + udp


def packet_in(xid: int, data: bytes) -> bytes:
    match = struct.pack("!HHIIxxxx", 1, 12, 0x80000004, HOA0)  # OXM in_port, padded to 16
    body = struct.pack("!IHBBQ", 0xFFFFFFFF, len(data), 0, UPLINK_TABLE, 0) + match
    return _msg(T_PACKET_IN, xid, body + b"\x00\x00" + data)


class FakeSwitch:
    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.buf = b""
        self.flow_mods = 0
        self.packet_outs = 0
        self.reconciled = False

    def read(self, block: bool = True) -> list[tuple[int, int, bytes]]:
        """Complete messages received (answering the handshake and the requests)."""
        self.sock.setblocking(block)
        try:
            chunk = self.sock.recv(1 << 20)
        except BlockingIOError:
            return []
        if not chunk:
            raise ConnectionError("the controller closed the connection")
        self.buf += chunk
        out = []
        while len(self.buf) >= 8:
            _, t, length, xid = HDR.unpack_from(self.buf)
            if len(self.buf) < length:
                break
            body, self.buf = self.buf[8:length], self.buf[length:]
            out.append((t, xid, body))
            self._answer(t, xid, body)
        return out

    def _answer(self, t: int, xid: int, body: bytes) -> None:
        if t == T_FEATURES_REQ:
            self.sock.sendall(_msg(T_FEATURES_REP, xid, struct.pack("!QIBB2xII", DPID, 0, 254,
                                                                    0, 0x4F, 0)))  # fmt: skip
        elif t == T_ECHO_REQ:
            self.sock.sendall(_msg(T_ECHO_REP, xid, body))
        elif t == T_BARRIER_REQ:
            self.sock.sendall(_msg(T_BARRIER_REP, xid))
            self.reconciled = True
        elif t == T_MP_REQ:
            (mp_type,) = struct.unpack_from("!H", body)
            payload = b""
            if mp_type == MP_PORT_DESC:
                payload = b"".join(_port(n, name, mac) for n, (name, mac) in PORTS.items())
            self.sock.sendall(_msg(T_MP_REP, xid, struct.pack("!HH4x", mp_type, 0) + payload))
        elif t == T_FLOW_MOD:
            self.flow_mods += 1
        elif t == T_PACKET_OUT:
            self.packet_outs += 1


def connect(port: int, timeout: float = 20.0) -> socket.socket:
    deadline = time.monotonic() + timeout
    while True:
        try:
            s = socket.create_connection(("127.0.0.1", port))
            s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            return s
        except ConnectionRefusedError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.05)


def start(
    port: int, hoa_per_flow: bool, profile: Path | None, timing: bool = False
) -> tuple[Any, FakeSwitch]:
    state = Path(tempfile.mkdtemp(prefix="ctbench-")) / "controller.json"
    atexit.register(shutil.rmtree, state.parent, True)
    argv = [sys.executable, __file__, "--serve", str(port), "--state", str(state)]
    argv += ["--hoa-per-flow"] if hoa_per_flow else []
    argv += ["--profile", str(profile)] if profile else []
    argv += ["--timing"] if timing else []
    proc = subprocess.Popen(argv, stderr=None if timing else subprocess.DEVNULL)
    sw = FakeSwitch(connect(port))
    sw.sock.sendall(_msg(T_HELLO, 1))
    deadline = time.monotonic() + 20
    while not sw.reconciled:
        sw.read()
        if time.monotonic() > deadline:
            raise TimeoutError("the controller did not reconcile")
    time.sleep(0.3)  # let the agent's events and the reconciliation settle
    sw.read(block=False)
    return proc, sw


def stop(proc: Any) -> None:
    proc.terminate()
    proc.wait(timeout=30)


def latency(sw: FakeSwitch, n: int, first_port: int) -> list[float]:
    out = []
    cns = [IPv6Address(int(IPv6Address("2001:db8:c1::")) + 1 + i % 1000) for i in range(n)]
    msgs = [packet_in(100 + i, frame(first_port + i, cns[i])) for i in range(n)]
    for m in msgs:
        before = sw.packet_outs
        t0 = time.perf_counter()
        sw.sock.sendall(m)
        while sw.packet_outs == before:
            sw.read()
        out.append(time.perf_counter() - t0)
    return out


def throughput(sw: FakeSwitch, n: int, window: int) -> tuple[float, int]:
    cns = [IPv6Address(int(IPv6Address("2001:db8:c2::")) + 1 + i % 5000) for i in range(n)]
    msgs = [packet_in(10**6 + i, frame(1024 + i % 60000, cns[i])) for i in range(n)]
    base = sw.packet_outs
    sent = 0
    t0 = time.perf_counter()
    while sw.packet_outs - base < n:
        while sent < n and sent - (sw.packet_outs - base) < window:
            sw.sock.sendall(b"".join(msgs[sent : min(n, sent + 16)]))
            sent = min(n, sent + 16)
        sw.read()
    return n / (time.perf_counter() - t0), sw.flow_mods


def pct(xs: list[float], q: float) -> float:
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(q * len(xs)))] * 1e3


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--serve", type=int, help=argparse.SUPPRESS)
    ap.add_argument("--state", type=Path, help=argparse.SUPPRESS)
    ap.add_argument("--hoa-per-flow", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--flows", type=int, default=30000)
    ap.add_argument("--latency-flows", type=int, default=2000)
    ap.add_argument("--window", type=int, default=256)
    ap.add_argument("--port", type=int, default=16653)
    ap.add_argument("--profile", type=Path)
    ap.add_argument("--timing", action="store_true",
                    help="print the time per call of each stage of the throughput run")  # fmt: skip
    args = ap.parse_args()
    if args.serve is not None:
        sys.exit(
            serve_controller(args.serve, args.state, args.hoa_per_flow, args.profile, args.timing)
        )
    print(f"controller alone, Python {sys.version.split()[0]}, {os.cpu_count()} CPUs, "
          f"load {os.getloadavg()[0]:.2f}")  # fmt: skip
    for per_flow in (False, True):
        proc, sw = start(args.port, per_flow, None)
        try:
            lat = latency(sw, args.latency_flows, 2000)
        finally:
            stop(proc)
        label = "each flow claims a pool HoA" if per_flow else "Figure 6 reuse"
        print(f"first-packet latency in the controller ({label}): p50 {pct(lat, 0.5):.3f} ms, "
              f"p99 {pct(lat, 0.99):.3f} ms, max {max(lat) * 1e3:.3f} ms "
              f"({len(lat)} flows, mean {statistics.fmean(lat) * 1e3:.3f} ms)")  # fmt: skip
    proc, sw = start(args.port, False, args.profile, args.timing)
    try:
        rate, mods = throughput(sw, args.flows, args.window)
    finally:
        stop(proc)
    print(f"new flows per second: {rate:,.0f} ({args.flows} flows, window {args.window}, "
          f"{mods} flow-mods)")  # fmt: skip


if __name__ == "__main__":
    main()
