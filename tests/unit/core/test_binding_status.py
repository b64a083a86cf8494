"""The reaction of a home registration to every BA status code, to Binding Errors and to Binding
Refresh Requests (RFC 6275 §6.1.8, §11.7.3, §11.7.4, §11.3.6; RFC 4285)."""

from __future__ import annotations

from ipaddress import IPv6Address

import pytest

from sdnmip.core.binding import BindingEntry
from sdnmip.core.binding_messages import (
    BaReceived,
    BeReceived,
    Bind,
    BindingAction,
    BindingEstablished,
    BindingEvent,
    BindingFailed,
    BindingLost,
    BindingRemoved,
    BindingState,
    BrrReceived,
    Deregister,
    DuplicateAddress,
    FailureReason,
    HaProtocolError,
    LossReason,
    PrefixDiscoveryNeeded,
    SendBu,
    TimerFired,
)
from sdnmip.core.constants import BaStatus

HOA = IPv6Address("2001:db8:100::abcd")
COA = IPv6Address("2001:db8:1::10")


class Run:
    def __init__(self) -> None:
        self.e = BindingEntry(HOA, last_sequence=100)
        self.now = 0.0
        self.log: list[tuple[float, BindingAction]] = []

    def do(self, ev: BindingEvent, at: float | None = None) -> list[BindingAction]:
        if at is not None:
            self.until(at)
        out = self.e.handle(ev, self.now)
        self.log += [(self.now, a) for a in out]
        return out

    def until(self, t: float) -> None:
        while (d := self.e.next_deadline) is not None and d <= t:
            self.now = d
            self.log += [(d, a) for a in self.e.handle(TimerFired(), d)]
        self.now = t

    def bus(self) -> list[tuple[float, SendBu]]:
        return [(t, a) for t, a in self.log if isinstance(a, SendBu)]

    def seq(self) -> int:
        return self.bus()[-1][1].sequence


def registering() -> Run:
    r = Run()
    r.do(Bind(COA, 120))
    return r


def test_status_0_establishes_the_binding():
    r = registering()
    out = r.do(BaReceived(0, r.seq(), 120), at=0.2)
    assert out == [BindingEstablished(HOA, COA, 120, 120.0)]
    assert r.e.state(r.now) is BindingState.BOUND
    assert r.e.last_status == 0


def test_status_1_establishes_and_asks_for_prefix_discovery():
    r = registering()
    out = r.do(BaReceived(1, r.seq(), 120), at=0.2)
    assert out == [BindingEstablished(HOA, COA, 120, 120.0), PrefixDiscoveryNeeded(HOA)]


@pytest.mark.parametrize("status", [2, 64, 127])
def test_unknown_status_below_128_is_an_acceptance(status: int):
    r = registering()
    r.do(BaReceived(status, r.seq(), 120), at=0.2)
    assert r.e.state(r.now) is BindingState.BOUND


TRANSIENT = [
    BaStatus.REASON_UNSPECIFIED,
    BaStatus.INSUFFICIENT_RESOURCES,
    BaStatus.EXPIRED_HOME_NONCE_INDEX,
    BaStatus.EXPIRED_CARE_OF_NONCE_INDEX,
    BaStatus.EXPIRED_NONCES,
    BaStatus.REGISTRATION_TYPE_CHANGE_DISALLOWED,
    200,  # unknown rejection
]


@pytest.mark.parametrize("status", TRANSIENT)
def test_transient_rejections_retry_on_the_back_off_schedule(status: int):
    r = registering()
    out = r.do(BaReceived(status, r.seq(), 0), at=0.2)
    assert out == [BindingFailed(HOA, FailureReason.REJECTED, status, permanent=False)]
    r.until(12)
    assert [t for t, _ in r.bus()] == [0, 1.5, 4.5, 10.5]  # the schedule is not reset
    # a second rejection of the same request is not reported again
    assert r.do(BaReceived(status, r.seq(), 0)) == []
    r.do(BaReceived(0, r.seq(), 120))
    assert r.e.state(r.now) is BindingState.BOUND
    assert r.e.failure is None


PERMANENT = [
    BaStatus.ADMINISTRATIVELY_PROHIBITED,
    BaStatus.HOME_REGISTRATION_NOT_SUPPORTED,
    BaStatus.NOT_HOME_SUBNET,
    BaStatus.NOT_HOME_AGENT_FOR_THIS_MOBILE_NODE,
    BaStatus.MIPV6_AUTH_FAIL,
]


@pytest.mark.parametrize("status", PERMANENT)
def test_permanent_rejections_stop_sending(status: int):
    r = registering()
    out = r.do(BaReceived(status, r.seq(), 0), at=0.2)
    assert out == [BindingFailed(HOA, FailureReason.REJECTED, status, permanent=True)]
    assert r.e.state(r.now) is BindingState.FAILED
    assert r.e.next_deadline is None
    r.until(1000)
    assert len(r.bus()) == 1
    # BRR and BE do not revive it; a new Bind does
    assert r.do(BrrReceived()) == []
    assert r.do(BeReceived(1)) == []
    assert isinstance(r.do(Bind(COA, 120))[0], SendBu)


def test_permanent_rejection_of_a_refresh_keeps_the_old_binding_until_it_expires():
    r = registering()
    r.do(BaReceived(0, r.seq(), 120), at=0.1)
    r.until(90.5)  # refresh at 90
    r.do(BaReceived(BaStatus.ADMINISTRATIVELY_PROHIBITED, r.seq(), 0))
    assert r.e.state(r.now) is BindingState.FAILED and r.e.live(r.now)
    r.until(200)
    assert BindingLost(HOA, COA, LossReason.EXPIRED) in [a for _, a in r.log]
    assert len(r.bus()) == 2


def test_status_134_reports_the_duplicate_address_distinctly():
    r = registering()
    out = r.do(BaReceived(134, r.seq(), 0), at=1.0)
    assert out == [
        DuplicateAddress(HOA),
        BindingFailed(HOA, FailureReason.REJECTED, 134, permanent=True),
    ]
    assert r.e.state(r.now) is BindingState.FAILED


@pytest.mark.parametrize("status", [144, 145])
def test_timestamp_refusals_resend_with_a_fresh_timestamp_a_bounded_number_of_times(status: int):
    # RFC 4285 §6: 145 = no timestamp; 144 = a timestamp too far from the HA's clock (or not
    # newer than the last), the BA carrying the HA's time for the MN to re-synchronise to.
    r = registering()
    for i in range(3):
        r.do(BaReceived(status, r.seq(), 0), at=r.now + 0.5)
        assert len(r.bus()) == 2 + i and r.bus()[-1][0] == r.now  # sent at once, new sequence
    out = r.do(BaReceived(status, r.seq(), 0), at=r.now + 0.5)
    assert out == [BindingFailed(HOA, FailureReason.REPLAY_PROTECTION, status, permanent=True)]
    assert r.e.state(r.now) is BindingState.FAILED


def test_a_success_resets_the_145_budget():
    r = registering()
    for _ in range(3):
        r.do(BaReceived(145, r.seq(), 0), at=r.now + 0.5)
    r.do(BaReceived(0, r.seq(), 120))
    r.until(r.now + 91)  # refresh
    r.do(BaReceived(145, r.seq(), 0))
    assert r.e.state(r.now) is BindingState.UPDATING


def test_ba_without_outstanding_bu_or_with_a_foreign_sequence_is_ignored():
    r = registering()
    assert r.do(BaReceived(0, 4242, 120)) == []
    assert r.do(BaReceived(134, 4242, 0)) == []
    r.do(BaReceived(0, r.seq(), 120))
    assert r.do(BaReceived(0, r.seq(), 120)) == []  # duplicate: nothing outstanding
    assert r.do(BaReceived(135, 9000, 0)) == []


def test_rejection_of_a_deregistration():
    r = registering()
    r.do(BaReceived(0, r.seq(), 120))
    r.do(Deregister(), at=5)
    out = r.do(BaReceived(BaStatus.NOT_HOME_AGENT_FOR_THIS_MOBILE_NODE, r.seq(), 0))
    assert out == [BindingRemoved(HOA, acknowledged=False)]
    assert r.e.state(r.now) is BindingState.IDLE


def test_deregistration_resyncs_on_135():
    r = registering()
    r.do(BaReceived(0, r.seq(), 120))
    r.do(Deregister(), at=5)
    r.do(BaReceived(135, 3000, 0), at=5.5)
    assert r.bus()[-1][1].sequence == 3001 and r.bus()[-1][1].lifetime == 0
    assert r.do(BaReceived(0, 3001, 0)) == [BindingRemoved(HOA, acknowledged=True)]


# --- Binding Refresh Request, Binding Error -----------------------------------------------------


def test_brr_from_the_ha_triggers_an_immediate_refresh():
    r = registering()
    r.do(BaReceived(0, r.seq(), 120), at=0.1)
    out = r.do(BrrReceived(), at=30)
    assert len(out) == 1 and isinstance(out[0], SendBu)
    assert out[0].lifetime == 120 and not out[0].first_registration
    assert r.do(BrrReceived(), at=30.2) == []  # one BU in flight answers both
    r.until(31.5)
    assert [t for t, _ in r.bus()] == [0, 30, 31]  # INITIAL_BINDACK_TIMEOUT


def test_binding_error_1_means_the_binding_is_lost_and_re_registers():
    r = registering()
    r.do(BaReceived(0, r.seq(), 120), at=0.1)
    out = r.do(BeReceived(1), at=20)
    assert out[0] == BindingLost(HOA, COA, LossReason.HA_UNKNOWN_BINDING)
    assert isinstance(out[1], SendBu) and out[1].first_registration
    r.until(22)
    assert [t for t, _ in r.bus()] == [0, 20, 21.5]  # first-registration back-off
    assert r.e.state(r.now) is BindingState.REGISTERING


def test_binding_error_1_during_registration_changes_nothing():
    r = registering()
    assert r.do(BeReceived(1), at=0.5) == []
    r.until(2)
    assert [t for t, _ in r.bus()] == [0, 1.5]


def test_binding_error_2_is_reported_only():
    r = registering()
    r.do(BaReceived(0, r.seq(), 120), at=0.1)
    assert r.do(BeReceived(2), at=10) == [HaProtocolError(HOA, 2)]
    assert r.e.state(r.now) is BindingState.BOUND


def test_binding_error_during_deregistration_is_ignored():
    r = registering()
    r.do(BaReceived(0, r.seq(), 120), at=0.1)
    r.do(Deregister(), at=10)
    assert r.do(BeReceived(1)) == []
    assert r.e.state(r.now) is BindingState.DEREGISTERING
