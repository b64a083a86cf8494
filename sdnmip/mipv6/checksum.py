"""The Internet checksum with the IPv6 upper-layer pseudo-header (RFC 8200 §8.1, RFC 1071).

Owns: the one's-complement sum and the MH / ICMPv6 checksum over a pseudo-header.
Must not: decide which addresses go into the pseudo-header; the caller picks them
(`packet.py`: the home address from the Home Address option as source, RFC 6275 §6.1.1/§6.3;
the final destination, i.e. the type 2 routing header's address, as destination, RFC 8200 §8.1).

Speed: the 16-bit one's-complement sum of a byte string equals `int.from_bytes(data) % 0xFFFF`
(2**16 is congruent to 1 modulo 0xFFFF), so the whole sum is one C-level conversion and one
modulo, with no per-word Python loop.
"""

from __future__ import annotations

_MOD = 0xFFFF


def _word_sum(data: bytes | bytearray | memoryview) -> int:
    """An integer congruent (mod 0xFFFF) to the sum of the 16-bit big-endian words of `data`."""
    value = int.from_bytes(data, "big")
    if len(data) & 1:
        value <<= 8  # an odd trailing byte is padded with a zero byte (RFC 1071)
    return value


def _fold(total: int) -> int:
    """The one's-complement sum (1..0xFFFF) of words whose plain sum is congruent to `total`.

    A one's-complement sum of words that are not all zero is never +0, so a result of 0 modulo
    0xFFFF means 0xFFFF (-0).
    """
    folded = total % _MOD
    if folded == 0 and total != 0:
        return _MOD
    return folded


def pseudo_header_sum(src: bytes, dst: bytes, length: int, next_header: int) -> int:
    """The (unfolded) word sum of the RFC 8200 §8.1 pseudo-header.

    Fields: source (16), destination (16), upper-layer packet length (32), 3 zero bytes, next
    header (8). The 32-bit length contributes its two 16-bit halves.
    """
    return (
        int.from_bytes(src, "big")
        + int.from_bytes(dst, "big")
        + (length >> 16)
        + (length & 0xFFFF)
        + next_header
    )


def upper_layer_checksum(
    src: bytes, dst: bytes, next_header: int, payload: bytes | bytearray | memoryview
) -> int:
    """The checksum to store in `payload` (whose checksum field must be zero while computing)."""
    total = pseudo_header_sum(src, dst, len(payload), next_header) + _word_sum(payload)
    return _MOD - _fold(total)


def verify_upper_layer_checksum(
    src: bytes, dst: bytes, next_header: int, payload: bytes | bytearray | memoryview
) -> bool:
    """True when `payload` (checksum field included) sums to -0 with the pseudo-header."""
    total = pseudo_header_sum(src, dst, len(payload), next_header) + _word_sum(payload)
    return _fold(total) == _MOD
