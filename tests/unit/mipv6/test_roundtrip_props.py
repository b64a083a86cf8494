"""Round-trip properties: any message built from in-range fields decodes back to itself, as a
bare header and inside a whole packet (with HAO / RH2 / MN-HA authentication)."""

from __future__ import annotations

from ipaddress import IPv6Address

from hypothesis import given, settings
from hypothesis import strategies as st

from sdnmip.mipv6.auth import MnHaKey
from sdnmip.mipv6.icmpv6 import (
    MobilePrefixAdvertisement,
    NeighborAdvertisement,
    PrefixInformation,
    decode_icmpv6,
    encode_icmpv6,
)
from sdnmip.mipv6.mh import (
    BindingAcknowledgement,
    BindingError,
    BindingUpdate,
    decode_mobility_header,
    encode_mobility_header,
)
from sdnmip.mipv6.options import (
    AlternateCareofAddress,
    BindingAuthorizationData,
    BindingRefreshAdvice,
    MobileNodeIdentifier,
    MobilityMessageReplayProtection,
    NonceIndices,
)
from sdnmip.mipv6.packet import build_mh_packet, decode_ipv6_packet

u16 = st.integers(0, 0xFFFF)
u32 = st.integers(0, 0xFFFFFFFF)
unicast = st.integers(0x2000 << 112, (0x3FFF << 112) - 1).map(IPv6Address)

options = st.lists(
    st.one_of(
        st.builds(BindingRefreshAdvice, refresh_interval=u16),
        st.builds(AlternateCareofAddress, alternate_careof_address=unicast),
        st.builds(NonceIndices, home_nonce_index=u16, careof_nonce_index=u16),
        st.builds(BindingAuthorizationData, authenticator=st.binary(min_size=12, max_size=12)),
        st.builds(
            MobileNodeIdentifier.from_nai,
            st.text(min_size=1, max_size=60).filter(lambda s: len(s.encode()) <= 200),
        ),
        st.builds(MobilityMessageReplayProtection, timestamp=st.integers(0, 2**64 - 1)),
    ),
    max_size=5,
).map(tuple)

bus = st.builds(
    BindingUpdate,
    sequence=u16,
    lifetime=u16,
    ack=st.booleans(),
    home_registration=st.booleans(),
    link_local=st.booleans(),
    key_management=st.booleans(),
    options=options,
)
bas = st.builds(
    BindingAcknowledgement,
    status=st.integers(0, 255),
    key_management=st.booleans(),
    sequence=u16,
    lifetime=u16,
    options=options,
)
bes = st.builds(BindingError, status=st.integers(0, 255), home_address=unicast, options=options)


@settings(max_examples=200, deadline=None)
@given(msg=st.one_of(bus, bas, bes), src=unicast, dst=unicast)
def test_mobility_header_round_trip(msg, src, dst) -> None:
    raw = encode_mobility_header(msg, src, dst)
    assert len(raw) % 8 == 0
    assert decode_mobility_header(raw, src, dst) == msg


@settings(max_examples=100, deadline=None)
@given(
    bu=bus,
    addresses=st.tuples(unicast, unicast, unicast),
    spi=u32,
    key=st.binary(min_size=16, max_size=16),
)
def test_authenticated_bu_packet_round_trip(bu, addresses, spi, key) -> None:
    coa, ha, hoa = addresses
    pkt = build_mh_packet(coa, ha, bu, home_address=hoa, auth=MnHaKey(spi, key))
    got = decode_ipv6_packet(pkt)
    assert got.home_address == hoa
    assert got.verify_mn_ha(key)
    assert isinstance(got.message, BindingUpdate)
    assert got.message.options[:-1] == bu.options


prefixes = st.builds(
    PrefixInformation,
    prefix=unicast,
    prefix_length=st.integers(0, 128),
    on_link=st.booleans(),
    autonomous=st.booleans(),
    router_address=st.booleans(),
    valid_lifetime=u32,
    preferred_lifetime=u32,
)


@settings(max_examples=100, deadline=None)
@given(
    msg=st.one_of(
        st.builds(
            MobilePrefixAdvertisement,
            identifier=u16,
            managed=st.booleans(),
            other=st.booleans(),
            prefixes=st.lists(prefixes, max_size=4).map(tuple),
        ),
        st.builds(
            NeighborAdvertisement,
            router=st.booleans(),
            solicited=st.just(False),
            override=st.booleans(),
            target_address=unicast,
            target_link_layer_address=st.one_of(st.none(), st.binary(min_size=6, max_size=6)),
        ),
    ),
    src=unicast,
    dst=unicast,
)
def test_icmpv6_round_trip(msg, src, dst) -> None:
    assert decode_icmpv6(encode_icmpv6(msg, src, dst), src, dst) == msg
