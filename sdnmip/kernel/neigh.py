"""Neighbour entries: proxy ND for Home Addresses (HA) and permanent entries (MN fake gateway).

Owns: adding/removing `ip -6 neigh add proxy <addr> dev <dev>` entries and permanent
address→MAC entries, idempotently. Must not: decide which addresses are proxied.
Proxy answers also need proxy_ndp=1 and, to answer at once, neigh.<dev>.proxy_delay=0 (sysctl.py).
"""

from __future__ import annotations

import re
import socket
from ipaddress import IPv6Address
from typing import Any

from pyroute2.netlink.rtnl import RTM_GETNEIGH
from pyroute2.netlink.rtnl.ndmsg import ndmsg

from sdnmip.kernel.addr import AddrLike, v6addr
from sdnmip.kernel.errors import KernelConfigError
from sdnmip.kernel.links import NTF_PROXY, NUD_PERMANENT
from sdnmip.kernel.netlink import (
    EEXIST,
    ENOENT_LIKE,
    AsyncIPRoute,
    collect,
    describe,
    ifindex,
    request,
)

_MAC = re.compile(r"^[0-9a-f]{2}(:[0-9a-f]{2}){5}$")


async def add_proxy(ipr: AsyncIPRoute, addr: AddrLike, dev: str) -> None:
    """Answer Neighbour Solicitations for `addr` on `dev` (RFC 6275 §10.4.1)."""
    a = v6addr("addr", addr)
    idx = await ifindex(ipr, dev)
    await request(
        describe("neigh add proxy", dst=a, dev=dev),
        ipr.neigh("add", family=socket.AF_INET6, dst=str(a), ifindex=idx, flags=NTF_PROXY),
        ok_errnos=frozenset({EEXIST}),
    )


async def del_proxy(ipr: AsyncIPRoute, addr: AddrLike, dev: str) -> bool:
    """Stop proxying `addr` on `dev`; False if it was not proxied."""
    a = v6addr("addr", addr)
    idx = await ifindex(ipr, dev)
    if a not in await list_proxies(ipr, dev):
        return False
    await request(
        describe("neigh del proxy", dst=a, dev=dev),
        ipr.neigh("del", family=socket.AF_INET6, dst=str(a), ifindex=idx, flags=NTF_PROXY),
        ok_errnos=ENOENT_LIKE,
    )
    return True


async def list_proxies(ipr: AsyncIPRoute, dev: str | None = None) -> list[IPv6Address]:
    """Addresses proxied (on `dev`, or on any device).

    The kernel dumps proxy entries only when the request's ndm_flags is NTF_PROXY; pyroute2's
    `neigh("dump", ...)` turns keyword arguments into a client-side filter and never sets it,
    so the request message is built here.
    """
    idx = await ifindex(ipr, dev) if dev is not None else None
    req = ndmsg()
    req["family"] = socket.AF_INET6
    req["flags"] = NTF_PROXY
    msgs = await collect("neigh dump proxy", ipr.nlm_request(req, RTM_GETNEIGH))
    return [
        IPv6Address(m.get("NDA_DST"))
        for m in msgs
        if m["flags"] & NTF_PROXY and (idx is None or m["ifindex"] == idx)
    ]


async def set_permanent(ipr: AsyncIPRoute, addr: AddrLike, lladdr: str, dev: str) -> None:
    """A permanent `addr` → `lladdr` entry on `dev` (replaces any previous entry)."""
    a = v6addr("addr", addr)
    mac = lladdr.lower()
    if not _MAC.match(mac):
        raise KernelConfigError("lladdr", lladdr, "not a MAC address like 02:00:00:00:00:01")
    idx = await ifindex(ipr, dev)
    await request(
        describe("neigh replace", dst=a, lladdr=mac, dev=dev, nud="permanent"),
        ipr.neigh(
            "replace",
            family=socket.AF_INET6,
            dst=str(a),
            lladdr=mac,
            ifindex=idx,
            state=NUD_PERMANENT,
        ),
    )


async def get_neigh(ipr: AsyncIPRoute, addr: AddrLike, dev: str) -> tuple[str | None, int] | None:
    """(lladdr or None while unresolved, NUD state) of the entry for `addr` on `dev`, or None."""
    a = v6addr("addr", addr)
    idx = await ifindex(ipr, dev)
    msgs: list[Any] = await collect(
        "neigh dump", ipr.neigh("dump", family=socket.AF_INET6, ifindex=idx)
    )
    for m in msgs:
        if m.get("NDA_DST") and IPv6Address(m.get("NDA_DST")) == a and m["ifindex"] == idx:
            lladdr = m.get("NDA_LLADDR")
            return (str(lladdr) if lladdr else None, int(m["state"]))
    return None


async def del_neigh(ipr: AsyncIPRoute, addr: AddrLike, dev: str) -> bool:
    """Remove the (non-proxy) entry for `addr` on `dev`; False if absent."""
    a = v6addr("addr", addr)
    idx = await ifindex(ipr, dev)
    if await get_neigh(ipr, a, dev) is None:
        return False
    await request(
        describe("neigh del", dst=a, dev=dev),
        ipr.neigh("del", family=socket.AF_INET6, dst=str(a), ifindex=idx),
        ok_errnos=ENOENT_LIKE,
    )
    return True
