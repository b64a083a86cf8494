"""Independent reference implementations used by the codec tests (not by the codec).

Written straight from the RFC text, word by word, with no code shared with sdnmip.mipv6: the
RFC 8200 §8.1 pseudo-header checksum (RFC 1071 end-around carry) and the RFC 4285 §5.1
authenticator.
"""

from __future__ import annotations

import hashlib
import hmac
from ipaddress import IPv6Address

ADDR_COA = IPv6Address("2001:db8:1::100")
ADDR_HA = IPv6Address("2001:db8:100::1")
ADDR_HOA = IPv6Address("2001:db8:100::1000")
ADDR_CN = IPv6Address("2001:db8:c1::10")


def h(text: str) -> bytes:
    """Hex with spaces and newlines allowed."""
    return bytes.fromhex("".join(text.split()))


def ref_checksum(src: IPv6Address, dst: IPv6Address, next_header: int, upper: bytes) -> int:
    """RFC 8200 §8.1 pseudo-header + RFC 1071 one's-complement sum, 16 bits at a time."""
    pseudo = (
        src.packed
        + dst.packed
        + len(upper).to_bytes(4, "big")
        + b"\x00\x00\x00"
        + bytes([next_header])
    )
    data = pseudo + upper
    if len(data) % 2:
        data += b"\x00"
    total = 0
    for i in range(0, len(data), 2):
        total += (data[i] << 8) | data[i + 1]
        total = (total & 0xFFFF) + (total >> 16)
    return ~total & 0xFFFF


def with_checksum(
    src: IPv6Address, dst: IPv6Address, next_header: int, upper: bytes, at: int
) -> bytes:
    """`upper` with its 2-octet checksum field at `at` filled in by `ref_checksum`."""
    zeroed = upper[:at] + b"\x00\x00" + upper[at + 2 :]
    csum = ref_checksum(src, dst, next_header, zeroed)
    return zeroed[:at] + csum.to_bytes(2, "big") + zeroed[at + 2 :]


def ref_authenticator(key: bytes, careof: IPv6Address, home: IPv6Address, mh: bytes) -> bytes:
    """RFC 4285 §5.1 over a whole MH that ends with the MN-HA option: Mobility Data is
    care-of | home | MH up to and including the SPI, checksum field zeroed."""
    upto_spi = mh[:-12]
    mobility_data = careof.packed + home.packed + upto_spi[:4] + b"\x00\x00" + upto_spi[6:]
    return hmac.new(key, mobility_data, hashlib.sha1).digest()[:12]
