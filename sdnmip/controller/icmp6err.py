"""ICMPv6 error messages about a flow that travels under a dynamic HoA.

Owns: reading the packet an ICMPv6 error quotes (RFC 4443 §2.4: types 1-4 carry "as much of the
invoking packet as possible") and rewriting such an error so that the MN's kernel recognises it:
outer destination and the quoted packet's source become the Primary HoA (the address the
application's socket is bound to), with the ICMPv6 checksum recomputed (RFC 4443 §2.3).
Why: a Packet Too Big for a flow on a dynamic HoA otherwise quotes an address no socket owns,
and Path MTU Discovery (RFC 8201) silently fails for that flow.
Must not: decide which flow an error belongs to (the logic looks the quoted packet up), or touch
the quoted transport header (the kernel matches sockets on addresses and ports only).
"""

from __future__ import annotations

import struct
from ipaddress import IPv6Address

from sdnmip.controller.packet import ETH_HLEN, Packet, Refused, parse_ipv6
from sdnmip.core.types import IPPROTO_ICMPV6

ICMPV6_ERROR_HLEN = 8  # type, code, checksum, 4 bytes of MTU/pointer/unused
FIRST_INFORMATIONAL = 128  # RFC 4443 §2.1: types 0-127 are errors
_SRC = 8  # offsets of the addresses in an IPv6 header (RFC 8200 §3)
_DST = 24


def is_error(p: Packet) -> bool:
    return p.proto == IPPROTO_ICMPV6 and p.sport < FIRST_INFORMATIONAL


def quoted(frame: bytes, p: Packet) -> Packet | Refused:
    """The invoking packet quoted in the ICMPv6 error `p` (parsed from `frame`)."""
    return parse_ipv6(memoryview(frame), p.l4_offset + ICMPV6_ERROR_HLEN, p.end)


def rewrite(frame: bytes, p: Packet, addr: IPv6Address) -> bytes:
    """`frame` with the outer destination and the quoted source set to `addr`, checksum fixed.

    `p` is the parsed error (its offsets index `frame`, an Ethernet frame: the outer IPv6 header
    starts at ETH_HLEN since parse() refuses VLAN tags).
    """
    out = bytearray(frame[: p.end])
    out[ETH_HLEN + _DST : ETH_HLEN + _DST + 16] = addr.packed
    q = p.l4_offset + ICMPV6_ERROR_HLEN
    out[q + _SRC : q + _SRC + 16] = addr.packed
    icmp = p.l4_offset
    out[icmp + 2 : icmp + 4] = b"\x00\x00"
    src = bytes(out[ETH_HLEN + _SRC : ETH_HLEN + _SRC + 16])
    pseudo = src + addr.packed + struct.pack("!I3xB", p.end - icmp, IPPROTO_ICMPV6)
    out[icmp + 2 : icmp + 4] = struct.pack("!H", _checksum(pseudo + bytes(out[icmp : p.end])))
    return bytes(out)


def _checksum(data: bytes) -> int:
    """RFC 1071 Internet checksum."""
    if len(data) % 2:
        data += b"\x00"
    total: int = sum(struct.unpack(f"!{len(data) // 2}H", data))
    while total >> 16:
        total = (total & 0xFFFF) + (total >> 16)
    return ~total & 0xFFFF
