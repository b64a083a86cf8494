"""Parsing of the addresses and prefixes the helpers accept.

Owns: turning caller input (str or ipaddress objects) into IPv6 values, with a `KernelConfigError`
that names the field. Must not: talk to the kernel.
"""

from __future__ import annotations

from ipaddress import IPv6Address, IPv6Network, ip_address, ip_network

from sdnmip.kernel.errors import KernelConfigError

AddrLike = IPv6Address | str
PrefixLike = IPv6Network | IPv6Address | str


def v6addr(field: str, value: AddrLike) -> IPv6Address:
    """An IPv6 address, or KernelConfigError naming `field`."""
    if isinstance(value, IPv6Address):
        return value
    try:
        parsed = ip_address(value)
    except ValueError as exc:
        raise KernelConfigError(field, value, "not an IP address") from exc
    if not isinstance(parsed, IPv6Address):
        raise KernelConfigError(field, value, "not an IPv6 address")
    return parsed


def v6prefix(field: str, value: PrefixLike) -> IPv6Network:
    """An IPv6 prefix ('default' = ::/0, a bare address = /128), or KernelConfigError."""
    if isinstance(value, IPv6Network):
        return value
    if isinstance(value, IPv6Address):
        return IPv6Network(value)
    if value == "default":
        return IPv6Network("::/0")
    try:
        parsed = ip_network(value, strict=True)
    except ValueError as exc:
        raise KernelConfigError(field, value, "not an IPv6 prefix (host bits set?)") from exc
    if not isinstance(parsed, IPv6Network):
        raise KernelConfigError(field, value, "not an IPv6 prefix")
    return parsed
