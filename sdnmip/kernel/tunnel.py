"""The tunnel backend: RFC 2473 IPv6-in-IPv6 encapsulation routes and decapsulation, per address.

Owns: the small interface the HA and the MN agent program tunnels through (`TunnelBackend`) and its
implementation on SRv6 lightweight tunnels (`Seg6Tunnel`), which is what this kernel has (no
ip6tnl). A kernel with ip6tnl could get another implementation of the same interface.
Must not: decide what is bound where (the binding cache / agent do).

Encapsulation is `<prefix> encap seg6 mode encap.red segs <endpoint> dev <dev> table <t>`: with a
single segment, encap.red emits a plain next-header-41 packet without a routing header. The outer
source is the address the kernel selects on <dev> (no per-route source exists; see
docs/datapath.md). Moving a binding is one RTM_NEWROUTE with NLM_F_REPLACE, so there is no
instant without a route. Decapsulation is
`<addr>/128 encap seg6local action End.DT6 table <inner> dev <dev>` in DECAP_TABLE, selected by
"to <addr> ipproto 41" so that everything else sent to <addr> (pings, Mobility Headers) is still
delivered locally.

pyroute2 0.9.7 knows the seg6 modes "inline" and "encap" only and silently encodes any other
mode name as "encap" (which adds an SRH). `_register_encap_red` teaches it the kernel's mode 3
(SEG6_IPTUN_MODE_ENCAP_RED, include/uapi/linux/seg6_iptunnel.h) by adding one entry to its mode
tables; tests read the route back with iproute2 to prove the kernel holds encap.red.
"""

from __future__ import annotations

import socket
from dataclasses import dataclass
from ipaddress import IPv6Address, IPv6Network
from typing import Any, Protocol

from pyroute2.netlink.rtnl.rtmsg import rtmsg

from sdnmip.kernel.addr import AddrLike, PrefixLike, v6addr, v6prefix
from sdnmip.kernel.constants import (
    DECAP_RULE_PREF,
    DECAP_TABLE,
    IPPROTO_IPV6,
    MH_DIVERT_MARK,
    MH_DIVERT_PREF,
    RT_TABLE_LOCAL,
    RT_TABLE_MAIN,
)
from sdnmip.kernel.errors import KernelRequestError
from sdnmip.kernel.netlink import (
    ENOENT_LIKE,
    AsyncIPRoute,
    collect,
    describe,
    ifindex,
    request,
)
from sdnmip.kernel.rules import Rule, ensure_rule, move_local_rule, remove_rule

SEG6_IPTUN_MODE_ENCAP_RED = 3  # include/uapi/linux/seg6_iptunnel.h
ENCAP_RED = "encap.red"
LWTUNNEL_ENCAP_SEG6 = 5
LWTUNNEL_ENCAP_SEG6_LOCAL = 7


def _register_encap_red() -> None:
    hdr: Any = rtmsg.seg6_encap_info.ipv6_sr_hdr
    known = hdr.encapmodes.get(ENCAP_RED)
    if known is not None and known != SEG6_IPTUN_MODE_ENCAP_RED:
        raise RuntimeError(f"pyroute2 maps {ENCAP_RED!r} to {known}, kernel uses 3")
    hdr.encapmodes[ENCAP_RED] = SEG6_IPTUN_MODE_ENCAP_RED
    hdr.r_encapmodes[SEG6_IPTUN_MODE_ENCAP_RED] = ENCAP_RED


_register_encap_red()


@dataclass(frozen=True, slots=True)
class EncapRoute:
    """An encapsulation route as read back from the kernel."""

    prefix: IPv6Network
    endpoint: IPv6Address
    ifindex: int
    table: int


class TunnelBackend(Protocol):
    """What the HA and the MN agent need from a tunnel implementation."""

    async def set_encap(
        self, prefix: PrefixLike, endpoint: AddrLike, dev: str, table: int = RT_TABLE_MAIN
    ) -> None:
        """Make packets to `prefix` (looked up in `table`) leave tunnelled to `endpoint`."""
        ...

    async def del_encap(self, prefix: PrefixLike, table: int = RT_TABLE_MAIN) -> bool:
        """Remove the encapsulation route for `prefix`; False if there was none."""
        ...

    async def add_decap(
        self, addr: AddrLike, dev: str, inner_table: int, *, divert_mh: bool = False
    ) -> None:
        """Decapsulate proto-41 packets sent to `addr`; route the inner packet in `inner_table`."""
        ...

    async def del_decap(self, addr: AddrLike) -> bool:
        """Stop decapsulating for `addr`; False if it was not set up."""
        ...


class Seg6Tunnel:
    """`TunnelBackend` on seg6 encap.red / seg6local End.DT6 (see module docstring)."""

    def __init__(self, ipr: AsyncIPRoute) -> None:
        self._ipr = ipr

    async def set_encap(
        self, prefix: PrefixLike, endpoint: AddrLike, dev: str, table: int = RT_TABLE_MAIN
    ) -> None:
        net = v6prefix("prefix", prefix)
        end = v6addr("endpoint", endpoint)
        oif = await ifindex(self._ipr, dev)
        desc = describe(
            "route replace", dst=net, encap=f"seg6 {ENCAP_RED} segs {end}", dev=dev, table=table
        )
        await request(
            desc,
            self._ipr.route(
                "replace",
                family=socket.AF_INET6,
                **_dst_kwargs(net),
                oif=oif,
                table=table,
                encap={"type": "seg6", "mode": ENCAP_RED, "segs": [str(end)]},
            ),
        )

    async def del_encap(self, prefix: PrefixLike, table: int = RT_TABLE_MAIN) -> bool:
        net = v6prefix("prefix", prefix)
        desc = describe("route del", dst=net, table=table)
        if not any(r.prefix == net for r in await self.list_encaps(table)):
            return False
        await request(
            desc,
            self._ipr.route("del", family=socket.AF_INET6, **_dst_kwargs(net), table=table),
            ok_errnos=ENOENT_LIKE,
        )
        return True

    async def list_encaps(self, table: int = RT_TABLE_MAIN) -> list[EncapRoute]:
        """The seg6 encapsulation routes of `table`."""
        msgs = await collect(
            describe("route dump", table=table),
            self._ipr.route("dump", family=socket.AF_INET6, table=table),
        )
        out = []
        for m in msgs:
            if m.get("RTA_ENCAP_TYPE") != LWTUNNEL_ENCAP_SEG6 or m.get("RTA_TABLE") != table:
                continue
            srh = m.get("RTA_ENCAP").get("SEG6_IPTUNNEL_SRH")
            dst = m.get("RTA_DST") or "::"
            out.append(
                EncapRoute(
                    IPv6Network(f"{dst}/{m['dst_len']}"),
                    IPv6Address(srh["segs"][0]),
                    m.get("RTA_OIF"),
                    table,
                )
            )
        return out

    async def add_decap(
        self, addr: AddrLike, dev: str, inner_table: int, *, divert_mh: bool = False
    ) -> None:
        """Also moves `local` after the decap rule; `divert_mh` adds the fwmark rule that lets
        nft-marked tunnelled Mobility Headers reach a protocol-41 raw socket instead."""
        a = v6addr("addr", addr)
        oif = await ifindex(self._ipr, dev)
        desc = describe(
            "route replace",
            dst=f"{a}/128",
            encap=f"seg6local End.DT6 table {inner_table}",
            dev=dev,
            table=DECAP_TABLE,
        )
        await request(
            desc,
            self._ipr.route(
                "replace",
                family=socket.AF_INET6,
                dst=str(a),
                dst_len=128,
                oif=oif,
                table=DECAP_TABLE,
                encap={"type": "seg6local", "action": "End.DT6", "table": inner_table},
            ),
        )
        await ensure_rule(self._ipr, decap_rule(a))
        if divert_mh:
            await ensure_rule(self._ipr, MH_DIVERT_RULE)
        await move_local_rule(self._ipr)

    async def del_decap(self, addr: AddrLike) -> bool:
        a = v6addr("addr", addr)
        had_rule = await remove_rule(self._ipr, decap_rule(a))
        try:
            await request(
                describe("route del", dst=f"{a}/128", table=DECAP_TABLE),
                self._ipr.route(
                    "del", family=socket.AF_INET6, dst=str(a), dst_len=128, table=DECAP_TABLE
                ),
            )
        except KernelRequestError as exc:
            if exc.errno in ENOENT_LIKE:
                return had_rule
            raise
        return True


def decap_rule(addr: IPv6Address) -> Rule:
    """The rule that sends proto-41 packets for `addr` to the End.DT6 route."""
    return Rule(DECAP_RULE_PREF, DECAP_TABLE, dst=IPv6Network(addr), ipproto=IPPROTO_IPV6)


MH_DIVERT_RULE = Rule(
    MH_DIVERT_PREF, RT_TABLE_LOCAL, ipproto=IPPROTO_IPV6, fwmark=MH_DIVERT_MARK, fwmask=0xFFFFFFFF
)


def _dst_kwargs(net: IPv6Network) -> dict[str, Any]:
    if net.prefixlen == 0:
        return {"dst_len": 0}
    return {"dst": str(net.network_address), "dst_len": net.prefixlen}
