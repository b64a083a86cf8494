"""The Home Address Table (patent Figure 3) and the pool of spare, registered Home Addresses.

Owns: every HoA of the MN, the Primary first (never released), each with its role, the uplink whose
CoA it is bound to, and its binding state machine (sdnmip/core/binding.py); forming new HoAs from
the home prefix (learned by Mobile Prefix Solicitation/Advertisement, else from config) with random
interface ids, retrying another id on DAD failure (status 134); keeping `pool_size` spares
registered ahead of need so a new flow never waits for the HA; release -> back to the pool, or
held for `hold_time` then deregistered; re-binding every HoA of a lost uplink at once; a JSON-able
snapshot to resume after a restart.
Must not: read clocks, draw randomness itself, do I/O. The shell calls `handle(event, now)`,
performs the returned actions, and arms one timer at `next_deadline` (then `handle(Tick(), now)`).

Lookups by HoA and by uplink are O(1) (dicts and per-uplink sets); `next_deadline` and a tick
scan the table, which holds at most `max_hoas` (tens of) entries.

After `from_dict`, report every uplink (UplinkChanged, with its CoA or None): restored HoAs send
nothing until their uplink is reported, then refresh at once (their CoA may have changed while the
agent was down), or move to the best uplink if theirs has no CoA.
"""

from __future__ import annotations

from dataclasses import dataclass
from ipaddress import IPv6Address, IPv6Network
from typing import Any

from sdnmip.core.binding import BindingEntry
from sdnmip.core.binding_messages import (
    Bind,
    BindingAction,
    BindingChanged,
    BindingEstablished,
    BindingEvent,
    BindingFailed,
    BindingLost,
    BindingRefreshed,
    BindingRemoved,
    CoaLost,
    Deregister,
    DuplicateAddress,
    HaProtocolError,
    PrefixDiscoveryNeeded,
    SendBu,
    TimerFired,
)
from sdnmip.core.constants import INITIAL_SOLICIT_TIMER, MAX_BINDACK_TIMEOUT, BaStatus
from sdnmip.core.hoa_messages import (
    Adopt,
    AllocationFailed,
    AllocationProblem,
    BindTo,
    Claim,
    Claimed,
    FromHa,
    HoaChanged,
    HoaFreed,
    HoaRole,
    HoaTableConfig,
    HoaView,
    PoolChanged,
    PrefixesLearned,
    Refusal,
    Refused,
    Release,
    SendBuVia,
    SendMps,
    TableAction,
    TableEvent,
    Tick,
    UplinkChanged,
)
from sdnmip.core.iid import IID_BITS, RandomIid, iid_of, is_reserved_iid, new_address

STATE_VERSION = 1


@dataclass(slots=True)
class _Hoa:
    hoa: IPv6Address
    role: HoaRole
    binding: BindingEntry
    uplink: str | None = None
    hold_until: float | None = None
    dad_failures: int = 0  # DAD failures of the ids tried before this one for the same pool slot


class HomeAddressTable:
    def __init__(self, config: HoaTableConfig, random_iid: RandomIid) -> None:
        self.cfg = config
        self._random_iid = random_iid
        self._hoas: dict[IPv6Address, _Hoa] = {}  # table order: the Primary first
        self._by_uplink: dict[str | None, set[IPv6Address]] = {None: set()}
        self._uplinks: dict[str, IPv6Address | None] = {}
        self._spares: dict[IPv6Address, None] = {}  # ordered set
        self._held: dict[IPv6Address, None] = {}
        self._registering: set[IPv6Address] = set()
        self._learned: tuple[IPv6Network, ...] = ()
        self._refill_paused_until: float | None = None
        self._mps_active = False
        self._mps_next_at: float | None = None
        self._mps_timeout = INITIAL_SOLICIT_TIMER
        self._mps_last = False
        # per-call bookkeeping for change notifications
        self._before: dict[IPv6Address, HoaView | None] = {}
        self._add(_Hoa(config.primary, HoaRole.PRIMARY, self._entry(config.primary)))

    # --- views ---------------------------------------------------------------------------------

    @property
    def primary(self) -> IPv6Address:
        return self.cfg.primary

    @property
    def spares(self) -> tuple[IPv6Address, ...]:
        return tuple(self._spares)

    @property
    def prefixes(self) -> tuple[IPv6Network, ...]:
        """Prefixes new HoAs are formed from: learned, else configured, else the Primary's /64."""
        if self._learned:
            return self._learned
        if self.cfg.home_prefixes:
            return self.cfg.home_prefixes
        return (IPv6Network((self.cfg.primary, IID_BITS), strict=False),)

    def __len__(self) -> int:
        return len(self._hoas)

    def __contains__(self, hoa: object) -> bool:
        return hoa in self._hoas

    def hoas_on(self, uplink: str | None) -> frozenset[IPv6Address]:
        """HoAs bound (or binding) via `uplink`; None: those waiting for any uplink."""
        return frozenset(self._by_uplink.get(uplink, ()))

    def view(self, hoa: IPv6Address, now: float) -> HoaView | None:
        rec = self._hoas.get(hoa)
        return None if rec is None else self._view(rec, now)

    def views(self, now: float) -> list[HoaView]:
        return [self._view(rec, now) for rec in self._hoas.values()]

    def _view(self, rec: _Hoa, now: float) -> HoaView:
        b = rec.binding
        return HoaView(
            hoa=rec.hoa,
            role=rec.role,
            state=b.state(now),
            uplink=rec.uplink,
            coa=b.coa,
            bound_coa=b.bound_coa,
            status=b.last_status,
            lifetime=b.granted_lifetime,
            expires_at=b.expires_at,
        )

    @property
    def next_deadline(self) -> float | None:
        ds = [d for rec in self._hoas.values() if (d := rec.binding.next_deadline) is not None]
        ds += [h for hoa in self._held if (h := self._hoas[hoa].hold_until) is not None]
        if self._mps_active and self._mps_next_at is not None:
            ds.append(self._mps_next_at)
        if self._refill_paused_until is not None and self._pool_short():
            ds.append(self._refill_paused_until)
        return min(ds) if ds else None

    # --- the one entry point -------------------------------------------------------------------

    def handle(self, event: TableEvent, now: float) -> list[TableAction]:
        out: list[TableAction] = []
        self._before = {}
        spares_before = tuple(self._spares)
        self._serve(now, out)
        match event:
            case Tick():
                pass
            case UplinkChanged(uplink=uplink, coa=coa):
                self._on_uplink(uplink, coa, now, out)
            case PrefixesLearned(prefixes=prefixes):
                self._on_prefixes(prefixes)
            case Claim():
                self._on_claim(event, now, out)
            case Adopt():
                self._on_adopt(event, now, out)
            case BindTo():
                self._on_bind_to(event, now, out)
            case Release():
                self._on_release(event, now, out)
            case FromHa(hoa=hoa, message=message):
                rec = self._hoas.get(hoa)
                if rec is not None:  # else: about a HoA already gone; nothing to update
                    self._feed(rec, message, now, out)
        self._refill(now, out)
        self._serve_mps(now, out)
        self._report(now, spares_before, out)
        return out

    # --- timers --------------------------------------------------------------------------------

    def _serve(self, now: float, out: list[TableAction]) -> None:
        if self._refill_paused_until is not None and self._refill_paused_until <= now:
            self._refill_paused_until = None
        for rec in list(self._hoas.values()):
            if self._hoas.get(rec.hoa) is not rec:
                continue  # removed or replaced while serving another
            d = rec.binding.next_deadline
            if d is not None and d <= now:
                self._feed(rec, TimerFired(), now, out)
        for hoa in list(self._held):
            rec = self._hoas[hoa]
            if rec.hold_until is not None and rec.hold_until <= now:
                self._touch(rec, now)
                if self._pool_has_room() and rec.binding.live(now):
                    self._to_pool(rec, now, out)
                else:
                    self._deregister(rec, now, out)
        self._serve_mps(now, out)

    # --- uplinks and prefixes ------------------------------------------------------------------

    def _on_uplink(
        self, uplink: str, coa: IPv6Address | None, now: float, out: list[TableAction]
    ) -> None:
        known = uplink in self._uplinks
        old = self._uplinks.get(uplink)
        self._uplinks[uplink] = coa
        if coa is None:
            # Every HoA on the lost uplink moves at once: one BU each, all in this call.
            target = self._best_uplink(exclude=uplink)
            for hoa in list(self._by_uplink.get(uplink, ())):
                rec = self._hoas[hoa]  # (moving one HoA never removes another)
                if target is not None:
                    self._place(rec, target, now, out)
                else:
                    self._set_uplink(rec, None)
                    self._feed(rec, CoaLost(), now, out)
            return
        if not known or old != coa:
            for hoa in list(self._by_uplink.get(uplink, ())):
                self._place(self._hoas[hoa], uplink, now, out)
        for hoa in list(self._by_uplink[None]):
            self._place(self._hoas[hoa], uplink, now, out)
        if self._mps_active and self._mps_next_at is None:
            self._mps_next_at = now

    def _on_prefixes(self, prefixes: tuple[IPv6Network, ...]) -> None:
        # HoAs are prefix + 64-bit interface id; other prefix lengths cannot carry one.
        usable = tuple(p for p in prefixes if p.prefixlen == IID_BITS)
        if usable:
            self._learned = usable
            self._mps_active = False
            self._mps_next_at = None

    def _best_uplink(self, exclude: str | None = None) -> str | None:
        order: list[str] = []
        if self.cfg.default_uplink is not None:
            order.append(self.cfg.default_uplink)
        order += self.cfg.uplink_order
        order += sorted(self._uplinks)
        for u in order:
            if u != exclude and self._uplinks.get(u) is not None:
                return u
        return None

    # --- requests from the controller ----------------------------------------------------------

    def _on_claim(self, req: Claim, now: float, out: list[TableAction]) -> None:
        if req.hoa is None:
            rec = self._any_ready(now)
            if rec is None:
                out.append(self._exhausted(req))
                return
        else:
            found = self._hoas.get(req.hoa)
            if found is None:
                out.append(Refused(req, Refusal.UNKNOWN_HOA, f"{req.hoa} is not in the table"))
                return
            rec = found
            if rec.role not in (HoaRole.SPARE, HoaRole.HELD, HoaRole.IN_USE, HoaRole.PRIMARY):
                msg = f"{rec.hoa} is {rec.role.value}, not a registered spare"
                out.append(Refused(req, Refusal.NOT_SPARE, msg))
                return
        self._touch(rec, now)
        if rec.role is not HoaRole.PRIMARY:
            self._set_role(rec, HoaRole.IN_USE)
        out.append(Claimed(rec.hoa, rec.uplink, rec.binding.coa))

    def _any_ready(self, now: float) -> _Hoa | None:
        for hoa in self._spares:
            return self._hoas[hoa]
        for hoa in self._held:
            rec = self._hoas[hoa]
            if rec.binding.live(now):
                return rec
        return None

    def _exhausted(self, req: Claim | Adopt) -> Refused:
        if len(self._hoas) >= self.cfg.max_hoas:
            msg = f"max_hoas ({self.cfg.max_hoas}) reached and no HoA is spare or held"
            return Refused(req, Refusal.EXHAUSTED, msg)
        msg = (
            f"no registered spare HoA yet ({len(self._registering)} registering"
            f"{', no uplink has a CoA' if self._best_uplink() is None else ''})"
        )
        return Refused(req, Refusal.NO_SPARE, msg)

    def _on_adopt(self, req: Adopt, now: float, out: list[TableAction]) -> None:
        rec = self._hoas.get(req.hoa)
        if rec is None:
            if not any(req.hoa in p for p in self.prefixes):
                msg = f"{req.hoa} is not on a home prefix ({', '.join(map(str, self.prefixes))})"
                out.append(Refused(req, Refusal.NOT_HOME_PREFIX, msg))
                return
            if is_reserved_iid(iid_of(req.hoa)):
                msg = f"{req.hoa} has a reserved interface id (RFC 5453)"
                out.append(Refused(req, Refusal.RESERVED_IID, msg))
                return
            if len(self._hoas) >= self.cfg.max_hoas:
                out.append(self._exhausted(req))
                return
            rec = _Hoa(req.hoa, HoaRole.IN_USE, self._entry(req.hoa))
            self._add(rec)
            uplink = self._spare_uplink()
            if uplink is not None:
                self._place(rec, uplink, now, out)
        else:
            self._touch(rec, now)
            if rec.role is not HoaRole.PRIMARY:
                revive = rec.role in (HoaRole.DEREGISTERING, HoaRole.FAILED)
                self._set_role(rec, HoaRole.IN_USE)
                uplink = rec.uplink if rec.uplink is not None else self._spare_uplink()
                if revive and uplink is not None and self._uplinks.get(uplink) is not None:
                    self._place(rec, uplink, now, out, force=True)
        out.append(Claimed(rec.hoa, rec.uplink, rec.binding.coa))

    def _on_bind_to(self, req: BindTo, now: float, out: list[TableAction]) -> None:
        rec = self._hoas.get(req.hoa)
        if rec is None:
            out.append(Refused(req, Refusal.UNKNOWN_HOA, f"{req.hoa} is not in the table"))
            return
        if req.uplink not in self._uplinks:
            msg = f"uplink {req.uplink!r} is unknown"
            out.append(Refused(req, Refusal.UNKNOWN_UPLINK, msg))
            return
        if self._uplinks[req.uplink] is None:
            msg = f"uplink {req.uplink!r} has no care-of address"
            out.append(Refused(req, Refusal.UPLINK_DOWN, msg))
            return
        self._touch(rec, now)
        if rec.role is not HoaRole.PRIMARY:
            self._set_role(rec, HoaRole.IN_USE)  # binding a HoA claims it
        self._place(rec, req.uplink, now, out, force=True)

    def _on_release(self, req: Release, now: float, out: list[TableAction]) -> None:
        rec = self._hoas.get(req.hoa)
        if rec is None:
            out.append(Refused(req, Refusal.UNKNOWN_HOA, f"{req.hoa} is not in the table"))
            return
        if rec.role is HoaRole.PRIMARY:
            msg = f"{rec.hoa} is the Primary HoA: it is never released"
            out.append(Refused(req, Refusal.PRIMARY, msg))
            return
        self._touch(rec, now)
        if rec.role is HoaRole.FAILED:
            self._deregister(rec, now, out)
        elif rec.role is HoaRole.IN_USE:
            if not rec.binding.live(now):
                self._deregister(rec, now, out)
            elif self._pool_has_room():
                self._to_pool(rec, now, out)
            else:
                self._set_role(rec, HoaRole.HELD)
                rec.hold_until = now + self.cfg.hold_time
        # SPARE, HELD, REGISTERING, DEREGISTERING: already released; nothing to do.

    # --- the pool ------------------------------------------------------------------------------

    def _pool_has_room(self) -> bool:
        return len(self._spares) < self.cfg.pool_size

    def _pool_short(self) -> bool:
        return len(self._spares) + len(self._registering) < self.cfg.pool_size

    def _spare_uplink(self) -> str | None:
        d = self.cfg.default_uplink
        if d is not None and self._uplinks.get(d) is not None:
            return d
        return self._best_uplink()

    def _to_pool(self, rec: _Hoa, now: float, out: list[TableAction]) -> None:
        """A registered HoA nobody uses becomes a spare, bound via the spares' uplink."""
        self._set_role(rec, HoaRole.SPARE)
        home = self._spare_uplink()
        if home is not None and home != rec.uplink:
            self._place(rec, home, now, out)  # still live meanwhile: usable at once

    def _refill(self, now: float, out: list[TableAction]) -> None:
        if self._refill_paused_until is not None:
            return
        while (
            self._pool_short()
            and len(self._registering) < self.cfg.max_parallel_registrations
            and len(self._hoas) < self.cfg.max_hoas
        ):
            if not self._new_pool_hoa(now, out, dad_failures=0):
                return

    def _new_pool_hoa(self, now: float, out: list[TableAction], dad_failures: int) -> bool:
        uplink = self._spare_uplink()
        if uplink is None:
            return False  # refilled when an uplink gets a CoA
        hoa = new_address(self.prefixes[0], self._random_iid, self._hoas)
        if hoa is None:
            msg = "the random source gave only reserved or already used interface ids"
            out.append(AllocationFailed(AllocationProblem.NO_IID, None, msg))
            self._pause_refill(now)
            return False
        rec = _Hoa(hoa, HoaRole.REGISTERING, self._entry(hoa), dad_failures=dad_failures)
        self._add(rec)
        self._place(rec, uplink, now, out)
        return True

    def _pause_refill(self, now: float) -> None:
        self._refill_paused_until = now + self.cfg.refill_backoff

    # --- binding plumbing ----------------------------------------------------------------------

    def _entry(self, hoa: IPv6Address) -> BindingEntry:
        # A new HoA has no history at the HA; a stale number there is fixed by status 135.
        return BindingEntry(hoa, last_sequence=0, timers=self.cfg.timers)

    def _place(
        self, rec: _Hoa, uplink: str, now: float, out: list[TableAction], force: bool = False
    ) -> None:
        """Bind (or deregister) `rec` via `uplink`, which must have a CoA."""
        coa = self._uplinks[uplink]
        assert coa is not None
        self._set_uplink(rec, uplink)
        ev: BindingEvent
        if rec.role is HoaRole.DEREGISTERING:
            ev = Deregister(coa)
        elif rec.binding.failure is not None and not force:
            return  # refused by the HA: only an explicit BindTo/Adopt tries again
        else:
            ev = Bind(coa, self.cfg.lifetime)
        self._feed(rec, ev, now, out)

    def _deregister(self, rec: _Hoa, now: float, out: list[TableAction]) -> None:
        self._set_role(rec, HoaRole.DEREGISTERING)
        uplink = rec.uplink
        if uplink is None or self._uplinks.get(uplink) is None:
            uplink = self._best_uplink()
        if uplink is not None:
            self._place(rec, uplink, now, out)
        else:
            self._feed(rec, Deregister(None), now, out)  # nothing to send from: it lapses

    def _feed(self, rec: _Hoa, event: BindingEvent, now: float, out: list[TableAction]) -> None:
        self._touch(rec, now)
        self._absorb(rec, rec.binding.handle(event, now), now, out)

    def _absorb(
        self, rec: _Hoa, actions: list[BindingAction], now: float, out: list[TableAction]
    ) -> None:
        for a in actions:
            match a:
                case SendBu():
                    assert rec.uplink is not None, "a BU needs the uplink of its CoA"
                    out.append(SendBuVia(rec.uplink, a))
                case BindingEstablished() | BindingChanged() | BindingRefreshed():
                    if rec.role is HoaRole.REGISTERING:
                        if self._pool_has_room():
                            self._set_role(rec, HoaRole.SPARE)
                        else:  # the pool filled meanwhile (a release): keep it warm a while
                            self._set_role(rec, HoaRole.HELD)
                            rec.hold_until = now + self.cfg.hold_time
                    if (
                        isinstance(a, BindingEstablished)
                        and rec.role is HoaRole.PRIMARY
                        and not self._learned
                        and self.cfg.solicit_prefixes
                    ):
                        self._want_mps(now)
                case BindingLost():
                    if rec.role is HoaRole.SPARE:
                        self._set_role(rec, HoaRole.REGISTERING)  # not usable until re-bound
                case PrefixDiscoveryNeeded():
                    self._want_mps(now)
                case DuplicateAddress():
                    out.append(a)
                    self._on_dad_failed(rec, now, out)
                case BindingFailed():
                    out.append(a)
                    if a.permanent and a.status != BaStatus.DUPLICATE_ADDRESS_DETECTION_FAILED:
                        self._on_refused(rec, a, now, out)
                case BindingRemoved():
                    self._drop(rec)
                case HaProtocolError():
                    out.append(a)

    def _on_dad_failed(self, rec: _Hoa, now: float, out: list[TableAction]) -> None:
        if rec.role is not HoaRole.REGISTERING:
            self._fail(rec)  # a HoA someone chose (Primary, adopted): cannot change its id
            return
        failures = rec.dad_failures + 1
        self._drop(rec)
        if failures >= self.cfg.max_dad_attempts:
            msg = f"{failures} new HoAs in a row failed DAD at the HA (last {rec.hoa})"
            status = BaStatus.DUPLICATE_ADDRESS_DETECTION_FAILED
            out.append(AllocationFailed(AllocationProblem.DAD, status, msg))
            self._pause_refill(now)
        else:
            self._new_pool_hoa(now, out, dad_failures=failures)

    def _on_refused(
        self, rec: _Hoa, failure: BindingFailed, now: float, out: list[TableAction]
    ) -> None:
        if rec.role is HoaRole.REGISTERING:
            self._drop(rec)
            msg = f"the HA refused new HoA {rec.hoa} ({failure.reason.value}, {failure.status})"
            out.append(AllocationFailed(AllocationProblem.REJECTED, failure.status, msg))
            self._pause_refill(now)
        elif rec.role in (HoaRole.SPARE, HoaRole.HELD):
            self._drop(rec)  # nobody uses it: forget it, its binding lapses at the HA
        else:
            self._fail(rec)

    def _fail(self, rec: _Hoa) -> None:
        if rec.role is not HoaRole.PRIMARY:
            self._set_role(rec, HoaRole.FAILED)

    # --- Mobile Prefix Solicitation (§11.4.1, retransmitted as §11.8 says) --------------------

    def _want_mps(self, now: float) -> None:
        if self._mps_active:
            if self._mps_next_at is None:  # was waiting for the Primary's binding
                self._mps_next_at = now
            return
        self._mps_active = True
        self._mps_timeout = INITIAL_SOLICIT_TIMER
        self._mps_last = False
        self._mps_next_at = now

    def _serve_mps(self, now: float, out: list[TableAction]) -> None:
        if not self._mps_active or self._mps_next_at is None or self._mps_next_at > now:
            return
        if self._mps_last:
            # Back-off reached MAX_BINDACK_TIMEOUT unanswered: stay on the configured prefixes.
            self._mps_active = False
            self._mps_next_at = None
            return
        primary = self._hoas[self.cfg.primary]
        coa = None if primary.uplink is None else self._uplinks.get(primary.uplink)
        if primary.uplink is None or coa is None or not primary.binding.live(now):
            self._mps_next_at = None  # re-armed when the Primary is bound via an uplink
            return
        out.append(SendMps(primary.uplink, coa, primary.hoa))
        self._mps_next_at = now + self._mps_timeout
        self._mps_last = self._mps_timeout >= MAX_BINDACK_TIMEOUT
        self._mps_timeout = min(self._mps_timeout * 2, MAX_BINDACK_TIMEOUT)

    # --- indexes -------------------------------------------------------------------------------

    def _add(self, rec: _Hoa) -> None:
        assert rec.hoa not in self._hoas
        self._before.setdefault(rec.hoa, None)
        self._hoas[rec.hoa] = rec
        self._by_uplink.setdefault(rec.uplink, set()).add(rec.hoa)
        self._index_role(rec, rec.role)

    def _drop(self, rec: _Hoa) -> None:
        assert rec.role is not HoaRole.PRIMARY, "the Primary HoA is never removed"
        self._unindex_role(rec)
        self._by_uplink[rec.uplink].discard(rec.hoa)
        del self._hoas[rec.hoa]

    def _set_uplink(self, rec: _Hoa, uplink: str | None) -> None:
        if rec.uplink == uplink:
            return
        self._by_uplink[rec.uplink].discard(rec.hoa)
        self._by_uplink.setdefault(uplink, set()).add(rec.hoa)
        rec.uplink = uplink

    def _set_role(self, rec: _Hoa, role: HoaRole) -> None:
        if rec.role is role:
            return
        assert rec.role is not HoaRole.PRIMARY and role is not HoaRole.PRIMARY
        self._unindex_role(rec)
        rec.role = role
        rec.hold_until = None
        self._index_role(rec, role)

    def _index_role(self, rec: _Hoa, role: HoaRole) -> None:
        if role is HoaRole.SPARE:
            self._spares[rec.hoa] = None
        elif role is HoaRole.HELD:
            self._held[rec.hoa] = None
        elif role is HoaRole.REGISTERING:
            self._registering.add(rec.hoa)

    def _unindex_role(self, rec: _Hoa) -> None:
        self._spares.pop(rec.hoa, None)
        self._held.pop(rec.hoa, None)
        self._registering.discard(rec.hoa)

    # --- change notifications ------------------------------------------------------------------

    def _touch(self, rec: _Hoa, now: float) -> None:
        if rec.hoa not in self._before:
            self._before[rec.hoa] = self._view(rec, now)

    def _report(
        self, now: float, spares_before: tuple[IPv6Address, ...], out: list[TableAction]
    ) -> None:
        for hoa, before in self._before.items():
            rec = self._hoas.get(hoa)
            if rec is None:
                if before is not None:
                    out.append(HoaFreed(hoa))
                continue
            view = self._view(rec, now)
            if view != before:
                out.append(HoaChanged(view))
        self._before = {}
        if tuple(self._spares) != spares_before:
            out.append(PoolChanged(tuple(self._spares)))

    # --- persistence ---------------------------------------------------------------------------

    def to_dict(self) -> dict[str, Any]:
        """A JSON-able snapshot; times are absolute on the caller's clock."""
        return {
            "version": STATE_VERSION,
            "primary": str(self.cfg.primary),
            "learned_prefixes": [str(p) for p in self._learned],
            "refill_paused_until": self._refill_paused_until,
            "spares": [str(h) for h in self._spares],  # pool order (oldest first)
            "hoas": [
                {
                    "hoa": str(rec.hoa),
                    "role": rec.role.value,
                    "uplink": rec.uplink,
                    "hold_until": rec.hold_until,
                    "dad_failures": rec.dad_failures,
                    "binding": rec.binding.to_dict(),
                }
                for rec in self._hoas.values()
            ],
        }

    @classmethod
    def from_dict(
        cls, d: dict[str, Any], config: HoaTableConfig, random_iid: RandomIid, now: float
    ) -> HomeAddressTable:
        """Resume from `to_dict` output. Every saved HoA is kept with its last sequence number and
        what the HA may still hold, so nothing leaks and nothing is registered twice. Restored
        HoAs wait for their uplink to be reported (see the module docstring). A Primary that the
        config no longer names is held like a released HoA. A SPARE whose binding has run out
        registers again before it is offered."""
        if d.get("version") != STATE_VERSION:
            raise ValueError(f"HoA table state 'version' must be {STATE_VERSION}")
        table = cls(config, random_iid)
        try:
            learned = (IPv6Network(s) for s in d.get("learned_prefixes", []))
            table._learned = tuple(p for p in learned if p.prefixlen == IID_BITS)
            paused = d.get("refill_paused_until")
            if paused is not None and float(paused) > now:
                table._refill_paused_until = min(float(paused), now + config.refill_backoff)
            items = d["hoas"]
        except (KeyError, TypeError, ValueError) as e:
            raise ValueError(f"HoA table state: {e}") from None
        if not isinstance(items, list):
            raise ValueError("HoA table state 'hoas' must be a list")
        for i, item in enumerate(items):
            try:
                table._restore(item, now)
            except (KeyError, TypeError, ValueError) as e:
                raise ValueError(f"HoA table state 'hoas'[{i}]: {e}") from None
        order = {h: i for i, h in enumerate(d.get("spares", []))}
        spares = sorted(table._spares, key=lambda h: order.get(str(h), len(order)))
        table._spares = dict.fromkeys(spares)
        return table

    def _restore(self, item: dict[str, Any], now: float) -> None:
        hoa = IPv6Address(item["hoa"])
        role = HoaRole(item["role"])
        binding = BindingEntry.from_dict(item["binding"], now, self.cfg.timers)
        if binding.hoa != hoa:
            raise ValueError(f"binding of {hoa} names {binding.hoa}")
        uplink = item.get("uplink")
        if uplink is not None and not isinstance(uplink, str):
            raise ValueError(f"'uplink' must be a string or null, got {uplink!r}")
        hold = item.get("hold_until")
        if hoa == self.cfg.primary:
            rec = self._hoas[hoa]
            rec.binding = binding
            self._set_uplink(rec, uplink)
            return
        if hoa in self._hoas:
            raise ValueError(f"{hoa} appears twice")
        if role is HoaRole.PRIMARY:
            role, hold = HoaRole.HELD, now + self.cfg.hold_time  # the config names another
        if role is HoaRole.SPARE and not (binding.live(now) and self._pool_has_room()):
            role = HoaRole.REGISTERING if self._pool_has_room() else HoaRole.HELD
            hold = now + self.cfg.hold_time
        rec = _Hoa(hoa, role, binding, uplink, dad_failures=int(item.get("dad_failures", 0)))
        if role is HoaRole.HELD:
            rec.hold_until = min(float(hold), now + self.cfg.hold_time) if hold else now
        self._hoas[hoa] = rec
        self._by_uplink.setdefault(uplink, set()).add(hoa)
        self._index_role(rec, role)
