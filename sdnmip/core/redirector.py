"""Data Flow Redirector: which Home Address a new flow uses (patent Figure 6 and Figure 5).

Owns: the controller's copy of the Home Address Table (`ControllerHoaTable`: the Primary HoA, the
HoAs the controller holds in table order, each with the uplink its HA binding points at and the
uplink we asked for, and the spare pool the agent publishes ahead of time) and the pure choice
of a HoA for a new flow (`choose_outgoing`, `choose_incoming`). The caller applies the returned
`Assignment` (claim, bind) and tells the agent.
Must not: build OpenFlow messages, talk to the agent, choose uplinks (that is the policy engine,
sdnmip/core/policy_api.py), do I/O or read clocks.

Figure 6 as implemented (outgoing flow to correspondent c, uplink u chosen by the policy):
1. Scan the held HoAs in table order, the Primary last (PrimaryUse.AVOID: "when a different Home
   Address is available, avoid using the Primary") or never (PrimaryUse.STRICT: "do not use the
   Primary for Mobile Node initiated flows"). Take the first HoA that no live flow to c uses.
   The patent's flowchart walks the table from its last entry back to the first; the project's
   contract (docs/architecture.md) says "first in table order, Primary avoided". Both put the
   Primary last; they differ only in which dynamic HoA is reused first, which changes nothing
   observable, so we follow the contract.
2. One binding per HoA (RFC 6275 §9.1: the HA keeps one care-of address per home address), so a
   HoA carrying live flows is reusable only if it is bound (or being bound) at u; otherwise the
   new flow would drag the other flows along or arrive on another uplink than it leaves by.
   A HoA without live flows (the idle Primary, a just-claimed spare) fits any u: it is re-bound.
3. If no held HoA fits, claim a spare from the pool the agent published (one already bound at u
   if there is one, so no re-bind is needed). The claim is synchronous: the new flow never waits
   for DAD or a BU round trip. A spare bound elsewhere is used at once via u (the HA accepts the
   reverse tunnel from any care-of address) and re-bound to u.
4. Pool exhausted: never block. Reuse the held HoA that costs least, in this order: not reserved
   by an own_hoa flow (breaking a "movable alone" promise is worse than anything below), not the
   Primary (STRICT only), already at u, fewest flows to c, fewest flows, table order. The flow is
   marked `shared` (it may share a HoA with another flow to c, so it cannot be moved alone) and
   it follows its HoA's uplink when the HoA already carries flows elsewhere.

Moving a flow moves its HoA, and with it every flow on that HoA: the correspondents already know
the HoA and their transport connections are bound to it, so a flow cannot change HoA mid-life.
Figure 6 lets flows to *different* correspondents share a HoA (few HoAs, few bindings, few DADs),
so moving one flow may move flows to other correspondents too. Flows that must be movable
alone ask for their own HoA: `hoa_per_flow` (config, every MN-initiated flow) or
`Decision.own_hoa` (one flow, from a policy rule). Such a flow always takes a spare from the pool
and reserves its HoA, so no later flow joins it. The price is one HA binding per flow: the pool
must be refilled at the rate flows start (a standard HA spends about 1 s of DAD per new HoA), and
each flow end costs a deregistration BU. Use it for few long flows (calls, video), not browsing.
Cost: steps 1-3 are O(number of held HoAs) with O(1) index lookups (per-CN multiset of HoAs, per
HoA flow count), and O(1) when c already uses every dynamic HoA; the pool-exhausted fallback is
also O(held HoAs). HoAs come only from the pool, which the HA refills at DAD speed, so the number
held stays near the pool size plus the busiest correspondent's concurrent flows.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from ipaddress import IPv6Address
from typing import Any

from sdnmip.core.flows import FlowTable


class PrimaryUse(enum.Enum):
    """How MN-initiated flows may use the Primary HoA (patent, text beside Figure 6)."""

    AVOID = "avoid"  # use it only when no other held HoA fits
    STRICT = "strict"  # never, unless the pool is exhausted and nothing else is held


@dataclass(slots=True)
class HoaRecord:
    """One held Home Address as the controller sees it."""

    addr: IPv6Address
    primary: bool = False
    bound: str | None = None  # uplink the HA binding points at (last report from the agent)
    target: str | None = None  # uplink we want it at; differs from `bound` while a BU is pending


@dataclass(frozen=True, slots=True)
class Assignment:
    """The redirector's answer for one new flow."""

    hoa: IPv6Address
    uplink: str  # where the flow goes (the logic sends by the HoA's binding until the BA)
    claimed: bool = False  # taken from the spare pool: tell the agent
    rebind: bool = False  # the HoA must be (re)bound to `uplink`
    shared: bool = False  # placed by the pool-exhausted fallback


class HoaTableError(ValueError):
    """A request names a Home Address the table cannot act on."""


class ControllerHoaTable:
    """Primary first, then held dynamic HoAs in claim order, plus the spare pool."""

    def __init__(self, primary: IPv6Address, primary_bound: str | None = None) -> None:
        self.primary = primary
        self._held: dict[IPv6Address, HoaRecord] = {
            primary: HoaRecord(primary, primary=True, bound=primary_bound, target=primary_bound)
        }
        # Spares by the uplink they are bound at (None: unknown), each an insertion-ordered set.
        self._spares: dict[IPv6Address, str | None] = {}
        self._spares_at: dict[str | None, dict[IPv6Address, None]] = {}

    # -- held -----------------------------------------------------------------------------------

    def held(self) -> Iterator[HoaRecord]:
        """Held HoAs in table order (the Primary first)."""
        return iter(self._held.values())

    def __len__(self) -> int:
        return len(self._held)

    def record(self, hoa: IPv6Address) -> HoaRecord | None:
        return self._held.get(hoa)

    def is_held(self, hoa: IPv6Address) -> bool:
        return hoa in self._held

    def claim(self, hoa: IPv6Address) -> HoaRecord:
        """Take a spare into the table (at its end). The caller tells the agent."""
        if hoa not in self._spares:
            raise HoaTableError(f"{hoa} is not a spare Home Address")
        bound = self._pop_spare(hoa)
        rec = HoaRecord(hoa, bound=bound, target=bound)
        self._held[hoa] = rec
        return rec

    def adopt(self, hoa: IPv6Address) -> HoaRecord:
        """Hold a HoA that live flows already use (flows adopted from the switch after a
        restart: the previous controller claimed it after its last snapshot). It starts with
        its binding unknown (`bound` and `target` None until the agent reports it; the flows
        then follow it), even if it is still listed as a spare: that uplink predates the flow,
        which may have re-bound it."""
        rec = self._held.get(hoa)
        if rec is not None:
            return rec
        if hoa in self._spares:
            self._pop_spare(hoa)
        rec = self._held[hoa] = HoaRecord(hoa)
        return rec

    def release(self, hoa: IPv6Address) -> None:
        """Drop a dynamic HoA from the table. The Primary is never freed (patent claim 9)."""
        if hoa == self.primary:
            raise HoaTableError("the Primary Home Address is never released")
        if self._held.pop(hoa, None) is None:
            raise HoaTableError(f"{hoa} is not held")

    def set_bound(self, hoa: IPv6Address, uplink: str | None) -> bool:
        """The agent reports the binding of `hoa` now points at `uplink`; False if unknown HoA."""
        rec = self._held.get(hoa)
        if rec is not None:
            rec.bound = uplink
            if rec.target is None:
                rec.target = uplink
            return True
        if hoa in self._spares:
            self._pop_spare(hoa)
            self._add_spare(hoa, uplink)
            return True
        return False

    # -- spares ---------------------------------------------------------------------------------

    def spares(self) -> Mapping[IPv6Address, str | None]:
        return self._spares

    def set_pool(self, spares: Iterable[tuple[IPv6Address, str | None]]) -> None:
        """Replace the spare list with the agent's latest. HoAs already held are not spares."""
        self._spares.clear()
        self._spares_at.clear()
        for hoa, uplink in spares:
            if hoa not in self._held and hoa not in self._spares:
                self._add_spare(hoa, uplink)

    def pick_spare(self, uplink: str) -> tuple[IPv6Address, str | None] | None:
        """The first spare bound at `uplink`, else the first spare of all; None if exhausted."""
        at = self._spares_at.get(uplink)
        if at:
            hoa = next(iter(at))
            return hoa, uplink
        for hoa, bound in self._spares.items():
            return hoa, bound
        return None

    def _add_spare(self, hoa: IPv6Address, uplink: str | None) -> None:
        self._spares[hoa] = uplink
        self._spares_at.setdefault(uplink, {})[hoa] = None

    def _pop_spare(self, hoa: IPv6Address) -> str | None:
        uplink = self._spares.pop(hoa)
        at = self._spares_at[uplink]
        del at[hoa]
        if not at:
            del self._spares_at[uplink]
        return uplink

    # -- persistence ----------------------------------------------------------------------------

    def to_dict(self) -> dict[str, Any]:
        return {
            "primary": str(self.primary),
            "held": [
                {"hoa": str(r.addr), "bound": r.bound, "target": r.target}
                for r in self._held.values()
            ],
            "spares": [[str(h), u] for h, u in self._spares.items()],
        }

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> ControllerHoaTable:
        table = cls(IPv6Address(d["primary"]))
        for row in d["held"]:
            hoa = IPv6Address(row["hoa"])
            rec = table._held.get(hoa)
            if rec is None:
                rec = table._held[hoa] = HoaRecord(hoa)
            rec.bound, rec.target = row["bound"], row["target"]
        table.set_pool((IPv6Address(h), u) for h, u in d["spares"])
        return table


def choose_outgoing(
    hoas: ControllerHoaTable,
    flows: FlowTable,
    cn: IPv6Address,
    uplink: str,
    *,
    primary_use: PrimaryUse,
    own_hoa: bool = False,
    pin: IPv6Address | None = None,
) -> Assignment:
    """Figure 6 (see the module docstring): the HoA and uplink for a new flow to `cn`."""
    if pin is not None:
        pinned = _pinned(hoas, flows, cn, uplink, pin)
        if pinned is not None:
            return pinned
    if not own_hoa:
        used = flows.hoas_used_by(cn)
        # O(1) shortcut: when cn already uses every dynamic HoA (many flows to one server),
        # skip the scan. Otherwise each HoA skipped is used by cn or bound elsewhere.
        if len(used) - (hoas.primary in used) < len(hoas) - 1:
            for rec in hoas.held():
                if not rec.primary and _fits(rec, flows, used, uplink):
                    return _reuse(rec, flows, uplink)
        primary = hoas.record(hoas.primary)
        if (
            primary_use is PrimaryUse.AVOID
            and primary is not None
            and _fits(primary, flows, used, uplink)
        ):
            return _reuse(primary, flows, uplink)
    spare = hoas.pick_spare(uplink)
    if spare is not None:
        hoa, bound = spare
        return Assignment(hoa, uplink, claimed=True, rebind=bound != uplink)
    return _fallback(hoas, flows, cn, uplink, primary_use)


def choose_incoming(
    hoas: ControllerHoaTable, flows: FlowTable, hoa: IPv6Address, uplink: str
) -> Assignment:
    """Figure 5: an incoming new flow keeps the HoA it arrived on.

    A HoA already carrying flows keeps its uplink (moving it would move them); an idle one goes
    where the policy says, re-bound if needed.
    """
    rec = hoas.record(hoa)
    if rec is None:
        raise HoaTableError(f"{hoa} is not a held Home Address")
    return _reuse(rec, flows, uplink)


def _fits(rec: HoaRecord, flows: FlowTable, used: Mapping[IPv6Address, int], uplink: str) -> bool:
    if rec.addr in used or flows.is_reserved(rec.addr):
        return False
    return flows.hoa_flow_count(rec.addr) == 0 or rec.target == uplink


def _reuse(rec: HoaRecord, flows: FlowTable, uplink: str, shared: bool = False) -> Assignment:
    if flows.hoa_flow_count(rec.addr) > 0 and rec.target is not None:
        return Assignment(rec.addr, rec.target, shared=shared)
    return Assignment(rec.addr, uplink, rebind=rec.target != uplink, shared=shared)


def _pinned(
    hoas: ControllerHoaTable, flows: FlowTable, cn: IPv6Address, uplink: str, pin: IPv6Address
) -> Assignment | None:
    """A policy rule named the HoA. Honoured if the MN holds it or has it as a spare."""
    rec = hoas.record(pin)
    shared = cn in flows.cns_on_hoa(pin)
    if rec is not None:
        return _reuse(rec, flows, uplink, shared=shared)
    spares = hoas.spares()
    if pin in spares:
        return Assignment(pin, uplink, claimed=True, rebind=spares[pin] != uplink)
    return None


def _fallback(
    hoas: ControllerHoaTable, flows: FlowTable, cn: IPv6Address, uplink: str, use: PrimaryUse
) -> Assignment:
    used = flows.hoas_used_by(cn)
    strict = use is PrimaryUse.STRICT
    best: HoaRecord | None = None
    best_key: tuple[bool, bool, bool, int, int, int] | None = None
    for order, rec in enumerate(hoas.held()):
        n = flows.hoa_flow_count(rec.addr)
        key = (
            flows.is_reserved(rec.addr),
            strict and rec.primary,
            n > 0 and rec.target != uplink,
            used.get(rec.addr, 0),
            n,
            order,
        )
        if best_key is None or key < best_key:
            best, best_key = rec, key
    if best is None:  # the Primary is always held, so this is a bug
        raise AssertionError("Home Address Table has no entry")
    return _reuse(best, flows, uplink, shared=True)
