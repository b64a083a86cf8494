"""Typed views of links, IPv6 addresses, routes and neighbours, read over rtnetlink.

Owns: `Link`, `Addr`, `Route`, `Neigh` values, converting pyroute2 messages into them (also used
by the monitor), and one-shot reads (links, addresses with their IFA flags, default routers learned
from Router Advertisements, IPv6 neighbour entries). Must not: change anything in the kernel
(`sdnmip.kernel.neigh` adds and removes neighbour entries).
"""

from __future__ import annotations

import socket
from dataclasses import dataclass
from ipaddress import IPv6Address, IPv6Network
from typing import Any

from sdnmip.kernel.constants import RT_TABLE_MAIN
from sdnmip.kernel.netlink import AsyncIPRoute, collect, describe

IFF_UP = 0x1
IFF_LOWER_UP = 0x10000  # linux/if.h: carrier, as the driver reports it
IFA_F_TEMPORARY = 0x01
IFA_F_NODAD = 0x02
IFA_F_OPTIMISTIC = 0x04
IFA_F_DADFAILED = 0x08
IFA_F_DEPRECATED = 0x20
IFA_F_TENTATIVE = 0x40
IFA_F_PERMANENT = 0x80
RTPROT_KERNEL = 2
RTPROT_RA = 9  # linux/rtnetlink.h: installed from a Router Advertisement
INFINITY_LIFE_TIME = 0xFFFFFFFF

# linux/neighbour.h: Neighbour Unreachability Detection states (RFC 4861 §7.3.2) and flags.
NUD_INCOMPLETE = 0x01
NUD_REACHABLE = 0x02
NUD_STALE = 0x04
NUD_DELAY = 0x08
NUD_PROBE = 0x10
NUD_FAILED = 0x20
NUD_NOARP = 0x40
NUD_PERMANENT = 0x80
NUD_NONE = 0x00
# States in which the kernel holds the neighbour's link-layer address and sends to it (it may be
# verifying it: DELAY, PROBE). Not NOARP: its "address" is derived (multicast), not learned.
NUD_HAS_LLADDR = NUD_REACHABLE | NUD_STALE | NUD_DELAY | NUD_PROBE | NUD_PERMANENT
NTF_ROUTER = 0x80  # the neighbour said it is a router (RFC 4861 §4.4 R flag, or an RA)
NTF_PROXY = 0x08  # a proxy entry (answered for), not a neighbour


@dataclass(frozen=True, slots=True)
class Link:
    """A network device."""

    index: int
    name: str
    mac: str | None
    mtu: int
    up: bool  # administratively up (IFF_UP)
    carrier: bool  # lower layer up (IFF_LOWER_UP)
    operstate: str


@dataclass(frozen=True, slots=True)
class Addr:
    """An IPv6 address on a device, with its IFA flags and lifetimes (seconds)."""

    index: int
    address: IPv6Address
    prefixlen: int
    flags: int
    scope: int
    preferred_lft: int
    valid_lft: int

    @property
    def tentative(self) -> bool:
        """DAD still running: the address cannot be used as a source yet."""
        return bool(self.flags & IFA_F_TENTATIVE) and not self.flags & IFA_F_OPTIMISTIC

    @property
    def deprecated(self) -> bool:
        """Preferred lifetime over: do not use for new communications."""
        return bool(self.flags & IFA_F_DEPRECATED)

    @property
    def dadfailed(self) -> bool:
        return bool(self.flags & IFA_F_DADFAILED)

    @property
    def dynamic(self) -> bool:
        """Has lifetimes (SLAAC/DHCPv6) rather than being configured permanently."""
        return not self.flags & IFA_F_PERMANENT

    @property
    def link_local(self) -> bool:
        return self.address.is_link_local

    @property
    def usable(self) -> bool:
        """Good as a Care-of Address: global, preferred, DAD done."""
        return not (self.tentative or self.deprecated or self.dadfailed or self.link_local)


@dataclass(frozen=True, slots=True)
class Route:
    """An IPv6 unicast route (first next hop only for multipath routes)."""

    dst: IPv6Network
    table: int
    ifindex: int | None
    gateway: IPv6Address | None
    proto: int
    priority: int

    @property
    def is_default(self) -> bool:
        return self.dst.prefixlen == 0

    @property
    def from_ra(self) -> bool:
        return self.proto == RTPROT_RA


@dataclass(frozen=True, slots=True)
class Neigh:
    """An IPv6 neighbour cache entry: `address` on device `index` is at `lladdr`."""

    index: int
    address: IPv6Address
    lladdr: str | None  # as the kernel last reported it; None while unresolved
    state: int  # NUD_*
    flags: int  # NTF_*

    @property
    def resolved(self) -> bool:
        """The kernel knows the link-layer address and uses it (STALE, REACHABLE, DELAY, PROBE,
        PERMANENT); INCOMPLETE, FAILED, NOARP or no address at all mean it is unknown."""
        return self.lladdr is not None and bool(self.state & NUD_HAS_LLADDR)

    @property
    def router(self) -> bool:
        return bool(self.flags & NTF_ROUTER)


def link_from_msg(m: Any) -> Link:
    flags = int(m["flags"])
    return Link(
        index=int(m["index"]),
        name=str(m.get("IFLA_IFNAME")),
        mac=m.get("IFLA_ADDRESS"),
        mtu=int(m.get("IFLA_MTU") or 0),
        up=bool(flags & IFF_UP),
        carrier=bool(flags & IFF_LOWER_UP),
        operstate=str(m.get("IFLA_OPERSTATE") or "UNKNOWN"),
    )


def addr_from_msg(m: Any) -> Addr | None:
    if m["family"] != socket.AF_INET6:
        return None
    ci = m.get("IFA_CACHEINFO") or {}
    flags = m.get("IFA_FLAGS")
    return Addr(
        index=int(m["index"]),
        address=IPv6Address(m.get("IFA_ADDRESS")),
        prefixlen=int(m["prefixlen"]),
        flags=int(flags if flags is not None else m["flags"]),
        scope=int(m["scope"]),
        preferred_lft=int(ci.get("ifa_preferred", INFINITY_LIFE_TIME)),
        valid_lft=int(ci.get("ifa_valid", INFINITY_LIFE_TIME)),
    )


def route_from_msg(m: Any) -> Route | None:
    if m["family"] != socket.AF_INET6 or m.get("type") != 1:  # RTN_UNICAST only
        return None
    dst = m.get("RTA_DST") or "::"
    gw = m.get("RTA_GATEWAY")
    oif = m.get("RTA_OIF")
    mp = m.get("RTA_MULTIPATH")
    if gw is None and mp:
        gw = mp[0].get("RTA_GATEWAY")
        oif = mp[0]["oif"]
    return Route(
        dst=IPv6Network(f"{dst}/{m['dst_len']}"),
        table=int(m.get("RTA_TABLE") or m["table"]),
        ifindex=int(oif) if oif is not None else None,
        gateway=IPv6Address(gw) if gw else None,
        proto=int(m["proto"]),
        priority=int(m.get("RTA_PRIORITY") or 0),
    )


def neigh_from_msg(m: Any) -> Neigh | None:
    """The IPv6 neighbour entry of an RTM_NEWNEIGH/RTM_DELNEIGH message; None for other families
    (IPv4, bridge FDB entries) and for proxy entries."""
    if m["family"] != socket.AF_INET6 or m["flags"] & NTF_PROXY:
        return None
    dst = m.get("NDA_DST")
    if dst is None:
        return None
    lladdr = m.get("NDA_LLADDR")
    return Neigh(
        index=int(m["ifindex"]),
        address=IPv6Address(dst),
        lladdr=str(lladdr).lower() if lladdr else None,
        state=int(m["state"]),
        flags=int(m["flags"]),
    )


async def get_links(ipr: AsyncIPRoute) -> list[Link]:
    """Every device of the namespace."""
    return [link_from_msg(m) for m in await collect("link dump", ipr.link("dump"))]


async def get_addrs(ipr: AsyncIPRoute, index: int | None = None) -> list[Addr]:
    """IPv6 addresses (of device `index`, or all)."""
    kw: dict[str, Any] = {"family": socket.AF_INET6}
    if index is not None:
        kw["index"] = index
    msgs = await collect(describe("addr dump", index=index), ipr.addr("dump", **kw))
    out = [addr_from_msg(m) for m in msgs]
    return [a for a in out if a is not None and (index is None or a.index == index)]


async def get_routes(ipr: AsyncIPRoute, table: int = RT_TABLE_MAIN) -> list[Route]:
    """IPv6 unicast routes of `table`."""
    msgs = await collect(
        describe("route dump", table=table), ipr.route("dump", family=socket.AF_INET6, table=table)
    )
    out = [route_from_msg(m) for m in msgs]
    return [r for r in out if r is not None and r.table == table]


async def get_default_routers(ipr: AsyncIPRoute, table: int = RT_TABLE_MAIN) -> list[Route]:
    """Default routes learned from Router Advertisements (proto ra) in `table`."""
    return [r for r in await get_routes(ipr, table) if r.is_default and r.from_ra]


async def get_neighbours(ipr: AsyncIPRoute, index: int | None = None) -> list[Neigh]:
    """IPv6 neighbour entries (of device `index`, or all), in every NUD state; no proxy entries."""
    msgs = await collect(
        describe("neigh dump", index=index), ipr.neigh("dump", family=socket.AF_INET6)
    )
    out = [neigh_from_msg(m) for m in msgs]
    return [n for n in out if n is not None and (index is None or n.index == index)]
