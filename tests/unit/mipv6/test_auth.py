"""RFC 4285 MN-HA authentication and RFC 4283 NAI in whole BU/BA packets, checked against the
independent `reference.ref_authenticator` (Mobility Data = CoA | HoA | MH up to and including
the SPI, checksum zeroed; First(96, HMAC_SHA1))."""

from __future__ import annotations

import pytest

from sdnmip.mipv6.auth import (
    NTP_UNIX_OFFSET,
    MnHaKey,
    ntp_timestamp,
    replay_protection,
    timestamp_close_enough,
    unix_time,
    verify_mobility_header,
)
from sdnmip.mipv6.errors import EncodeError
from sdnmip.mipv6.mh import BindingAcknowledgement, BindingUpdate, set_mh_checksum
from sdnmip.mipv6.options import (
    MobileNodeIdentifier,
    MobilityMessageAuthentication,
    MobilityMessageReplayProtection,
    NonceIndices,
    find_option,
)
from sdnmip.mipv6.packet import build_mh_packet, decode_from, decode_ipv6_packet
from tests.unit.mipv6.reference import (
    ADDR_COA,
    ADDR_HA,
    ADDR_HOA,
    h,
    ref_authenticator,
    ref_checksum,
)

KEY = MnHaKey(spi=0x1000, key=bytes(range(16)))
NOW = 1_700_000_000.5

BU = BindingUpdate(
    sequence=42,
    lifetime=150,
    ack=True,
    home_registration=True,
    link_local=False,
    key_management=False,
    options=(MobileNodeIdentifier.from_nai("mn1@example.org"), replay_protection(NOW)),
)
BA = BindingAcknowledgement(
    status=0, key_management=False, sequence=42, lifetime=150, options=(replay_protection(NOW),)
)


def _bu_packet() -> bytes:
    return build_mh_packet(ADDR_COA, ADDR_HA, BU, home_address=ADDR_HOA, auth=KEY)


def test_bu_authenticator_matches_reference_and_layout() -> None:
    pkt = _bu_packet()
    mh = pkt[64:]
    # The option is last, at 8n+5 (4n+1: the SPI is 32-bit aligned), and ends the MH exactly.
    opt_at = len(mh) - 19
    assert opt_at % 8 == 5
    assert mh[opt_at : opt_at + 7] == h("09 11 01 00001000")  # type 9, len 17, MN-HA, SPI
    assert mh[-12:] == ref_authenticator(KEY.key, ADDR_COA, ADDR_HOA, mh)
    # the checksum is computed after signing, over the signed bytes, with the HoA as source
    assert ref_checksum(ADDR_HOA, ADDR_HA, 135, mh[:4] + b"\0\0" + mh[6:]) == int.from_bytes(
        mh[4:6], "big"
    )


def test_ha_verifies_bu_and_reads_the_nai() -> None:
    got = decode_from(60, _bu_packet()[40:], ADDR_COA, ADDR_HA)
    assert got.verify_mn_ha(KEY.key)
    assert not got.verify_mn_ha(bytes(16))
    assert isinstance(got.message, BindingUpdate)
    mnid = find_option(got.message.options, MobileNodeIdentifier)
    assert mnid is not None
    assert mnid.nai == "mn1@example.org"
    auth = find_option(got.message.options, MobilityMessageAuthentication)
    assert auth is not None
    assert auth.mobility_spi == KEY.spi
    assert got.message.options[-1] == auth
    assert find_option(got.message.options, NonceIndices) is None


def test_tampered_bu_fails_verification() -> None:
    pkt = bytearray(_bu_packet())
    pkt[64 + 6] ^= 0x01  # sequence number
    mh = set_mh_checksum(bytearray(pkt[64:]), ADDR_HOA, ADDR_HA)  # attacker fixes the checksum
    got = decode_from(60, bytes(pkt[40:64] + mh), ADDR_COA, ADDR_HA)
    assert not got.verify_mn_ha(KEY.key)


def test_authenticator_binds_the_addresses() -> None:
    mh = _bu_packet()[64:]
    assert verify_mobility_header(mh, KEY.key, ADDR_COA, ADDR_HOA)
    assert not verify_mobility_header(mh, KEY.key, ADDR_HA, ADDR_HOA)
    assert not verify_mobility_header(mh, KEY.key, ADDR_HOA, ADDR_COA)


def test_ba_to_mn_is_signed_over_careof_then_home() -> None:
    pkt = build_mh_packet(ADDR_HA, ADDR_COA, BA, rh2_address=ADDR_HOA, auth=KEY)
    mh = pkt[64:]
    assert mh[-12:] == ref_authenticator(KEY.key, ADDR_COA, ADDR_HOA, mh)
    got = decode_ipv6_packet(pkt)
    assert got.verify_mn_ha(KEY.key)


def test_missing_or_misplaced_option_does_not_verify() -> None:
    plain = build_mh_packet(ADDR_COA, ADDR_HA, BU, home_address=ADDR_HOA)
    assert not verify_mobility_header(plain[64:], KEY.key, ADDR_COA, ADDR_HOA)
    # an option after the authentication option: not last, refused (RFC 4285 §5.1)
    signed = _bu_packet()[64:]
    trailing = bytearray(signed) + h("02 02 0000 01 02 0000")
    trailing[1] += 1
    assert not verify_mobility_header(bytes(trailing), KEY.key, ADDR_COA, ADDR_HOA)
    # Header Len is covered: padding appended after signing breaks the authenticator ...
    padded = bytearray(signed) + h("01 06 000000000000")
    padded[1] += 1
    assert not verify_mobility_header(bytes(padded), KEY.key, ADDR_COA, ADDR_HOA)
    # ... but a sender that pads after the option and signs the final Header Len is accepted
    # (padding carries nothing).
    padded[-20:-8] = ref_authenticator(KEY.key, ADDR_COA, ADDR_HOA, bytes(padded[:-8]))
    assert verify_mobility_header(bytes(padded), KEY.key, ADDR_COA, ADDR_HOA)
    # garbage never raises
    assert not verify_mobility_header(b"\x3b\xff\x05", KEY.key, ADDR_COA, ADDR_HOA)


def test_message_with_its_own_auth_option_and_a_key_is_refused() -> None:
    bu = BindingUpdate(
        sequence=1,
        lifetime=1,
        ack=True,
        home_registration=True,
        link_local=False,
        key_management=False,
        options=(MobilityMessageAuthentication(1, 5, bytes(12)),),
    )
    with pytest.raises(EncodeError):
        build_mh_packet(ADDR_COA, ADDR_HA, bu, home_address=ADDR_HOA, auth=KEY)


def test_key_is_not_printed() -> None:
    assert "key=" not in repr(KEY)


def test_ntp_timestamp_round_trip_and_window() -> None:
    ts = ntp_timestamp(NOW)
    assert ts >> 32 == int(NOW) + NTP_UNIX_OFFSET
    assert ts & 0xFFFFFFFF == 0x80000000  # .5 s
    assert unix_time(ts) == NOW
    assert replay_protection(NOW) == MobilityMessageReplayProtection(timestamp=ts)
    assert timestamp_close_enough(ts, NOW + 6.9)
    assert not timestamp_close_enough(ts, NOW - 7.1)
