"""Whole signalling packets: decode from a raw socket's bytes or a capture, build for
IPV6_HDRINCL raw sockets.

Owns: the walk of the extension-header chain (Hop-by-Hop, Destination Options with the Home
Address option, type 2 routing header) down to the Mobility Header or ICMPv6, the choice of the
pseudo-header addresses, and the assembly of complete IPv6 packets.

Pseudo-header addresses (RFC 8200 §8.1, RFC 6275 §6.1.1/§6.3):
- source: the home address from the Home Address option when the packet carries one (the
  receiver swaps it with the source address before any upper layer sees the packet, so the
  sender checksums with the home address); otherwise the IPv6 source;
- destination: the final destination: the type 2 routing header's address while its Segments
  Left is 1 (as sent, and as our raw sockets receive it); otherwise the IPv6 destination.

Must not: open sockets, read clocks, or decide anything about bindings.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from ipaddress import IPv6Address

from sdnmip.mipv6.auth import (
    MnHaKey,
    placeholder_option,
    sign_mobility_header,
    verify_mobility_header,
)
from sdnmip.mipv6.errors import (
    EncodeError,
    FieldValueError,
    TruncatedError,
    UnsupportedHeaderError,
)
from sdnmip.mipv6.ext_headers import (
    NH_DSTOPTS,
    NH_HOPOPTS,
    NH_ICMPV6,
    NH_MH,
    NH_ROUTING,
    HomeAddressOption,
    Type2RoutingHeader,
    decode_options_header,
    decode_routing_header,
)
from sdnmip.mipv6.icmpv6 import (
    ND_HOP_LIMIT,
    AnyIcmpv6Message,
    decode_icmpv6,
    encode_icmpv6_unchecked,
    set_icmpv6_checksum,
)
from sdnmip.mipv6.mh import (
    AnyMobilityMessage,
    BindingUpdate,
    decode_mobility_header,
    encode_mh_unchecked,
    set_mh_checksum,
)
from sdnmip.mipv6.options import MobilityMessageAuthentication

IPV6_HEADER_LEN = 40  # RFC 8200 §3
IPV6_VERSION = 6
MH_DEFAULT_HOP_LIMIT = 64  # signalling is unicast across routers; any sane hop limit works
MAX_EXTENSION_HEADERS = 4  # Hop-by-Hop, Destination Options, Routing, Destination Options

_IPV6 = struct.Struct("!IHBB16s16s")
_U16 = struct.Struct("!H")


@dataclass(frozen=True, slots=True)
class DecodedPacket:
    """A decoded signalling packet and the addresses that matter.

    `src`/`dst` are as on the wire (for a BU from a visiting MN: the care-of address and the HA;
    for a BA to it: the HA and the care-of address). `home_address` comes from the Home Address
    option, `rh2_address` from the type 2 routing header. `upper_src`/`upper_dst` are the
    pseudo-header addresses the checksum was verified with. `mh` holds the raw Mobility Header
    (for `auth.verify_mobility_header`), None for ICMPv6. `hop_limit` is known only when the
    whole packet was decoded or the caller passed it.
    """

    src: IPv6Address
    dst: IPv6Address
    home_address: IPv6Address | None
    rh2_address: IPv6Address | None
    upper_src: IPv6Address
    upper_dst: IPv6Address
    message: AnyMobilityMessage | AnyIcmpv6Message
    mh: bytes | None
    hop_limit: int | None

    def mobile_node_addresses(self) -> tuple[IPv6Address, IPv6Address]:
        """(care-of address, home address) of the mobile node, for RFC 4285 Mobility Data."""
        return mobile_node_addresses(
            self.src,
            self.dst,
            self.message,
            home_address=self.home_address,
            rh2_address=self.rh2_address,
            final_destination=self.upper_dst,
        )

    def verify_mn_ha(self, key: bytes) -> bool:
        """RFC 4285 §5.1 check of the MN-HA authentication option with `key`."""
        if self.mh is None:
            return False
        careof, home = self.mobile_node_addresses()
        return verify_mobility_header(self.mh, key, careof, home)


def mobile_node_addresses(
    src: IPv6Address,
    dst: IPv6Address,
    message: object,
    *,
    home_address: IPv6Address | None,
    rh2_address: IPv6Address | None,
    final_destination: IPv6Address,
) -> tuple[IPv6Address, IPv6Address]:
    """The MN's (care-of, home) addresses as RFC 4285 Mobility Data wants them.

    With a Home Address option (MN -> HA): (source, home address). With a type 2 routing header
    (HA -> MN): (destination, routing header address) before the header is processed, reversed
    after. With neither (the MN at home, care-of = home): the source for a BU, else the
    destination.
    """
    if home_address is not None:
        return src, home_address
    if rh2_address is not None:
        if final_destination == rh2_address:
            return dst, rh2_address
        return rh2_address, dst
    if isinstance(message, BindingUpdate):
        return src, src
    return dst, dst


def decode_ipv6_packet(data: bytes) -> DecodedPacket:
    """Decode a whole IPv6 packet (a capture, or an inner packet from a proto-41 socket)."""
    if len(data) < IPV6_HEADER_LEN:
        raise TruncatedError("IPv6 header", 0, f"{len(data)} octets, 40 needed")
    first, plen, next_header, hop_limit, src, dst = _IPV6.unpack_from(data, 0)
    if first >> 28 != IPV6_VERSION:
        raise FieldValueError("Version", 0, f"is {first >> 28}, must be 6")
    end = IPV6_HEADER_LEN + plen
    if end > len(data):
        raise TruncatedError("Payload Length", 4, f"says {plen}, {len(data) - 40} octets follow")
    return _decode_chain(
        data,
        next_header,
        6,
        IPV6_HEADER_LEN,
        end,
        src=IPv6Address(src),
        dst=IPv6Address(dst),
        hop_limit=hop_limit,
    )


def decode_from(
    next_header: int,
    data: bytes,
    src: IPv6Address,
    dst: IPv6Address,
    *,
    hop_limit: int | None = None,
) -> DecodedPacket:
    """Decode what a raw socket delivers: `data` starts at the header `next_header` names
    (60: Destination Options, 43: Routing, 135: Mobility Header, 58: ICMPv6), `src`/`dst` are
    the packet's IPv6 addresses (recvfrom and IPV6_PKTINFO)."""
    return _decode_chain(data, next_header, 0, 0, len(data), src=src, dst=dst, hop_limit=hop_limit)


def _decode_chain(
    data: bytes,
    next_header: int,
    nh_at: int,
    pos: int,
    end: int,
    *,
    src: IPv6Address,
    dst: IPv6Address,
    hop_limit: int | None,
) -> DecodedPacket:
    hao: HomeAddressOption | None = None
    rh2: Type2RoutingHeader | None = None
    seen_routing = False
    first = pos
    for _ in range(MAX_EXTENSION_HEADERS + 1):
        if next_header in (NH_MH, NH_ICMPV6):
            break
        here = pos
        if next_header == NH_DSTOPTS:
            next_header, found, pos = decode_options_header(data, pos, end, destination=True)
            if found is not None:
                if hao is not None:
                    raise FieldValueError("Home Address option", here, "second Home Address")
                hao = found
        elif next_header == NH_ROUTING:
            if seen_routing:
                raise FieldValueError("Next Header", nh_at, "second routing header")
            seen_routing = True
            next_header, rh2, pos = decode_routing_header(data, pos, end)
        elif next_header == NH_HOPOPTS:
            if here != first:
                raise FieldValueError("Next Header", nh_at, "Hop-by-Hop header not first")
            next_header, _, pos = decode_options_header(data, pos, end, destination=False)
        else:
            raise UnsupportedHeaderError(
                "Next Header", nh_at, f"{next_header} is not Mobile IPv6 signalling"
            )
        nh_at = here
    else:
        raise UnsupportedHeaderError("Next Header", nh_at, "too many extension headers")
    upper_src = hao.home_address if hao is not None else src
    rh2_address = rh2.home_address if rh2 is not None else None
    upper_dst = rh2.home_address if rh2 is not None and rh2.segments_left > 0 else dst
    if next_header == NH_MH:
        message: AnyMobilityMessage | AnyIcmpv6Message = decode_mobility_header(
            data, upper_src, upper_dst, pos, end
        )
        mh: bytes | None = bytes(data[pos:end])
    else:
        message = decode_icmpv6(data, upper_src, upper_dst, pos, end)
        mh = None
    return DecodedPacket(
        src=src,
        dst=dst,
        home_address=hao.home_address if hao is not None else None,
        rh2_address=rh2_address,
        upper_src=upper_src,
        upper_dst=upper_dst,
        message=message,
        mh=mh,
        hop_limit=hop_limit,
    )


def _assemble(
    src: IPv6Address,
    dst: IPv6Address,
    upper_nh: int,
    upper: bytes | bytearray,
    *,
    home_address: IPv6Address | None,
    rh2_address: IPv6Address | None,
    hop_limit: int,
) -> bytes:
    # RFC 6275 §6.3: the Home Address option comes after the routing header, if any.
    ext = b""
    nh = upper_nh
    if home_address is not None:
        ext = HomeAddressOption(home_address).encode_header(nh)
        nh = NH_DSTOPTS
    if rh2_address is not None:
        ext = Type2RoutingHeader(rh2_address).encode_header(nh) + ext
        nh = NH_ROUTING
    plen = len(ext) + len(upper)
    if plen > 0xFFFF:
        raise EncodeError(f"payload of {plen} octets does not fit an IPv6 packet")
    try:
        head = _IPV6.pack(0x60000000, plen, nh, hop_limit, src.packed, dst.packed)
    except struct.error as exc:
        raise EncodeError(f"IPv6 header: {exc}") from exc
    return head + ext + upper


def build_mh_packet(
    src: IPv6Address,
    dst: IPv6Address,
    message: AnyMobilityMessage,
    *,
    home_address: IPv6Address | None = None,
    rh2_address: IPv6Address | None = None,
    hop_limit: int = MH_DEFAULT_HOP_LIMIT,
    auth: MnHaKey | None = None,
    auth_addresses: tuple[IPv6Address, IPv6Address] | None = None,
) -> bytes:
    """A complete IPv6 packet carrying `message` in a Mobility Header.

    `home_address` adds a Destination Options header with the Home Address option (a BU from a
    visiting MN, RFC 6275 §11.7.1); `rh2_address` adds a type 2 routing header (a BA to it,
    RFC 6275 §9.5.4 / §6.4). With `auth`, an MN-HA authentication option is appended last and
    signed (RFC 4285 §5.1) over `auth_addresses` = (care-of, home), by default those of
    `mobile_node_addresses`.
    """
    upper_src = home_address if home_address is not None else src
    upper_dst = rh2_address if rh2_address is not None else dst
    if auth is None:
        mh = encode_mh_unchecked(message)
    else:
        own: tuple[object, ...] = getattr(message, "options", ())
        if any(isinstance(o, MobilityMessageAuthentication) for o in own):
            raise EncodeError("message already has an authentication option")
        mh = encode_mh_unchecked(message, (placeholder_option(auth.spi),))
        careof, home = auth_addresses or mobile_node_addresses(
            src,
            dst,
            message,
            home_address=home_address,
            rh2_address=rh2_address,
            final_destination=upper_dst,
        )
        sign_mobility_header(mh, auth.key, careof, home)
    set_mh_checksum(mh, upper_src, upper_dst)
    return _assemble(
        src,
        dst,
        NH_MH,
        mh,
        home_address=home_address,
        rh2_address=rh2_address,
        hop_limit=hop_limit,
    )


def build_icmpv6_packet(
    src: IPv6Address,
    dst: IPv6Address,
    message: AnyIcmpv6Message,
    *,
    home_address: IPv6Address | None = None,
    rh2_address: IPv6Address | None = None,
    hop_limit: int = ND_HOP_LIMIT,
) -> bytes:
    """A complete IPv6 packet carrying an ICMPv6 message (MPS from a visiting MN carries the
    Home Address option, RFC 6275 §11.4.2; the MPA to it a type 2 routing header, §10.6.2).
    The default hop limit 255 is what neighbour discovery requires (RFC 4861 §7.1)."""
    upper_src = home_address if home_address is not None else src
    upper_dst = rh2_address if rh2_address is not None else dst
    raw = set_icmpv6_checksum(encode_icmpv6_unchecked(message), upper_src, upper_dst)
    return _assemble(
        src,
        dst,
        NH_ICMPV6,
        raw,
        home_address=home_address,
        rh2_address=rh2_address,
        hop_limit=hop_limit,
    )
