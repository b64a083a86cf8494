"""IPv6 policy routing rules (`ip -6 rule`): typed, idempotent ensure/remove.

Owns: the `Rule` value, reading the rule list, adding a rule only if an identical one is absent,
removing one if present, and moving the `local` rule from priority 0 to after the decap rules.
Must not: choose priorities or tables (callers and `sdnmip.kernel.constants` do).
"""

from __future__ import annotations

import socket
from dataclasses import dataclass
from ipaddress import IPv6Network
from typing import Any

from sdnmip.kernel.addr import PrefixLike, v6prefix
from sdnmip.kernel.constants import LOCAL_RULE_PREF, RT_TABLE_LOCAL
from sdnmip.kernel.errors import KernelConfigError
from sdnmip.kernel.netlink import EEXIST, ENOENT_LIKE, AsyncIPRoute, collect, describe, request

FR_ACT_TO_TBL = 1  # linux/fib_rules.h: the only action these helpers use


@dataclass(frozen=True, slots=True)
class Rule:
    """One IPv6 rule: `priority` and `table` always, any of the selectors optionally."""

    priority: int
    table: int
    src: IPv6Network | None = None
    dst: IPv6Network | None = None
    iif: str | None = None
    oif: str | None = None
    ipproto: int | None = None
    dport: int | None = None
    fwmark: int | None = None
    fwmask: int | None = None

    def __post_init__(self) -> None:
        if not 0 <= self.priority < 2**32:
            raise KernelConfigError("priority", self.priority, "must be 0..2^32-1")
        if not 0 < self.table < 2**32:
            raise KernelConfigError("table", self.table, "must be 1..2^32-1")
        if self.ipproto is not None and not 0 <= self.ipproto <= 255:
            raise KernelConfigError("ipproto", self.ipproto, "must be 0..255")
        if self.dport is not None and not 0 < self.dport < 65536:
            raise KernelConfigError("dport", self.dport, "must be 1..65535")
        if self.dport is not None and self.ipproto not in (6, 17, 132, 33):
            raise KernelConfigError("dport", self.dport, "needs ipproto tcp/udp/sctp/dccp")

    @classmethod
    def make(
        cls,
        priority: int,
        table: int,
        *,
        src: PrefixLike | None = None,
        dst: PrefixLike | None = None,
        iif: str | None = None,
        oif: str | None = None,
        ipproto: int | None = None,
        dport: int | None = None,
        fwmark: int | None = None,
        fwmask: int | None = None,
    ) -> Rule:
        """Build a rule from loose input (strings for prefixes), validating every field."""
        return cls(
            priority,
            table,
            v6prefix("src", src) if src is not None else None,
            v6prefix("dst", dst) if dst is not None else None,
            iif,
            oif,
            ipproto,
            dport,
            fwmark,
            fwmask if fwmask is not None or fwmark is None else 0xFFFFFFFF,
        )

    def __str__(self) -> str:
        sel = [f"pref {self.priority}"]
        for name, val in (
            ("from", self.src),
            ("to", self.dst),
            ("iif", self.iif),
            ("oif", self.oif),
            ("ipproto", self.ipproto),
            ("dport", self.dport),
        ):
            if val is not None:
                sel.append(f"{name} {val}")
        if self.fwmark is not None:
            sel.append(f"fwmark {self.fwmark:#x}/{self.fwmask or 0:#x}")
        sel.append(f"lookup {self.table}")
        return " ".join(sel)

    def _nl_kwargs(self) -> dict[str, Any]:
        kw: dict[str, Any] = {
            "family": socket.AF_INET6,
            "priority": self.priority,
            "table": self.table,
            "action": FR_ACT_TO_TBL,
        }
        if self.src is not None:
            kw.update(src=str(self.src.network_address), src_len=self.src.prefixlen)
        if self.dst is not None:
            kw.update(dst=str(self.dst.network_address), dst_len=self.dst.prefixlen)
        if self.iif is not None:
            kw["iifname"] = self.iif
        if self.oif is not None:
            kw["oifname"] = self.oif
        if self.ipproto is not None:
            kw["ip_proto"] = self.ipproto
        if self.dport is not None:
            kw["dport_range"] = f"{self.dport}:{self.dport}"  # pyroute2 encodes "start:end"
        if self.fwmark is not None:
            kw["fwmark"] = self.fwmark
            kw["fwmask"] = self.fwmask if self.fwmask is not None else 0xFFFFFFFF
        return kw


def _from_msg(msg: Any) -> Rule | None:
    """The `Rule` a dump message describes, or None for rules these helpers never make."""
    if msg.get("action") != FR_ACT_TO_TBL:
        return None

    def prefix(attr: str, plen: int) -> IPv6Network | None:
        addr = msg.get(attr)
        return IPv6Network(f"{addr}/{plen}") if addr is not None else None

    dports = msg.get("FRA_DPORT_RANGE")  # "start:end"
    lo, _, hi = (dports or "").partition(":")
    dport = int(lo) if dports and lo == hi else None
    fwmark = msg.get("FRA_FWMARK")
    return Rule(
        priority=msg.get("FRA_PRIORITY") or 0,
        table=msg.get("FRA_TABLE") or msg.get("table"),
        src=prefix("FRA_SRC", msg.get("src_len")),
        dst=prefix("FRA_DST", msg.get("dst_len")),
        iif=msg.get("FRA_IIFNAME"),
        oif=msg.get("FRA_OIFNAME"),
        ipproto=msg.get("FRA_IP_PROTO") or None,
        dport=dport,
        fwmark=fwmark if fwmark else None,
        fwmask=msg.get("FRA_FWMASK") if fwmark else None,
    )


async def list_rules(ipr: AsyncIPRoute) -> list[Rule]:
    """All IPv6 rules of the namespace that look up a table, in kernel order."""
    msgs = await collect("rule dump family=inet6", ipr.rule("dump", family=socket.AF_INET6))
    return [r for r in map(_from_msg, msgs) if r is not None]


async def ensure_rule(ipr: AsyncIPRoute, rule: Rule) -> bool:
    """Add `rule` unless an identical rule exists. Returns True if it was added."""
    if rule in await list_rules(ipr):
        return False
    await request(
        describe("rule add", rule=str(rule)),
        ipr.rule("add", **rule._nl_kwargs()),
        ok_errnos=frozenset({EEXIST}),
    )
    return True


async def remove_rule(ipr: AsyncIPRoute, rule: Rule) -> bool:
    """Delete `rule` if present. Returns True if it was there."""
    if rule not in await list_rules(ipr):
        return False
    await request(
        describe("rule del", rule=str(rule)),
        ipr.rule("del", **rule._nl_kwargs()),
        ok_errnos=ENOENT_LIKE,
    )
    return True


async def move_local_rule(ipr: AsyncIPRoute, priority: int = LOCAL_RULE_PREF) -> None:
    """Put `lookup local` at `priority` (after the decap rules) and drop the pref-0 one.

    The new rule is added before the old one is removed, so local delivery never has a gap.
    """
    await ensure_rule(ipr, Rule(priority, RT_TABLE_LOCAL))
    if priority != 0:
        await remove_rule(ipr, Rule(0, RT_TABLE_LOCAL))
