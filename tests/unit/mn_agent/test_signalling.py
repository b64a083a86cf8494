"""The agent's BUs and MPSs on the wire, and the checks on what it receives."""

from __future__ import annotations

from ipaddress import IPv6Address, IPv6Network

from sdnmip.core.binding_messages import BaReceived, BeReceived, BrrReceived, SendBu
from sdnmip.core.hoa_messages import FromHa, PrefixesLearned, SendMps
from sdnmip.mipv6 import (
    AlternateCareofAddress,
    BindingAcknowledgement,
    BindingRefreshAdvice,
    BindingUpdate,
    MobileNodeIdentifier,
    MobilePrefixAdvertisement,
    MobilePrefixSolicitation,
    PrefixInformation,
    build_icmpv6_packet,
    build_mh_packet,
    decode_ipv6_packet,
    find_option,
    replay_protection,
    unix_time,
)
from sdnmip.mipv6.options import MobilityMessageReplayProtection
from sdnmip.mn_agent.signalling import Accepted, Ignored, build_bu, build_mps, parse_inbound
from tests.unit.mn_agent.fakes import CRED, HA, KEY, PRIMARY

COA = IPv6Address("2001:db8:1::aa")
NOW = 1_800_000_000.25


def test_bu_is_a_signed_home_registration_with_every_option():
    bu = SendBu(hoa=PRIMARY, coa=COA, sequence=7, lifetime=600.0, first_registration=True)
    d = decode_ipv6_packet(build_bu(bu, CRED, NOW))
    m = d.message
    assert isinstance(m, BindingUpdate)
    assert (d.src, d.dst, d.home_address) == (COA, HA, PRIMARY)
    assert (m.sequence, m.lifetime, m.ack, m.home_registration) == (7, 150, True, True)
    assert (m.link_local, m.key_management) == (False, False)
    acoa = find_option(m.options, AlternateCareofAddress)
    assert acoa is not None and acoa.alternate_careof_address == COA
    mnid = find_option(m.options, MobileNodeIdentifier)
    assert mnid is not None and mnid.nai == CRED.nai
    ts = find_option(m.options, MobilityMessageReplayProtection)
    assert ts is not None and abs(unix_time(ts.timestamp) - NOW) < 1e-6
    assert d.verify_mn_ha(KEY.key)
    assert not d.verify_mn_ha(bytes(16))


def test_mps_carries_the_home_address_option():
    pkt = build_mps(SendMps("wlan", COA, PRIMARY), CRED, 0x4242)
    d = decode_ipv6_packet(pkt)
    assert isinstance(d.message, MobilePrefixSolicitation) and d.message.identifier == 0x4242
    assert (d.src, d.dst, d.home_address) == (COA, HA, PRIMARY)


def _ba(status: int, options: tuple[object, ...] = (), rh2: bool = True) -> bytes:
    msg = BindingAcknowledgement(
        status=status,
        key_management=False,
        sequence=9,
        lifetime=100,
        options=(replay_protection(NOW + 500), *options),  # type: ignore[arg-type]
    )
    pkt = build_mh_packet(HA, COA, msg, rh2_address=PRIMARY if rh2 else None, auth=KEY)
    return pkt[40:]


def test_a_signed_ba_becomes_a_table_event_with_the_refresh_advice():
    r = parse_inbound(43, _ba(0, (BindingRefreshAdvice(25),)), HA, COA, CRED)
    assert r == Accepted(FromHa(PRIMARY, BaReceived(0, 9, 400.0, 100.0)), None)


def test_a_145_ba_gives_the_ha_clock_for_resynchronisation():
    r = parse_inbound(43, _ba(145), HA, COA, CRED)
    assert isinstance(r, Accepted) and r.ha_time is not None
    assert abs(r.ha_time - (NOW + 500)) < 1e-6
    assert parse_inbound(43, _ba(0), HA, COA, CRED).ha_time is None  # type: ignore[union-attr]


def test_bas_without_routing_header_from_elsewhere_or_damaged_are_ignored():
    assert isinstance(parse_inbound(135, _ba(0, rh2=False), HA, COA, CRED), Ignored)
    other = IPv6Address("2001:db8:100::2")
    assert "not the home agent" in parse_inbound(43, _ba(0), other, COA, CRED).reason  # type: ignore[union-attr]
    broken = bytearray(_ba(0))
    broken[-1] ^= 1
    r = parse_inbound(43, bytes(broken), HA, COA, CRED)
    assert isinstance(r, Ignored) and "undecodable" in r.reason  # the checksum catches it first


def test_be_and_brr():
    from sdnmip.mipv6.mh import BindingError, BindingRefreshRequest

    be = build_mh_packet(HA, COA, BindingError(status=1, home_address=PRIMARY))[40:]
    assert parse_inbound(135, be, HA, COA, CRED) == Accepted(FromHa(PRIMARY, BeReceived(1)))
    inner = build_mh_packet(HA, PRIMARY, BindingRefreshRequest())
    assert parse_inbound(41, inner, HA, COA, CRED) == Accepted(FromHa(PRIMARY, BrrReceived()))


def test_an_mpa_is_taken_only_as_the_answer_to_our_solicitation():
    mpa = MobilePrefixAdvertisement(
        identifier=0x4242,
        managed=False,
        other=False,
        prefixes=(
            PrefixInformation(
                prefix=IPv6Address("2001:db8:100::"),
                prefix_length=64,
                on_link=True,
                autonomous=True,
                router_address=False,
                valid_lifetime=3600,
                preferred_lifetime=1800,
            ),
        ),
    )
    data = build_icmpv6_packet(HA, COA, mpa, rh2_address=PRIMARY)[40:]
    r = parse_inbound(43, data, HA, COA, CRED, mps_identifier=0x4242)
    assert r == Accepted(PrefixesLearned((IPv6Network("2001:db8:100::/64"),)))
    assert isinstance(parse_inbound(43, data, HA, COA, CRED, mps_identifier=1), Ignored)
    assert isinstance(parse_inbound(43, data, HA, COA, CRED), Ignored)
