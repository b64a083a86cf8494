"""Binding Update sequence-number arithmetic modulo 2**16 (RFC 6275 §9.5.1).

Owns: increment and the "greater than" comparison that the HA uses to accept a BU and that the MN
uses to tell a current Binding Acknowledgement (status 135) from a stale one.
Must not: keep state.

RFC 6275 §9.5.1: x is greater than y when 0 < (x - y) mod 2**16 < 2**15. The half-way distance
(2**15) is *not* greater: the RFC's example says 15 + 32768 is less than or equal to 15.
"""

from __future__ import annotations

from sdnmip.core.constants import SEQUENCE_MODULUS

_HALF = SEQUENCE_MODULUS // 2


def check(seq: int) -> int:
    """Return `seq` if it fits the 16-bit field, else raise ValueError naming it."""
    if not 0 <= seq < SEQUENCE_MODULUS:
        raise ValueError(f"sequence number {seq} is outside 0..{SEQUENCE_MODULUS - 1}")
    return seq


def next_seq(seq: int) -> int:
    """The sequence number after `seq` (65535 -> 0)."""
    return (seq + 1) % SEQUENCE_MODULUS


def seq_gt(x: int, y: int) -> bool:
    """True when x is greater than y modulo 2**16 (RFC 6275 §9.5.1)."""
    return 0 < (x - y) % SEQUENCE_MODULUS < _HALF


def seq_ge(x: int, y: int) -> bool:
    """True when x equals y or is greater than y modulo 2**16."""
    return x == y or seq_gt(x, y)
