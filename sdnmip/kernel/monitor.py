"""Asynchronous rtnetlink monitor: typed link, IPv6 address, IPv6 route and neighbour events.

Owns: one netlink socket subscribed to the groups it is given (by default RTMGRP_LINK |
RTMGRP_IPV6_IFADDR | RTMGRP_IPV6_ROUTE; add RTMGRP_NEIGH for neighbour entries) and the
conversion of its messages into `LinkEvent`, `AddrEvent`, `RouteEvent`, `NeighEvent`. Must not:
interpret the events (the MN agent decides what a new address or a lost carrier means).

Use: open the monitor first, then read the initial state with `sdnmip.kernel.links`, then apply
events: nothing that happens between the two is lost (it is queued on the monitor's socket).
Not handled yet (not exercised here): a burst that overflows the socket's receive buffer
(ENOBUFS) loses events; a consumer that sees the iterator raise should re-read the state.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from types import TracebackType
from typing import Any, Literal

from pyroute2 import AsyncIPRoute

from sdnmip.kernel.links import (
    Addr,
    Link,
    Neigh,
    Route,
    addr_from_msg,
    link_from_msg,
    neigh_from_msg,
    route_from_msg,
)

RTMGRP_LINK = 0x1
RTMGRP_NEIGH = 0x4  # every family's neighbour entries (and bridge FDB): IPv6 ones are kept
RTMGRP_IPV6_IFADDR = 0x100
RTMGRP_IPV6_ROUTE = 0x400
DEFAULT_GROUPS = RTMGRP_LINK | RTMGRP_IPV6_IFADDR | RTMGRP_IPV6_ROUTE

Kind = Literal["new", "del"]


@dataclass(frozen=True, slots=True)
class LinkEvent:
    kind: Kind
    link: Link


@dataclass(frozen=True, slots=True)
class AddrEvent:
    kind: Kind
    addr: Addr


@dataclass(frozen=True, slots=True)
class RouteEvent:
    kind: Kind
    route: Route


@dataclass(frozen=True, slots=True)
class NeighEvent:
    """An IPv6 neighbour entry created or changed ("new": any NUD transition, a new lladdr) or
    removed ("del")."""

    kind: Kind
    neigh: Neigh


Event = LinkEvent | AddrEvent | RouteEvent | NeighEvent


def event_from_msg(m: Any) -> Event | None:
    """The typed event for one rtnetlink message, or None for messages the monitor ignores."""
    ev = m.get("event")
    if ev in ("RTM_NEWLINK", "RTM_DELLINK"):
        return LinkEvent("new" if ev == "RTM_NEWLINK" else "del", link_from_msg(m))
    if ev in ("RTM_NEWADDR", "RTM_DELADDR"):
        a = addr_from_msg(m)
        return AddrEvent("new" if ev == "RTM_NEWADDR" else "del", a) if a else None
    if ev in ("RTM_NEWROUTE", "RTM_DELROUTE"):
        r = route_from_msg(m)
        return RouteEvent("new" if ev == "RTM_NEWROUTE" else "del", r) if r else None
    if ev in ("RTM_NEWNEIGH", "RTM_DELNEIGH"):
        n = neigh_from_msg(m)
        return NeighEvent("new" if ev == "RTM_NEWNEIGH" else "del", n) if n else None
    return None


class Monitor:
    """`async with Monitor() as mon: async for event in mon: ...`; `Monitor(DEFAULT_GROUPS |
    RTMGRP_NEIGH)` also yields neighbour events."""

    def __init__(self, groups: int = DEFAULT_GROUPS) -> None:
        self._groups = groups
        self._ipr: AsyncIPRoute | None = None

    async def __aenter__(self) -> Monitor:
        self._ipr = AsyncIPRoute()
        await self._ipr.bind(groups=self._groups)
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._ipr is not None:
            self._ipr.close()
            self._ipr = None

    async def __aiter__(self) -> AsyncIterator[Event]:
        if self._ipr is None:
            raise RuntimeError("Monitor used outside 'async with'")
        while True:
            async for msg in self._ipr.get():
                ev = event_from_msg(msg)
                if ev is not None:
                    yield ev
