"""The Mobile Node side of the HA tests: a small test client that sends hand-built, codec-encoded
BUs from the MN's CoAs and reads the answers, plus a minimal MN kernel data path for a HoA.

Not the MN agent: sockets are created inside the MN namespace by switching this thread into it
(setns), then used from here; every data-path change is an `ip` command in the MN namespace.
"""

from __future__ import annotations

import contextlib
import json
import select
import subprocess
import time
from dataclasses import dataclass
from ipaddress import IPv6Address

from sdnmip.kernel.rawsock import HdrinclSender, RawReceiver
from sdnmip.mipv6 import (
    BindingUpdate,
    DecodedPacket,
    MnHaKey,
    MobileNodeIdentifier,
    build_icmpv6_packet,
    build_mh_packet,
    decode_from,
    replay_protection,
)
from sdnmip.mipv6.errors import DecodeError
from sdnmip.mipv6.options import MobilityOption
from sdnmip.testbed import Testbed
from sdnmip.testbed.netns import entered

DECAP_TABLE = 250
RULE_DECAP = 10
RULE_HOA = 100
RULE_COA = 200
TABLE_COA = {"wlan": 301, "lte": 302}  # CoA-sourced packets out of their uplink
TABLE_TUN = {"wlan": 401, "lte": 402}  # packets from a HoA into the tunnel to the HA
TEST_TABLE = "ha_test"


def netns(name: str) -> contextlib.AbstractContextManager[None]:
    """Run the block with this thread in network namespace `name`."""
    return entered(name)


def poll(what: str, probe, timeout: float = 10.0, interval: float = 0.05):  # type: ignore[no-untyped-def]
    """Call `probe` until it returns something truthy; fail after `timeout`."""
    deadline = time.monotonic() + timeout
    while True:
        value = probe()
        if value:
            return value
        if time.monotonic() >= deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(interval)


@dataclass
class Answer:
    """A packet the MN received from the HA: decoded, and the raw bytes as they arrived."""

    packet: DecodedPacket
    raw: bytes
    uplink: str


class MnClient:
    """Sends BUs as a mobile node would, from the CoA of an uplink, and collects answers."""

    def __init__(self, tb: Testbed, ha: str) -> None:
        self.tb = tb
        self.ha = IPv6Address(ha)
        self.coas = {u: IPv6Address(a) for u, a in tb.wait_coas().items()}
        self.ports = dict(tb.topology.mn.uplinks)  # uplink -> internal port (iwlan, ilte)
        self.stamp = 0.0
        with netns(tb.ns(tb.topology.mn_node)):
            self.senders = {u: HdrinclSender(p, self.coas[u]) for u, p in self.ports.items()}
            self.rx = {
                43: RawReceiver(43),  # BA, MPA: type 2 routing header
                135: RawReceiver(135),  # Binding Error: plain Mobility Header
                58: RawReceiver(58, icmp6_types={145}),  # HAAD reply
            }
        self.received: list[Answer] = []

    def close(self) -> None:
        for s in self.senders.values():
            s.close()
        for r in self.rx.values():
            r.close()

    # ------------------------------------------------------------------------------ sending
    def timestamp_wall(self) -> float:
        """Increasing timestamps even for BUs sent within one clock tick."""
        now = max(time.time(), self.stamp + 1e-3)
        self.stamp = now
        return now

    def bu_packet(
        self,
        hoa: str | IPv6Address,
        uplink: str,
        seq: int,
        *,
        nai: str,
        key: MnHaKey | None,
        lifetime: int = 100,
        ack: bool = True,
        home: bool = True,
        ts_wall: float | None = None,
        with_timestamp: bool = True,
    ) -> bytes:
        opts: list[MobilityOption] = [MobileNodeIdentifier.from_nai(nai)]
        if with_timestamp:
            opts.append(
                replay_protection(ts_wall if ts_wall is not None else self.timestamp_wall())
            )
        bu = BindingUpdate(
            sequence=seq, lifetime=lifetime, ack=ack, home_registration=home,
            link_local=False, key_management=False, options=tuple(opts),
        )  # fmt: skip
        return build_mh_packet(
            self.coas[uplink], self.ha, bu, home_address=IPv6Address(hoa), auth=key
        )

    def send(self, packet: bytes, uplink: str) -> None:
        self.senders[uplink].send(packet)

    def bu(self, hoa: str | IPv6Address, uplink: str, seq: int, **kw) -> bytes:  # type: ignore[no-untyped-def]
        packet = self.bu_packet(hoa, uplink, seq, **kw)
        self.send(packet, uplink)
        return packet

    def send_raw_from(self, uplink: str, packet: bytes) -> None:
        self.senders[uplink].send(packet)

    # ------------------------------------------------------------------------------ receiving
    def _pump(self, timeout: float) -> None:
        socks = list(self.rx.values())
        ready, _, _ = select.select([s.fileno() for s in socks], [], [], timeout)
        for s in socks:
            if s.fileno() not in ready:
                continue
            while (pkt := s.recv_nowait()) is not None:
                uplink = next((u for u, c in self.coas.items() if c == pkt.dst), "?")
                try:
                    d = decode_from(s.proto, pkt.data, pkt.src, pkt.dst)
                except DecodeError:
                    continue
                self.received.append(Answer(d, pkt.data, uplink))

    def wait_for(self, match, timeout: float = 5.0) -> Answer:  # type: ignore[no-untyped-def]
        """The first received answer `match(answer)` accepts (consumed)."""
        deadline = time.monotonic() + timeout
        while True:
            for i, a in enumerate(self.received):
                if match(a):
                    return self.received.pop(i)
            left = deadline - time.monotonic()
            if left <= 0:
                got = [type(a.packet.message).__name__ for a in self.received]
                raise AssertionError(f"no matching answer within {timeout}s (have {got})")
            self._pump(min(left, 0.2))

    def ba(self, seq: int, hoa: str | IPv6Address, timeout: float = 5.0) -> Answer:
        h = IPv6Address(hoa)
        return self.wait_for(
            lambda a: (
                type(a.packet.message).__name__ == "BindingAcknowledgement"
                and a.packet.message.sequence == seq
                and a.packet.rh2_address == h
            ),
            timeout,
        )

    def nothing_for(self, seconds: float) -> list[Answer]:
        """Collect answers for `seconds` (to show that none comes)."""
        end = time.monotonic() + seconds
        while (left := end - time.monotonic()) > 0:
            self._pump(left)
        out, self.received = self.received, []
        return out


# ------------------------------------------------------------------------------ MN data path
def mn(tb: Testbed, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    return tb.run(tb.topology.mn_node, *args, check=check)


def setup_mn_datapath(tb: Testbed, ha: str) -> None:
    """Decapsulation at each CoA into the local table, and per-uplink tables for CoA-sourced
    packets and for the tunnel to the HA (docs/datapath.md "MN recipe", without OVS rules)."""
    coas = tb.wait_coas()
    ports = tb.topology.mn.uplinks
    for uplink, port in ports.items():
        route = json.loads(mn(tb, "ip", "-6", "-j", "route", "show", "default", "dev", port).stdout)
        gateway = route[0]["gateway"]
        coa = coas[uplink]
        mn(tb, "ip", "-6", "route", "replace", "default", "via", gateway, "dev", port,
           "table", str(TABLE_COA[uplink]))  # fmt: skip
        mn(tb, "ip", "-6", "route", "replace", "default", "encap", "seg6", "mode", "encap.red",
           "segs", ha, "dev", port, "table", str(TABLE_TUN[uplink]))  # fmt: skip
        mn(tb, "ip", "-6", "route", "replace", f"{coa}/128", "encap", "seg6local", "action",
           "End.DT6", "table", "local", "dev", port, "table", str(DECAP_TABLE))  # fmt: skip
        mn(tb, "ip", "-6", "rule", "add", "pref", str(RULE_DECAP), "to", coa, "ipproto", "41",
           "lookup", str(DECAP_TABLE))  # fmt: skip
        mn(tb, "ip", "-6", "rule", "add", "pref", str(RULE_COA), "from", coa,
           "lookup", str(TABLE_COA[uplink]))  # fmt: skip
    mn(tb, "ip", "-6", "rule", "add", "pref", "1000", "lookup", "local")
    mn(tb, "ip", "-6", "rule", "del", "pref", "0", "lookup", "local")
    tb.run(
        tb.topology.mn_node,
        "nft",
        "-f",
        "-",
        input=f"table inet {TEST_TABLE} {{\n"
        "\tchain prerouting { type filter hook prerouting priority -10; policy accept; }\n}\n",
    )


def add_hoa(tb: Testbed, hoa: str, uplink: str) -> None:
    """The HoA as a local address whose packets leave through the tunnel of `uplink`, and
    counters of tunnelled packets for it arriving on each uplink."""
    mn(tb, "ip", "-6", "addr", "add", f"{hoa}/128", "dev", "lo", "nodad")
    move_hoa(tb, hoa, uplink)
    hexa = f"0x{int(IPv6Address(hoa)):032x}"
    rules = "".join(
        f'add rule inet {TEST_TABLE} prerouting iifname "{port}" ip6 nexthdr 41 '
        f'@nh,512,128 {hexa} counter comment "{uplink}:{hoa}"\n'
        for uplink, port in tb.topology.mn.uplinks.items()
    )
    tb.run(tb.topology.mn_node, "nft", "-f", "-", input=rules)


def move_hoa(tb: Testbed, hoa: str, uplink: str) -> None:
    """Packets from `hoa` go into the tunnel of `uplink` (what the MN does on a handover)."""
    mn(tb, "ip", "-6", "rule", "del", "pref", str(RULE_HOA), "from", hoa, check=False)
    mn(tb, "ip", "-6", "rule", "add", "pref", str(RULE_HOA), "from", hoa,
       "lookup", str(TABLE_TUN[uplink]))  # fmt: skip


def tunnelled_counts(tb: Testbed) -> dict[str, int]:
    """Packets tunnelled to each HoA per uplink, as the MN's nft counters saw them arrive:
    {"wlan:<hoa>": n, "lte:<hoa>": n, ...}."""
    out = tb.run(tb.topology.mn_node, "nft", "-j", "list", "table", "inet", TEST_TABLE).stdout
    counts = {}
    for obj in json.loads(out)["nftables"]:
        rule = obj.get("rule")
        if rule and "comment" in rule:
            for expr in rule["expr"]:
                if "counter" in expr:
                    counts[rule["comment"]] = int(expr["counter"]["packets"])
    return counts


def build_echo(src: IPv6Address, dst: IPv6Address) -> bytes:
    """An ICMPv6 echo request packet (for a hand-made reverse-tunnelled packet)."""
    from sdnmip.mipv6.icmpv6 import UnknownIcmpv6

    return build_icmpv6_packet(
        src, dst, UnknownIcmpv6(icmp_type=128, code=0, message_body=b"\x12\x34\x00\x01hello!!!"),
        hop_limit=64,
    )  # fmt: skip


def tunnel(outer_src: IPv6Address, outer_dst: IPv6Address, inner: bytes) -> bytes:
    import struct

    return (
        struct.pack("!IHBB", 6 << 28, len(inner), 41, 64)
        + outer_src.packed
        + outer_dst.packed
        + inner
    )
