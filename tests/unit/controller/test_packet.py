"""The packet-in parser: agrees with os-ken's independent dissector, refuses junk with a reason."""

from __future__ import annotations

import struct
from ipaddress import IPv6Address as A

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from os_ken.lib.packet import ethernet, icmpv6, ipv6, packet, tcp, udp

from sdnmip.controller.packet import Packet, Refused, parse

from .pkt import build, icmp_pkt, tcp_pkt, udp_pkt

SRC, DST = "2001:db8:100::1000", "2001:db8:c1::10"


def test_tcp_fields_flow_label_and_dscp():
    p = parse(build(tcp_pkt(SRC, DST, 40000, 80, flags=0x12, flabel=0xABCDE, dscp=46)))
    assert p == Packet(A(SRC), A(DST), 6, 40000, 80, 0xABCDE, 46, 0x12, l4_offset=54, end=74)
    assert not p.is_tcp_open
    assert parse(build(tcp_pkt(SRC, DST, 1, 2, flags=0x02))).is_tcp_open


def test_udp_and_icmpv6():
    assert parse(build(udp_pkt(SRC, DST, 53, 5353))).sport == 53
    p = parse(build(icmp_pkt(SRC, DST, 129)))
    assert (p.proto, p.sport, p.dport) == (58, 129, 0)


_EXT_NUMBER = {ipv6.hop_opts: 0, ipv6.dst_opts: 60, ipv6.fragment: 44}


def _with_ext(ext_hdrs, l4) -> bytes:
    pk = packet.Packet()
    pk.add_protocol(ethernet.ethernet(ethertype=0x86DD))
    first = _EXT_NUMBER[type(ext_hdrs[0])]
    pk.add_protocol(ipv6.ipv6(nxt=first, src=SRC, dst=DST, ext_hdrs=ext_hdrs))
    pk.add_protocol(l4)
    pk.add_protocol(b"data")
    pk.serialize()
    return bytes(pk.data)


def test_extension_headers_are_skipped():
    exts = [ipv6.hop_opts(nxt=60), ipv6.dst_opts(nxt=44), ipv6.fragment(nxt=17, offset=0, more=1)]
    p = parse(_with_ext(exts, udp.udp(src_port=7, dst_port=9)))
    assert isinstance(p, Packet) and (p.proto, p.sport, p.dport) == (17, 7, 9)


def test_non_first_fragment_is_refused():
    data = _with_ext([ipv6.fragment(nxt=17, offset=100, more=0)], udp.udp())
    assert parse(data) == Refused("non-first fragment (no transport header)")


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        (b"", "truncated frame"),
        (b"\x00" * 12 + b"\x08\x00" + b"\x00" * 60, "not IPv6"),
        (b"\x00" * 12 + b"\x81\x00" + b"\x00" * 60, "VLAN"),
        (b"\x00" * 12 + b"\x86\xdd" + b"\x40" + b"\x00" * 59, "IP version 4"),
    ],
)
def test_junk_is_refused_with_a_reason(data, reason):
    r = parse(data)
    assert isinstance(r, Refused) and reason in r.reason


def test_a_truncated_copy_still_gives_its_headers_but_is_marked_incomplete():
    full = build(tcp_pkt(SRC, DST, 1, 2, payload=b"x" * 500))
    p = parse(full[:128])
    assert isinstance(p, Packet) and p.sport == 1 and not p.complete
    assert parse(full).complete


def test_truncated_transport_header():
    full = build(tcp_pkt(SRC, DST, 1, 2))
    assert parse(full[: 14 + 40 + 10]) == Refused("truncated TCP header")


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=200))
def test_random_bytes_never_raise(data):
    assert isinstance(parse(data), Packet | Refused)


@settings(max_examples=300, deadline=None)
@given(st.binary(min_size=0, max_size=120))
def test_random_ipv6_payloads_never_raise(tail):
    hdr = (
        b"\x02" * 12
        + b"\x86\xdd"
        + struct.pack("!IHBB", 6 << 28, len(tail), tail[0] if tail else 0, 64)
    )
    assert isinstance(parse(hdr + A(SRC).packed + A(DST).packed + tail), Packet | Refused)


headers = st.tuples(
    st.sampled_from([6, 17, 58]),
    st.integers(0, 65535),
    st.integers(0, 65535),
    st.integers(0, 0xFFFFF),
    st.integers(0, 63),
    st.integers(0, 0xFF),  # TCP flags: os-ken cannot build the NS bit
    # ICMPv6 type: echo (os-ken insists on its echo payload class) or one it has no class for.
    st.one_of(st.sampled_from([128, 129]), st.integers(144, 255)),
)


@settings(max_examples=200, deadline=None)
@given(headers)
def test_agrees_with_os_kens_dissector(h):
    proto, sport, dport, flabel, dscp, flags, icmp_type = h
    pk = packet.Packet()
    pk.add_protocol(ethernet.ethernet(ethertype=0x86DD))
    pk.add_protocol(
        ipv6.ipv6(nxt=proto, src=SRC, dst=DST, flow_label=flabel, traffic_class=dscp << 2 | 1)
    )
    if proto == 6:
        pk.add_protocol(tcp.tcp(src_port=sport, dst_port=dport, bits=flags, offset=5))
    elif proto == 17:
        pk.add_protocol(udp.udp(src_port=sport, dst_port=dport))
    else:
        data = icmpv6.echo(id_=sport, seq=dport) if icmp_type in (128, 129) else b"\x00" * 4
        pk.add_protocol(icmpv6.icmpv6(type_=icmp_type, data=data))
    pk.serialize()
    ref = packet.Packet(bytes(pk.data))
    ip = ref.get_protocol(ipv6.ipv6)
    p = parse(bytes(pk.data))
    assert isinstance(p, Packet)
    assert (p.src, p.dst, p.proto, p.flow_label, p.dscp) == (
        A(ip.src),
        A(ip.dst),
        ip.nxt,
        ip.flow_label,
        ip.traffic_class >> 2,
    )
    if proto == 6:
        t = ref.get_protocol(tcp.tcp)
        # os-ken keeps only the six RFC 793 flags; the OXM tcp_flags field has all nine.
        assert (p.sport, p.dport, p.tcp_flags & 0x3F) == (t.src_port, t.dst_port, t.bits)
        assert p.tcp_flags == flags
    elif proto == 17:
        u = ref.get_protocol(udp.udp)
        assert (p.sport, p.dport) == (u.src_port, u.dst_port)
    else:
        assert p.sport == ref.get_protocol(icmpv6.icmpv6).type_
