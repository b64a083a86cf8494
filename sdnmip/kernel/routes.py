"""Plain (non-tunnel) IPv6 routes in a given table: add-or-replace and delete, idempotently.

Owns: the per-uplink tables' ordinary routes of docs/datapath.md, e.g. `default via <router> dev
i<uplink> table 10k` (the RA-learned router, copied by the MN agent), `<home prefix> via fe80::5d1f
dev i<uplink> table 20k` (decapsulated packets back to OVS) and `default via fe80::5d1f dev hoa0`.
Must not: build tunnel routes (tunnel.py does) or choose tables.
"""

from __future__ import annotations

import socket
from typing import Any

from sdnmip.kernel.addr import AddrLike, PrefixLike, v6addr, v6prefix
from sdnmip.kernel.constants import RT_TABLE_MAIN
from sdnmip.kernel.links import Route, get_routes
from sdnmip.kernel.netlink import ENOENT_LIKE, AsyncIPRoute, describe, ifindex, request

DEFAULT_METRIC = 1024  # what iproute2 uses for IPv6 routes without a metric


async def set_route(
    ipr: AsyncIPRoute,
    prefix: PrefixLike,
    dev: str,
    *,
    gateway: AddrLike | None = None,
    table: int = RT_TABLE_MAIN,
    metric: int = DEFAULT_METRIC,
) -> None:
    """`ip -6 route replace <prefix> [via <gateway>] dev <dev> table <t> metric <m>`."""
    net = v6prefix("prefix", prefix)
    gw = v6addr("gateway", gateway) if gateway is not None else None
    oif = await ifindex(ipr, dev)
    kw: dict[str, Any] = {
        "family": socket.AF_INET6,
        "dst_len": net.prefixlen,
        "oif": oif,
        "table": table,
        "priority": metric,
    }
    if net.prefixlen:
        kw["dst"] = str(net.network_address)
    if gw is not None:
        kw["gateway"] = str(gw)
    desc = describe("route replace", dst=net, via=gw, dev=dev, table=table, metric=metric)
    await request(desc, ipr.route("replace", **kw))


async def del_route(
    ipr: AsyncIPRoute,
    prefix: PrefixLike,
    *,
    table: int = RT_TABLE_MAIN,
    metric: int = DEFAULT_METRIC,
) -> bool:
    """Delete the route for `prefix` with `metric` in `table`; False if there was none."""
    net = v6prefix("prefix", prefix)
    if not any(r.dst == net and r.priority == metric for r in await get_routes(ipr, table)):
        return False
    kw: dict[str, Any] = {
        "family": socket.AF_INET6,
        "dst_len": net.prefixlen,
        "table": table,
        "priority": metric,
    }
    if net.prefixlen:
        kw["dst"] = str(net.network_address)
    await request(
        describe("route del", dst=net, table=table, metric=metric),
        ipr.route("del", **kw),
        ok_errnos=ENOENT_LIKE,
    )
    return True


async def list_routes(ipr: AsyncIPRoute, table: int = RT_TABLE_MAIN) -> list[Route]:
    """The unicast IPv6 routes of `table` (re-exported for callers of this module)."""
    return await get_routes(ipr, table)
