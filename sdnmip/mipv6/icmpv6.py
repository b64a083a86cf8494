"""ICMPv6 messages used by Mobile IPv6 and by the home agent's neighbour discovery.

Owns: Home Agent Address Discovery Request/Reply (RFC 6275 §6.5/§6.6), Mobile Prefix
Solicitation/Advertisement (RFC 6275 §6.7/§6.8) with Prefix Information options (RFC 4861
§4.6.2 with the Router Address flag of RFC 6275 §7.2), Neighbor Solicitation/Advertisement
(RFC 4861 §4.3/§4.4) with Source/Target Link-Layer Address options (RFC 4861 §4.6.1); their
encoding with the ICMPv6 checksum (RFC 4443 §2.3) and their decoding with the validity checks
of RFC 4861 §7.1 that do not need the hop limit. Other ICMPv6 types decode to `UnknownIcmpv6`.
Must not: choose pseudo-header addresses (`packet.py` does) or send anything.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from ipaddress import IPv6Address
from typing import ClassVar

from sdnmip.mipv6.checksum import upper_layer_checksum, verify_upper_layer_checksum
from sdnmip.mipv6.errors import (
    ChecksumError,
    EncodeError,
    FieldValueError,
    LengthError,
    TruncatedError,
)

NH_ICMPV6 = 58
ICMPV6_NEIGHBOR_SOLICITATION = 135  # RFC 4861 §4.3
ICMPV6_NEIGHBOR_ADVERTISEMENT = 136  # RFC 4861 §4.4
ICMPV6_HAAD_REQUEST = 144  # RFC 6275 §6.5
ICMPV6_HAAD_REPLY = 145  # RFC 6275 §6.6
ICMPV6_MOBILE_PREFIX_SOLICITATION = 146  # RFC 6275 §6.7
ICMPV6_MOBILE_PREFIX_ADVERTISEMENT = 147  # RFC 6275 §6.8
ND_HOP_LIMIT = 255  # RFC 4861 §7.1: ND messages are sent and accepted only with hop limit 255

ND_OPT_SOURCE_LLA = 1  # RFC 4861 §4.6.1
ND_OPT_TARGET_LLA = 2  # RFC 4861 §4.6.1
ND_OPT_PREFIX_INFORMATION = 3  # RFC 4861 §4.6.2
PREFIX_INFO_LEN_UNITS = 4  # RFC 4861 §4.6.2: Length = 4 (32 octets)

_PI_L = 0x80  # RFC 4861 §4.6.2 on-link
_PI_A = 0x40  # RFC 4861 §4.6.2 autonomous
_PI_R = 0x20  # RFC 6275 §7.2 router address
_NA_R = 0x80000000  # RFC 4861 §4.4
_NA_S = 0x40000000
_NA_O = 0x20000000
_MPA_M = 0x8000  # RFC 6275 §6.8
_MPA_O = 0x4000

_HEAD = struct.Struct("!BBH")
_ID = struct.Struct("!HH")  # Identifier, Reserved / flags
_U32 = struct.Struct("!I")
_PI = struct.Struct("!BBBBIII16s")
_SOLICITED_NODE_PREFIX = int(IPv6Address("ff02::1:ff00:0"))


def solicited_node_multicast(address: IPv6Address) -> IPv6Address:
    """RFC 4291 §2.7.1: ff02::1:ffXX:XXXX from the low 24 bits of `address`."""
    return IPv6Address(_SOLICITED_NODE_PREFIX | (int(address) & 0xFFFFFF))


@dataclass(frozen=True, slots=True, kw_only=True)
class PrefixInformation:
    """RFC 4861 §4.6.2 Prefix Information option; `router_address` is RFC 6275 §7.2's R flag."""

    prefix: IPv6Address
    prefix_length: int
    on_link: bool
    autonomous: bool
    router_address: bool
    valid_lifetime: int
    preferred_lifetime: int

    def encode(self) -> bytes:
        flags = (
            (_PI_L if self.on_link else 0)
            | (_PI_A if self.autonomous else 0)
            | (_PI_R if self.router_address else 0)
        )
        return _PI.pack(
            ND_OPT_PREFIX_INFORMATION,
            PREFIX_INFO_LEN_UNITS,
            self.prefix_length,
            flags,
            self.valid_lifetime,
            self.preferred_lifetime,
            0,
            self.prefix.packed,
        )


def _lla_option(otype: int, address: bytes) -> bytes:
    raw = bytes((otype, 0)) + address
    raw += bytes((-len(raw)) % 8)
    if len(raw) // 8 > 255:
        raise EncodeError("link-layer address too long")
    return raw[:1] + bytes((len(raw) // 8,)) + raw[2:]


@dataclass(frozen=True, slots=True, kw_only=True)
class HomeAgentAddressDiscoveryRequest:
    """RFC 6275 §6.5 (ICMPv6 type 144)."""

    identifier: int
    ICMP_TYPE: ClassVar[int] = ICMPV6_HAAD_REQUEST

    def body(self) -> bytes:
        return _ID.pack(self.identifier, 0)


@dataclass(frozen=True, slots=True, kw_only=True)
class HomeAgentAddressDiscoveryReply:
    """RFC 6275 §6.6 (ICMPv6 type 145): home agents in order of preference."""

    identifier: int
    home_agent_addresses: tuple[IPv6Address, ...]
    ICMP_TYPE: ClassVar[int] = ICMPV6_HAAD_REPLY

    def body(self) -> bytes:
        return _ID.pack(self.identifier, 0) + b"".join(a.packed for a in self.home_agent_addresses)


@dataclass(frozen=True, slots=True, kw_only=True)
class MobilePrefixSolicitation:
    """RFC 6275 §6.7 (ICMPv6 type 146)."""

    identifier: int
    ICMP_TYPE: ClassVar[int] = ICMPV6_MOBILE_PREFIX_SOLICITATION

    def body(self) -> bytes:
        return _ID.pack(self.identifier, 0)


@dataclass(frozen=True, slots=True, kw_only=True)
class MobilePrefixAdvertisement:
    """RFC 6275 §6.8 (ICMPv6 type 147): the home prefixes, as Prefix Information options."""

    identifier: int
    managed: bool
    other: bool
    prefixes: tuple[PrefixInformation, ...]
    ICMP_TYPE: ClassVar[int] = ICMPV6_MOBILE_PREFIX_ADVERTISEMENT

    def body(self) -> bytes:
        flags = (_MPA_M if self.managed else 0) | (_MPA_O if self.other else 0)
        return _ID.pack(self.identifier, flags) + b"".join(p.encode() for p in self.prefixes)


@dataclass(frozen=True, slots=True, kw_only=True)
class NeighborSolicitation:
    """RFC 4861 §4.3 (ICMPv6 type 135). For DAD (RFC 4862 §5.4.2) the source is :: and the
    Source Link-Layer Address option must be absent (`source_link_layer_address=None`)."""

    target_address: IPv6Address
    source_link_layer_address: bytes | None
    ICMP_TYPE: ClassVar[int] = ICMPV6_NEIGHBOR_SOLICITATION

    def body(self) -> bytes:
        raw = b"\x00\x00\x00\x00" + self.target_address.packed
        if self.source_link_layer_address is not None:
            raw += _lla_option(ND_OPT_SOURCE_LLA, self.source_link_layer_address)
        return raw


@dataclass(frozen=True, slots=True, kw_only=True)
class NeighborAdvertisement:
    """RFC 4861 §4.4 (ICMPv6 type 136). Flags: `router` (R), `solicited` (S), `override` (O).

    The home agent's unsolicited NAs for a home address it defends (RFC 6275 §10.4.1) have
    solicited=False, override=True, and are sent to all-nodes ff02::1.
    """

    router: bool
    solicited: bool
    override: bool
    target_address: IPv6Address
    target_link_layer_address: bytes | None
    ICMP_TYPE: ClassVar[int] = ICMPV6_NEIGHBOR_ADVERTISEMENT

    def body(self) -> bytes:
        flags = (
            (_NA_R if self.router else 0)
            | (_NA_S if self.solicited else 0)
            | (_NA_O if self.override else 0)
        )
        raw = _U32.pack(flags) + self.target_address.packed
        if self.target_link_layer_address is not None:
            raw += _lla_option(ND_OPT_TARGET_LLA, self.target_link_layer_address)
        return raw


@dataclass(frozen=True, slots=True, kw_only=True)
class UnknownIcmpv6:
    """Any other ICMPv6 message (echo, router advertisement, errors, ...): not decoded further."""

    icmp_type: int
    code: int
    message_body: bytes


Icmpv6Message = (
    HomeAgentAddressDiscoveryRequest
    | HomeAgentAddressDiscoveryReply
    | MobilePrefixSolicitation
    | MobilePrefixAdvertisement
    | NeighborSolicitation
    | NeighborAdvertisement
)
AnyIcmpv6Message = Icmpv6Message | UnknownIcmpv6


def encode_icmpv6_unchecked(message: AnyIcmpv6Message) -> bytearray:
    """The ICMPv6 message with a zero checksum."""
    if isinstance(message, UnknownIcmpv6):
        icmp_type, code, body = message.icmp_type, message.code, message.message_body
    else:
        icmp_type, code = message.ICMP_TYPE, 0
        try:
            body = message.body()
        except struct.error as exc:
            raise EncodeError(f"{type(message).__name__}: {exc}") from exc
    try:
        head = _HEAD.pack(icmp_type, code, 0)
    except struct.error as exc:
        raise EncodeError(f"{type(message).__name__}: {exc}") from exc
    return bytearray(head + body)


def set_icmpv6_checksum(raw: bytearray, src: IPv6Address, dst: IPv6Address) -> bytearray:
    raw[2:4] = b"\x00\x00"
    raw[2:4] = _HEAD.pack(0, 0, upper_layer_checksum(src.packed, dst.packed, NH_ICMPV6, raw))[2:]
    return raw


def encode_icmpv6(message: AnyIcmpv6Message, src: IPv6Address, dst: IPv6Address) -> bytes:
    """The ICMPv6 message with its checksum over (`src`, `dst`) (RFC 4443 §2.3)."""
    return bytes(set_icmpv6_checksum(encode_icmpv6_unchecked(message), src, dst))


def decode_icmpv6(
    data: bytes, src: IPv6Address, dst: IPv6Address, start: int = 0, end: int | None = None
) -> AnyIcmpv6Message:
    """Decode the ICMPv6 message `data[start:end]`, verifying the checksum over (src, dst) and
    the address-dependent checks of RFC 4861 §7.1.1/§7.1.2."""
    if end is None:
        end = len(data)
    if end - start < 4:
        raise TruncatedError("ICMPv6 header", start, f"{end - start} octets, at least 4 needed")
    view = memoryview(data)[start:end]
    if not verify_upper_layer_checksum(src.packed, dst.packed, NH_ICMPV6, view):
        raise ChecksumError("ICMPv6 Checksum", start + 2, f"does not verify over {src} -> {dst}")
    message = decode_icmpv6_body(data, start, end)
    if (
        isinstance(message, NeighborSolicitation)
        and src.is_unspecified
        and message.source_link_layer_address is not None
    ):
        raise FieldValueError(
            "Source Link-Layer Address option", start + 24, "present with source :: (RFC 4861)"
        )
    if isinstance(message, NeighborAdvertisement) and dst.is_multicast and message.solicited:
        raise FieldValueError("Solicited flag", start + 4, "set on an NA to multicast (RFC 4861)")
    return message


def decode_icmpv6_body(data: bytes, start: int = 0, end: int | None = None) -> AnyIcmpv6Message:
    """Decode `data[start:end]` as ICMPv6 WITHOUT the checksum (captures, fuzzing)."""
    if end is None:
        end = len(data)
    length = end - start
    if length < 4:
        raise TruncatedError("ICMPv6 header", start, f"{length} octets, at least 4 needed")
    icmp_type = data[start]
    code = data[start + 1]
    if icmp_type not in _FIXED_LEN:
        return UnknownIcmpv6(icmp_type=icmp_type, code=code, message_body=data[start + 4 : end])
    if code != 0:
        raise FieldValueError("ICMPv6 Code", start + 1, f"is {code}, must be 0")
    if length < _FIXED_LEN[icmp_type]:
        raise TruncatedError(
            "ICMPv6 message", start, f"{length} octets too short for type {icmp_type}"
        )
    at = start + 4
    if icmp_type == ICMPV6_NEIGHBOR_SOLICITATION:
        target = _target(data, at + 4)
        opts = _nd_options(data, start + 24, end)
        return NeighborSolicitation(
            target_address=target, source_link_layer_address=opts.get(ND_OPT_SOURCE_LLA)
        )
    if icmp_type == ICMPV6_NEIGHBOR_ADVERTISEMENT:
        flags = _U32.unpack_from(data, at)[0]
        target = _target(data, at + 4)
        opts = _nd_options(data, start + 24, end)
        return NeighborAdvertisement(
            router=bool(flags & _NA_R),
            solicited=bool(flags & _NA_S),
            override=bool(flags & _NA_O),
            target_address=target,
            target_link_layer_address=opts.get(ND_OPT_TARGET_LLA),
        )
    identifier, second = _ID.unpack_from(data, at)
    if icmp_type == ICMPV6_HAAD_REQUEST:
        return HomeAgentAddressDiscoveryRequest(identifier=identifier)
    if icmp_type == ICMPV6_MOBILE_PREFIX_SOLICITATION:
        return MobilePrefixSolicitation(identifier=identifier)
    if icmp_type == ICMPV6_HAAD_REPLY:
        if (length - 8) % 16:
            raise LengthError(
                "Home Agent Addresses", start + 8, f"{length - 8} octets, not a multiple of 16"
            )
        addresses = tuple(IPv6Address(bytes(data[p : p + 16])) for p in range(start + 8, end, 16))
        return HomeAgentAddressDiscoveryReply(identifier=identifier, home_agent_addresses=addresses)
    return MobilePrefixAdvertisement(
        identifier=identifier,
        managed=bool(second & _MPA_M),
        other=bool(second & _MPA_O),
        prefixes=_prefix_options(data, start + 8, end),
    )


_FIXED_LEN = {
    ICMPV6_NEIGHBOR_SOLICITATION: 24,  # RFC 4861 §7.1.1: ICMP length >= 24
    ICMPV6_NEIGHBOR_ADVERTISEMENT: 24,  # RFC 4861 §7.1.2
    ICMPV6_HAAD_REQUEST: 8,
    ICMPV6_HAAD_REPLY: 8,
    ICMPV6_MOBILE_PREFIX_SOLICITATION: 8,
    ICMPV6_MOBILE_PREFIX_ADVERTISEMENT: 8,
}


def _target(data: bytes, at: int) -> IPv6Address:
    target = IPv6Address(bytes(data[at : at + 16]))
    if target.is_multicast:
        raise FieldValueError("Target Address", at, f"{target} is multicast (RFC 4861 §7.1)")
    return target


def _walk_nd_options(data: bytes, start: int, end: int) -> list[tuple[int, int, int]]:
    """(type, body start, option end) of each ND option; a zero length is invalid (RFC 4861
    §4.6)."""
    found: list[tuple[int, int, int]] = []
    pos = start
    while pos < end:
        if pos + 2 > end:
            raise TruncatedError("ND option length", pos, "options end mid-option")
        units = data[pos + 1]
        if units == 0:
            raise LengthError("ND option length", pos + 1, "is 0 (RFC 4861 §4.6)")
        nxt = pos + units * 8
        if nxt > end:
            raise TruncatedError("ND option length", pos + 1, f"{units * 8} octets overrun")
        found.append((data[pos], pos + 2, nxt))
        pos = nxt
    return found


def _nd_options(data: bytes, start: int, end: int) -> dict[int, bytes]:
    """Link-layer address options by type (first of each kept); unknown options ignored."""
    out: dict[int, bytes] = {}
    for otype, body, stop in _walk_nd_options(data, start, end):
        if otype in (ND_OPT_SOURCE_LLA, ND_OPT_TARGET_LLA) and otype not in out:
            out[otype] = bytes(data[body:stop])
    return out


def _prefix_options(data: bytes, start: int, end: int) -> tuple[PrefixInformation, ...]:
    prefixes: list[PrefixInformation] = []
    for otype, body, stop in _walk_nd_options(data, start, end):
        if otype != ND_OPT_PREFIX_INFORMATION:
            continue  # RFC 4861 §4.6: unknown options are ignored
        if stop - body != 30:
            raise LengthError("Prefix Information length", body - 1, "must be 4 (32 octets)")
        plen, flags, valid, preferred, _, prefix = _PI.unpack_from(data, body - 2)[2:]
        if plen > 128:
            raise FieldValueError("Prefix Length", body, f"is {plen}, more than 128")
        prefixes.append(
            PrefixInformation(
                prefix=IPv6Address(prefix),
                prefix_length=plen,
                on_link=bool(flags & _PI_L),
                autonomous=bool(flags & _PI_A),
                router_address=bool(flags & _PI_R),
                valid_lifetime=valid,
                preferred_lifetime=preferred,
            )
        )
    return tuple(prefixes)
