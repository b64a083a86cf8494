"""The netlink monitor and the one-shot readers, against real address/link/route changes.

One namespace "mn" with a veth pair m0 <-> m1 (both ends inside it, so m1 going down drops m0's
carrier, as an access point going away would).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from ipaddress import IPv6Address, IPv6Network

import pytest

from sdnmip.kernel import links, routes, sysctl
from sdnmip.kernel.errors import KernelConfigError, KernelRequestError
from sdnmip.kernel.monitor import (
    DEFAULT_GROUPS,
    RTMGRP_NEIGH,
    AddrEvent,
    Event,
    LinkEvent,
    Monitor,
    NeighEvent,
    RouteEvent,
)
from sdnmip.kernel.netlink import AsyncIPRoute
from sdnmip.kernel.rawsock import HdrinclSender
from tests.integration.kernel import mh_packets as mhp
from tests.integration.kernel.kernel_lab import Lab, Netns

NS_TAG = "6"
COA = IPv6Address("2001:db8:1::100")
SLAAC_NET = IPv6Network("2001:db8:5::/64")
EVENT_TIMEOUT = 4.0  # DAD with dad_transmits=1 takes about one retransmit timer (1 s)


@pytest.fixture(scope="module")
def mn(lab: Lab) -> Netns:
    n = lab.ns("mn")
    n.run("ip", "link", "add", "m0", "type", "veth", "peer", "name", "m1")
    n.run("ip", "link", "set", "m0", "up")
    n.run("ip", "link", "set", "m1", "up")
    return n


async def ip(*args: str) -> None:
    proc = await asyncio.create_subprocess_exec("ip", *args)  # inherits the namespace
    assert await proc.wait() == 0, args


async def next_event(it: AsyncIterator[Event], want: Callable[[Event], bool]) -> Event:
    async def find() -> Event:
        async for ev in it:
            if want(ev):
                return ev
        raise AssertionError("monitor ended")

    return await asyncio.wait_for(find(), EVENT_TIMEOUT)


def test_monitor_sees_an_address_appear_tentative_then_usable(mn: Netns) -> None:
    async def body() -> tuple[links.Addr, links.Addr, list[links.Addr]]:
        sysctl.set_conf("m0", "accept_dad", 1)
        sysctl.set_conf("m0", "dad_transmits", 1)
        async with Monitor() as mon:
            it = mon.__aiter__()
            await ip("-6", "addr", "add", f"{COA}/64", "dev", "m0")

            def is_coa(ev: Event) -> bool:
                return isinstance(ev, AddrEvent) and ev.addr.address == COA

            first = await next_event(it, is_coa)
            settled = await next_event(
                it, lambda ev: is_coa(ev) and isinstance(ev, AddrEvent) and not ev.addr.tentative
            )
            assert isinstance(first, AddrEvent) and isinstance(settled, AddrEvent)
            async with AsyncIPRoute() as ipr:
                m0 = next(li for li in await links.get_links(ipr) if li.name == "m0")
                now = await links.get_addrs(ipr, m0.index)
            return first.addr, settled.addr, now

    first, settled, now = mn.arun(body)
    assert first.tentative and not first.usable
    assert settled.usable and not settled.deprecated and not settled.dynamic
    assert [a.address for a in now if a.usable] == [COA]


def test_monitor_sees_carrier_go_down_and_come_back(mn: Netns) -> None:
    async def body() -> tuple[LinkEvent, LinkEvent]:
        async with Monitor() as mon:
            it = mon.__aiter__()

            def m0(carrier: bool) -> Callable[[Event], bool]:
                return lambda ev: (
                    isinstance(ev, LinkEvent)
                    and ev.link.name == "m0"
                    and ev.link.carrier is carrier
                )

            await ip("link", "set", "m1", "down")
            down = await next_event(it, m0(False))
            await ip("link", "set", "m1", "up")
            up = await next_event(it, m0(True))
            assert isinstance(down, LinkEvent) and isinstance(up, LinkEvent)
            return down, up

    down, up = mn.arun(body)
    assert down.link.up and not down.link.carrier  # still administratively up
    assert up.link.carrier


def test_slaac_coa_and_default_router_from_a_real_ra(mn: Netns) -> None:
    """The MN case: forwarding=1, accept_ra=2, a Router Advertisement arrives on m0."""
    ll = next(
        a.split("/")[0]
        for a in mn.run("ip", "-6", "-br", "addr", "show", "dev", "m1").stdout.split()
        if a.startswith("fe80")
    )

    async def body() -> tuple[AddrEvent, RouteEvent, list[links.Route]]:
        sysctl.set_conf("all", "forwarding", 1)
        sysctl.set_conf("m0", "accept_ra", 2)  # 1 is ignored when forwarding
        sysctl.set_conf("m0", "ra_defrtr_metric", 4096)
        async with Monitor() as mon:
            it = mon.__aiter__()
            with HdrinclSender("m1", ll) as s:
                s.send(mhp.router_advertisement(IPv6Address(ll), IPv6Address("2001:db8:5::")))
            seen: dict[str, Event] = {}  # the kernel may report the route or the address first

            async def both() -> None:
                async for e in it:
                    if isinstance(e, AddrEvent) and e.addr.address in SLAAC_NET:
                        seen.setdefault("addr", e)
                    if isinstance(e, RouteEvent) and e.route.is_default:
                        seen.setdefault("route", e)
                    if len(seen) == 2:
                        return

            await asyncio.wait_for(both(), EVENT_TIMEOUT)
            addr, route = seen["addr"], seen["route"]
            assert isinstance(addr, AddrEvent) and isinstance(route, RouteEvent)
            async with AsyncIPRoute() as ipr:
                routers = await links.get_default_routers(ipr)
            return addr, route, routers

    addr, route, routers = mn.arun(body)
    assert addr.kind == "new" and addr.addr.dynamic and addr.addr.preferred_lft <= 14400
    assert route.route.from_ra and route.route.gateway == IPv6Address(ll)
    assert [(str(r.gateway), r.ifindex, r.priority) for r in routers] == [
        (ll, mn.ifindex("m0"), 4096)
    ]


def test_neighbour_events_and_dump_follow_an_entry(mn: Netns) -> None:
    nb, mac_a, mac_b = IPv6Address("fe80::77"), "02:00:00:00:77:0a", "02:00:00:00:77:0b"

    def of_nb(ev: Event) -> bool:
        return isinstance(ev, NeighEvent) and ev.neigh.address == nb

    async def body() -> tuple[list[Event], list[links.Neigh]]:
        async with Monitor(DEFAULT_GROUPS | RTMGRP_NEIGH) as mon:
            it = mon.__aiter__()
            seen = []
            for mac in (mac_a, mac_b):
                await ip("-6", "neigh", "replace", str(nb), "lladdr", mac, "dev", "m0",
                         "nud", "stale")  # fmt: skip
                seen.append(await next_event(it, of_nb))
            async with AsyncIPRoute() as ipr:
                dumped = [n for n in await links.get_neighbours(ipr) if n.address == nb]
            await ip("-6", "neigh", "del", str(nb), "dev", "m0")
            # The kernel reports the entry FAILED (no lladdr) before it removes it.
            seen.append(await next_event(it, lambda ev: of_nb(ev) and ev.neigh.lladdr is None))
            seen.append(await next_event(it, lambda ev: of_nb(ev) and ev.kind == "del"))
            return seen, dumped

    seen, dumped = mn.arun(body)
    m0 = mn.ifindex("m0")
    assert [(e.kind, e.neigh.index, e.neigh.lladdr) for e in seen if isinstance(e, NeighEvent)] == [
        ("new", m0, mac_a),
        ("new", m0, mac_b),
        ("new", m0, None),
        ("del", m0, None),
    ]
    assert [(n.index, n.lladdr, n.state, n.resolved) for n in dumped] == [
        (m0, mac_b, links.NUD_STALE, True)
    ]


def test_plain_routes_in_an_uplink_table(mn: Netns) -> None:
    async def body() -> list[tuple[str, str | None]]:
        async with AsyncIPRoute() as ipr:
            await routes.set_route(ipr, "default", "m0", gateway="fe80::1", table=101)
            await routes.set_route(ipr, "default", "m0", gateway="fe80::2", table=101)
            await routes.set_route(ipr, "2001:db8:100::/64", "m0", gateway="fe80::5d1f", table=201)
            got = [
                (str(r.dst), str(r.gateway) if r.gateway else None)
                for t in (101, 201)
                for r in await routes.list_routes(ipr, t)
            ]
            assert await routes.del_route(ipr, "default", table=101) is True
            assert await routes.del_route(ipr, "default", table=101) is False
            # a refusal by the kernel names the request
            with pytest.raises(
                KernelRequestError,
                match=r"^route replace dst=2001:db8:77::/64 via=2001:db8:99::1 dev=m0 table=101 "
                r".*: E",
            ):
                await routes.set_route(
                    ipr, "2001:db8:77::/64", "m0", gateway="2001:db8:99::1", table=101
                )
            with pytest.raises(KernelConfigError, match="gateway='fe80::zz'"):
                await routes.set_route(ipr, "default", "m0", gateway="fe80::zz", table=101)
            return got

    assert mn.arun(body) == [("::/0", "fe80::2"), ("2001:db8:100::/64", "fe80::5d1f")]
    shown = mn.run("ip", "-6", "route", "show", "table", "201").stdout
    assert "2001:db8:100::/64 via fe80::5d1f dev m0" in shown
