"""The binding state machine on a mock clock: RFC 6275 retransmission schedule, sequence numbers,
refresh timing, deregistration, persistence."""

from __future__ import annotations

import itertools
import json
from ipaddress import IPv6Address

import pytest

from sdnmip.core.binding import BindingEntry
from sdnmip.core.binding_messages import (
    BaReceived,
    Bind,
    BindingAction,
    BindingChanged,
    BindingEstablished,
    BindingEvent,
    BindingFailed,
    BindingLost,
    BindingRefreshed,
    BindingRemoved,
    BindingState,
    BindingTimers,
    CoaLost,
    Deregister,
    FailureReason,
    LossReason,
    SendBu,
    TimerFired,
    quantise_lifetime,
)

HOA = IPv6Address("2001:db8:100::1000")
COA1 = IPv6Address("2001:db8:1::10")
COA2 = IPv6Address("2001:db8:2::10")


class Driver:
    """Runs one entry on a mock clock: fires its timer at each deadline, records what it sends."""

    def __init__(self, entry: BindingEntry) -> None:
        self.entry = entry
        self.now = 0.0
        self.log: list[tuple[float, BindingAction]] = []

    def do(self, event: BindingEvent, at: float | None = None) -> list[BindingAction]:
        if at is not None:
            self.run_until(at)
            self.now = at
        out = self.entry.handle(event, self.now)
        self.log += [(self.now, a) for a in out]
        return out

    def run_until(self, t: float) -> None:
        while True:
            d = self.entry.next_deadline
            if d is None or d > t:
                break
            assert d >= self.now, "a deadline in the past was left unserved"
            self.now = d
            out = self.entry.handle(TimerFired(), d)
            self.log += [(d, a) for a in out]
            nd = self.entry.next_deadline
            assert nd is None or nd > d, "the timer made no progress"
        self.now = t

    def bus(self) -> list[tuple[float, SendBu]]:
        return [(t, a) for t, a in self.log if isinstance(a, SendBu)]

    def last_bu(self) -> SendBu:
        return self.bus()[-1][1]

    def of(self, kind: type) -> list:  # type: ignore[type-arg]
        return [a for _, a in self.log if isinstance(a, kind)]

    def ack(self, status: int = 0, lifetime: float | None = None, **kw: float) -> None:
        bu = self.last_bu()
        granted = bu.lifetime if lifetime is None else lifetime
        self.do(BaReceived(status, bu.sequence, granted, **kw))


def new(last_sequence: int = 0, **timers: float) -> Driver:
    return Driver(BindingEntry(HOA, last_sequence=last_sequence, timers=BindingTimers(**timers)))  # type: ignore[arg-type]


def bound(lifetime: float = 100.0, last_sequence: int = 0) -> Driver:
    d = new(last_sequence)
    d.do(Bind(COA1, lifetime))
    d.ack()
    assert d.entry.state(d.now) is BindingState.BOUND
    return d


def intervals(times: list[float]) -> list[float]:
    return [round(b - a, 6) for a, b in itertools.pairwise(times)]


# --- retransmission (RFC 6275 §11.8, §12, §13) ---------------------------------------------------


def test_first_registration_backs_off_from_1_5_s_and_caps_at_32_s():
    d = new()
    d.do(Bind(COA1, 600))
    d.run_until(200)
    times = [t for t, _ in d.bus()]
    assert times[0] == 0.0
    assert intervals(times) == [1.5, 3, 6, 12, 24, 32, 32, 32, 32]
    bus = [b for _, b in d.bus()]
    # every transmission has a new, greater sequence number; all are first registrations
    assert [b.sequence for b in bus] == list(range(1, 11))
    assert all(b.first_registration and b.coa == COA1 and b.lifetime == 600 for b in bus)
    assert [b.attempt for b in bus] == list(range(1, 11))
    # A and H set, K and L clear (§11.7.1)
    assert bus[0].ack and bus[0].home_registration
    assert not bus[0].key_mgmt_mobility and not bus[0].link_local_compat
    # reported once, when the back-off reached MAX_BINDACK_TIMEOUT, and still trying
    failures = d.of(BindingFailed)
    assert failures == [BindingFailed(HOA, FailureReason.NO_RESPONSE, None, permanent=False)]
    assert [t for t, a in d.log if isinstance(a, BindingFailed)] == [46.5]
    assert d.entry.state(d.now) is BindingState.REGISTERING


def test_update_of_a_live_binding_backs_off_from_1_s():
    d = bound(lifetime=600)
    start = d.now
    d.do(Bind(COA2, 600), at=10.0)
    d.run_until(110)
    times = [t for t, b in d.bus() if t >= 10.0]
    assert times[0] == 10.0 and start == 0.0
    assert intervals(times) == [1, 2, 4, 8, 16, 32, 32]
    assert not any(b.first_registration for t, b in d.bus() if t >= 10.0)
    assert d.entry.state(d.now) is BindingState.UPDATING


def test_custom_first_registration_timeout_is_honoured():
    d = new(initial_bindack_timeout_first_reg=3.0)
    d.do(Bind(COA1, 600))
    d.run_until(50)
    assert intervals([t for t, _ in d.bus()]) == [3, 6, 12, 24]


def test_bad_timer_config_names_the_field():
    with pytest.raises(ValueError, match="refresh_fraction"):
        BindingTimers(refresh_fraction=1.5)
    with pytest.raises(ValueError, match="max_bindack_timeout"):
        BindingTimers(max_bindack_timeout=1.0)


# --- sequence numbers (§9.5.1) ------------------------------------------------------------------


def test_sequence_numbers_wrap_from_65535_to_0_and_the_ba_still_matches():
    d = new(last_sequence=65534)
    d.do(Bind(COA1, 100))
    d.run_until(5)
    assert [b.sequence for _, b in d.bus()] == [65535, 0, 1]
    d.do(BaReceived(0, 0, 100))  # answer to the retransmission with sequence 0
    assert d.entry.state(d.now) is BindingState.BOUND
    assert d.entry.last_sequence == 1
    # a BA for a sequence never sent is ignored
    d2 = new(last_sequence=65534)
    d2.do(Bind(COA1, 100))
    assert d2.do(BaReceived(0, 7, 100)) == []
    assert d2.entry.state(d2.now) is BindingState.REGISTERING


def test_status_135_resyncs_from_the_ba_and_resends_at_once():
    d = new(last_sequence=10)
    d.do(Bind(COA1, 100))
    assert d.last_bu().sequence == 11
    # The HA still remembers sequence 5000 from an earlier life of this HoA.
    d.do(BaReceived(135, 5000, 0), at=0.5)
    resent = d.last_bu()
    assert (d.now, resent.sequence) == (0.5, 5001)
    d.do(BaReceived(0, 5001, 100), at=0.6)
    assert d.of(BindingEstablished) == [BindingEstablished(HOA, COA1, 100, 100.5)]
    assert d.entry.last_sequence == 5001


def test_status_135_across_the_wrap_uses_modulo_comparison():
    # Ours 40000; the HA's last accepted 7000 is "greater" modulo 2**16 (distance 32536 < 2**15
    # going 40000 -> 7000 the long way round is 32536), so the 135 is genuine: resync to 7001.
    d = new(last_sequence=39999)
    d.do(Bind(COA1, 100))
    d.do(BaReceived(135, 7000, 0), at=1.0)
    assert d.last_bu().sequence == 7001


def test_a_stale_135_for_an_older_transmission_is_ignored():
    d = new(last_sequence=10)
    d.do(Bind(COA1, 100))
    d.do(BaReceived(135, 5000, 0), at=0.5)
    assert d.last_bu().sequence == 5001
    # a late copy claiming the HA's last is 4000 (< 5001): our newest BU will be accepted
    assert d.do(BaReceived(135, 4000, 0), at=0.7) == []
    assert d.entry.last_sequence == 5001


def test_status_135_respects_max_update_rate():
    d = new()
    d.do(Bind(COA1, 100))
    d.do(BaReceived(135, 900, 0), at=0.1)
    assert [t for t, _ in d.bus()] == [0.0]  # not yet: at most 3 BUs a second
    d.run_until(1.0)
    times = [t for t, _ in d.bus()]
    assert times[1] == pytest.approx(1 / 3)
    assert d.bus()[1][1].sequence == 901


def test_an_ha_that_keeps_answering_135_gets_the_back_off_not_a_storm():
    d = new()
    d.do(Bind(COA1, 100))
    for i in range(5):
        d.do(BaReceived(135, d.last_bu().sequence + 10, 0), at=d.now + 0.5)
        if i < 3:
            assert d.now == d.bus()[-1][0]  # immediate resend for the first 3
    assert d.of(BindingFailed)[-1].reason is FailureReason.REJECTED
    assert d.of(BindingFailed)[-1].status == 135
    assert len(d.bus()) == 4  # 1 + 3 resends; then the schedule resumes
    d.run_until(d.now + 1.5)
    assert len(d.bus()) == 5


# --- refresh (§11.7.1, §11.7.3, §6.2.4) ---------------------------------------------------------


def test_refresh_at_the_configured_fraction_of_the_granted_lifetime():
    d = new(refresh_fraction=0.75)
    d.do(Bind(COA1, 100))
    d.do(BaReceived(0, 1, 100), at=0.4)
    assert d.entry.expires_at == 100.0  # counted from when the BU was sent
    assert d.entry.refresh_at == 75.0
    d.run_until(75.5)
    refresh = d.bus()[-1]
    assert refresh[0] == 75.0 and not refresh[1].first_registration
    assert refresh[1].lifetime == 100
    d.do(BaReceived(0, refresh[1].sequence, 100), at=75.5)
    assert d.of(BindingRefreshed) == [BindingRefreshed(HOA, COA1, 100, 175.0)]
    assert d.entry.refresh_at == 150.0


def test_binding_refresh_advice_earlier_than_the_fraction_wins():
    d = new()
    d.do(Bind(COA1, 100))
    d.do(BaReceived(0, 1, 100, refresh_interval=20), at=0.5)
    assert d.entry.refresh_at == 20.5  # advice counts from the BA
    d.run_until(21)
    assert [t for t, _ in d.bus()] == [0.0, 20.5]


def test_binding_refresh_advice_later_than_the_fraction_is_not_used():
    d = new()
    d.do(Bind(COA1, 100))
    d.do(BaReceived(0, 1, 100, refresh_interval=96), at=0.5)
    assert d.entry.refresh_at == 75.0


def test_a_shorter_granted_lifetime_shortens_expiry_and_refresh():
    d = new()
    d.do(Bind(COA1, 400))
    assert d.last_bu().lifetime == 400
    d.do(BaReceived(0, 1, 40), at=1.0)
    assert d.entry.granted_lifetime == 40
    assert d.entry.expires_at == 40.0  # BU sent at 0
    assert d.entry.refresh_at == 30.0
    d.run_until(31)
    assert d.last_bu().lifetime == 400  # keeps asking for what it wants


def test_expiry_without_a_successful_refresh_loses_the_binding_and_keeps_trying():
    d = new()
    d.do(Bind(COA1, 100))
    d.ack()
    d.run_until(130)
    times = [t for t, _ in d.bus()]
    assert times[:7] == [0, 75, 76, 78, 82, 90, 106]
    losses = [(t, a) for t, a in d.log if isinstance(a, BindingLost)]
    assert losses == [(100.0, BindingLost(HOA, COA1, LossReason.EXPIRED))]
    assert d.entry.state(d.now) is BindingState.REGISTERING
    d.ack()
    assert len(d.of(BindingEstablished)) == 2


def test_ba_arriving_after_the_granted_time_is_over_does_not_bind():
    d = new()
    d.do(Bind(COA1, 8))
    d.do(BaReceived(0, 1, 8), at=9.0)
    assert d.entry.state(d.now) is BindingState.REGISTERING
    assert d.of(BindingFailed)[0].reason is FailureReason.ZERO_LIFETIME


# --- changes of CoA, superseding ----------------------------------------------------------------


def test_new_bind_supersedes_the_outstanding_bu():
    d = new()
    d.do(Bind(COA1, 100))
    d.do(Bind(COA2, 100), at=0.5)
    first, second = (b for _, b in d.bus())
    assert (first.coa, second.coa) == (COA1, COA2)
    assert second.sequence == first.sequence + 1
    assert d.do(BaReceived(0, first.sequence, 100)) == []  # superseded: ignored
    d.do(BaReceived(0, second.sequence, 100))
    assert d.entry.bound_coa == COA2


def test_rebind_is_rate_limited_to_max_update_rate():
    d = bound()
    d.do(Bind(COA2, 100), at=0.1)
    assert len(d.bus()) == 1
    d.run_until(0.5)
    assert d.bus()[1][0] == pytest.approx(1 / 3)


def test_rebind_to_the_bound_coa_is_a_no_op_and_a_change_is_reported():
    d = bound()
    assert d.do(Bind(COA1, 100), at=5) == []
    d.do(Bind(COA2, 100), at=6)
    d.ack()
    assert d.of(BindingChanged) == [BindingChanged(HOA, COA1, COA2, 100, 106.0)]


def test_coa_lost_suspends_until_a_new_bind():
    d = bound()
    d.do(CoaLost(COA2), at=10)  # names another CoA: ignored
    assert d.entry.state(d.now) is BindingState.BOUND
    d.do(CoaLost(COA1), at=10)
    assert d.entry.state(d.now) is BindingState.SUSPENDED
    d.run_until(200)
    assert len(d.bus()) == 1  # nothing sent without a CoA; no refresh either
    assert d.of(BindingLost) == [BindingLost(HOA, COA1, LossReason.EXPIRED)]
    d.do(Bind(COA2, 100))
    assert d.last_bu().coa == COA2 and d.last_bu().first_registration


# --- deregistration -----------------------------------------------------------------------------


def test_deregistration_sends_lifetime_0_and_completes_on_the_ba():
    d = bound()
    d.do(Deregister(), at=10)
    bu = d.last_bu()
    assert (bu.lifetime, bu.lifetime_units, bu.coa, bu.ack, bu.home_registration) == (
        0,
        0,
        COA1,
        True,
        True,
    )
    assert d.entry.state(d.now) is BindingState.DEREGISTERING
    d.do(BaReceived(0, bu.sequence, 0), at=10.2)
    assert d.of(BindingRemoved) == [BindingRemoved(HOA, acknowledged=True)]
    assert d.entry.state(d.now) is BindingState.IDLE
    assert d.entry.next_deadline is None
    assert not d.entry.may_be_bound(d.now)


def test_unanswered_deregistration_stops_when_no_binding_can_be_left():
    d = bound(lifetime=40)
    d.do(Deregister(), at=10)
    d.run_until(100)
    times = [t for t, b in d.bus() if b.lifetime == 0]
    assert intervals(times) == [1, 2, 4, 8]  # 10, 11, 13, 17, 25; the binding ends at 40
    removed = [(t, a) for t, a in d.log if isinstance(a, BindingRemoved)]
    assert removed == [(40.0, BindingRemoved(HOA, acknowledged=False))]


def test_deregistration_of_a_hoa_never_registered_sends_nothing():
    d = new()
    assert d.do(Deregister()) == [BindingRemoved(HOA, acknowledged=False)]
    assert d.bus() == []


def test_deregistration_during_first_registration_still_sends_lifetime_0():
    # the HA may have accepted the BU whose BA is lost
    d = new()
    d.do(Bind(COA1, 100))
    d.do(Deregister(), at=0.5)
    assert d.last_bu().lifetime == 0
    assert d.do(BaReceived(0, 1, 100)) == []  # the registration's BA no longer matches


def test_bind_during_deregistration_supersedes_it():
    d = bound()
    d.do(Deregister(), at=10)
    d.do(Bind(COA2, 100), at=10.5)
    assert d.last_bu().lifetime == 100 and d.last_bu().coa == COA2
    d.ack()
    assert d.entry.state(d.now) is BindingState.BOUND


def test_lifetime_quantisation():
    assert quantise_lifetime(10) == 8
    assert quantise_lifetime(1) == 4
    assert quantise_lifetime(1e9) == 0xFFFF * 4
    with pytest.raises(ValueError, match="positive"):
        quantise_lifetime(0)
    d = new()
    d.do(Bind(COA1, 10))
    assert (d.last_bu().lifetime, d.last_bu().lifetime_units) == (8, 2)


# --- persistence --------------------------------------------------------------------------------


def roundtrip(entry: BindingEntry, now: float) -> BindingEntry:
    return BindingEntry.from_dict(json.loads(json.dumps(entry.to_dict())), now)


def test_restored_live_binding_refreshes_as_soon_as_it_is_given_a_coa():
    d = bound(lifetime=100, last_sequence=41)
    r = roundtrip(d.entry, now=20)
    assert r.last_sequence == 42
    assert r.state(20) is BindingState.SUSPENDED  # sends nothing until told the CoA
    assert r.live(20) and r.expires_at == 100.0 and r.bound_coa == COA1
    assert r.next_deadline == 100.0
    d2 = Driver(r)
    d2.now = 20
    d2.do(Bind(COA1, 100))
    bu = d2.last_bu()
    assert (bu.sequence, bu.coa, bu.first_registration) == (43, COA1, False)
    d2.run_until(21.5)
    assert intervals([t for t, _ in d2.bus()]) == [1]  # INITIAL_BINDACK_TIMEOUT: binding live


def test_restored_expired_binding_registers_afresh():
    d = bound(lifetime=100)
    r = roundtrip(d.entry, now=500)
    assert not r.live(500) and r.bound_coa is None and r.next_deadline is None
    out = r.handle(Bind(COA2, 100), 500)
    assert isinstance(out[0], SendBu) and out[0].first_registration


def test_restored_deregistration_resumes_when_given_a_coa():
    d = bound(lifetime=100)
    d.do(Deregister(), at=10)
    r = roundtrip(d.entry, now=12)
    assert r.state(12) is BindingState.DEREGISTERING
    out = r.handle(Deregister(COA2), 12)
    assert isinstance(out[0], SendBu) and out[0].lifetime == 0 and out[0].coa == COA2


def test_restore_clamps_times_from_a_clock_that_went_backwards():
    d = bound(lifetime=100)
    state = d.entry.to_dict()
    r = BindingEntry.from_dict(state, now=-1_000_000.0)
    assert r.expires_at == -1_000_000.0 + 100.0


def test_restore_names_a_bad_field():
    state = bound().entry.to_dict()
    state["last_sequence"] = "x"
    with pytest.raises(ValueError, match="last_sequence"):
        BindingEntry.from_dict(state, 0)
    state = bound().entry.to_dict()
    state["last_sequence"] = 70000
    with pytest.raises(ValueError, match="70000"):
        BindingEntry.from_dict(state, 0)
    state = bound().entry.to_dict()
    state["want"] = "maybe"
    with pytest.raises(ValueError, match="want"):
        BindingEntry.from_dict(state, 0)


def test_restored_failure_stays_failed_until_the_next_bind():
    d = new()
    d.do(Bind(COA1, 100))
    d.do(BaReceived(129, 1, 0))
    r = roundtrip(d.entry, now=1)
    assert r.state(1) is BindingState.FAILED
    assert r.failure is not None and r.failure.status == 129
    assert isinstance(r.handle(Bind(COA1, 100), 1)[0], SendBu)
