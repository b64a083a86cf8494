"""Golden bytes for the ICMPv6 messages: HAAD (RFC 6275 §6.5/6.6), MPS/MPA (§6.7/6.8, Prefix
Information per RFC 4861 §4.6.2 with the R flag of RFC 6275 §7.2), NS/NA (RFC 4861 §4.3/4.4).

Checksums computed with `reference.ref_checksum` (RFC 4443 §2.3 pseudo-header, next header 58).
"""

from __future__ import annotations

from ipaddress import IPv6Address

import pytest

from sdnmip.mipv6.errors import (
    ChecksumError,
    DecodeError,
    FieldValueError,
    LengthError,
    TruncatedError,
)
from sdnmip.mipv6.icmpv6 import (
    AnyIcmpv6Message,
    HomeAgentAddressDiscoveryReply,
    HomeAgentAddressDiscoveryRequest,
    MobilePrefixAdvertisement,
    MobilePrefixSolicitation,
    NeighborAdvertisement,
    NeighborSolicitation,
    PrefixInformation,
    UnknownIcmpv6,
    decode_icmpv6,
    decode_icmpv6_body,
    encode_icmpv6,
    solicited_node_multicast,
)
from tests.unit.mipv6.reference import ADDR_COA, ADDR_HA, ADDR_HOA, h, with_checksum

HA2 = IPv6Address("2001:db8:100::2")
HAAD_ANYCAST = IPv6Address("2001:db8:100::fdff:ffff:ffff:fffe")  # RFC 2526 MIPv6 HA anycast
UNSPEC = IPv6Address("::")
ALL_NODES = IPv6Address("ff02::1")
SNM = IPv6Address("ff02::1:ff00:1000")
MAC = h("02 00 00 00 00 01")

GOLDEN: list[tuple[str, AnyIcmpv6Message, IPv6Address, IPv6Address, bytes]] = [
    (
        "HAAD request",
        HomeAgentAddressDiscoveryRequest(identifier=0x1234),
        ADDR_COA,
        HAAD_ANYCAST,
        # Type 144, Code 0, Checksum, Identifier, Reserved
        h("90 00 0217 1234 0000"),
    ),
    (
        "HAAD reply",
        HomeAgentAddressDiscoveryReply(identifier=0x1234, home_agent_addresses=(ADDR_HA, HA2)),
        ADDR_HA,
        ADDR_COA,
        h("91 00 a17f 1234 0000 20010db8010000000000000000000001 20010db8010000000000000000000002"),
    ),
    (
        "MPS",
        MobilePrefixSolicitation(identifier=0x4321),
        ADDR_HOA,  # sent with a Home Address option: the HoA is the pseudo-header source
        ADDR_HA,
        h("92 00 bd28 4321 0000"),
    ),
    (
        "MPA",
        MobilePrefixAdvertisement(
            identifier=0x4321,
            managed=False,
            other=True,
            prefixes=(
                PrefixInformation(
                    prefix=ADDR_HA,
                    prefix_length=64,
                    on_link=True,
                    autonomous=True,
                    router_address=True,
                    valid_lifetime=7200,
                    preferred_lifetime=3600,
                ),
            ),
        ),
        ADDR_HA,
        ADDR_HOA,  # sent with a type 2 routing header: the HoA is the final destination
        # Identifier, M=0 O=1 (0x4000); Prefix Information: type 3, len 4, /64, L|A|R (0xE0),
        # valid 7200, preferred 3600, Reserved2, prefix (R: the HA's full address)
        h(
            "93 00 df39 4321 4000"
            " 03 04 40 e0 00001c20 00000e10 00000000 20010db8010000000000000000000001"
        ),
    ),
    (
        "NS DAD",
        NeighborSolicitation(target_address=ADDR_HOA, source_link_layer_address=None),
        UNSPEC,
        SNM,
        # Type 135, Code 0, Checksum, Reserved(32), Target; no options from ::
        h("87 00 2bef 00000000 20010db8010000000000000000001000"),
    ),
    (
        "NS with SLLA",
        NeighborSolicitation(target_address=ADDR_HOA, source_link_layer_address=MAC),
        ADDR_HA,
        SNM,
        h("87 00 fa2a 00000000 20010db8010000000000000000001000  01 01 020000000001"),
    ),
    (
        "NA unsolicited",
        NeighborAdvertisement(
            router=False,
            solicited=False,
            override=True,
            target_address=ADDR_HOA,
            target_link_layer_address=MAC,
        ),
        ADDR_HA,
        ALL_NODES,
        # R=0 S=0 O=1 (0x20000000), Target, Target Link-Layer Address option
        h("88 00 e72b 20000000 20010db8010000000000000000001000  02 01 020000000001"),
    ),
    (
        "NA solicited router",
        NeighborAdvertisement(
            router=True,
            solicited=True,
            override=False,
            target_address=ADDR_HOA,
            target_link_layer_address=None,
        ),
        ADDR_HA,
        ADDR_COA,
        h("88 00 1b7f c0000000 20010db8010000000000000000001000"),
    ),
]
IDS = [g[0] for g in GOLDEN]


@pytest.mark.parametrize(("name", "msg", "src", "dst", "golden"), GOLDEN, ids=IDS)
def test_golden_checksums_verify_by_reference(name, msg, src, dst, golden) -> None:
    assert with_checksum(src, dst, 58, golden, 2) == golden


@pytest.mark.parametrize(("name", "msg", "src", "dst", "golden"), GOLDEN, ids=IDS)
def test_encode_gives_golden_bytes(name, msg, src, dst, golden) -> None:
    assert encode_icmpv6(msg, src, dst).hex(" ") == golden.hex(" ")


@pytest.mark.parametrize(("name", "msg", "src", "dst", "golden"), GOLDEN, ids=IDS)
def test_decode_gives_fields_back(name, msg, src, dst, golden) -> None:
    assert decode_icmpv6(golden, src, dst) == msg
    assert decode_icmpv6_body(golden) == msg


def test_solicited_node_multicast() -> None:
    assert solicited_node_multicast(ADDR_HOA) == SNM
    assert solicited_node_multicast(IPv6Address("2001:db8::abcd:ef12:3456")) == IPv6Address(
        "ff02::1:ff12:3456"
    )


def test_other_icmpv6_types_decode_to_unknown() -> None:
    echo = with_checksum(ADDR_COA, ADDR_HA, 58, h("80 00 0000 0001 0002 6869"), 2)
    assert decode_icmpv6(echo, ADDR_COA, ADDR_HA) == UnknownIcmpv6(
        icmp_type=128, code=0, message_body=h("0001 0002 6869")
    )


def test_unknown_nd_options_are_ignored() -> None:
    # NS with an unknown option type 99 (8 octets) before the SLLA option
    raw = with_checksum(
        ADDR_HA,
        SNM,
        58,
        h(
            "87 00 0000 00000000 20010db8010000000000000000001000"
            " 63 01 000000000000 01 01 020000000001"
        ),
        2,
    )
    msg = decode_icmpv6(raw, ADDR_HA, SNM)
    assert msg == NeighborSolicitation(target_address=ADDR_HOA, source_link_layer_address=MAC)


NS = GOLDEN[5][4]
MPA_HEAD = "93 00 0000 4321 0000 "
MCAST_T = "Target Address"
PI_LEN = "Prefix Information length"


@pytest.mark.parametrize(
    ("raw", "error", "field", "offset"),
    [
        (h("87 00 00"), TruncatedError, "ICMPv6 header", 0),
        (NS[:20], TruncatedError, "ICMPv6 message", 0),
        (b"\x87\x01" + NS[2:], FieldValueError, "ICMPv6 Code", 1),
        (NS[:24] + h("01 00 000000000000"), LengthError, "ND option length", 25),
        (NS[:24] + h("01 02 000000000000"), TruncatedError, "ND option length", 25),
        (NS[:24] + h("01"), TruncatedError, "ND option length", 24),
        (
            NS[:8] + h("ff02 0000 0000 0000 0000 0000 0000 0001"),
            FieldValueError,
            "Target Address",
            8,
        ),
        (h("91 00 0000 1234 0000 0011 2233"), LengthError, "Home Agent Addresses", 8),
        (
            h(MPA_HEAD + "03 02 40 e0 00001c20 00000e10 00000000"),
            LengthError,
            "Prefix Information length",
            9,
        ),
        (
            h(MPA_HEAD + "03 04 81 e0 00001c20 00000e10 00000000" + "20010db8" + "00" * 12),
            FieldValueError,
            "Prefix Length",
            10,
        ),
    ],
)
def test_malformed_raises_decode_error_naming_field_and_offset(raw, error, field, offset) -> None:
    with pytest.raises(error) as info:
        decode_icmpv6_body(raw)
    assert isinstance(info.value, DecodeError)
    assert (info.value.field, info.value.offset) == (field, offset)


def test_address_dependent_nd_checks() -> None:
    ns_with_slla_from_unspecified = with_checksum(UNSPEC, SNM, 58, NS, 2)
    with pytest.raises(FieldValueError) as info:
        decode_icmpv6(ns_with_slla_from_unspecified, UNSPEC, SNM)
    assert info.value.field == "Source Link-Layer Address option"
    solicited_na_to_multicast = with_checksum(ADDR_HA, ALL_NODES, 58, GOLDEN[7][4], 2)
    with pytest.raises(FieldValueError) as info:
        decode_icmpv6(solicited_na_to_multicast, ADDR_HA, ALL_NODES)
    assert info.value.field == "Solicited flag"


def test_checksum_is_verified() -> None:
    with pytest.raises(ChecksumError) as info:
        decode_icmpv6(GOLDEN[0][4], ADDR_HOA, HAAD_ANYCAST)
    assert (info.value.field, info.value.offset) == ("ICMPv6 Checksum", 2)
