"""Reading the demo's captures: the pcap file format, incrementally, and what each frame is.

The demo captures on the MN's uplinks with a short snap length: the tunnelled data packets
(outer IPv6 from the CoA to the HA, inner IPv6 from the flow's Home Address, then the ports and
TCP flags) and the Mobility Header signalling. `PcapStream` turns the bytes of a growing file
into records as tcpdump writes them; `classify` says what a frame is: a data packet of which
5-tuple, a TCP reset, or a BU/BA/BRR/BE/MPS/MPA with its Home Address, sequence number and
status. Frames are only read here; the codec of record for these messages is sdnmip/mipv6.

Owns: the pcap record format (both byte orders, micro- and nanosecond timestamps) and the
offsets of the headers the demo reads.
Must not: do I/O (callers feed bytes), or be used to validate messages (tshark does that in the
tests, the codec in the daemons).
"""

from __future__ import annotations

import dataclasses
import struct
from dataclasses import dataclass
from ipaddress import IPv6Address

# pcap global header magics (as read little-endian): microsecond and nanosecond resolution.
MAGIC_US = 0xA1B2C3D4
MAGIC_NS = 0xA1B23C4D
GLOBAL_HEADER = 24
RECORD_HEADER = 16
LINKTYPE_ETHERNET = 1

ETH_HEADER = 14
ETHERTYPE_IPV6 = 0x86DD
IPV6_HEADER = 40
NH_HOPOPT, NH_TCP, NH_UDP, NH_IPV6, NH_ROUTING = 0, 6, 17, 41, 43
NH_ICMPV6, NH_NONE, NH_DSTOPTS, NH_MH = 58, 59, 60, 135
EXTENSION_HEADERS = (NH_HOPOPT, NH_ROUTING, NH_DSTOPTS)
OPT_HOME_ADDRESS = 201  # RFC 6275 §6.3
ROUTING_TYPE_2 = 2  # RFC 6275 §6.4
TCP_RST = 0x04
UDP_HEADER = 8
IPERF3_SEQ_END = 12  # iperf3's UDP payload: 32-bit seconds, microseconds, datagram counter

# Mobility Header types (RFC 6275 §6.1) and the ICMPv6 types of prefix discovery (§6.7, §6.8).
MH_KINDS = {0: "BRR", 5: "BU", 6: "BA", 7: "BE"}
ICMP_KINDS = {146: "MPS", 147: "MPA"}


class PcapError(ValueError):
    """Not a pcap file this reader understands."""


@dataclass(frozen=True)
class Record:
    ts: float  # seconds since the epoch (tcpdump stamps frames with the wall clock)
    wire_len: int  # the frame's length on the wire (the capture may hold less)
    data: bytes


class PcapStream:
    """Records from the bytes of a pcap file, fed as they are read (a file still being
    written ends in a partial record: it is kept until the rest arrives)."""

    def __init__(self) -> None:
        self._buf = b""
        self._endian: str | None = None
        self._tick = 1e-6

    def feed(self, chunk: bytes) -> list[Record]:
        self._buf += chunk
        if self._endian is None:
            if len(self._buf) < GLOBAL_HEADER:
                return []
            self._read_global_header()
        endian = self._endian
        assert endian is not None
        out: list[Record] = []
        buf, pos, hdr = self._buf, 0, endian + "IIII"
        while len(buf) - pos >= RECORD_HEADER:
            sec, frac, caplen, wire = struct.unpack_from(hdr, buf, pos)
            end = pos + RECORD_HEADER + caplen
            if end > len(buf):
                break
            out.append(Record(sec + frac * self._tick, wire, buf[pos + RECORD_HEADER : end]))
            pos = end
        self._buf = buf[pos:]
        return out

    def _read_global_header(self) -> None:
        head = self._buf[:GLOBAL_HEADER]
        for endian in ("<", ">"):
            magic = struct.unpack_from(endian + "I", head)[0]
            if magic in (MAGIC_US, MAGIC_NS):
                self._endian = endian
                self._tick = 1e-6 if magic == MAGIC_US else 1e-9
                break
        else:
            raise PcapError("not a pcap file (unknown magic number)")
        assert self._endian is not None
        linktype = struct.unpack_from(self._endian + "I", head, 20)[0] & 0x0FFFFFFF
        if linktype != LINKTYPE_ETHERNET:
            raise PcapError(f"link type {linktype} is not Ethernet")
        self._buf = self._buf[GLOBAL_HEADER:]


@dataclass(frozen=True)
class Data:
    """A TCP or UDP packet: its 5-tuple (of the inner header when tunnelled: `src` is then the
    Home Address it left from and `outer_src` the CoA), TCP flags (0 for UDP) and, for UDP, the
    iperf3 datagram counter when the capture holds it (the third 32-bit word of the payload)."""

    outer_src: str
    proto: int
    src: str
    sport: int
    dst: str
    dport: int
    tcp_flags: int
    tunnelled: bool
    udp_seq: int | None = None


@dataclass(frozen=True)
class Signal:
    """A Mobile IPv6 message: `kind` BU, BA, BRR, BE, MPS or MPA; `hoa` from the Home Address
    option, the type 2 routing header or the tunnel's inner header; `seq` and `status` where the
    message has them."""

    kind: str
    src: str
    dst: str
    hoa: str | None
    seq: int | None = None
    status: int | None = None
    tunnelled: bool = False


def _addr(data: bytes, off: int) -> str:
    return str(IPv6Address(data[off : off + 16]))


def classify(frame: bytes) -> Data | Signal | None:
    """What an Ethernet frame is, or None for anything else (or a frame cut too short)."""
    try:
        if struct.unpack_from("!H", frame, 12)[0] != ETHERTYPE_IPV6:
            return None
        return _ipv6(frame, ETH_HEADER, tunnelled=False)
    except (struct.error, IndexError, ValueError):
        return None  # shorter than the headers it announces: the snap length cut it


def _ipv6(frame: bytes, off: int, tunnelled: bool) -> Data | Signal | None:
    nh = frame[off + 6]
    src, dst = _addr(frame, off + 8), _addr(frame, off + 24)
    hoa: str | None = None
    pos = off + IPV6_HEADER
    while nh in EXTENSION_HEADERS:
        length = (frame[pos + 1] + 1) * 8
        if nh == NH_DSTOPTS:
            hoa = _home_address_option(frame, pos, length) or hoa
        elif nh == NH_ROUTING and frame[pos + 2] == ROUTING_TYPE_2:
            hoa = _addr(frame, pos + 8)
        nh, pos = frame[pos], pos + length
    if nh == NH_IPV6 and not tunnelled:
        inner = _ipv6(frame, pos, tunnelled=True)
        if isinstance(inner, Data):
            return dataclasses.replace(inner, outer_src=src, tunnelled=True)
        return inner
    if nh == NH_MH:
        kind = MH_KINDS.get(frame[pos + 2])
        if kind is None:
            return None
        if tunnelled:
            hoa = dst if hoa is None else hoa
        body = pos + 6
        if kind == "BU":
            return Signal(kind, src, dst, hoa, seq=_u16(frame, body), tunnelled=tunnelled)
        if kind == "BA":
            return Signal(
                kind,
                src,
                dst,
                hoa,
                seq=_u16(frame, body + 2),
                status=frame[body],
                tunnelled=tunnelled,
            )
        if kind == "BE":
            return Signal(
                kind, src, dst, _addr(frame, body + 2), status=frame[body], tunnelled=tunnelled
            )
        return Signal(kind, src, dst, hoa, tunnelled=tunnelled)
    if nh == NH_ICMPV6:
        kind = ICMP_KINDS.get(frame[pos])
        return None if kind is None else Signal(kind, src, dst, hoa, tunnelled=tunnelled)
    if nh in (NH_TCP, NH_UDP):
        sport, dport = struct.unpack_from("!HH", frame, pos)
        flags = frame[pos + 13] if nh == NH_TCP else 0
        seq = None
        if nh == NH_UDP and len(frame) >= pos + UDP_HEADER + IPERF3_SEQ_END:
            seq = int(struct.unpack_from("!I", frame, pos + UDP_HEADER + IPERF3_SEQ_END - 4)[0])
        return Data(src, nh, src, sport, dst, dport, flags, tunnelled, seq)
    return None


def _home_address_option(frame: bytes, pos: int, length: int) -> str | None:
    i = pos + 2
    while i < pos + length:
        opt = frame[i]
        if opt == 0:  # Pad1
            i += 1
            continue
        if opt == OPT_HOME_ADDRESS:
            return _addr(frame, i + 2)
        i += 2 + frame[i + 1]
    return None


def _u16(frame: bytes, off: int) -> int:
    return int(struct.unpack_from("!H", frame, off)[0])
