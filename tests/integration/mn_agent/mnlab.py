"""Observations and hand-made OpenFlow rules for the agent's integration tests (no assertions).

Without the MN controller, the tests install by hand the few OpenFlow rules it will own (real OVS
configuration through ovs-ofctl, cookie 0x5d1f...): packets for a HoA arriving decapsulated from
any kernel port are rewritten to the Primary HoA and handed to hoa0; packets from hoa0 leave by
the kernel port of the chosen uplink, their source rewritten to the flow's HoA when it is not the
Primary."""

from __future__ import annotations

import json
import os
import signal
import struct
import subprocess
import time
from dataclasses import dataclass
from ipaddress import IPv6Address
from pathlib import Path

from sdnmip.mipv6 import BindingUpdate, DecodeError, decode_ipv6_packet
from sdnmip.testbed import Testbed
from sdnmip.testbed.mn_service import PRIMARY_HOA

COOKIE = "0x5d1f00000000a6e0"  # the sdnmip cookie space: what the controller would own
PRIO_DOWN, PRIO_UP, PRIO_UP_FLOW = 300, 300, 310
ETH_P_IPV6 = 0x86DD


def mac(tb: Testbed, dev: str) -> str:
    return tb.run(tb.topology.mn_node, "cat", f"/sys/class/net/{dev}/address").stdout.strip()


def install_down_rule(tb: Testbed, hoa: str) -> None:
    """Decapsulated packets to `hoa` (from any kernel port) -> Primary HoA -> hoa0."""
    mn = tb.topology.mn
    rewrite = "" if hoa == PRIMARY_HOA else f"set_field:{PRIMARY_HOA}->ipv6_dst,"
    flows = [
        f"cookie={COOKIE},priority={PRIO_DOWN},ipv6,in_port={kp},ipv6_dst={hoa},"
        f"actions={rewrite}set_field:{mac(tb, mn.hoa_port)}->eth_dst,output:{mn.hoa_port}\n"
        for kp in mn.uplinks.values()
    ]
    tb.ofctl("add-flows", mn.bridge, "-", input="".join(flows))


def install_up_rule(tb: Testbed, uplink: str, *, to: str | None = None, hoa: str | None = None):
    """Packets from hoa0 (to `to`, or all) leave by `uplink`, with source `hoa` if given.
    Re-adding with the same match replaces the actions (that is how a flow moves)."""
    mn = tb.topology.mn
    kp = mn.uplinks[uplink]
    match = f"ipv6,in_port={mn.hoa_port}" + (f",ipv6_dst={to}" if to else "")
    rewrite = f"set_field:{hoa}->ipv6_src," if hoa else ""
    prio = PRIO_UP_FLOW if to else PRIO_UP
    tb.ofctl(
        "add-flow",
        mn.bridge,
        f"cookie={COOKIE},priority={prio},{match},"
        f"actions={rewrite}set_field:{mac(tb, kp)}->eth_dst,output:{kp}",
    )


def counters(tb: Testbed, dev: str) -> tuple[int, int]:
    """(rx, tx) packets of the MN's device `dev`, as the kernel counts them."""
    out = tb.run(tb.topology.mn_node, "ip", "-s", "-j", "link", "show", "dev", dev).stdout
    stats = json.loads(out)[0]["stats64"]
    return int(stats["rx"]["packets"]), int(stats["tx"]["packets"])


def ping(tb: Testbed, node: str, target: str, count: int, interval: float = 0.05) -> int:
    """Echo replies received by `node` pinging `target`."""
    proc = tb.run(node, "ping", "-n", "-q", "-c", str(count), "-i", f"{interval:g}", "-W", "2",
                  target, check=False, timeout=10 + count * interval)  # fmt: skip
    for line in proc.stdout.splitlines():
        if "received" in line:
            return int(line.split(",")[1].split()[0])
    raise AssertionError(proc.stdout + proc.stderr)


def ping_both(
    tb: Testbed, a: tuple[str, str], b: tuple[str, str], count: int, interval: float = 0.05
) -> tuple[int, int]:
    """Two pings at once, (node, target) each; returns the replies of each."""
    argv = ["ping", "-n", "-q", "-c", str(count), "-i", f"{interval:g}", "-W", "2"]
    procs = [
        subprocess.Popen(
            ["ip", "netns", "exec", tb.ns(node), *argv, target],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        for node, target in (a, b)
    ]
    got = []
    for p in procs:
        out, _ = p.communicate(timeout=15 + count * interval)
        line = next(x for x in out.splitlines() if "received" in x)
        got.append(int(line.split(",")[1].split()[0]))
    return got[0], got[1]


@dataclass
class Capture:
    """tcpdump of Binding Updates (next header 60) arriving at the HA, to a pcap file."""

    tb: Testbed
    path: Path
    proc: subprocess.Popen[bytes] | None = None

    def __enter__(self) -> Capture:
        self.proc = subprocess.Popen(
            ["ip", "netns", "exec", self.tb.ns("ha"), "tcpdump", "-i", "home0", "-n", "-U",
             "--immediate-mode", "-w", str(self.path), "ip6[6] == 60"],
            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
        )  # fmt: skip
        assert self.proc.stderr is not None
        line = self.proc.stderr.readline().decode()  # "listening on home0 ..."
        assert "listening" in line, line
        return self

    def __exit__(self, *exc: object) -> None:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGTERM)  # lets tcpdump flush the last packet
        self.proc.wait(timeout=5)

    def home_addresses(self) -> list[IPv6Address]:
        """The Home Address option of every BU captured, in order."""
        return [hoa for _, hoa in self.bus()]

    def bus(self) -> list[tuple[float, IPv6Address]]:
        out = []
        for ts, frame in read_pcap(self.path):
            if len(frame) < 14 or int.from_bytes(frame[12:14], "big") != ETH_P_IPV6:
                continue
            try:
                d = decode_ipv6_packet(frame[14:])
            except DecodeError:
                continue
            if isinstance(d.message, BindingUpdate) and d.home_address is not None:
                out.append((ts, d.home_address))
        return out


def read_pcap(path: Path) -> list[tuple[float, bytes]]:
    """Records of a classic little- or big-endian pcap file (what tcpdump -w writes)."""
    data = path.read_bytes()
    magic = data[:4]
    endian = "<" if magic in (b"\xd4\xc3\xb2\xa1", b"\x4d\x3c\xb2\xa1") else ">"
    nano = magic in (b"\x4d\x3c\xb2\xa1", b"\xa1\xb2\x3c\x4d")
    rec = struct.Struct(endian + "IIII")
    pos, out = 24, []
    while pos + rec.size <= len(data):
        sec, frac, incl, _ = rec.unpack_from(data, pos)
        pos += rec.size
        out.append((sec + frac / (1e9 if nano else 1e6), data[pos : pos + incl]))
        pos += incl
    return out


def wait_until(what: str, probe, timeout: float = 15.0, interval: float = 0.05):  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while True:
        value = probe()
        if value:
            return value
        if time.monotonic() >= deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(interval)


def rm(path: Path) -> None:
    if path.exists():
        os.unlink(path)
