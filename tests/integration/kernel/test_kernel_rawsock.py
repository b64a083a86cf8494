"""Raw sockets for MIPv6 signalling and the nft rules that silence the kernel's complaints.

X "mn" x0 2001:db8:1::100/64 (a CoA), lo HoA 2001:db8:100::2001
Y "ha" y0 2001:db8:1::1/64 (the HA address)
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from contextlib import ExitStack
from ipaddress import IPv6Address

import pytest

from sdnmip.kernel import nft
from sdnmip.kernel.constants import RT_TABLE_LOCAL
from sdnmip.kernel.errors import KernelConfigError
from sdnmip.kernel.netlink import AsyncIPRoute
from sdnmip.kernel.rawsock import (
    HdrinclSender,
    RawPacket,
    RawReceiver,
    bpf_inner_next_header,
)
from sdnmip.kernel.tunnel import Seg6Tunnel
from tests.integration.kernel import mh_packets as mhp
from tests.integration.kernel.kernel_lab import Lab, Netns

NS_TAG = "4"
COA = IPv6Address("2001:db8:1::100")
HA = IPv6Address("2001:db8:1::1")
HOA = IPv6Address("2001:db8:100::2001")
ICMP_PARAM_PROBLEM, ICMP_ECHO_REPLY = 4, 129
WATCHED = {ICMP_PARAM_PROBLEM, ICMP_ECHO_REPLY}  # not the ND messages
RECV_TIMEOUT = 3.0


@pytest.fixture(scope="module")
def pair(lab: Lab) -> tuple[Netns, Netns]:
    x, y = lab.ns("mn"), lab.ns("ha")
    lab.veth(x, "x0", y, "y0")
    x.run("ip", "-6", "addr", "add", f"{COA}/64", "dev", "x0")
    x.run("ip", "-6", "addr", "add", f"{HOA}/128", "dev", "lo")
    y.run("ip", "-6", "addr", "add", f"{HA}/64", "dev", "y0")
    y.run("ip", "-6", "route", "add", "2001:db8:100::/64", "via", str(COA))
    return x, y


@pytest.fixture
def stack() -> Iterator[ExitStack]:
    with ExitStack() as s:
        yield s


def recv(sock: RawReceiver, timeout: float = RECV_TIMEOUT) -> RawPacket:
    return asyncio.run(asyncio.wait_for(sock.recv(), timeout))


def drain(sock: RawReceiver) -> list[RawPacket]:
    out = []
    while (p := sock.recv_nowait()) is not None:
        out.append(p)
    return out


def icmp_types(pkts: list[RawPacket]) -> list[int]:
    return [p.data[0] for p in pkts]


def ping_once(ns: Netns, dst: IPv6Address) -> None:
    ns.run("ping", "-6", "-c", "1", "-W", "1", str(dst))


def test_bu_sent_hdrincl_reaches_the_ha_raw60_socket_unchanged(
    pair: tuple[Netns, Netns], stack: ExitStack
) -> None:
    x, y = pair
    with y.entered():
        r60 = stack.enter_context(RawReceiver(mhp.NH_DSTOPTS))
    with x.entered():
        sender = stack.enter_context(HdrinclSender("x0", COA))
        r58 = stack.enter_context(RawReceiver(mhp.NH_ICMPV6, icmp6_types=WATCHED))
    bu = mhp.binding_update(COA, HA, HOA, seq=1)
    sender.send(bu)
    got = recv(r60)
    assert got.data == bu[40:]  # from the Destination Options header on, byte for byte
    assert (got.src, got.dst, got.ifindex) == (COA, HA, y.ifindex("y0"))
    # without nft the HA kernel complains: parameter problem code 2 back to the CoA
    pp = recv(r58)
    assert (pp.data[0], pp.data[1], pp.src) == (ICMP_PARAM_PROBLEM, 2, HA)

    spec = nft.FilterSpec.for_ha([HA])
    y.arun(lambda: nft.load(spec))
    try:
        bu2 = mhp.binding_update(COA, HA, HOA, seq=2)
        sender.send(bu2)
        assert recv(r60).data == bu2[40:]
        ping_once(x, HA)  # its reply is queued behind any parameter problem
        assert ICMP_ECHO_REPLY in icmp_types(drain(r58))
        assert ICMP_PARAM_PROBLEM not in icmp_types(drain(r58))
        assert y.arun(lambda: nft.counters(spec.table))["pp-hao"] == 1
    finally:
        y.arun(lambda: nft.unload(spec.table))


def test_ba_with_type2_routing_header_reaches_the_mn_raw43_socket(
    pair: tuple[Netns, Netns], stack: ExitStack
) -> None:
    x, y = pair
    with x.entered():
        r43 = stack.enter_context(RawReceiver(mhp.NH_ROUTING))
    with y.entered():
        sender = stack.enter_context(HdrinclSender("y0", HA))
        r58 = stack.enter_context(RawReceiver(mhp.NH_ICMPV6, icmp6_types=WATCHED))
    spec = nft.FilterSpec.for_mn([COA])
    x.arun(lambda: nft.load(spec))
    try:
        ba = mhp.binding_ack(HA, COA, HOA, seq=7)
        sender.send(ba)
        got = recv(r43)
        assert got.data == ba[40:]
        assert (got.src, got.dst, got.ifindex) == (HA, COA, x.ifindex("x0"))
        ping_once(y, COA)
        types = icmp_types(drain(r58))
        assert ICMP_ECHO_REPLY in types
        assert ICMP_PARAM_PROBLEM not in types
        assert x.arun(lambda: nft.counters(spec.table))["pp-rh2"] == 1
    finally:
        x.arun(lambda: nft.unload(spec.table))
    # and without the table the MN kernel does send parameter problem code 0
    sender.send(mhp.binding_ack(HA, COA, HOA, seq=8))
    pp = recv(r58)
    assert (pp.data[0], pp.data[1], pp.src) == (ICMP_PARAM_PROBLEM, 0, COA)


def test_raw41_bpf_receives_only_tunnelled_mobility_headers(
    pair: tuple[Netns, Netns], stack: ExitStack
) -> None:
    x, y = pair
    with x.entered():
        only_mh = stack.enter_context(RawReceiver(41, bpf=bpf_inner_next_header(mhp.NH_MH)))
        every = stack.enter_context(RawReceiver(41))
    with y.entered():
        sender = stack.enter_context(HdrinclSender("y0", HA))
    brr = mhp.binding_refresh_request(HA, HOA)
    echo = mhp.echo_request(HA, HOA, ident=41)
    sender.send(mhp.tunnel(HA, COA, echo))
    sender.send(mhp.tunnel(HA, COA, brr))
    first, second = recv(every), recv(every)
    assert [first.data, second.data] == [echo, brr]  # from the inner header on
    got = recv(only_mh)
    assert (got.data, got.src, got.dst) == (brr, HA, COA)
    assert drain(only_mh) == []


def test_tunnelled_mh_is_diverted_while_everything_else_is_decapsulated(
    pair: tuple[Netns, Netns], stack: ExitStack
) -> None:
    x, y = pair

    async def decap() -> None:
        async with AsyncIPRoute() as ipr:
            await Seg6Tunnel(ipr).add_decap(COA, "x0", RT_TABLE_LOCAL, divert_mh=True)

    x.arun(decap)
    spec = nft.FilterSpec.for_mn([COA])
    x.arun(lambda: nft.load(spec))
    with x.entered():
        mh41 = stack.enter_context(RawReceiver(41, bpf=bpf_inner_next_header(mhp.NH_MH)))
        any41 = stack.enter_context(RawReceiver(41))
        icmp = stack.enter_context(RawReceiver(mhp.NH_ICMPV6, icmp6_types={128}))
    with y.entered():
        sender = stack.enter_context(HdrinclSender("y0", HA))
    try:
        brr = mhp.binding_refresh_request(HA, HOA)
        sender.send(mhp.tunnel(HA, COA, mhp.echo_request(HA, HOA, ident=7)))
        sender.send(mhp.tunnel(HA, COA, brr))
        assert recv(mh41).data == brr
        # the echo request was decapsulated (End.DT6) and delivered to the HoA
        req = recv(icmp)
        assert (req.data[0], req.src, req.dst) == (128, HA, HOA)
        assert [p.data for p in drain(any41)] == [brr]
        assert x.arun(lambda: nft.counters(spec.table))["mh-divert"] == 1
    finally:
        x.arun(lambda: nft.unload(spec.table))


def test_sender_rejects_what_it_cannot_send(pair: tuple[Netns, Netns]) -> None:
    x, _ = pair
    with x.entered():
        with pytest.raises(KernelConfigError, match="dev='nope0'"):
            HdrinclSender("nope0", COA)
        with pytest.raises(KernelConfigError, match="src='2001:db8:9::9'"):
            HdrinclSender("x0", "2001:db8:9::9")
        with HdrinclSender("x0", COA) as s:
            with pytest.raises(KernelConfigError, match=r"packet\.src"):
                s.send(mhp.binding_update(IPv6Address("2001:db8:1::200"), HA, HOA, 1))
            with pytest.raises(KernelConfigError, match="packet="):
                s.send(b"\x45" + bytes(39))
