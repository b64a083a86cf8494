"""Golden bytes for every Mobility Header message and mobility option.

Each expected byte string is laid out by hand from the RFC figures (RFC 6275 §6.1/§6.2, RFC 4283
§3, RFC 4285 §6), field by field; the checksums were computed with the independent reference in
`reference.py` and are re-checked by `test_golden_checksums_verify_by_reference`.
"""

from __future__ import annotations

import pytest

from sdnmip.mipv6.errors import (
    ChecksumError,
    DecodeError,
    FieldValueError,
    LengthError,
    TruncatedError,
)
from sdnmip.mipv6.mh import (
    AnyMobilityMessage,
    BindingAcknowledgement,
    BindingError,
    BindingRefreshRequest,
    BindingUpdate,
    CareofTest,
    CareofTestInit,
    HomeTest,
    HomeTestInit,
    UnknownMobilityMessage,
    decode_mh_body,
    decode_mobility_header,
    encode_mobility_header,
    lifetime_units,
)
from sdnmip.mipv6.options import (
    AlternateCareofAddress,
    BindingAuthorizationData,
    BindingRefreshAdvice,
    MobileNodeIdentifier,
    MobilityMessageReplayProtection,
    NonceIndices,
    Pad1,
    PadN,
    decode_options,
)
from sdnmip.mipv6.status import BindingAckStatus, BindingErrorStatus
from tests.unit.mipv6.reference import (
    ADDR_CN,
    ADDR_COA,
    ADDR_HA,
    ADDR_HOA,
    h,
    with_checksum,
)

COOKIE_H = bytes(range(1, 9))
COOKIE_C = bytes(range(0x11, 0x19))
TOKEN_H = bytes(range(0x21, 0x29))
TOKEN_C = bytes(range(0x31, 0x39))
AUTHENTICATOR = bytes(range(0x41, 0x4D))
NAI = "mn1@example.org"

# (message, pseudo-header source, pseudo-header destination, golden MH bytes)
GOLDEN: list[tuple[str, AnyMobilityMessage, object, object, bytes]] = [
    (
        "BRR",
        BindingRefreshRequest(),
        ADDR_HA,
        ADDR_HOA,
        # Payload Proto 59, Header Len 0, MH Type 0, Reserved, Checksum, Reserved(16)
        h("3b 00 00 00 56fd 0000"),
    ),
    (
        "BRR+BRA",
        BindingRefreshRequest(options=(BindingRefreshAdvice(refresh_interval=150),)),
        ADDR_HA,
        ADDR_HOA,
        # BRA (2n) at 8: type 2, len 2, interval 150; PadN(2 zero octets) to 16
        h("3b 01 00 00 535a 0000  02 02 0096  01 02 0000"),
    ),
    (
        "HoTI",
        HomeTestInit(home_init_cookie=COOKIE_H),
        ADDR_HOA,
        ADDR_CN,
        # Reserved(16), Home Init Cookie(64)
        h("3b 01 01 00 4610 0000 0102030405060708"),
    ),
    (
        "CoTI",
        CareofTestInit(careof_init_cookie=COOKIE_C),
        ADDR_COA,
        ADDR_CN,
        h("3b 01 02 00 14cf 0000 1112131415161718"),
    ),
    (
        "HoT",
        HomeTest(home_nonce_index=0xABCD, home_init_cookie=COOKIE_H, home_keygen_token=TOKEN_H),
        ADDR_CN,
        ADDR_HOA,
        # Home Nonce Index(16), Home Init Cookie(64), Home Keygen Token(64)
        h("3b 02 03 00 07a5 abcd 0102030405060708 2122232425262728"),
    ),
    (
        "CoT",
        CareofTest(
            careof_nonce_index=0x1234, careof_init_cookie=COOKIE_C, careof_keygen_token=TOKEN_C
        ),
        ADDR_CN,
        ADDR_COA,
        h("3b 02 04 00 2fbd 1234 1112131415161718 3132333435363738"),
    ),
    (
        "BU",
        BindingUpdate(
            sequence=42,
            lifetime=150,
            ack=True,
            home_registration=True,
            link_local=False,
            key_management=False,
        ),
        ADDR_HOA,
        ADDR_HA,
        # Sequence 42, A|H (0xC000), Lifetime 150 (600 s); PadN(2) pads 12 -> 16
        h("3b 01 05 00 9031 002a c000 0096 01 02 0000"),
    ),
    (
        "BU all flags",
        BindingUpdate(
            sequence=0xFFFF,
            lifetime=0,
            ack=True,
            home_registration=True,
            link_local=True,
            key_management=True,
        ),
        ADDR_HOA,
        ADDR_HA,
        h("3b 01 05 00 60f1 ffff f000 0000 01 02 0000"),
    ),
    (
        "BU+MNID+replay",
        BindingUpdate(
            sequence=42,
            lifetime=150,
            ack=True,
            home_registration=True,
            link_local=False,
            key_management=False,
            options=(
                MobileNodeIdentifier.from_nai(NAI),
                MobilityMessageReplayProtection(timestamp=0xE8FE6F80_80000000),
            ),
        ),
        ADDR_HOA,
        ADDR_HA,
        # MN-ID (no alignment) at 12: type 8, len 16, subtype 1 (NAI), 15 octets -> ends at 30
        # replay protection (8n+2): PadN(2) 30 -> 34, type 10, len 8, timestamp -> 44
        # PadN(2) 44 -> 48
        h(
            "3b 05 05 00 0162 002a c000 0096"
            " 08 10 01 6d6e31406578616d706c652e6f7267"
            " 01 02 0000  0a 08 e8fe6f80 80000000  01 02 0000"
        ),
    ),
    (
        "BU+ACoA",
        BindingUpdate(
            sequence=1,
            lifetime=150,
            ack=True,
            home_registration=True,
            link_local=False,
            key_management=False,
            options=(AlternateCareofAddress(alternate_careof_address=ADDR_COA),),
        ),
        ADDR_HOA,
        ADDR_HA,
        # ACoA (8n+6): PadN(0) 12 -> 14, type 3, len 16, address -> 32
        h("3b 03 05 00 5e80 0001 c000 0096  01 00  03 10 20010db8000100000000000000000100"),
    ),
    (
        "BU to CN (NI+BAD)",
        BindingUpdate(
            sequence=7,
            lifetime=100,
            ack=False,
            home_registration=False,
            link_local=False,
            key_management=False,
            options=(
                NonceIndices(home_nonce_index=0x0102, careof_nonce_index=0x0304),
                BindingAuthorizationData(authenticator=AUTHENTICATOR),
            ),
        ),
        ADDR_HOA,
        ADDR_CN,
        # Nonce Indices (2n) at 12 -> 18; Binding Authorization Data (8n+2) at 18 -> 32
        h("3b 03 05 00 9ee5 0007 0000 0064  04 04 0102 0304 05 0c 4142434445464748494a4b4c"),
    ),
    (
        "BA",
        BindingAcknowledgement(status=0, key_management=False, sequence=42, lifetime=150),
        ADDR_HA,
        ADDR_HOA,
        # Status, K|Reserved, Sequence, Lifetime; PadN(2)
        h("3b 01 06 00 4f32 00 00 002a 0096 01 02 0000"),
    ),
    (
        "BA refused K",
        BindingAcknowledgement(
            status=BindingAckStatus.MIPV6_AUTH_FAIL, key_management=True, sequence=9, lifetime=0
        ),
        ADDR_HA,
        ADDR_HOA,
        h("3b 01 06 00 bd68 92 80 0009 0000 01 02 0000"),
    ),
    (
        "BA+BRA",
        BindingAcknowledgement(
            status=0,
            key_management=False,
            sequence=42,
            lifetime=150,
            options=(BindingRefreshAdvice(refresh_interval=100),),
        ),
        ADDR_HA,
        ADDR_HOA,
        h("3b 01 06 00 4dce 00 00 002a 0096  02 02 0064"),
    ),
    (
        "BE",
        BindingError(status=BindingErrorStatus.UNRECOGNIZED_MH_TYPE, home_address=ADDR_HOA),
        ADDR_CN,
        ADDR_HOA,
        # Status 2, Reserved, Home Address
        h("3b 02 07 00 0f62 02 00 20010db8010000000000000000001000"),
    ),
]

IDS = [g[0] for g in GOLDEN]


@pytest.mark.parametrize(("name", "msg", "src", "dst", "golden"), GOLDEN, ids=IDS)
def test_golden_checksums_verify_by_reference(name, msg, src, dst, golden) -> None:
    assert with_checksum(src, dst, 135, golden, 4) == golden


@pytest.mark.parametrize(("name", "msg", "src", "dst", "golden"), GOLDEN, ids=IDS)
def test_encode_gives_golden_bytes(name, msg, src, dst, golden) -> None:
    assert encode_mobility_header(msg, src, dst).hex(" ") == golden.hex(" ")


@pytest.mark.parametrize(("name", "msg", "src", "dst", "golden"), GOLDEN, ids=IDS)
def test_decode_gives_fields_back(name, msg, src, dst, golden) -> None:
    assert decode_mobility_header(golden, src, dst) == msg
    assert decode_mh_body(golden) == msg


def test_lifetime_units_and_seconds() -> None:
    assert lifetime_units(600) == 150
    assert lifetime_units(601) == 150  # rounded down: never ask for more than wanted
    assert lifetime_units(0) == 0
    assert lifetime_units(-3) == 0
    assert lifetime_units(10**9) == 0xFFFF
    bu = GOLDEN[6][1]
    assert isinstance(bu, BindingUpdate)
    assert bu.lifetime_seconds == 600
    assert BindingRefreshAdvice(refresh_interval=150).refresh_interval_seconds == 600


def test_ba_accepted_property_follows_status() -> None:
    ok = BindingAcknowledgement(status=1, key_management=False, sequence=1, lifetime=1)
    bad = BindingAcknowledgement(status=128, key_management=False, sequence=1, lifetime=1)
    assert ok.accepted
    assert not bad.accepted


def test_nai_text_round_trip() -> None:
    mnid = MobileNodeIdentifier.from_nai("mobile@例え.jp")
    assert mnid.nai == "mobile@例え.jp"
    assert MobileNodeIdentifier(subtype=2, identifier=b"x").nai is None


def test_explicit_padding_is_emitted_and_dropped_on_decode() -> None:
    msg = BindingRefreshRequest(options=(Pad1(), PadN(option_length=2)))
    raw = encode_mobility_header(msg, ADDR_HA, ADDR_HOA)
    # Pad1 at 8, PadN(2) 9..12, then PadN(1) to reach 16
    assert raw[6:] == h("0000 00 01 02 0000 01 01 00")
    assert decode_mobility_header(raw, ADDR_HA, ADDR_HOA) == BindingRefreshRequest()
    assert decode_options(raw, 8, 16, keep_padding=True) == (
        Pad1(),
        PadN(option_length=2),
        PadN(option_length=1),
    )


def test_unknown_option_is_skipped_known_ones_kept() -> None:
    # RFC 6275 §6.2.1: unknown option type 200 (len 2) is skipped; the BRA after it is kept.
    golden = with_checksum(
        ADDR_HA, ADDR_HOA, 135, h("3b 01 00 00 0000 0000 c8 02 aaaa 02 02 0096"), 4
    )
    assert decode_mobility_header(golden, ADDR_HA, ADDR_HOA) == BindingRefreshRequest(
        options=(BindingRefreshAdvice(refresh_interval=150),)
    )


def test_unknown_mh_type_is_reported_not_raised() -> None:
    golden = with_checksum(ADDR_HOA, ADDR_HA, 135, h("3b 00 2a 00 0000 beef"), 4)
    msg = decode_mobility_header(golden, ADDR_HOA, ADDR_HA)
    assert msg == UnknownMobilityMessage(mh_type=42, message_data=h("beef"))
    assert encode_mobility_header(msg, ADDR_HOA, ADDR_HA) == golden


BU_GOLDEN = GOLDEN[6][4]
BU_HEAD = "3b 01 05 00 0000 002a c000 0096 "
OPT_LEN = "mobility option length"
MMA_LEN = "mobility message authentication option length"


@pytest.mark.parametrize(
    ("raw", "error", "field", "offset"),
    [
        (b"\x3b\x01\x05", TruncatedError, "Mobility Header", 0),
        (BU_GOLDEN[:12], TruncatedError, "Header Len", 1),
        (BU_GOLDEN + b"\x00" * 8, LengthError, "Header Len", 1),
        (b"\x06" + BU_GOLDEN[1:], FieldValueError, "Payload Proto", 0),
        # Header Len 0: 8 octets cannot hold a BU's 12 octets of fixed fields (RFC 6275 §9.2)
        (h("3b 00 05 00 0000 002a"), LengthError, "Header Len", 1),
        # option claims 0x20 octets in a 4-octet area
        (
            h(BU_HEAD + "01 20 0000"),
            TruncatedError,
            "mobility option length",
            13,
        ),
        # option type/length split by the end of the header: type byte at 15 needs a length
        (
            h(BU_HEAD + "00 00 00 03"),
            TruncatedError,
            "mobility option length",
            16,
        ),
        # Alternate CoA with length 2
        (
            h(BU_HEAD + "03 02 0000"),
            LengthError,
            "alternate care-of address option length",
            13,
        ),
        # NAI that is not UTF-8
        (
            h(BU_HEAD + "08 02 01 ff"),
            FieldValueError,
            "mobile node identifier NAI",
            15,
        ),
        (
            h(BU_HEAD + "0a 02 0000"),
            LengthError,
            "replay protection option length",
            13,
        ),
        (
            h(BU_HEAD + "09 02 0000"),
            LengthError,
            "mobility message authentication option length",
            13,
        ),
    ],
)
def test_malformed_raises_decode_error_naming_field_and_offset(raw, error, field, offset) -> None:
    with pytest.raises(error) as info:
        decode_mh_body(raw)
    assert isinstance(info.value, DecodeError)
    assert info.value.field == field
    assert info.value.offset == offset


def test_bad_checksum_and_wrong_pseudo_header_are_refused() -> None:
    corrupted = BU_GOLDEN[:4] + bytes([BU_GOLDEN[4] ^ 1]) + BU_GOLDEN[5:]
    with pytest.raises(ChecksumError) as info:
        decode_mobility_header(corrupted, ADDR_HOA, ADDR_HA)
    assert (info.value.field, info.value.offset) == ("Checksum", 4)
    # The checksum of a BU carrying a Home Address option covers the HoA, not the CoA.
    with pytest.raises(ChecksumError):
        decode_mobility_header(BU_GOLDEN, ADDR_COA, ADDR_HA)


def test_offsets_are_relative_to_the_callers_buffer() -> None:
    buf = b"\xff" * 10 + b"\x06" + BU_GOLDEN[1:]
    with pytest.raises(FieldValueError) as info:
        decode_mh_body(buf, 10)
    assert info.value.offset == 10
