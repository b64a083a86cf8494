"""IPv6 extension headers used by Mobile IPv6: the Home Address destination option (RFC 6275
§6.3) in a Destination Options header, and the type 2 routing header (RFC 6275 §6.4).

Owns: encoding of a Destination Options header holding one Home Address option (padded so the
option sits at 8n+6, RFC 6275 §6.3), of a type 2 routing header, and the decoding of
Hop-by-Hop / Destination Options / Routing headers as they appear in signalling packets.
Must not: decide what a packet means (see `packet.py`).
"""

from __future__ import annotations

from dataclasses import dataclass
from ipaddress import IPv6Address

from sdnmip.mipv6.errors import (
    FieldValueError,
    LengthError,
    TruncatedError,
    UnrecognizedOptionError,
    UnsupportedHeaderError,
)

NH_HOPOPTS = 0  # RFC 8200 §4.3
NH_ROUTING = 43  # RFC 8200 §4.4
NH_FRAGMENT = 44  # RFC 8200 §4.5
NH_ICMPV6 = 58  # RFC 4443
NH_NONE = 59  # RFC 8200 §4.7
NH_DSTOPTS = 60  # RFC 8200 §4.6
NH_MH = 135  # RFC 6275 §6.1

OPT_PAD1 = 0  # RFC 8200 §4.2
OPT_PADN = 1  # RFC 8200 §4.2
OPT_HOME_ADDRESS = 201  # RFC 6275 §6.3 (0xC9: discard + ICMP if not understood)
HOME_ADDRESS_OPT_LEN = 16  # RFC 6275 §6.3
ROUTING_TYPE_2 = 2  # RFC 6275 §6.4
TYPE2_HDR_EXT_LEN = 2  # RFC 6275 §6.4: Hdr Ext Len = 2
TYPE2_SEGMENTS_LEFT = 1  # RFC 6275 §6.4: Segments Left = 1

# Destination Options header holding only the Home Address option: Next Header, Hdr Ext Len = 2,
# a 4-octet PadN (type 1, length 2) so that the option starts at offset 6 (8n+6), then the option.
_HAO_PREFIX = bytes((2, OPT_PADN, 2, 0, 0, OPT_HOME_ADDRESS, HOME_ADDRESS_OPT_LEN))
_RH2_PREFIX = bytes((TYPE2_HDR_EXT_LEN, ROUTING_TYPE_2))


_ZERO15 = bytes(15)


def _check_unicast(field: str, offset: int, raw: bytes) -> None:
    """RFC 6275 §6.3/§6.4: the home address must be a routable unicast address: not multicast
    (ff00::/8), link-local (fe80::/10), unspecified (::) or loopback (::1). Tested on the packed
    octets because this runs for every BU and BA."""
    first = raw[0]
    if (
        first == 0xFF
        or (first == 0xFE and raw[1] & 0xC0 == 0x80)
        or (raw[15] <= 1 and raw[:15] == _ZERO15)
    ):
        address = IPv6Address(raw)
        raise FieldValueError(field, offset, f"{address} is not a routable unicast address")


@dataclass(frozen=True, slots=True)
class HomeAddressOption:
    """RFC 6275 §6.3: the Home Address destination option."""

    home_address: IPv6Address

    def encode_header(self, next_header: int) -> bytes:
        """A whole 24-octet Destination Options header carrying this option at 8n+6."""
        return bytes((next_header,)) + _HAO_PREFIX + self.home_address.packed


@dataclass(frozen=True, slots=True)
class Type2RoutingHeader:
    """RFC 6275 §6.4: the type 2 routing header (one address, the home address)."""

    home_address: IPv6Address
    segments_left: int = TYPE2_SEGMENTS_LEFT

    def encode_header(self, next_header: int) -> bytes:
        return (
            bytes((next_header,))
            + _RH2_PREFIX
            + bytes((self.segments_left, 0, 0, 0, 0))
            + self.home_address.packed
        )


def _header_extent(data: bytes, start: int, end: int, name: str) -> int:
    if start + 2 > end:
        raise TruncatedError(f"{name} Hdr Ext Len", start + 1, "header ends")
    stop = start + (data[start + 1] + 1) * 8
    if stop > end:
        raise TruncatedError(f"{name} Hdr Ext Len", start + 1, f"{stop - start} octets overrun")
    return stop


def decode_options_header(
    data: bytes, start: int, end: int, *, destination: bool
) -> tuple[int, HomeAddressOption | None, int]:
    """Decode a Hop-by-Hop (`destination=False`) or Destination Options header.

    Returns (next header, Home Address option or None, offset after the header). Unknown options
    are skipped when their type's two high bits are 00 and refused otherwise (RFC 8200 §4.2).
    """
    name = "Destination Options" if destination else "Hop-by-Hop Options"
    stop = _header_extent(data, start, end, name)
    hao: HomeAddressOption | None = None
    pos = start + 2
    while pos < stop:
        otype = data[pos]
        if otype == OPT_PAD1:
            pos += 1
            continue
        if pos + 2 > stop:
            raise TruncatedError(f"{name} option length", pos + 1, "header ends")
        olen = data[pos + 1]
        nxt = pos + 2 + olen
        if nxt > stop:
            raise TruncatedError(f"{name} option length", pos + 1, f"option {otype} overruns")
        if otype == OPT_HOME_ADDRESS and destination:
            if olen != HOME_ADDRESS_OPT_LEN:
                raise LengthError("Home Address option length", pos + 1, f"is {olen}, must be 16")
            if hao is not None:
                raise FieldValueError("Home Address option", pos, "appears twice")
            raw = bytes(data[pos + 2 : nxt])
            _check_unicast("Home Address", pos + 2, raw)
            hao = HomeAddressOption(IPv6Address(raw))
        elif otype != OPT_PADN and otype >> 6:
            raise UnrecognizedOptionError(
                f"{name} option type", pos, f"unrecognized option {otype} requires discard"
            )
        pos = nxt
    return data[start], hao, stop


def decode_routing_header(
    data: bytes, start: int, end: int
) -> tuple[int, Type2RoutingHeader | None, int]:
    """Decode a routing header: (next header, type 2 header or None, offset after it).

    A routing header of another type with Segments Left 0 is ignored (RFC 8200 §4.4); with
    Segments Left > 0 it is not signalling this codec handles.
    """
    stop = _header_extent(data, start, end, "Routing")
    if stop - start < 4:
        raise TruncatedError("Routing header", start, "shorter than 4 octets")
    rtype = data[start + 2]
    segments_left = data[start + 3]
    if rtype != ROUTING_TYPE_2:
        if segments_left == 0:
            return data[start], None, stop
        raise UnsupportedHeaderError(
            "Routing Type", start + 2, f"type {rtype} with Segments Left {segments_left}"
        )
    if data[start + 1] != TYPE2_HDR_EXT_LEN:
        raise LengthError("Hdr Ext Len", start + 1, f"is {data[start + 1]}, must be 2 for type 2")
    if segments_left > TYPE2_SEGMENTS_LEFT:
        raise FieldValueError("Segments Left", start + 3, f"is {segments_left}, must be 0 or 1")
    raw = bytes(data[start + 8 : start + 24])
    _check_unicast("Home Address", start + 8, raw)
    return data[start], Type2RoutingHeader(IPv6Address(raw), segments_left), stop
