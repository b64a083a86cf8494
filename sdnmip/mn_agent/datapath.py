"""The kernel side of the MN data path (docs/datapath.md, "MN recipe"), set up and torn down
through netlink and nftables.

Owns, idempotently (every step can be re-run, so a restart after a crash converges):
- once: forwarding, the nft table `inet sdnmip_mn` (drops the kernel's spurious parameter problems
  for BAs and the hairpin redirects, marks tunnelled Mobility Headers for the raw 41 socket), the
  `local` rule moved after the decap rules, the Primary HoA on the HoA port (/128, nodad) with the
  applications' default route via a fake gateway whose MAC is fixed (OVS rewrites it anyway);
- per uplink k (config order, from 1): table ROUTER_TABLE+k with the uplink's RA-learned default
  router, chosen by `from <CoA_k>` (outer packets and signalling leave by that uplink); table
  ENCAP_TABLE+k `default encap seg6 mode encap.red segs <HA> dev <kernel port>`, chosen by
  `iif <kernel port> from <home prefix>` (inner packets OVS hands back after rewriting their source
  to the flow's HoA); decapsulation of proto-41 packets to CoA_k with End.DT6 into table
  DOWN_TABLE+k, which routes the home prefixes back out the kernel port to OVS via the fake gateway.
Follows CoA, router and home-prefix changes; `stop` removes all of it (bindings at the HA and the
agent's state are kept, so a restart resumes).
Must not: decide bindings or touch OpenFlow (the controller owns the bridge's flows).

Why the applications' default route has metric APP_ROUTE_METRIC (below the kernel's 1024): the
RA-learned default routes of the kernel ports sit in `main` too, with metric 1024 (or
ra_defrtr_metric), and an equal metric would let the kernel alternate between them and hoa0.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
from dataclasses import dataclass, field
from ipaddress import IPv6Address, IPv6Network

from sdnmip.kernel import nft, routes, sysctl
from sdnmip.kernel.constants import (
    DECAP_RULE_PREF,
    DECAP_TABLE,
    LOCAL_RULE_PREF,
    RT_TABLE_LOCAL,
    RT_TABLE_MAIN,
)
from sdnmip.kernel.errors import KernelConfigError
from sdnmip.kernel.links import get_addrs
from sdnmip.kernel.neigh import del_neigh, set_permanent
from sdnmip.kernel.netlink import ENOENT_LIKE, AsyncIPRoute, describe, ifindex, request
from sdnmip.kernel.rules import Rule, ensure_rule, list_rules, remove_rule
from sdnmip.kernel.tunnel import MH_DIVERT_RULE, Seg6Tunnel
from sdnmip.mn.config import MnConfig, Uplink
from sdnmip.mn_agent.api import UplinkInfo

log = logging.getLogger("sdnmip.mn_agent.datapath")

FAKE_GATEWAY = IPv6Address("fe80::5d1f")  # next hop into OVS; nothing answers ND for it
FAKE_GATEWAY_MAC = "02:5d:1f:00:00:01"
ROUTER_TABLE = 1000  # + k: default via the uplink's router, for packets from its CoA
ENCAP_TABLE = 1100  # + k: inner packets from OVS -> tunnel to the HA
DOWN_TABLE = 1200  # + k: decapsulated packets -> back to OVS
ENCAP_RULE_PREF = 1100  # + k; after `local` (LOCAL_RULE_PREF)
ROUTER_RULE_PREF = 1200  # + k
APP_ROUTE_METRIC = 256  # below the RA routes' 1024: see the module docstring
MAX_UPLINKS = 99  # table and rule numbers leave room for k = 1..99
NFT_TABLE = "sdnmip_mn"
IFA_F_NODAD = 0x02  # linux/if_addr.h: the HoA is the HA's to defend, not ours
DEFAULT = IPv6Network("::/0")


@dataclass
class _Uplink:
    cfg: Uplink
    k: int
    index: int | None = None  # the kernel port's ifindex the static part was set up on
    coa: IPv6Address | None = None
    router: IPv6Address | None = None
    prefixes: tuple[IPv6Network, ...] = field(default=())


class MnDatapath:
    def __init__(self, ipr: AsyncIPRoute, cfg: MnConfig) -> None:
        if len(cfg.uplinks) > MAX_UPLINKS:
            raise KernelConfigError("uplinks", len(cfg.uplinks), f"at most {MAX_UPLINKS}")
        self._ipr = ipr
        self._cfg = cfg
        self._tunnel = Seg6Tunnel(ipr)
        self._uplinks = {u.name: _Uplink(u, k) for k, u in enumerate(cfg.uplinks, start=1)}
        self._prefixes: tuple[IPv6Network, ...] = cfg.home_prefixes
        self._hoa_port_index: int | None = None
        self._lock = asyncio.Lock()  # one reconfiguration at a time

    # --- set up --------------------------------------------------------------------------------

    async def start(self) -> None:
        async with self._lock:
            await self._sweep()  # what a crashed run left, e.g. the decap of a CoA now gone
            sysctl.set_conf("all", "forwarding", 1)
            await nft.load(nft.FilterSpec.for_mn([], table=NFT_TABLE))
            await ensure_rule(self._ipr, MH_DIVERT_RULE)
            await ensure_rule(self._ipr, Rule(LOCAL_RULE_PREF, RT_TABLE_LOCAL))
            await remove_rule(self._ipr, Rule(0, RT_TABLE_LOCAL))
            await self._ensure_hoa_port()

    async def hoa_port_changed(self, index: int) -> None:
        """The HoA port appeared or was re-created (a new ifindex): set it up again."""
        async with self._lock:
            if index != self._hoa_port_index:
                await self._ensure_hoa_port()

    async def _ensure_hoa_port(self) -> None:
        port = self._cfg.bridge.hoa_port
        try:
            index = await ifindex(self._ipr, port)
        except KernelConfigError:
            log.warning("no HoA port %s yet: applications get no route until it appears", port)
            self._hoa_port_index = None
            return
        primary = self._cfg.home.primary_hoa
        sysctl.set_conf(port, "accept_ra", 0)
        await request(
            describe("addr replace", address=f"{primary}/128", dev=port, flags="nodad"),
            self._ipr.addr(
                "replace",
                index=index,
                address=str(primary),
                prefixlen=128,
                family=socket.AF_INET6,
                flags=IFA_F_NODAD,
            ),
        )
        await set_permanent(self._ipr, FAKE_GATEWAY, FAKE_GATEWAY_MAC, port)
        await routes.set_route(
            self._ipr, DEFAULT, port, gateway=FAKE_GATEWAY, metric=APP_ROUTE_METRIC
        )
        self._hoa_port_index = index
        log.info("Primary HoA %s on %s, applications routed into OVS", primary, port)

    async def update(self, info: UplinkInfo, kernel_index: int | None) -> None:
        """Converge uplink `info.name` on its kernel port `kernel_index` (None: gone)."""
        async with self._lock:
            u = self._uplinks[info.name]
            if kernel_index is None:
                u.index = None  # the device went away with its routes and addresses
                await self._set_coa(u, None)
                u.router = None
                return
            if u.index != kernel_index:
                # A new device: routes on the old one are gone with it; redo everything.
                await self._set_coa(u, None)
                u.router = None
                await self._static(u)
                u.index = kernel_index
            if info.coa != u.coa:
                await self._set_coa(u, info.coa)
            if info.router != u.router:
                await self._set_router(u, info.router)

    async def set_prefixes(self, prefixes: tuple[IPv6Network, ...]) -> None:
        """The home prefixes changed (a Mobile Prefix Advertisement)."""
        async with self._lock:
            self._prefixes = prefixes
            for u in self._uplinks.values():
                if u.index is not None:
                    await self._prefix_routes(u)

    async def _static(self, u: _Uplink) -> None:
        kp = u.cfg.kernel_port
        sysctl.set_conf(kp, "accept_ra", 2)  # forwarding=1 ignores RAs unless accept_ra=2
        sysctl.set_conf(kp, "autoconf", 1)
        await set_permanent(self._ipr, FAKE_GATEWAY, FAKE_GATEWAY_MAC, kp)
        await self._tunnel.set_encap(DEFAULT, self._cfg.home.agent, kp, table=ENCAP_TABLE + u.k)
        u.prefixes = ()
        await self._prefix_routes(u)
        log.info("uplink %s: tunnel to the HA via %s set up", u.cfg.name, kp)

    async def _prefix_routes(self, u: _Uplink) -> None:
        kp = u.cfg.kernel_port
        new, old = set(self._prefixes), set(u.prefixes)
        for p in sorted(new - old):
            await routes.set_route(self._ipr, p, kp, gateway=FAKE_GATEWAY, table=DOWN_TABLE + u.k)
            await ensure_rule(self._ipr, _encap_rule(u, p))
        for p in sorted(old - new):
            await routes.del_route(self._ipr, p, table=DOWN_TABLE + u.k)
            await remove_rule(self._ipr, _encap_rule(u, p))
        u.prefixes = self._prefixes

    async def _set_coa(self, u: _Uplink, coa: IPv6Address | None) -> None:
        old = u.coa
        if old == coa:
            return
        if old is not None:
            await self._tunnel.del_decap(old)
            await remove_rule(self._ipr, _router_rule(u, old))
            await nft.set_own(NFT_TABLE, remove=[old])
        if coa is not None:
            await self._tunnel.add_decap(coa, u.cfg.kernel_port, DOWN_TABLE + u.k, divert_mh=True)
            await ensure_rule(self._ipr, _router_rule(u, coa))
            await nft.set_own(NFT_TABLE, add=[coa])
        u.coa = coa
        log.info("uplink %s: CoA %s", u.cfg.name, coa)

    async def _set_router(self, u: _Uplink, router: IPv6Address | None) -> None:
        if router is None:
            await routes.del_route(self._ipr, DEFAULT, table=ROUTER_TABLE + u.k)
        else:
            await routes.set_route(
                self._ipr, DEFAULT, u.cfg.kernel_port, gateway=router, table=ROUTER_TABLE + u.k
            )
        u.router = router
        log.info("uplink %s: default router %s", u.cfg.name, router)

    # --- tear down -----------------------------------------------------------------------------

    async def stop(self) -> None:
        """Remove everything `start` and `update` made (missing pieces are not errors)."""
        async with self._lock:
            await self._sweep()
            for u in self._uplinks.values():
                with contextlib.suppress(KernelConfigError):  # the port may be gone already
                    await del_neigh(self._ipr, FAKE_GATEWAY, u.cfg.kernel_port)
                u.index, u.coa, u.router, u.prefixes = None, None, None, ()
            await self._remove_hoa_port()
            await remove_rule(self._ipr, MH_DIVERT_RULE)
            await ensure_rule(self._ipr, Rule(0, RT_TABLE_LOCAL))
            await remove_rule(self._ipr, Rule(LOCAL_RULE_PREF, RT_TABLE_LOCAL))
            await nft.unload(NFT_TABLE)
            log.info("kernel data path removed")

    async def _remove_hoa_port(self) -> None:
        await routes.del_route(self._ipr, DEFAULT, table=RT_TABLE_MAIN, metric=APP_ROUTE_METRIC)
        port = self._cfg.bridge.hoa_port
        try:
            index = await ifindex(self._ipr, port)
        except KernelConfigError:
            return
        await del_neigh(self._ipr, FAKE_GATEWAY, port)
        primary = self._cfg.home.primary_hoa
        if any(a.address == primary for a in await get_addrs(self._ipr, index)):
            await request(
                describe("addr del", address=f"{primary}/128", dev=port),
                self._ipr.addr(
                    "del",
                    index=index,
                    address=str(primary),
                    prefixlen=128,
                    family=socket.AF_INET6,
                ),
                ok_errnos=ENOENT_LIKE,
            )
        self._hoa_port_index = None

    async def _sweep(self) -> None:
        """Remove every rule and route of the agent's tables, whoever added them and whatever
        addresses they name (the decap table and its rules are the agent's alone on an MN)."""
        tables = {DECAP_TABLE}
        prefs = {DECAP_RULE_PREF}
        for u in self._uplinks.values():
            tables |= {ROUTER_TABLE + u.k, ENCAP_TABLE + u.k, DOWN_TABLE + u.k}
            prefs |= {ENCAP_RULE_PREF + u.k, ROUTER_RULE_PREF + u.k}
        for rule in await list_rules(self._ipr):
            if rule.table in tables and rule.priority in prefs:
                await remove_rule(self._ipr, rule)
        for table in sorted(tables):
            await self._flush(table)
        # (the nft table is replaced whole by `start` and removed whole by `stop`)

    async def _flush(self, table: int) -> None:
        for r in await routes.list_routes(self._ipr, table):
            await routes.del_route(self._ipr, r.dst, table=table, metric=r.priority)


def _encap_rule(u: _Uplink, prefix: IPv6Network) -> Rule:
    return Rule(ENCAP_RULE_PREF + u.k, ENCAP_TABLE + u.k, src=prefix, iif=u.cfg.kernel_port)


def _router_rule(u: _Uplink, coa: IPv6Address) -> Rule:
    return Rule(ROUTER_RULE_PREF + u.k, ROUTER_TABLE + u.k, src=IPv6Network(coa))
