"""What the demo saw while it ran, as plain data in time order, and the rates derived from it.

The sampler (sampler.py) fills an `Observations`; the live table reads recent rates from it
while the scenario runs, and the analysis, the plot and the report read all of it afterwards.
Times are wall-clock seconds (time.time()), the clock tcpdump stamps packets with.

Owns: the record of interface counters, flow tables, interface states, data packets per uplink
and 5-tuple, signalling messages and TCP resets; rates over windows; which flow a 5-tuple
belongs to.
Must not: do I/O.
"""

from __future__ import annotations

import bisect
import threading
from array import array
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from sdnmip.demo.pcap import Data, Signal
from sdnmip.demo.scenario import FlowSpec

FlowKey = tuple[int, str, int, str, int]  # proto, source (the HoA), sport, destination, dport


@dataclass
class Series:
    """The packets of one 5-tuple on one uplink: times and wire lengths, in arrival order."""

    times: array[float] = field(default_factory=lambda: array("d"))
    sizes: array[int] = field(default_factory=lambda: array("I"))
    # iperf3 UDP counters, aligned with `times` (0, never a counter, where a packet had none:
    # the client's 4-byte connect datagram); empty for a series without counters (TCP).
    seqs: array[int] = field(default_factory=lambda: array("L"))

    def add(self, ts: float, size: int, seq: int | None = None) -> None:
        self.times.append(ts)
        self.sizes.append(size)
        if seq is not None:
            missing = len(self.times) - 1 - len(self.seqs)
            if missing:
                self.seqs.extend([0] * missing)
            self.seqs.append(seq)

    def bytes_between(self, t0: float, t1: float) -> int:
        i = bisect.bisect_left(self.times, t0)
        j = bisect.bisect_left(self.times, t1)
        return sum(self.sizes[i:j])

    def first_after(self, t: float) -> float | None:
        i = bisect.bisect_left(self.times, t)
        return self.times[i] if i < len(self.times) else None

    def last_before(self, t: float) -> float | None:
        i = bisect.bisect_left(self.times, t)
        return self.times[i - 1] if i > 0 else None


@dataclass
class Observations:
    cn_addresses: dict[str, str]  # testbed node -> address (to attribute 5-tuples to flows)
    counters: list[tuple[float, dict[str, tuple[int, int]]]] = field(default_factory=list)
    flow_tables: list[tuple[float, list[dict[str, Any]]]] = field(default_factory=list)
    interfaces: list[tuple[float, list[dict[str, Any]]]] = field(default_factory=list)
    packets: dict[tuple[str, FlowKey], Series] = field(default_factory=dict)
    signals: list[tuple[float, str, Signal]] = field(default_factory=list)
    resets: list[tuple[float, str, Data]] = field(default_factory=list)
    # iperf3 UDP datagram counters that reached a correspondent, per 5-tuple (its capture).
    received: dict[FlowKey, set[int]] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def __post_init__(self) -> None:
        self._cns = frozenset(self.cn_addresses.values())

    # -- recording (the sampler, under `lock`) --------------------------------------------------

    def add_packet(self, uplink: str, ts: float, size: int, pkt: Data | Signal) -> None:
        if isinstance(pkt, Signal):
            self.signals.append((ts, uplink, pkt))
            return
        if not pkt.tunnelled:
            return  # the MN's flows leave tunnelled; nothing else is theirs
        if pkt.tcp_flags & 0x04:
            self.resets.append((ts, uplink, pkt))
        if pkt.dst in self._cns:  # from the MN (resets towards it are kept above)
            key = (pkt.proto, pkt.src, pkt.sport, pkt.dst, pkt.dport)
            series = self.packets.get((uplink, key))
            if series is None:
                series = self.packets[(uplink, key)] = Series()
            series.add(ts, size, pkt.udp_seq)

    def add_received(self, pkt: Data | Signal) -> None:
        """A packet a correspondent's capture saw (plain IPv6: it left the HA's tunnel)."""
        if isinstance(pkt, Data) and pkt.udp_seq is not None and not pkt.tunnelled:
            key = (pkt.proto, pkt.src, pkt.sport, pkt.dst, pkt.dport)
            self.received.setdefault(key, set()).add(pkt.udp_seq)

    # -- reading --------------------------------------------------------------------------------

    def flow_of(self, key: FlowKey, flows: Iterable[FlowSpec]) -> FlowSpec | None:
        """The demo flow a 5-tuple belongs to: same protocol, correspondent and server port
        (an iperf3 TCP test's control connection counts with it: it carries a few bytes)."""
        proto, _, _, dst, dport = key
        for spec in flows:
            if (proto, dst, dport) == (spec.proto_number, self.cn_addresses[spec.cn], spec.port):
                return spec
        return None

    def flow_bytes(self, spec: FlowSpec, uplink: str, t0: float, t1: float) -> int:
        total = 0
        for (up, key), series in self.packets.items():
            if up == uplink and self.flow_of(key, (spec,)) is spec:
                total += series.bytes_between(t0, t1)
        return total

    def interface_rate(self, iface: str, t0: float, t1: float) -> float | None:
        """Bits per second sent by `iface` between the samples nearest t0 and t1."""
        samples = [(t, c[iface][1]) for t, c in self.counters if iface in c and t0 <= t <= t1]
        if len(samples) < 2 or samples[-1][0] <= samples[0][0]:
            return None
        (ta, ba), (tb, bb) = samples[0], samples[-1]
        return 8.0 * (bb - ba) / (tb - ta)

    def latest_flow_table(self) -> list[dict[str, Any]]:
        return self.flow_tables[-1][1] if self.flow_tables else []

    def latest_interfaces(self) -> list[dict[str, Any]]:
        return self.interfaces[-1][1] if self.interfaces else []


def data_flow(
    table: list[dict[str, Any]], spec: FlowSpec, cn_address: str
) -> dict[str, Any] | None:
    """The entry of `spec`'s data connection in a flow table (GET /v1/flows): iperf3 opens its
    control connection first, so of the matching entries the data connection is the newest."""
    mine = [
        f
        for f in table
        if f["proto"] in (spec.proto, spec.proto_number)
        and f["remote"] == cn_address
        and f["remote_port"] == spec.port
        and f["direction"] == "outgoing"
    ]
    return max(mine, key=lambda f: f["flow_id"]) if mine else None
