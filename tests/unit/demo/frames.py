"""Ethernet frames and pcap files for the demo's unit tests, built independently of the reader
under test: Mobility Header messages by the project's codec (sdnmip/mipv6), TCP/UDP and the
tunnel header by hand with struct."""

from __future__ import annotations

import struct
from ipaddress import IPv6Address

ETH_SRC = bytes.fromhex("020000000001")
ETH_DST = bytes.fromhex("020000000002")


def eth(packet: bytes, ethertype: int = 0x86DD) -> bytes:
    return ETH_DST + ETH_SRC + struct.pack("!H", ethertype) + packet


def ipv6(src: str, dst: str, nh: int, payload: bytes) -> bytes:
    return (
        struct.pack("!IHBB", 0x60000000, len(payload), nh, 64)
        + IPv6Address(src).packed
        + IPv6Address(dst).packed
        + payload
    )


def tcp(sport: int, dport: int, flags: int, data: bytes = b"") -> bytes:
    return struct.pack("!HHIIBBHHH", sport, dport, 1, 0, 5 << 4, flags, 65535, 0, 0) + data


def udp(sport: int, dport: int, data: bytes) -> bytes:
    return struct.pack("!HHHH", sport, dport, 8 + len(data), 0) + data


def iperf3_udp_payload(seq: int, size: int = 1200) -> bytes:
    """iperf3's UDP datagram: seconds, microseconds, then the 32-bit datagram counter."""
    head = struct.pack("!III", 1_700_000_000, 123_456, seq)
    return head + b"\0" * (size - len(head))


def tunnel(outer_src: str, outer_dst: str, inner: bytes) -> bytes:
    return ipv6(outer_src, outer_dst, 41, inner)


def pcap(
    records: list[tuple[float, bytes]],
    *,
    endian: str = "<",
    nano: bool = False,
    snap: int = 65535,
    linktype: int = 1,
) -> bytes:
    magic = 0xA1B23C4D if nano else 0xA1B2C3D4
    out = struct.pack(endian + "IHHiIII", magic, 2, 4, 0, 0, snap, linktype)
    for ts, frame in records:
        sec = int(ts)
        frac = round((ts - sec) * (1e9 if nano else 1e6))
        data = frame[:snap]
        out += struct.pack(endian + "IIII", sec, frac, len(data), len(frame)) + data
    return out
