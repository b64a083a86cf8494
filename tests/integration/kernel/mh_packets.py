"""Hand-built Mobile IPv6 test packets for the raw-socket tests (bytes only, no codec).

Just enough of RFC 6275 to put realistic packets on the wire: a BU with the Home Address option
(§6.3, §6.1.7), a BA with a type 2 routing header (§6.4, §6.1.8), a Binding Refresh Request
(§6.1.2), and an ICMPv6 echo request, each optionally tunnelled in an outer IPv6 header (RFC 2473).
The project's codec is sdnmip/mipv6; these tests only need the kernel to see the right headers.
"""

from __future__ import annotations

import struct
from ipaddress import IPv6Address

NH_NONE, NH_DSTOPTS, NH_ROUTING, NH_MH, NH_ICMPV6, NH_IPV6 = 59, 60, 43, 135, 58, 41


def checksum(src: IPv6Address, dst: IPv6Address, nh: int, payload: bytes) -> int:
    pseudo = src.packed + dst.packed + struct.pack("!IxxxB", len(payload), nh)
    data = pseudo + payload + (b"\0" if len(payload) % 2 else b"")
    total: int = sum(struct.unpack(f"!{len(data) // 2}H", data))
    while total > 0xFFFF:
        total = (total & 0xFFFF) + (total >> 16)
    return ~total & 0xFFFF


def ipv6(src: IPv6Address, dst: IPv6Address, nh: int, payload: bytes, hlim: int = 64) -> bytes:
    return struct.pack("!IHBB", 6 << 28, len(payload), nh, hlim) + src.packed + dst.packed + payload


def mh(mh_type: int, body: bytes, src: IPv6Address, dst: IPv6Address) -> bytes:
    """A Mobility Header (checksummed over `src`/`dst`), padded to 8n octets."""
    pad = (-(6 + len(body))) % 8
    body += b"" if pad == 0 else (b"\0" if pad == 1 else bytes([1, pad - 2]) + bytes(pad - 2))
    raw = struct.pack("!BBBBH", NH_NONE, (6 + len(body)) // 8 - 1, mh_type, 0, 0) + body
    c = checksum(src, dst, NH_MH, raw)
    return raw[:4] + struct.pack("!H", c) + raw[6:]


def binding_update(coa: IPv6Address, ha: IPv6Address, hoa: IPv6Address, seq: int) -> bytes:
    """CoA -> HA: Destination Options [PadN(2), Home Address] + MH BU (A|H, 400 s)."""
    bu = mh(5, struct.pack("!HBBH", seq, 0xC0, 0, 100), hoa, ha)  # pseudo-header uses the HoA
    dstopts = struct.pack("!BB", NH_MH, 2) + bytes([1, 2, 0, 0]) + bytes([0xC9, 16]) + hoa.packed
    return ipv6(coa, ha, NH_DSTOPTS, dstopts + bu)


def binding_ack(ha: IPv6Address, coa: IPv6Address, hoa: IPv6Address, seq: int) -> bytes:
    """HA -> CoA: type 2 routing header [HoA] + MH BA (accepted, 400 s)."""
    ba = mh(6, struct.pack("!BBHH", 0, 0, seq, 100), ha, hoa)  # final destination = HoA
    rh2 = struct.pack("!BBBB4x", NH_MH, 2, 2, 1) + hoa.packed
    return ipv6(ha, coa, NH_ROUTING, rh2 + ba)


def binding_refresh_request(ha: IPv6Address, hoa: IPv6Address) -> bytes:
    return ipv6(ha, hoa, NH_MH, mh(0, b"\0\0", ha, hoa))


def echo_request(src: IPv6Address, dst: IPv6Address, ident: int) -> bytes:
    raw = struct.pack("!BBHHH", 128, 0, 0, ident, 1) + b"sdnmip"
    c = checksum(src, dst, NH_ICMPV6, raw)
    return ipv6(src, dst, NH_ICMPV6, raw[:2] + struct.pack("!H", c) + raw[4:])


def tunnel(outer_src: IPv6Address, outer_dst: IPv6Address, inner: bytes) -> bytes:
    return ipv6(outer_src, outer_dst, NH_IPV6, inner)


def router_advertisement(src: IPv6Address, prefix: IPv6Address, lifetime: int = 1800) -> bytes:
    """RFC 4861 §4.2 RA to ff02::1 (hop limit 255) with one Prefix Information option (L|A)."""
    dst = IPv6Address("ff02::1")
    ra = struct.pack("!BBHBBHII", 134, 0, 0, 64, 0, lifetime, 0, 0)
    pio = struct.pack("!BBBBIII", 3, 4, 64, 0xC0, 86400, 14400, 0) + prefix.packed
    body = ra + pio
    c = checksum(src, dst, NH_ICMPV6, body)
    return ipv6(src, dst, NH_ICMPV6, body[:2] + struct.pack("!H", c) + body[4:], hlim=255)
