"""The HA's kernel data plane: set up on start, bindings while running, removed on a clean stop.

Owns (docs/datapath.md "HA recipe", docs/home_agent.md):
- setup: forwarding=1, proxy_ndp=1 and proxy_delay=0 on the home link (previous values kept and
  restored on stop); the reverse-tunnel decapsulation (seg6local End.DT6 for the HA address in
  table 250, selected by "to <HA> ipproto 41", `local` moved after it); the fwmark rule that
  delivers diverted tunnelled packets locally; the `inet sdnmip_ha` nftables table; and the
  removal of routes and proxy entries a crashed HA left behind (tagged RTPROT_SDNMIP_HA).
- bindings: `HoA/128 encap seg6 mode encap.red segs <CoA>` (one replace moves a binding), proxy
  ND entries, and the `bindings` set of the RFC 6275 §10.4.5 check, changed in batches
  (`nlbatch`). After a move the old (CoA, HoA) pair stays accepted for `grace` seconds: packets
  the MN reverse-tunnelled from the old CoA just before it moved are still in flight (datapath.md
  measured 100-160 TCP retransmits per move without the grace, none with 1-2 s).
- the nft table: drops the redirects of a one-armed router and the parameter problems the kernel
  (without MIPv6) sends for every packet carrying a Home Address option; diverts up to
  `DIVERT_RATE` reverse-tunnelled packets per second whose (outer source, inner source) is not a
  binding to the HA's protocol-41 socket (so the HA can send a Binding Error for an unbound HoA)
  and drops the rest.

Must not: decide what is bound (the cache does); touch anything it did not create.
"""

from __future__ import annotations

import heapq
import logging
from dataclasses import dataclass
from ipaddress import IPv6Address

from sdnmip.home_agent.cache import InstallBinding
from sdnmip.home_agent.nlbatch import Failure, RouteBatch, SetBatch
from sdnmip.kernel import nft, sysctl
from sdnmip.kernel.constants import MH_DIVERT_MARK, RT_TABLE_MAIN
from sdnmip.kernel.errors import KernelRequestError
from sdnmip.kernel.netlink import AsyncIPRoute, ifindex
from sdnmip.kernel.rules import Rule, ensure_rule, list_rules, remove_rule
from sdnmip.kernel.tunnel import MH_DIVERT_RULE, Seg6Tunnel

log = logging.getLogger("sdnmip.ha")

NFT_TABLE = "sdnmip_ha"
DIVERT_RATE = 50  # unbound reverse-tunnelled packets per second handed to the daemon
DEFAULT_GRACE = 2.0  # seconds an old (CoA, HoA) pair stays accepted after a move
ENOMEM_RETRIES = 50  # the kernel's per-CPU pool refills in milliseconds (see `commit`)


def render_table(ha: IPv6Address, check_reverse_tunnel: bool) -> str:
    """The HA's nftables table (`nft -f` text)."""
    lines = [
        f"table inet {NFT_TABLE} {{",
        f"\tset own {{\n\t\ttype ipv6_addr\n\t\telements = {{ {ha} }}\n\t}}",
        "\tset bindings {\n\t\ttypeof ip6 saddr . @nh,384,128\n\t}",
        "\tchain output {\n\t\ttype filter hook output priority 0; policy accept;",
        '\t\ticmpv6 type nd-redirect counter drop comment "redirect"',
        # The kernel (no CONFIG_IPV6_MIP6) answers any packet with a Home Address option (a BU,
        # an MPS) with parameter problem code 2; the quoted packet's first next header is 60.
        "\t\tip6 saddr @own icmpv6 type parameter-problem icmpv6 code 2 @th,112,8 60 "
        'counter drop comment "pp-hao"',
        "\t}",
    ]
    if check_reverse_tunnel:
        unbound = "ip6 daddr @own ip6 nexthdr 41 ip6 saddr . @nh,384,128 != @bindings"
        lines += [
            "\tchain prerouting {\n\t\ttype filter hook prerouting priority 0; policy accept;",
            f"\t\t{unbound} limit rate {DIVERT_RATE}/second counter "
            f'meta mark set {MH_DIVERT_MARK:#x} accept comment "rt-divert"',
            f'\t\t{unbound} counter drop comment "rt-check"',
            "\t}",
        ]
    lines.append("}")
    return "\n".join(lines) + "\n"


@dataclass(frozen=True, slots=True)
class Setup:
    """What `DataPlane.setup` changed, to undo on stop."""

    sysctls: tuple[tuple[str, str, str, str], ...]  # (section, dev, key, previous value)
    moved_local_rule: bool


class DataPlane:
    """The kernel state of one HA (see the module docstring)."""

    def __init__(
        self, home_link: str, ha: IPv6Address, *, tunnel_check: bool, grace: float = DEFAULT_GRACE
    ) -> None:
        self.home_link = home_link
        self.ha = ha
        self.tunnel_check = tunnel_check
        self.grace = grace
        self.oif = 0
        self.mac = b""
        self._routes: RouteBatch | None = None
        self._set: SetBatch | None = None
        self._setup: Setup | None = None
        self._retire: list[tuple[float, int, IPv6Address, IPv6Address]] = []
        self._retire_gen: dict[tuple[IPv6Address, IPv6Address], int] = {}
        self._gen = 0
        self.enomem_retries = 0

    # -------------------------------------------------------------------------- setup
    async def setup(self, ipr: AsyncIPRoute) -> list[str]:
        """Configure the kernel; returns notes for the log (leftovers removed)."""
        self.oif = await ifindex(ipr, self.home_link)
        links = await ipr.link("get", index=self.oif)
        mac = links[0].get("IFLA_ADDRESS") if links else None
        self.mac = bytes.fromhex(mac.replace(":", "")) if mac else b""
        addrs = await ipr.addr("dump", family=10, index=self.oif)
        mine = {IPv6Address(a.get("IFA_ADDRESS")) async for a in addrs}
        if self.ha not in mine:
            raise KernelRequestError(
                f"check address {self.ha} on {self.home_link}",
                "the HA address is not configured on the home link (ha.yaml: address)",
            )
        changed = []
        for section, dev, key, value in (
            ("conf", "all", "forwarding", "1"),
            ("conf", self.home_link, "forwarding", "1"),
            ("conf", self.home_link, "proxy_ndp", "1"),
            ("neigh", self.home_link, "proxy_delay", "0"),
        ):
            get = sysctl.get_conf if section == "conf" else sysctl.get_neigh
            put = sysctl.set_conf if section == "conf" else sysctl.set_neigh
            old = get(dev, key)
            if old != value:
                put(dev, key, value)
                changed.append((section, dev, key, old))
        had_local_at_0 = Rule(0, 255) in await list_rules(ipr)
        await Seg6Tunnel(ipr).add_decap(
            self.ha, self.home_link, RT_TABLE_MAIN, divert_mh=self.tunnel_check
        )
        self._setup = Setup(tuple(changed), moved_local_rule=had_local_at_0)
        await nft.run_nft(
            f"table inet {NFT_TABLE}\ndelete table inet {NFT_TABLE}\n"
            + render_table(self.ha, self.tunnel_check)
        )
        self._routes = RouteBatch(self.oif)
        self._set = SetBatch(NFT_TABLE)
        notes = []
        stale_routes = self._routes.our_routes()
        stale_proxies = self._routes.our_proxies()
        for hoa in stale_routes:
            self._routes.delete_route(hoa)
        for addr in stale_proxies:
            self._routes.proxy(addr, add=False)
        if stale_routes or stale_proxies:
            failures = self._routes.commit()
            notes.append(
                f"removed {len(stale_routes)} binding routes and {len(stale_proxies)} proxy "
                "entries left by a previous HA"
                + (f" ({len(failures)} failed: {failures[0]})" if failures else "")
            )
        return notes

    async def teardown(self, ipr: AsyncIPRoute) -> None:
        """Remove what `setup` and the bindings created (the persisted cache stays)."""
        if self._routes is not None:
            for hoa in self._routes.our_routes():
                self._routes.delete_route(hoa)
            for addr in self._routes.our_proxies():
                self._routes.proxy(addr, add=False)
            self._routes.commit()
            self._routes.close()
            self._routes = None
        if self._set is not None:
            self._set.close()
            self._set = None
        await nft.unload(NFT_TABLE)
        tunnel = Seg6Tunnel(ipr)
        await tunnel.del_decap(self.ha)
        if self.tunnel_check:
            await remove_rule(ipr, MH_DIVERT_RULE)
        if self._setup is not None:
            if self._setup.moved_local_rule:
                # Put `lookup local` back at priority 0 (add first: never a moment without it).
                await ensure_rule(ipr, Rule(0, 255))
                await remove_rule(ipr, Rule(1000, 255))
            for section, dev, key, old in reversed(self._setup.sysctls):
                put = sysctl.set_conf if section == "conf" else sysctl.set_neigh
                put(dev, key, old)
            self._setup = None

    # -------------------------------------------------------------------------- bindings
    @property
    def routes(self) -> RouteBatch:
        assert self._routes is not None, "DataPlane.setup has not run"
        return self._routes

    def install(self, now: float, action: InstallBinding) -> None:
        hoa, coa, old_coa = action.home_address, action.careof, action.old_careof
        self.routes.replace_route(hoa, coa)
        if action.new:
            for a in action.proxied:
                self.routes.proxy(a, add=True, subject=hoa)
        if self._set is not None and self.tunnel_check:
            self._set.add(coa, hoa)
            self._retire_gen.pop((coa, hoa), None)  # back to a CoA still in its grace period
            if old_coa is not None and old_coa != coa:
                self._gen += 1
                self._retire_gen[(old_coa, hoa)] = self._gen
                heapq.heappush(self._retire, (now + self.grace, self._gen, old_coa, hoa))

    def remove(self, hoa: IPv6Address, coa: IPv6Address, proxied: tuple[IPv6Address, ...]) -> None:
        self.routes.delete_route(hoa)
        for a in proxied:
            self.routes.proxy(a, add=False, subject=hoa)
        if self._set is not None and self.tunnel_check:
            self._set.delete(coa, hoa)

    def next_retire(self) -> float | None:
        return self._retire[0][0] if self._retire else None

    def retire(self, now: float) -> None:
        """Stop accepting old (CoA, HoA) pairs whose grace period is over."""
        heap = self._retire
        while heap and heap[0][0] <= now:
            _, gen, coa, hoa = heapq.heappop(heap)
            if self._retire_gen.get((coa, hoa)) == gen:
                del self._retire_gen[(coa, hoa)]
                if self._set is not None:
                    self._set.delete(coa, hoa)

    def pending(self) -> int:
        return len(self.routes) + (len(self._set) if self._set is not None else 0)

    def commit(self) -> tuple[list[Failure], list[Failure]]:
        """Send queued changes: (failures to retry shortly, permanent failures)."""
        failures = self.routes.commit()
        if self._set is not None:
            failures += self._set.commit()
        retry = [f for f in failures if f.retriable]
        if retry:
            self.enomem_retries += 1
            self.routes.requeue(retry)
        return retry, [f for f in failures if not f.retriable]
