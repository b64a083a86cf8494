"""Parse the packets the switch sends to the controller into the fields the logic needs.

Owns: `parse()`, which reads an Ethernet frame carrying IPv6 (extension headers skipped, RFC 8200
§4) and its TCP, UDP or ICMPv6 header, and returns `Packet` or `Refused` with a reason. Junk never
raises: the switch forwards whatever arrives, so bad input is normal input here.
Must not: decide anything about flows, or allocate more than one small object per packet (this
runs for every new flow; struct on a memoryview, no os-ken packet library on this path).
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from ipaddress import IPv6Address

from sdnmip.core.types import IPPROTO_ICMPV6, IPPROTO_TCP, IPPROTO_UDP

ETH_HLEN = 14
ETH_TYPE_IPV6 = 0x86DD
ETH_TYPE_VLAN = frozenset({0x8100, 0x88A8})
IPV6_HLEN = 40  # RFC 8200 §3

# RFC 8200 §4 extension headers (and AH, RFC 4302 §2.2) that may precede the upper layer.
EXT_HOP_BY_HOP = 0
EXT_ROUTING = 43
EXT_FRAGMENT = 44
EXT_AH = 51
EXT_DEST_OPTS = 60
NO_NEXT_HEADER = 59
_EXT_GENERIC = frozenset({EXT_HOP_BY_HOP, EXT_ROUTING, EXT_DEST_OPTS})
MAX_EXT_HEADERS = 8  # a chain longer than this is refused (no legitimate packet needs it)

TCP_FLAG_FIN = 0x01
TCP_FLAG_SYN = 0x02
TCP_FLAG_RST = 0x04
TCP_FLAG_ACK = 0x10

_IPV6 = struct.Struct("!IHBB16s16s")
MAX_INTERNED = 1 << 16  # addresses kept (correspondents, HoAs); the table starts over when full


class Address(IPv6Address):
    """An IPv6Address that computes its hash once: the flow tables hash the same few addresses
    dozens of times per new flow, and IPv6Address hashes in Python each time. Equal to, and
    hashing like, the IPv6Address of the same value."""

    __slots__ = ("_hash",)

    def __init__(self, packed: bytes) -> None:
        super().__init__(packed)
        self._hash = super().__hash__()

    def __hash__(self) -> int:
        return self._hash


_interned: dict[bytes, Address] = {}


def address(packed: bytes) -> IPv6Address:
    """The address of 16 packed bytes, one object per value while it is in use."""
    a = _interned.get(packed)
    if a is None:
        if len(_interned) >= MAX_INTERNED:
            _interned.clear()
        a = _interned[packed] = Address(packed)
    return a


_PORTS = struct.Struct("!HH")


@dataclass(frozen=True, slots=True)
class Packet:
    """The fields of one IPv6 packet the logic classifies on."""

    src: IPv6Address
    dst: IPv6Address
    proto: int  # upper-layer protocol after the extension headers
    sport: int  # TCP/UDP source port; ICMPv6 type; else 0
    dport: int  # TCP/UDP destination port; else 0
    flow_label: int
    dscp: int
    tcp_flags: int = 0
    icmp_code: int = 0
    complete: bool = True  # False when the switch sent only the first bytes (a FIN/RST copy)
    l4_offset: int = 0  # where the upper-layer header starts in the buffer parsed
    end: int = 0  # where the packet (as far as we have it) ends in that buffer

    @property
    def is_tcp_open(self) -> bool:
        """A SYN without ACK: the first segment of a new TCP connection."""
        return self.tcp_flags & (TCP_FLAG_SYN | TCP_FLAG_ACK) == TCP_FLAG_SYN


@dataclass(frozen=True, slots=True)
class Refused:
    """The packet cannot be classified; `reason` says why, for counters and logs."""

    reason: str


def parse(frame: bytes) -> Packet | Refused:
    """Parse an Ethernet frame carrying IPv6."""
    view = memoryview(frame)
    if len(view) < ETH_HLEN + IPV6_HLEN:
        return Refused(f"truncated frame ({len(view)} bytes)")
    eth_type = (view[12] << 8) | view[13]
    if eth_type in ETH_TYPE_VLAN:
        return Refused("VLAN-tagged frame")
    if eth_type != ETH_TYPE_IPV6:
        return Refused(f"not IPv6 (ethertype {eth_type:#06x})")
    return parse_ipv6(view, ETH_HLEN, len(view))


def parse_ipv6(view: memoryview, start: int, limit: int) -> Packet | Refused:
    """Parse the IPv6 packet at view[start:limit] (also a packet quoted in an ICMPv6 error)."""
    if start + IPV6_HLEN > limit:
        return Refused("truncated IPv6 header")
    vtf, payload_len, nxt, _hlim, src, dst = _IPV6.unpack_from(view, start)
    if vtf >> 28 != 6:
        return Refused(f"IP version {vtf >> 28} in an IPv6 ethertype")
    if payload_len == 0:
        # Jumbograms (payload length 0, RFC 2675) never reach us: the uplinks' MTU is 1600.
        return Refused("IPv6 payload length 0")
    declared_end = start + IPV6_HLEN + payload_len
    # A copy sent with a max_len, or a packet quoted in an ICMPv6 error, holds only the first
    # bytes; bytes beyond the declared length are Ethernet padding.
    end = min(declared_end, limit)
    off = start + IPV6_HLEN
    for _ in range(MAX_EXT_HEADERS):
        if nxt in _EXT_GENERIC:
            if off + 2 > end:
                return Refused("truncated extension header")
            nxt, hlen = view[off], (view[off + 1] + 1) * 8
        elif nxt == EXT_AH:
            if off + 2 > end:
                return Refused("truncated authentication header")
            nxt, hlen = view[off], (view[off + 1] + 2) * 4
        elif nxt == EXT_FRAGMENT:
            if off + 8 > end:
                return Refused("truncated fragment header")
            if (view[off + 2] << 8 | view[off + 3]) & 0xFFF8:
                return Refused("non-first fragment (no transport header)")
            nxt, hlen = view[off], 8
        else:
            break
        off += hlen
    else:
        return Refused(f"more than {MAX_EXT_HEADERS} extension headers")
    if off > end:
        return Refused("extension header runs past the packet")
    sport = dport = flags = code = 0
    if nxt in (IPPROTO_TCP, IPPROTO_UDP):
        # Ports are the first 4 bytes; TCP flags are bytes 12-13 (RFC 9293 §3.1).
        need = 14 if nxt == IPPROTO_TCP else 8
        if off + need > end:
            return Refused("truncated TCP header" if nxt == IPPROTO_TCP else "truncated UDP header")
        sport, dport = _PORTS.unpack_from(view, off)
        if nxt == IPPROTO_TCP:
            flags = ((view[off + 12] & 0x01) << 8) | view[off + 13]
    elif nxt == IPPROTO_ICMPV6:
        if off + 4 > end:
            return Refused("truncated ICMPv6 header")
        sport, code = view[off], view[off + 1]
    elif nxt == NO_NEXT_HEADER:
        return Refused("no upper-layer header")
    return Packet(
        src=address(src),
        dst=address(dst),
        proto=nxt,
        sport=sport,
        dport=dport,
        flow_label=vtf & 0xFFFFF,
        dscp=(vtf >> 22) & 0x3F,
        tcp_flags=flags,
        icmp_code=code,
        complete=declared_end <= limit,
        l4_offset=off,
        end=end,
    )
