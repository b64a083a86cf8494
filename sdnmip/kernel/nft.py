"""One nftables table per daemon: drop the kernel's spurious ICMPv6 and check reverse tunnels.

Owns: rendering the table from a `FilterSpec` (pure, unit-tested), loading it atomically with
`nft -f -` (the table is replaced in one transaction), removing it, updating its two sets (the
daemon's own addresses, and the HA's CoA·HoA bindings) and reading its per-rule counters.
Must not: decide which addresses or bindings exist (the daemons do).

The rules (docs/datapath.md explains each):
- `pp-hao`: the HA kernel, lacking MIPv6, answers a Binding Update (Destination Options with the
  Home Address option, then a Mobility Header) with ICMPv6 parameter problem code 2. Matched on the
  quoted packet: first next header 60 (@th,112,8) whose own next header (@th,384,8) is 135 or
  58 (a Mobile Prefix Solicitation also carries the Home Address option, RFC 6275 §11.4.2).
- `pp-rh2`: the MN kernel answers a Binding Acknowledgement carrying a type 2 routing header with
  parameter problem code 0: quoted next header 43, then 135 or 58 (a Mobile Prefix Advertisement
  also comes with a type 2 routing header, RFC 6275 §11.4.3), routing type 2 (@th,400,8).
- `redirect`: the OVS hairpin (MN) and a one-armed HA make the kernel send redirects.
- `mh-divert` (MN): tunnelled packets to our addresses whose inner next header (@nh,368,8) is 135
  get MH_DIVERT_MARK, so the fwmark rule delivers them to a protocol-41 raw socket undecapsulated.
- `rt-check` (HA, RFC 6275 §10.4.5): a reverse-tunnelled packet to the HA whose outer source is
  not the registered CoA of its inner source (@nh,384,128, valid because the outer header carries
  no extension header) is dropped. Set elements are `<coa> . <hoa as a 128-bit integer>`: nft
  types a raw payload as a plain integer.
"""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import Iterable
from dataclasses import dataclass
from ipaddress import IPv6Address
from typing import Any

from sdnmip.kernel.addr import AddrLike, v6addr
from sdnmip.kernel.constants import MH_DIVERT_MARK
from sdnmip.kernel.errors import KernelConfigError, KernelRequestError

NFT = "nft"
FAMILY = "inet"
_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9_]{0,31}$")


@dataclass(frozen=True, slots=True)
class FilterSpec:
    """What one daemon's table holds."""

    table: str
    own: frozenset[IPv6Address]
    drop_redirects: bool = True
    drop_pp_hao: bool = False
    drop_pp_rh2: bool = False
    divert_tunnelled_mh: bool = False
    check_reverse_tunnel: bool = False

    def __post_init__(self) -> None:
        if not _NAME.match(self.table):
            raise KernelConfigError("table", self.table, "not an nft table name")

    @classmethod
    def for_ha(cls, addresses: Iterable[AddrLike], table: str = "sdnmip_ha") -> FilterSpec:
        """The HA's table: redirects, parameter problems for BUs, reverse-tunnel check."""
        own = frozenset(v6addr("addresses", a) for a in addresses)
        return cls(table, own, drop_pp_hao=True, check_reverse_tunnel=True)

    @classmethod
    def for_mn(cls, coas: Iterable[AddrLike], table: str = "sdnmip_mn") -> FilterSpec:
        """The MN's table: hairpin redirects, parameter problems for BAs, MH diversion."""
        own = frozenset(v6addr("coas", a) for a in coas)
        return cls(table, own, drop_pp_rh2=True, divert_tunnelled_mh=True)


def hoa_int(hoa: IPv6Address) -> str:
    """A HoA written as nft wants a 128-bit raw payload value."""
    return f"0x{int(hoa):032x}"


def _elems(addrs: Iterable[IPv6Address]) -> str:
    return ", ".join(sorted(str(a) for a in addrs))


def render(spec: FilterSpec) -> str:
    """The table as `nft -f` text (without the atomic-replace preamble)."""
    own = f"\t\telements = {{ {_elems(spec.own)} }}\n" if spec.own else ""
    lines = [
        f"table {FAMILY} {spec.table} {{",
        f"\tset own {{\n\t\ttype ipv6_addr\n{own}\t}}",
    ]
    if spec.check_reverse_tunnel:
        lines.append("\tset bindings {\n\t\ttypeof ip6 saddr . @nh,384,128\n\t}")
    out = []
    if spec.drop_redirects:
        out.append('icmpv6 type nd-redirect counter drop comment "redirect"')
    if spec.drop_pp_hao:
        out.append(
            "ip6 saddr @own icmpv6 type parameter-problem icmpv6 code 2 "
            '@th,112,8 60 @th,384,8 { 58, 135 } counter drop comment "pp-hao"'
        )
    if spec.drop_pp_rh2:
        out.append(
            "ip6 saddr @own icmpv6 type parameter-problem icmpv6 code 0 "
            '@th,112,8 43 @th,384,8 { 58, 135 } @th,400,8 2 counter drop comment "pp-rh2"'
        )
    if out:
        lines.append("\tchain output {\n\t\ttype filter hook output priority 0; policy accept;")
        lines.extend(f"\t\t{r}" for r in out)
        lines.append("\t}")
    pre = []
    if spec.divert_tunnelled_mh:
        pre.append(
            f"ip6 daddr @own ip6 nexthdr 41 @nh,368,8 135 counter "
            f'meta mark set {MH_DIVERT_MARK:#x} comment "mh-divert"'
        )
    if spec.check_reverse_tunnel:
        pre.append(
            "ip6 daddr @own ip6 nexthdr 41 ip6 saddr . @nh,384,128 != @bindings "
            'counter drop comment "rt-check"'
        )
    if pre:
        lines.append(
            "\tchain prerouting {\n\t\ttype filter hook prerouting priority 0; policy accept;"
        )
        lines.extend(f"\t\t{r}" for r in pre)
        lines.append("\t}")
    lines.append("}")
    return "\n".join(lines) + "\n"


async def _nft(args: list[str], stdin: str | None, desc: str) -> str:
    proc = await asyncio.create_subprocess_exec(
        NFT,
        *args,
        stdin=asyncio.subprocess.PIPE if stdin is not None else asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await proc.communicate(stdin.encode() if stdin is not None else None)
    if proc.returncode != 0:
        raise KernelRequestError(desc, err.decode().strip() or f"exit {proc.returncode}")
    return out.decode()


async def run_nft(script: str) -> str:
    """Run `nft -f -` with `script` on stdin: one atomic transaction, all or nothing."""
    first = script.strip().splitlines()[0] if script.strip() else ""
    return await _nft(["-f", "-"], script, f"nft -f - ({first} ...)")


async def load(spec: FilterSpec, bindings: Iterable[tuple[AddrLike, AddrLike]] = ()) -> None:
    """Create or atomically replace the table (and fill the bindings set)."""
    script = f"table {FAMILY} {spec.table}\ndelete table {FAMILY} {spec.table}\n" + render(spec)
    elems = [_binding(c, h) for c, h in bindings]
    if elems:
        if not spec.check_reverse_tunnel:
            raise KernelConfigError("bindings", elems[0], "table has no reverse-tunnel check")
        script += f"add element {FAMILY} {spec.table} bindings {{ {', '.join(elems)} }}\n"
    await run_nft(script)


async def unload(table: str) -> None:
    """Remove the table; no error if it is absent."""
    if not _NAME.match(table):
        raise KernelConfigError("table", table, "not an nft table name")
    await run_nft(f"table {FAMILY} {table}\ndelete table {FAMILY} {table}\n")


def _binding(coa: AddrLike, hoa: AddrLike) -> str:
    return f"{v6addr('coa', coa)} . {hoa_int(v6addr('hoa', hoa))}"


def _set_update(table: str, setname: str, add: list[str], remove: list[str]) -> str:
    # nft 1.0.6 has no "destroy element": deleting an absent element fails the transaction.
    # Adding it first (a no-op if present) makes the delete always valid, so updates are idempotent.
    s = ""
    if remove:
        body = ", ".join(remove)
        s += f"add element {FAMILY} {table} {setname} {{ {body} }}\n"
        s += f"delete element {FAMILY} {table} {setname} {{ {body} }}\n"
    if add:
        s += f"add element {FAMILY} {table} {setname} {{ {', '.join(add)} }}\n"
    return s


async def set_own(
    table: str, add: Iterable[AddrLike] = (), remove: Iterable[AddrLike] = ()
) -> None:
    """Add/remove the daemon's own addresses (e.g. a CoA appearing or going) in one transaction."""
    a = [str(v6addr("add", x)) for x in add]
    r = [str(v6addr("remove", x)) for x in remove]
    if a or r:
        await run_nft(_set_update(table, "own", a, r))


async def set_binding(
    table: str, hoa: AddrLike, coa: AddrLike | None, old_coa: AddrLike | None = None
) -> None:
    """Bind `hoa` to `coa` (None = deregister), dropping its `old_coa` element, atomically."""
    add = [_binding(coa, hoa)] if coa is not None else []
    remove = [_binding(old_coa, hoa)] if old_coa is not None else []
    if add or remove:
        await run_nft(_set_update(table, "bindings", add, remove))


async def list_table(table: str) -> list[dict[str, Any]]:
    """`nft -j list table` objects of the table."""
    if not _NAME.match(table):
        raise KernelConfigError("table", table, "not an nft table name")
    # `nft -j -f -` prints nothing for list commands on nft 1.0.6: list on the command line
    out = await _nft(["-j", "list", "table", FAMILY, table], None, f"nft -j list table {table}")
    return list(json.loads(out).get("nftables", []))


async def counters(table: str) -> dict[str, int]:
    """Packets counted by each commented rule of the table, keyed by comment."""
    result: dict[str, int] = {}
    for obj in await list_table(table):
        rule = obj.get("rule")
        if not rule or "comment" not in rule:
            continue
        for expr in rule.get("expr", []):
            if "counter" in expr:
                result[rule["comment"]] = int(expr["counter"]["packets"])
    return result
