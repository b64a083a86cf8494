"""The Home Address Table and spare pool on a mock clock, against a miniature RFC 6275 HA."""

from __future__ import annotations

import itertools
import json
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from ipaddress import IPv6Address, IPv6Network

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sdnmip.core.binding_messages import (
    BaReceived,
    BeReceived,
    BindingState,
    BrrReceived,
    DuplicateAddress,
    SendBu,
)
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
from sdnmip.core.hoa_table import HomeAddressTable
from sdnmip.core.iid import is_reserved_iid
from sdnmip.core.seqno import seq_gt

PRIMARY = IPv6Address("2001:db8:100::1000")
HOME = IPv6Network("2001:db8:100::/64")
WLAN, LTE = "wlan", "lte"
C_WLAN = IPv6Address("2001:db8:1::10")
C_WLAN2 = IPv6Address("2001:db8:1::11")
C_LTE = IPv6Address("2001:db8:2::10")


@dataclass
class FakeHa:
    """A home agent in miniature: one binding per HoA, the §9.5.1 sequence window, DAD."""

    cache: dict[IPv6Address, tuple[IPv6Address, int, float]] = field(default_factory=dict)
    last_seq: dict[IPv6Address, int] = field(default_factory=dict)
    duplicates: set[IPv6Address] = field(default_factory=set)
    silent: bool = False
    refuse: dict[IPv6Address, int] = field(default_factory=dict)
    status: int = 0
    received: list[SendBu] = field(default_factory=list)

    def answer(self, bu: SendBu, now: float) -> BaReceived | None:
        self.received.append(bu)
        if self.silent:
            return None
        last = self.last_seq.get(bu.hoa)
        if last is not None and not seq_gt(bu.sequence, last):
            return BaReceived(135, last, 0)
        if bu.hoa in self.refuse:
            return BaReceived(self.refuse[bu.hoa], bu.sequence, 0)
        if bu.lifetime == 0:
            self.cache.pop(bu.hoa, None)
            self.last_seq.pop(bu.hoa, None)
            return BaReceived(0, bu.sequence, 0)
        if bu.hoa not in self.cache and bu.hoa in self.duplicates:
            return BaReceived(134, bu.sequence, 0)
        self.cache[bu.hoa] = (bu.coa, bu.sequence, now + bu.lifetime)
        self.last_seq[bu.hoa] = bu.sequence
        return BaReceived(self.status, bu.sequence, bu.lifetime)


def iids(values: Iterable[int]) -> Callable[[], int]:
    it = iter(values)
    return lambda: next(it)


def counting_iids(start: int = 0xA000) -> Callable[[], int]:
    c = itertools.count(start)
    return lambda: next(c)


class Mn:
    """Drives a table; BUs reach the FakeHa and its answers come back `ha_delay` later."""

    def __init__(
        self,
        random_iid: Callable[[], int] | None = None,
        ha: FakeHa | None = None,
        ha_delay: float = 0.2,
        **cfg: object,
    ) -> None:
        cfg.setdefault("home_prefixes", (HOME,))
        cfg.setdefault("default_uplink", WLAN)
        self.cfg = HoaTableConfig(primary=PRIMARY, **cfg)  # type: ignore[arg-type]
        self.table = HomeAddressTable(self.cfg, random_iid or counting_iids())
        self.ha = ha or FakeHa()
        self.ha_delay = ha_delay
        self.now = 0.0
        self.log: list[tuple[float, TableAction]] = []
        self.pending: list[tuple[float, IPv6Address, BaReceived]] = []

    def do(self, event: TableEvent) -> list[TableAction]:
        out = self.table.handle(event, self.now)
        self.log += [(self.now, a) for a in out]
        for a in out:
            if isinstance(a, SendBuVia):
                assert self.uplinks.get(a.uplink) == a.bu.coa, "BU must leave by its CoA's uplink"
                ba = self.ha.answer(a.bu, self.now)
                if ba is not None:
                    self.pending.append((self.now + self.ha_delay, a.bu.hoa, ba))
        self.check()
        return out

    @property
    def uplinks(self) -> dict[str, IPv6Address | None]:
        return self.table._uplinks  # read-only use: the test checks BUs against it

    def until(self, t: float) -> None:
        while True:
            due = [p[0] for p in self.pending]
            d = self.table.next_deadline
            nxt = min([*due, *([d] if d is not None else [])], default=None)
            if nxt is None or nxt > t:
                break
            self.now = max(self.now, nxt)
            ready = [p for p in self.pending if p[0] <= self.now]
            self.pending = [p for p in self.pending if p[0] > self.now]
            for _, hoa, ba in ready:
                self.do(FromHa(hoa, ba))
            if d is not None and d <= self.now:
                self.do(Tick())
        self.now = t

    def up(self, uplink: str, coa: IPv6Address | None) -> list[TableAction]:
        return self.do(UplinkChanged(uplink, coa))

    def settle(self, dt: float = 5.0) -> None:
        self.until(self.now + dt)

    def check(self) -> None:
        t = self.table
        views = t.views(self.now)
        assert views[0].hoa == PRIMARY and views[0].role is HoaRole.PRIMARY
        assert len(t.spares) <= self.cfg.pool_size
        assert len(t) <= self.cfg.max_hoas
        for v in views:
            assert v.hoa in t.hoas_on(v.uplink)
            if v.role is HoaRole.SPARE:  # a spare is usable right now
                assert v.hoa in t.spares and v.expires_at is not None and v.expires_at > self.now

    def of(self, kind: type, since: float = -1) -> list:  # type: ignore[type-arg]
        return [a for t, a in self.log if isinstance(a, kind) and t >= since]

    def bus(self, since: float = -1) -> list[SendBuVia]:
        return self.of(SendBuVia, since)

    def role(self, hoa: IPv6Address) -> HoaRole:
        v = self.table.view(hoa, self.now)
        assert v is not None
        return v.role


def started(**kw: object) -> Mn:
    mn = Mn(**kw)
    mn.up(WLAN, C_WLAN)
    mn.up(LTE, C_LTE)
    mn.settle()
    return mn


# --- start-up and pool fill ----------------------------------------------------------------------


def test_nothing_is_sent_before_an_uplink_has_a_coa():
    mn = Mn()
    assert mn.do(Tick()) == []
    assert mn.table.next_deadline is None
    out = mn.up(WLAN, C_WLAN)
    bus = [a for a in out if isinstance(a, SendBuVia)]
    # the Primary and the first pool_size spares register at once, all first registrations
    assert bus[0].bu.hoa == PRIMARY
    assert len(bus) == 3 and all(b.uplink == WLAN and b.bu.first_registration for b in bus)
    assert [b.bu.hoa for b in bus][1:] == [
        IPv6Address("2001:db8:100::a000"),
        IPv6Address("2001:db8:100::a001"),
    ]


def test_pool_fills_to_size_with_bounded_parallel_registrations():
    mn = Mn(pool_size=3, max_parallel_registrations=2)
    out = mn.up(WLAN, C_WLAN)
    assert len([a for a in out if isinstance(a, SendBuVia)]) == 3  # Primary + 2
    mn.settle()
    assert len(mn.table.spares) == 3
    assert len(mn.ha.cache) == 4
    assert mn.of(PoolChanged)[-1] == PoolChanged(mn.table.spares)
    assert mn.role(PRIMARY) is HoaRole.PRIMARY
    v = mn.table.view(PRIMARY, mn.now)
    assert v is not None and v.state is BindingState.BOUND and v.bound_coa == C_WLAN


def test_claim_hands_out_a_spare_at_once_and_refills_in_the_background():
    mn = started()
    first, second = mn.table.spares
    t = mn.now
    out = mn.do(Claim(first))
    assert Claimed(first, WLAN, C_WLAN) in out
    assert PoolChanged((second,)) in out
    refill = [a for a in out if isinstance(a, SendBuVia)]
    assert len(refill) == 1 and refill[0].bu.first_registration  # in the same call
    assert mn.role(first) is HoaRole.IN_USE
    mn.settle()
    assert len(mn.table.spares) == 2 and first not in mn.table.spares
    assert mn.now > t
    # Claim(None) takes the oldest spare
    out = mn.do(Claim())
    assert [a for a in out if isinstance(a, Claimed)] == [Claimed(second, WLAN, C_WLAN)]


def test_exhaustion_is_reported_not_waited_for():
    mn = started(max_hoas=3)  # Primary + 2 spares
    a, b = mn.table.spares
    mn.do(Claim(a))
    mn.do(Claim(b))
    mn.settle()
    assert mn.table.spares == ()
    out = mn.do(Claim())
    assert len(out) == 1 and isinstance(out[0], Refused)
    assert out[0].reason is Refusal.EXHAUSTED and "max_hoas (3)" in out[0].message
    out = mn.do(Adopt(IPv6Address("2001:db8:100::beef")))
    assert isinstance(out[0], Refused) and out[0].reason is Refusal.EXHAUSTED


def test_no_spare_yet_is_reported_while_the_ha_is_slow():
    ha = FakeHa(silent=True)
    mn = Mn(ha=ha)
    mn.up(WLAN, C_WLAN)
    out = mn.do(Claim())
    assert isinstance(out[0], Refused) and out[0].reason is Refusal.NO_SPARE
    assert "2 registering" in out[0].message
    # a registering HoA is not handed out: the flow would wait for the HA
    registering = [v.hoa for v in mn.table.views(mn.now) if v.role is HoaRole.REGISTERING]
    out = mn.do(Claim(registering[0]))
    assert isinstance(out[0], Refused) and out[0].reason is Refusal.NOT_SPARE
    out = mn.do(Claim(IPv6Address("2001:db8:100::9")))
    assert isinstance(out[0], Refused) and out[0].reason is Refusal.UNKNOWN_HOA


# --- interface ids and DAD ----------------------------------------------------------------------


def test_reserved_and_colliding_interface_ids_are_skipped():
    reserved = [0, 0xFDFF_FFFF_FFFF_FF90, 0x0200_5EFF_FE00_5213, 0x1000]  # 0x1000 = the Primary
    mn = Mn(random_iid=iids([*reserved, 0x77, *reserved, 0x78]), pool_size=2)
    out = mn.up(WLAN, C_WLAN)
    hoas = [a.bu.hoa for a in out if isinstance(a, SendBuVia)][1:]
    assert hoas == [IPv6Address("2001:db8:100::77"), IPv6Address("2001:db8:100::78")]


@pytest.mark.parametrize(
    ("iid", "reserved"),
    [
        (0, True),
        (1, False),
        (0xFDFF_FFFF_FFFF_FF7F, False),
        (0xFDFF_FFFF_FFFF_FF80, True),
        (0xFDFF_FFFF_FFFF_FFFF, True),
        (0x0200_5EFF_FDFF_FFFF, False),
        (0x0200_5EFF_FE00_0000, True),
        (0x0200_5EFF_FE00_5213, True),
        (0x0200_5EFF_FEFF_FFFF, True),
        (0x0200_5EFF_FF00_0000, False),
    ],
)
def test_rfc_5453_reserved_interface_ids(iid: int, reserved: bool):
    assert is_reserved_iid(iid) is reserved


def test_a_random_source_giving_only_reserved_ids_is_reported():
    mn = Mn(random_iid=lambda: 0, pool_size=1)
    out = mn.up(WLAN, C_WLAN)
    fails = [a for a in out if isinstance(a, AllocationFailed)]
    assert len(fails) == 1 and fails[0].problem is AllocationProblem.NO_IID


def test_dad_failure_tries_a_new_interface_id():
    dup = IPv6Address("2001:db8:100::a000")
    mn = Mn(ha=FakeHa(duplicates={dup}), pool_size=1)
    mn.up(WLAN, C_WLAN)
    mn.settle()
    assert DuplicateAddress(dup) in mn.of(DuplicateAddress)
    assert dup not in mn.table and HoaFreed(dup) in mn.of(HoaFreed)
    assert mn.table.spares == (IPv6Address("2001:db8:100::a001"),)
    assert mn.of(AllocationFailed) == []


def test_repeated_dad_failure_is_reported_and_refill_backs_off():
    dups = {IPv6Address(f"2001:db8:100::a00{i}") for i in range(3)}
    mn = Mn(ha=FakeHa(duplicates=dups), pool_size=1, max_dad_attempts=3, refill_backoff=30)
    mn.up(WLAN, C_WLAN)
    mn.settle()
    fails = mn.of(AllocationFailed)
    assert len(fails) == 1 and fails[0].problem is AllocationProblem.DAD
    assert fails[0].status == 134
    assert mn.table.spares == ()
    first_regs = [b.bu.hoa for b in mn.bus() if b.bu.hoa != PRIMARY]
    assert sorted(first_regs) == sorted(dups)
    mn.until(31)  # after refill_backoff the pool is refilled with a fresh id
    assert mn.table.spares == (IPv6Address("2001:db8:100::a003"),)


def test_ha_refusing_new_hoas_pauses_the_refill():
    refused = IPv6Address("2001:db8:100::a000")
    mn = Mn(ha=FakeHa(refuse={refused: 129}), pool_size=1, refill_backoff=60)
    mn.up(WLAN, C_WLAN)
    mn.settle()
    fails = mn.of(AllocationFailed)
    assert [(f.problem, f.status) for f in fails] == [(AllocationProblem.REJECTED, 129)]
    assert len([b for b in mn.bus() if b.bu.hoa != PRIMARY]) == 1  # no storm
    mn.until(61)
    assert len(mn.table.spares) == 1


def test_dad_failure_of_an_adopted_hoa_marks_it_failed():
    dup = IPv6Address("2001:db8:100::beef")
    mn = started(ha=FakeHa(duplicates={dup}))
    mn.do(Adopt(dup))
    mn.settle()
    assert mn.role(dup) is HoaRole.FAILED
    out = mn.do(Release(dup))
    assert HoaFreed(dup) in out  # nothing bound at the HA: freed without a BU
    assert dup not in mn.table


# --- release, hold, deregistration --------------------------------------------------------------


def test_release_goes_back_to_the_pool_when_it_is_short():
    mn = started(max_hoas=3)
    a, b = mn.table.spares
    mn.do(Claim(a))
    mn.settle()
    assert mn.table.spares == (b,)  # max_hoas stops the refill
    n = len(mn.ha.received)
    out = mn.do(Release(a))
    assert PoolChanged((b, a)) in out and mn.role(a) is HoaRole.SPARE
    assert len(mn.ha.received) == n  # no BU: it stays registered


def test_release_with_a_full_pool_holds_then_deregisters():
    mn = started(hold_time=10)
    a, _ = mn.table.spares
    mn.do(Claim(a))
    mn.settle()
    assert len(mn.table.spares) == 2
    t = mn.now
    mn.do(Release(a))
    assert mn.role(a) is HoaRole.HELD
    mn.until(t + 9.9)
    assert a in mn.ha.cache
    mn.until(t + 11)
    dereg = [b for b in mn.bus(since=t) if b.bu.hoa == a]
    assert len(dereg) == 1 and dereg[0].bu.lifetime == 0 and dereg[0].uplink == WLAN
    assert a not in mn.table and a not in mn.ha.cache
    assert HoaFreed(a) in mn.of(HoaFreed)


def test_claim_during_the_hold_keeps_the_hoa():
    mn = started(hold_time=10)
    a, _ = mn.table.spares
    mn.do(Claim(a))
    mn.settle()
    mn.do(Release(a))
    mn.until(mn.now + 5)
    out = mn.do(Claim(a))
    assert Claimed(a, WLAN, C_WLAN) in out and mn.role(a) is HoaRole.IN_USE
    mn.settle(30)
    assert a in mn.table and a in mn.ha.cache


def test_claim_any_falls_back_to_a_held_hoa():
    mn = started(pool_size=1, max_hoas=3, hold_time=10)  # Primary + 2
    (a,) = mn.table.spares
    mn.do(Claim(a))
    mn.settle()
    (b,) = mn.table.spares
    mn.do(Claim(b))
    mn.settle()
    assert mn.table.spares == ()  # max_hoas stops the refill
    mn.do(Release(a))  # the pool is empty: a goes back to it
    mn.do(Release(b))  # the pool is full: b is held
    assert mn.table.spares == (a,) and mn.role(b) is HoaRole.HELD
    assert Claimed(a, WLAN, C_WLAN) in mn.do(Claim())
    assert Claimed(b, WLAN, C_WLAN) in mn.do(Claim())
    assert mn.role(b) is HoaRole.IN_USE
    out = mn.do(Claim())
    assert isinstance(out[0], Refused) and out[0].reason is Refusal.EXHAUSTED


def test_deregistration_moves_to_another_uplink_when_its_own_is_lost():
    mn = started(hold_time=0, ha=FakeHa())
    a, _ = mn.table.spares
    mn.do(Claim(a))
    mn.settle()
    mn.ha.silent = True
    mn.do(Release(a))
    mn.do(Tick())  # hold time 0: lifetime-0 BU via wlan, unanswered
    assert mn.bus()[-1].bu.hoa == a and mn.bus()[-1].uplink == WLAN
    mn.until(mn.now + 0.5)  # (not within 1/MAX_UPDATE_RATE of the last BU)
    mn.ha.silent = False
    out = mn.up(WLAN, None)
    dereg = [x for x in out if isinstance(x, SendBuVia) and x.bu.hoa == a]
    assert [(x.uplink, x.bu.lifetime) for x in dereg] == [(LTE, 0)]
    mn.settle(1)
    assert a not in mn.table and a not in mn.ha.cache


def test_a_held_hoa_rejoins_a_pool_that_became_short():
    mn = started(hold_time=10, max_hoas=4)
    a, b = mn.table.spares
    mn.do(Claim(a))
    mn.settle()
    mn.do(Release(a))  # pool (b, c) full: held
    assert mn.role(a) is HoaRole.HELD
    mn.do(Claim(b))  # refill blocked by max_hoas
    mn.until(mn.now + 11)
    assert mn.role(a) is HoaRole.SPARE and a in mn.ha.cache


def test_the_primary_is_never_released():
    mn = started()
    out = mn.do(Release(PRIMARY))
    assert isinstance(out[0], Refused) and out[0].reason is Refusal.PRIMARY
    mn.settle(10_000)
    assert not any(b.bu.hoa == PRIMARY and b.bu.lifetime == 0 for b in mn.bus())
    assert PRIMARY in mn.ha.cache


# --- uplinks ------------------------------------------------------------------------------------


def test_link_loss_rebinds_every_hoa_on_it_at_once():
    mn = started()
    a, b = mn.table.spares
    mn.do(Claim(a))
    mn.settle()
    on_wlan = mn.table.hoas_on(WLAN)
    assert {PRIMARY, a, b} <= on_wlan
    out = mn.up(WLAN, None)
    bus = [x for x in out if isinstance(x, SendBuVia)]
    assert {x.bu.hoa for x in bus} == on_wlan  # one BU each, all in this one call
    assert all(x.uplink == LTE and x.bu.coa == C_LTE for x in bus)
    assert not any(x.bu.first_registration for x in bus)  # bindings are live: 1 s back-off
    mn.settle(1)
    assert all(mn.ha.cache[h][0] == C_LTE for h in on_wlan)
    assert mn.table.hoas_on(WLAN) == frozenset()


def test_link_loss_without_another_uplink_waits_then_rebinds_all():
    mn = Mn()
    mn.up(WLAN, C_WLAN)
    mn.settle()
    out = mn.up(WLAN, None)
    assert [x for x in out if isinstance(x, SendBuVia)] == []
    assert len(mn.table.hoas_on(None)) == 3
    mn.settle(5)
    assert mn.bus(since=mn.now - 5) == []  # nothing to send from
    out = mn.up(LTE, C_LTE)
    bus = [x for x in out if isinstance(x, SendBuVia)]
    assert len(bus) == 3 and {x.uplink for x in bus} == {LTE}


def test_new_coa_on_an_uplink_rebinds_its_hoas():
    mn = started()
    out = mn.up(WLAN, C_WLAN2)
    bus = [x for x in out if isinstance(x, SendBuVia)]
    assert {x.bu.hoa for x in bus} == set(mn.table.hoas_on(WLAN))
    assert all(x.bu.coa == C_WLAN2 for x in bus)
    assert mn.up(WLAN, C_WLAN2) == []  # the same CoA again: nothing


def test_bind_to_moves_one_hoa_and_is_refused_for_bad_uplinks():
    mn = started()
    a, b = mn.table.spares
    mn.do(Claim(a))
    out = mn.do(BindTo(a, LTE))
    bus = [x for x in out if isinstance(x, SendBuVia)]
    assert [(x.uplink, x.bu.hoa, x.bu.coa) for x in bus] == [(LTE, a, C_LTE)]
    mn.settle(1)
    assert mn.ha.cache[a][0] == C_LTE and mn.ha.cache[b][0] == C_WLAN
    view = mn.table.view(a, mn.now)
    assert view is not None and view.uplink == LTE and view.bound_coa == C_LTE
    assert HoaChanged(view) in mn.of(HoaChanged)
    out = mn.do(BindTo(a, "eth9"))
    assert isinstance(out[0], Refused) and out[0].reason is Refusal.UNKNOWN_UPLINK
    mn.up(LTE, None)
    out = mn.do(BindTo(a, LTE))
    assert isinstance(out[0], Refused) and out[0].reason is Refusal.UPLINK_DOWN


def test_release_of_a_hoa_bound_elsewhere_returns_it_to_the_default_uplink():
    mn = started(max_hoas=3)
    a, _ = mn.table.spares
    mn.do(Claim(a))
    mn.do(BindTo(a, LTE))
    mn.settle(1)
    out = mn.do(Release(a))
    assert [(x.uplink, x.bu.hoa) for x in out if isinstance(x, SendBuVia)] == [(WLAN, a)]
    assert mn.role(a) is HoaRole.SPARE


# --- adopt --------------------------------------------------------------------------------------


def test_adopt_registers_a_specific_hoa_and_checks_it():
    mn = started()
    h = IPv6Address("2001:db8:100::beef")
    out = mn.do(Adopt(h))
    assert Claimed(h, WLAN, C_WLAN) in out
    mn.settle()
    assert mn.role(h) is HoaRole.IN_USE and h in mn.ha.cache
    out = mn.do(Adopt(IPv6Address("2001:db8:999::1")))
    assert isinstance(out[0], Refused) and out[0].reason is Refusal.NOT_HOME_PREFIX
    out = mn.do(Adopt(IPv6Address("2001:db8:100::")))
    assert isinstance(out[0], Refused) and out[0].reason is Refusal.RESERVED_IID


# --- prefixes -----------------------------------------------------------------------------------


def test_mps_after_the_primary_registers_with_back_off_until_answered():
    mn = Mn(ha_delay=0.1)
    mn.up(WLAN, C_WLAN)
    mn.until(100)
    times = [t for t, a in mn.log if isinstance(a, SendMps)]
    assert times == pytest.approx([0.1, 3.1, 9.1, 21.1, 45.1])  # 3, 6, 12, 24 (cap 32 after)
    assert mn.of(SendMps)[0] == SendMps(WLAN, C_WLAN, PRIMARY)


def test_learned_prefixes_replace_the_configured_ones_and_stop_mps():
    learned = IPv6Network("2001:db8:200::/64")
    mn = Mn(pool_size=1)
    mn.up(WLAN, C_WLAN)
    mn.until(1)
    mn.do(PrefixesLearned((IPv6Network("2001:db8:300::/56"), learned)))
    assert mn.table.prefixes == (learned,)
    mn.until(100)
    assert len(mn.of(SendMps)) == 1
    (spare,) = mn.table.spares
    mn.do(Claim(spare))
    out = mn.do(Tick())
    mn.settle()
    assert mn.table.spares[0] in learned and out is not None


def test_status_1_triggers_prefix_discovery():
    mn = Mn(ha=FakeHa(status=1), solicit_prefixes=False, pool_size=0)
    mn.up(WLAN, C_WLAN)
    mn.settle(1)
    assert mn.of(SendMps) == [SendMps(WLAN, C_WLAN, PRIMARY)]


def test_without_prefix_config_the_primary_s_64_is_used():
    mn = Mn(home_prefixes=())
    assert mn.table.prefixes == (HOME,)


def test_config_errors_name_the_field():
    with pytest.raises(ValueError, match="home_prefixes"):
        HoaTableConfig(primary=PRIMARY, home_prefixes=(IPv6Network("2001:db8::/48"),))
    with pytest.raises(ValueError, match="pool_size"):
        HoaTableConfig(primary=PRIMARY, pool_size=-1)
    with pytest.raises(ValueError, match="max_hoas"):
        HoaTableConfig(primary=PRIMARY, max_hoas=0)


# --- a lost spare, HA restarts ------------------------------------------------------------------


def test_a_spare_whose_binding_is_lost_leaves_the_pool_until_re_registered():
    mn = started()
    a, b = mn.table.spares
    mn.ha.cache.pop(a)
    mn.ha.last_seq.pop(a)
    out = mn.do(FromHa(a, BeReceived(1)))
    assert PoolChanged((b,)) in out and mn.role(a) is HoaRole.REGISTERING
    mn.settle()
    assert set(mn.table.spares) == {a, b}


# --- persistence --------------------------------------------------------------------------------


def test_round_trip_resumes_without_leaking_or_registering_twice():
    mn = started(hold_time=10)
    a, b = mn.table.spares
    mn.do(Claim(a))
    mn.do(BindTo(a, LTE))
    mn.settle()
    mn.do(Claim(b))
    mn.settle()
    c, d = mn.table.spares
    mn.do(Claim(c))
    mn.do(Release(c))  # the refill is on its way: c goes back to the pool, behind d
    mn.do(Release(b))  # pool full: held
    assert mn.table.spares == (d, c) and mn.role(b) is HoaRole.HELD
    mn.settle(1)
    state = json.loads(json.dumps(mn.table.to_dict()))
    before = {v.hoa: v for v in mn.table.views(mn.now)}

    restored = HomeAddressTable.from_dict(state, mn.cfg, counting_iids(0xB000), mn.now)
    after = {v.hoa: v for v in restored.views(mn.now)}
    assert list(after) == list(before)  # same HoAs, same order, Primary first
    assert {h: v.role for h, v in after.items()} == {h: v.role for h, v in before.items()}
    assert {h: v.uplink for h, v in after.items()} == {h: v.uplink for h, v in before.items()}
    assert restored.spares == mn.table.spares
    assert restored.hoas_on(LTE) == frozenset({a})

    # continue on the same HA: nothing is sent until the uplinks are reported
    mn.table = restored
    mn.uplinks.clear()
    assert [x for x in mn.do(Tick()) if isinstance(x, SendBuVia)] == []
    out = mn.up(WLAN, C_WLAN) + mn.up(LTE, C_LTE)
    bus = [x for x in out if isinstance(x, SendBuVia)]
    assert {x.bu.hoa for x in bus} == set(before)  # each refreshed once, at once
    assert not any(x.bu.first_registration for x in bus)
    mn.settle(1)
    assert not any(ba.status == 135 for _, _, ba in mn.pending)
    assert all(v.state is BindingState.BOUND for v in mn.table.views(mn.now))
    assert mn.table.spares == (d, c)
    mn.settle(20)  # the held HoA still leaves after its hold time
    assert b not in mn.table and b not in mn.ha.cache


def test_restore_names_a_bad_field():
    mn = started()
    state = mn.table.to_dict()
    state["hoas"][1]["role"] = "lost"
    with pytest.raises(ValueError, match=r"'hoas'\[1\]"):
        HomeAddressTable.from_dict(state, mn.cfg, counting_iids(), 0)
    with pytest.raises(ValueError, match="version"):
        HomeAddressTable.from_dict({"version": 99}, mn.cfg, counting_iids(), 0)


def test_a_changed_primary_in_config_holds_the_old_one():
    mn = started()
    state = mn.table.to_dict()
    new_primary = IPv6Address("2001:db8:100::2000")
    cfg = HoaTableConfig(primary=new_primary, home_prefixes=(HOME,), default_uplink=WLAN)
    t = HomeAddressTable.from_dict(state, cfg, counting_iids(), mn.now)
    v = t.view(PRIMARY, mn.now)
    assert v is not None and v.role is HoaRole.HELD
    assert t.views(mn.now)[0].hoa == new_primary


# --- random event sequences ---------------------------------------------------------------------

OPS = ("wait", "wait", "up", "claim", "claim_any", "release", "bind", "adopt", "silence", "dad")
OPS += ("be", "brr")
COAS = {WLAN: [C_WLAN, C_WLAN2, None], LTE: [C_LTE, None]}
ops = st.lists(
    st.tuples(
        st.sampled_from(OPS),
        st.integers(0, 1000),
        st.floats(0, 40, allow_nan=False),
    ),
    max_size=50,
)


@settings(max_examples=150, deadline=None)
@given(ops, st.integers(0, 3), st.integers(1, 3))
def test_random_sequences_keep_the_table_invariants(script, pool_size: int, parallel: int):
    mn = Mn(pool_size=pool_size, max_hoas=6, max_parallel_registrations=parallel, hold_time=5)
    last_bu: dict[IPv6Address, float] = {}
    seen = 0
    for op, n, dt in script:
        known = [v.hoa for v in mn.table.views(mn.now)]
        pick = known[n % len(known)]
        if op == "wait":
            mn.until(mn.now + dt)
        elif op == "up":
            uplink = [WLAN, LTE][n % 2]
            mn.up(uplink, COAS[uplink][n % len(COAS[uplink])])
        elif op == "claim":
            mn.do(Claim(pick))
        elif op == "claim_any":
            mn.do(Claim())
        elif op == "release":
            mn.do(Release(pick))
        elif op == "bind":
            mn.do(BindTo(pick, [WLAN, LTE][n % 2]))
        elif op == "adopt":
            mn.do(Adopt(IPv6Address(int(HOME.network_address) + 0x5000 + n)))
        elif op == "silence":
            mn.ha.silent = not mn.ha.silent
        elif op == "dad":
            mn.ha.duplicates.add(IPv6Address(int(HOME.network_address) + 0xA000 + n % 8))
        elif op == "be":
            mn.do(FromHa(pick, BeReceived(1)))
        elif op == "brr":
            mn.do(FromHa(pick, BrrReceived()))
        # Every BU: leaves by the uplink holding its CoA (checked in Mn.do), never deregisters
        # the Primary, and at most MAX_UPDATE_RATE per second per HoA (one exchange at a time).
        for t, a in mn.log[seen:]:
            if isinstance(a, SendBuVia):
                assert not (a.bu.hoa == PRIMARY and a.bu.lifetime == 0)
                prev = last_bu.get(a.bu.hoa)
                assert prev is None or t - prev >= 1 / 3 - 1e-9
                last_bu[a.bu.hoa] = t
            if isinstance(a, HoaFreed):
                assert a.hoa != PRIMARY
            if isinstance(a, PoolChanged):
                assert len(a.spares) <= pool_size
        seen = len(mn.log)
        d = mn.table.next_deadline
        assert d is None or d >= mn.now
        # the snapshot always restores
        state = json.loads(json.dumps(mn.table.to_dict()))
        r = HomeAddressTable.from_dict(state, mn.cfg, counting_iids(0xF000), mn.now)
        assert [v.hoa for v in r.views(mn.now)] == [v.hoa for v in mn.table.views(mn.now)]
