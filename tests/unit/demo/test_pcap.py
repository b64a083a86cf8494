"""The demo's capture reader: pcap records from a growing file, and what each frame is."""

from __future__ import annotations

from ipaddress import IPv6Address

import pytest

from sdnmip.demo.capture import SNAP_LEN
from sdnmip.demo.pcap import Data, PcapError, PcapStream, Signal, classify
from sdnmip.mipv6.icmpv6 import MobilePrefixAdvertisement, MobilePrefixSolicitation
from sdnmip.mipv6.mh import (
    BindingAcknowledgement,
    BindingError,
    BindingRefreshRequest,
    BindingUpdate,
)
from sdnmip.mipv6.packet import build_icmpv6_packet, build_mh_packet

from .frames import eth, iperf3_udp_payload, ipv6, pcap, tcp, tunnel, udp

COA, HA = "2001:db8:1::2", "2001:db8:100::1"
HOA, CN = "2001:db8:100::2001", "2001:db8:c1::10"


def bu(seq: int = 7) -> bytes:
    msg = BindingUpdate(
        sequence=seq,
        lifetime=15,
        ack=True,
        home_registration=True,
        link_local=False,
        key_management=False,
    )
    return eth(
        build_mh_packet(IPv6Address(COA), IPv6Address(HA), msg, home_address=IPv6Address(HOA))
    )


def ba(status: int = 0, seq: int = 7) -> bytes:
    msg = BindingAcknowledgement(status=status, key_management=False, sequence=seq, lifetime=15)
    return eth(
        build_mh_packet(IPv6Address(HA), IPv6Address(COA), msg, rh2_address=IPv6Address(HOA))
    )


def test_a_bu_is_read_with_its_home_address_and_sequence_even_cut_to_the_snap_length():
    for frame in (bu(7), bu(7)[:SNAP_LEN]):
        assert classify(frame) == Signal("BU", COA, HA, HOA, seq=7)


def test_a_ba_is_read_with_status_sequence_and_the_home_address_of_its_routing_header():
    assert classify(ba(0, 9)) == Signal("BA", HA, COA, HOA, seq=9, status=0)
    assert classify(ba(135, 9)[:SNAP_LEN]) == Signal("BA", HA, COA, HOA, seq=9, status=135)


def test_a_tunnelled_brr_names_the_home_address_it_was_sent_to():
    inner = build_mh_packet(IPv6Address(HA), IPv6Address(HOA), BindingRefreshRequest())
    got = classify(eth(tunnel(HA, COA, inner)))
    assert got == Signal("BRR", HA, HOA, HOA, tunnelled=True)


def test_a_binding_error_names_the_home_address_of_its_body():
    msg = BindingError(status=1, home_address=IPv6Address(HOA))
    got = classify(eth(build_mh_packet(IPv6Address(HA), IPv6Address(COA), msg)))
    assert got == Signal("BE", HA, COA, HOA, status=1)


def test_mobile_prefix_solicitation_and_advertisement():
    mps = build_icmpv6_packet(
        IPv6Address(COA),
        IPv6Address(HA),
        MobilePrefixSolicitation(identifier=5),
        home_address=IPv6Address(HOA),
    )
    mpa = build_icmpv6_packet(
        IPv6Address(HA),
        IPv6Address(COA),
        MobilePrefixAdvertisement(identifier=5, managed=False, other=False, prefixes=()),
        rh2_address=IPv6Address(HOA),
    )
    assert classify(eth(mps)) == Signal("MPS", COA, HA, HOA)
    assert classify(eth(mpa)) == Signal("MPA", HA, COA, HOA)


def test_tunnelled_data_gives_the_inner_five_tuple_the_coa_and_tcp_flags():
    rst = tunnel(COA, HA, ipv6(HOA, CN, 6, tcp(40000, 5202, 0x14)))
    got = classify(eth(rst)[:SNAP_LEN])
    assert got == Data(COA, 6, HOA, 40000, CN, 5202, 0x14, True)
    assert isinstance(got, Data) and got.tcp_flags & 0x04


def test_an_iperf3_datagram_gives_its_counter_tunnelled_at_the_mn_and_plain_at_the_cn():
    dgram = ipv6(HOA, CN, 17, udp(41000, 5201, iperf3_udp_payload(1234)))
    at_mn = classify(eth(tunnel(COA, HA, dgram))[:SNAP_LEN])
    at_cn = classify(eth(dgram)[:SNAP_LEN])
    assert at_mn == Data(COA, 17, HOA, 41000, CN, 5201, 0, True, 1234)
    assert at_cn == Data(HOA, 17, HOA, 41000, CN, 5201, 0, False, 1234)


def test_frames_too_short_or_not_ipv6_are_nothing():
    assert classify(bu()[:40]) is None  # cut inside the IPv6 header
    assert classify(bu()[:60]) is None  # cut inside the Destination Options header
    assert classify(eth(b"\x45" + b"\0" * 40, ethertype=0x0800)) is None
    assert classify(eth(ipv6(HOA, CN, 58, b"\x80\0\0\0"))) is None  # an echo request


@pytest.mark.parametrize(("endian", "nano"), [("<", False), (">", False), ("<", True)])
def test_records_come_out_whole_however_the_file_is_cut_while_it_grows(endian, nano):
    frames = [(1700000000.25, bu()), (1700000000.5, ba()), (1700000001.125, bu(8))]
    data = pcap(frames, endian=endian, nano=nano, snap=SNAP_LEN)
    whole = PcapStream().feed(data)
    stream = PcapStream()
    pieces = []
    for i in range(0, len(data), 7):  # a reader that sees the file 7 bytes at a time
        pieces += stream.feed(data[i : i + 7])
    assert pieces == whole
    assert [r.ts for r in whole] == pytest.approx([t for t, _ in frames], abs=1e-6)
    assert [r.wire_len for r in whole] == [len(f) for _, f in frames]
    assert [r.data for r in whole] == [f[:SNAP_LEN] for _, f in frames]


def test_a_file_that_is_not_an_ethernet_pcap_is_refused():
    with pytest.raises(PcapError, match="magic"):
        PcapStream().feed(b"\x0a\x0d\x0d\x0a" + b"\0" * 40)  # pcapng
    with pytest.raises(PcapError, match="link type 113"):
        PcapStream().feed(pcap([], linktype=113))
