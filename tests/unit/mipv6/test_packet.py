"""Whole packets: builders for IPV6_HDRINCL sockets and the decoders the daemons use.

The expected packets are laid out by hand (RFC 8200 §3 header, RFC 6275 §6.3 Destination Options
with the Home Address option at 8n+6, §6.4 type 2 routing header) around the golden Mobility
Headers; checksums come from the independent reference.
"""

from __future__ import annotations

from ipaddress import IPv6Address

import pytest

from sdnmip.mipv6.errors import (
    ChecksumError,
    EncodeError,
    FieldValueError,
    LengthError,
    TruncatedError,
    UnrecognizedOptionError,
    UnsupportedHeaderError,
)
from sdnmip.mipv6.icmpv6 import (
    HomeAgentAddressDiscoveryRequest,
    MobilePrefixAdvertisement,
    MobilePrefixSolicitation,
    NeighborSolicitation,
    solicited_node_multicast,
)
from sdnmip.mipv6.mh import (
    BindingAcknowledgement,
    BindingRefreshRequest,
    BindingUpdate,
    HomeTestInit,
    UnknownMobilityMessage,
)
from sdnmip.mipv6.packet import (
    build_icmpv6_packet,
    build_mh_packet,
    decode_from,
    decode_ipv6_packet,
)
from tests.unit.mipv6.reference import (
    ADDR_CN,
    ADDR_COA,
    ADDR_HA,
    ADDR_HOA,
    h,
    ref_checksum,
    with_checksum,
)

BU = BindingUpdate(
    sequence=42,
    lifetime=150,
    ack=True,
    home_registration=True,
    link_local=False,
    key_management=False,
)
BA = BindingAcknowledgement(status=0, key_management=False, sequence=42, lifetime=150)
BU_MH = h("3b 01 05 00 9031 002a c000 0096 01 02 0000")  # checksum over HoA -> HA
BA_MH = h("3b 01 06 00 4f32 00 00 002a 0096 01 02 0000")  # checksum over HA -> HoA


def ipv6_header(plen: int, nh: int, hop: int, src: IPv6Address, dst: IPv6Address) -> bytes:
    return h("60000000") + plen.to_bytes(2, "big") + bytes([nh, hop]) + src.packed + dst.packed


# Destination Options: NH 135, Hdr Ext Len 2, PadN(2 zero octets) so the option is at 8n+6,
# Home Address option type 201 length 16.
DSTOPTS_HAO = h("87 02 01 02 0000 c9 10") + ADDR_HOA.packed
# Type 2 routing header: NH 135, Hdr Ext Len 2, type 2, Segments Left 1, Reserved, home address.
RH2 = h("87 02 02 01 00000000") + ADDR_HOA.packed

BU_PACKET = ipv6_header(40, 60, 64, ADDR_COA, ADDR_HA) + DSTOPTS_HAO + BU_MH
BA_PACKET = ipv6_header(40, 43, 64, ADDR_HA, ADDR_COA) + RH2 + BA_MH


def test_bu_with_home_address_option_is_built_byte_exact() -> None:
    assert build_mh_packet(ADDR_COA, ADDR_HA, BU, home_address=ADDR_HOA) == BU_PACKET


def test_ba_with_type2_routing_header_is_built_byte_exact() -> None:
    assert build_mh_packet(ADDR_HA, ADDR_COA, BA, rh2_address=ADDR_HOA) == BA_PACKET


def test_ha_decodes_bu_from_proto_60_socket() -> None:
    got = decode_from(60, BU_PACKET[40:], ADDR_COA, ADDR_HA)
    assert got.message == BU
    assert (got.src, got.dst, got.home_address, got.rh2_address) == (
        ADDR_COA,
        ADDR_HA,
        ADDR_HOA,
        None,
    )
    assert (got.upper_src, got.upper_dst) == (ADDR_HOA, ADDR_HA)
    assert got.mh == BU_MH
    assert got.mobile_node_addresses() == (ADDR_COA, ADDR_HOA)


def test_mn_decodes_ba_from_proto_43_socket() -> None:
    got = decode_from(43, BA_PACKET[40:], ADDR_HA, ADDR_COA)
    assert got.message == BA
    assert (got.home_address, got.rh2_address, got.upper_dst) == (None, ADDR_HOA, ADDR_HOA)
    assert got.mobile_node_addresses() == (ADDR_COA, ADDR_HOA)


def test_whole_packet_decoder_agrees_and_reports_hop_limit() -> None:
    got = decode_ipv6_packet(BU_PACKET)
    assert got.message == BU
    assert got.hop_limit == 64
    assert got.home_address == ADDR_HOA


def test_bare_mh_from_proto_135_socket() -> None:
    hoti = HomeTestInit(home_init_cookie=bytes(range(8)))
    pkt = build_mh_packet(ADDR_HOA, ADDR_CN, hoti)
    assert pkt[6] == 135
    got = decode_from(135, pkt[40:], ADDR_HOA, ADDR_CN)
    assert got.message == hoti
    assert got.home_address is None


def test_brr_tunnelled_to_the_hoa_is_decoded_from_the_inner_packet() -> None:
    # What the MN's proto-41 socket delivers: the inner IPv6 packet, HA -> HoA, carrying a BRR.
    inner = build_mh_packet(ADDR_HA, ADDR_HOA, BindingRefreshRequest())
    assert inner == ipv6_header(8, 135, 64, ADDR_HA, ADDR_HOA) + h("3b 00 00 00 56fd 0000")
    got = decode_ipv6_packet(inner)
    assert isinstance(got.message, BindingRefreshRequest)
    assert got.dst == ADDR_HOA


def test_checksum_with_the_care_of_address_is_refused() -> None:
    # The mistake RFC 6275 §6.1.1 warns about (and what scapy does when given its own PadN):
    # checksumming a BU that carries a Home Address option over the CoA.
    wrong = with_checksum(ADDR_COA, ADDR_HA, 135, BU_MH, 4)
    with pytest.raises(ChecksumError) as info:
        decode_from(60, DSTOPTS_HAO + wrong, ADDR_COA, ADDR_HA)
    assert info.value.offset == 24 + 4


def test_routing_header_already_processed_uses_ipv6_destination() -> None:
    # Segments Left 0: the routing header has been processed, the IPv6 destination is final.
    rh_done = h("87 02 02 00 00000000") + ADDR_COA.packed
    mh = with_checksum(ADDR_HA, ADDR_HOA, 135, BA_MH, 4)
    got = decode_from(43, rh_done + mh, ADDR_HA, ADDR_HOA)
    assert got.upper_dst == ADDR_HOA
    assert got.mobile_node_addresses() == (ADDR_COA, ADDR_HOA)


def test_mps_with_hao_and_mpa_with_rh2_round_trip() -> None:
    mps = MobilePrefixSolicitation(identifier=7)
    pkt = build_icmpv6_packet(ADDR_COA, ADDR_HA, mps, home_address=ADDR_HOA)
    icmp = pkt[64:]
    assert ref_checksum(ADDR_HOA, ADDR_HA, 58, icmp[:2] + b"\0\0" + icmp[4:]) == int.from_bytes(
        icmp[2:4], "big"
    )
    got = decode_from(60, pkt[40:], ADDR_COA, ADDR_HA)
    assert got.message == mps
    assert got.home_address == ADDR_HOA
    mpa = MobilePrefixAdvertisement(identifier=7, managed=False, other=False, prefixes=())
    pkt = build_icmpv6_packet(ADDR_HA, ADDR_COA, mpa, rh2_address=ADDR_HOA)
    got = decode_from(43, pkt[40:], ADDR_HA, ADDR_COA)
    assert got.message == mpa
    assert got.upper_dst == ADDR_HOA
    assert got.mh is None


def test_dad_neighbor_solicitation_packet() -> None:
    unspec = IPv6Address("::")
    snm = solicited_node_multicast(ADDR_HOA)
    ns = NeighborSolicitation(target_address=ADDR_HOA, source_link_layer_address=None)
    pkt = build_icmpv6_packet(unspec, snm, ns)
    assert pkt[:8] == h("60000000 0018 3a ff")  # 24-octet NS, next header 58, hop limit 255
    got = decode_ipv6_packet(pkt)
    assert got.message == ns
    assert got.hop_limit == 255
    assert decode_from(58, pkt[40:], unspec, snm).message == ns


def test_haad_request_from_proto_58_socket() -> None:
    req = HomeAgentAddressDiscoveryRequest(identifier=99)
    pkt = build_icmpv6_packet(ADDR_COA, ADDR_HA, req, hop_limit=64)
    assert decode_from(58, pkt[40:], ADDR_COA, ADDR_HA).message == req


def test_unknown_mh_type_keeps_the_addresses_for_a_binding_error() -> None:
    pkt = build_mh_packet(
        ADDR_COA,
        ADDR_HA,
        UnknownMobilityMessage(mh_type=99, message_data=b"\0\0"),
        home_address=ADDR_HOA,
    )
    got = decode_from(60, pkt[40:], ADDR_COA, ADDR_HA)
    assert got.message == UnknownMobilityMessage(mh_type=99, message_data=b"\0\0")
    assert got.home_address == ADDR_HOA


def test_unknown_skippable_destination_option_is_skipped() -> None:
    # option type 0x1e (action 00): skipped; then the Home Address option at 8n+6
    dstopts = h("87 02 1e 02 0000 c9 10") + ADDR_HOA.packed
    got = decode_from(60, dstopts + BU_MH, ADDR_COA, ADDR_HA)
    assert got.home_address == ADDR_HOA


@pytest.mark.parametrize(
    ("nh", "raw", "error", "field", "offset"),
    [
        # TCP on the proto-41 socket's inner packet is not signalling
        (6, b"\0" * 20, UnsupportedHeaderError, "Next Header", 0),
        # fragment header
        (60, h("2c 00 0100 0000 0000") + b"\0" * 8, UnsupportedHeaderError, "Next Header", 0),
        # unknown destination option whose type says "discard" (0x5e: action 01)
        (
            60,
            h("87 02 5e 02 0000 c9 10") + ADDR_HOA.packed + BU_MH,
            UnrecognizedOptionError,
            "Destination Options option type",
            2,
        ),
        # Home Address option of the wrong length
        (
            60,
            h("87 02 01 02 0000 c9 0e") + ADDR_HOA.packed[:14] + h("0100") + BU_MH,
            LengthError,
            "Home Address option length",
            7,
        ),
        # multicast home address
        (
            60,
            h("87 02 01 02 0000 c9 10") + IPv6Address("ff02::1").packed + BU_MH,
            FieldValueError,
            "Home Address",
            8,
        ),
        # destination options header running past the end
        (60, h("87 05 01 02 0000"), TruncatedError, "Destination Options Hdr Ext Len", 1),
        # type 2 routing header with Segments Left 2
        (
            43,
            h("87 02 02 02 00000000") + ADDR_HOA.packed + BA_MH,
            FieldValueError,
            "Segments Left",
            3,
        ),
        # type 2 routing header with the wrong length
        (
            43,
            h("87 04 02 01 00000000") + ADDR_HOA.packed + b"\0" * 16 + BA_MH,
            LengthError,
            "Hdr Ext Len",
            1,
        ),
        # routing type 0 with segments left: not ours
        (
            43,
            h("87 02 00 01 00000000") + ADDR_HOA.packed + BA_MH,
            UnsupportedHeaderError,
            "Routing Type",
            2,
        ),
        # two routing headers
        (
            43,
            h("2b 02 02 01 00000000") + ADDR_HOA.packed + RH2 + BA_MH,
            FieldValueError,
            "Next Header",
            0,
        ),
        # hop-by-hop after a destination options header
        (
            60,
            h("00 00 01 04 00000000") + h("87 00 01 04 00000000") + BU_MH,
            FieldValueError,
            "Next Header",
            0,
        ),
    ],
)
def test_chain_errors_name_field_and_offset(nh, raw, error, field, offset) -> None:
    with pytest.raises(error) as info:
        decode_from(nh, raw, ADDR_COA, ADDR_HA)
    assert (info.value.field, info.value.offset) == (field, offset)


@pytest.mark.parametrize(
    ("raw", "error", "field", "offset"),
    [
        (BU_PACKET[:39], TruncatedError, "IPv6 header", 0),
        (b"\x40" + BU_PACKET[1:], FieldValueError, "Version", 0),
        (BU_PACKET[:-1], TruncatedError, "Payload Length", 4),
    ],
)
def test_ipv6_header_errors(raw, error, field, offset) -> None:
    with pytest.raises(error) as info:
        decode_ipv6_packet(raw)
    assert (info.value.field, info.value.offset) == (field, offset)


def test_hop_by_hop_first_is_accepted() -> None:
    # Hop-by-hop with a skippable PadN only, then the MH
    pkt = ipv6_header(8 + 16, 0, 64, ADDR_HA, ADDR_HOA) + h("87 00 01 04 00000000") + BA_MH
    assert decode_ipv6_packet(pkt).message == BA


def test_encode_errors_are_encode_errors() -> None:
    with pytest.raises(EncodeError):
        build_mh_packet(
            ADDR_COA,
            ADDR_HA,
            BindingUpdate(
                sequence=70000,
                lifetime=1,
                ack=True,
                home_registration=True,
                link_local=False,
                key_management=False,
            ),
        )
    with pytest.raises(EncodeError):
        build_mh_packet(ADDR_HOA, ADDR_CN, HomeTestInit(home_init_cookie=b"short"))
    with pytest.raises(EncodeError):
        build_mh_packet(ADDR_HA, ADDR_HOA, UnknownMobilityMessage(mh_type=9, message_data=b"x"))
