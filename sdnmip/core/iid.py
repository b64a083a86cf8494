"""Interface identifiers for new Home Addresses: reserved values (RFC 5453) and HoA formation.

Owns: which 64-bit interface ids may not be used, and forming prefix + IID.
Must not: draw random numbers itself (the caller injects the source, so tests are deterministic).
"""

from __future__ import annotations

from collections.abc import Callable, Container
from ipaddress import IPv6Address, IPv6Network

IID_BITS = 64
IID_MASK = (1 << IID_BITS) - 1

# RFC 5453 §3 / IANA "Reserved IPv6 Interface Identifiers" (inclusive ranges).
RESERVED_IID_RANGES: tuple[tuple[int, int], ...] = (
    (0x0000_0000_0000_0000, 0x0000_0000_0000_0000),  # Subnet-Router Anycast (RFC 4291)
    (0x0200_5EFF_FE00_0000, 0x0200_5EFF_FEFF_FFFF),  # IANA Ethernet block, PMIPv6 (RFC 5453/6543)
    (0xFDFF_FFFF_FFFF_FF80, 0xFDFF_FFFF_FFFF_FFFF),  # Reserved Subnet Anycast (RFC 2526)
)

RandomIid = Callable[[], int]  # returns 64 random bits


def is_reserved_iid(iid: int) -> bool:
    return any(lo <= iid <= hi for lo, hi in RESERVED_IID_RANGES)


def check_prefix(prefix: IPv6Network) -> IPv6Network:
    """Home prefixes must be /64: interface ids are 64 bits (RFC 4291 §2.5.1)."""
    if prefix.prefixlen != IID_BITS:
        raise ValueError(f"home prefix {prefix} must be a /64 to form Home Addresses")
    return prefix


def form_address(prefix: IPv6Network, iid: int) -> IPv6Address:
    return IPv6Address(int(check_prefix(prefix).network_address) | (iid & IID_MASK))


def iid_of(addr: IPv6Address) -> int:
    return int(addr) & IID_MASK


def new_address(
    prefix: IPv6Network,
    random_iid: RandomIid,
    taken: Container[IPv6Address],
    attempts: int = 8,
) -> IPv6Address | None:
    """prefix + a random IID that is not reserved and not in `taken`; None if `attempts` draws
    all failed (a broken random source, not bad luck: 2**-60 per draw)."""
    for _ in range(attempts):
        iid = random_iid()
        if not 0 <= iid <= IID_MASK:
            raise ValueError(f"random_iid returned {iid}, not a 64-bit value")
        if is_reserved_iid(iid):
            continue
        addr = form_address(prefix, iid)
        if addr not in taken:
            return addr
    return None
