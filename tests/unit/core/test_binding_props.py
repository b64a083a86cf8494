"""Properties of the sequence arithmetic (RFC 6275 §9.5.1) and of the binding state machine under
random event sequences."""

from __future__ import annotations

import json
from ipaddress import IPv6Address

from hypothesis import given, settings
from hypothesis import strategies as st

from sdnmip.core.binding import BindingEntry
from sdnmip.core.binding_messages import (
    BaReceived,
    BeReceived,
    Bind,
    BindingEvent,
    BindingState,
    BrrReceived,
    CoaLost,
    Deregister,
    SendBu,
    TimerFired,
)
from sdnmip.core.constants import MAX_UPDATE_RATE
from sdnmip.core.seqno import next_seq, seq_ge, seq_gt

seqs = st.integers(0, 0xFFFF)


def test_rfc_examples():
    assert seq_gt(0, 65535)  # wrap
    assert not seq_gt(65535, 0)
    assert seq_gt(16, 15)
    # RFC 6275 §9.5.1: 15 + 32768 is less than or equal to 15 ... and 15 is not greater either
    assert not seq_gt(32783, 15)
    assert next_seq(65535) == 0


@given(seqs, seqs)
def test_at_most_one_direction_is_greater(x: int, y: int):
    assert not (seq_gt(x, y) and seq_gt(y, x))
    if x != y and (x - y) % 0x10000 != 0x8000:
        assert seq_gt(x, y) or seq_gt(y, x)


@given(seqs, st.integers(1, 0x7FFF))
def test_adding_less_than_half_the_space_is_greater(x: int, k: int):
    assert seq_gt((x + k) % 0x10000, x)
    assert not seq_gt(x, (x + k) % 0x10000)
    assert seq_ge(x, x) and not seq_gt(x, x)


HOA = IPv6Address("2001:db8:100::77")
COAS = [IPv6Address("2001:db8:1::10"), IPv6Address("2001:db8:2::10")]

KINDS = ("timer", "timer", "timer", "bind", "dereg", "ack", "ack", "foreign", "brr", "be", "lost")
steps = st.lists(
    st.tuples(
        st.floats(0, 50, allow_nan=False),
        st.sampled_from(KINDS),
        st.integers(0, 255),
        st.integers(0, 0xFFFF),
    ),
    max_size=60,
)


@settings(max_examples=300, deadline=None)
@given(seqs, steps)
def test_random_event_sequences_keep_the_invariants(start: int, script):
    e = BindingEntry(HOA, last_sequence=start)
    now = 0.0
    last_bu: SendBu | None = None
    last_bu_at: float | None = None
    # Sequence numbers a 135 resync may jump to (BA's sequence + 1). The resynced BU can leave in a
    # later step than the 135 (rate limit), after other BUs: the allowance lasts until used.
    resync_targets: set[int] = set()
    for dt, kind, status, seq in script:
        ev: BindingEvent
        if kind == "timer":
            d = e.next_deadline
            if d is None:
                continue
            now = max(now, d)
            ev = TimerFired()
        else:
            now += dt
            if kind == "bind":
                ev = Bind(COAS[status % 2], 4 + status * 4)
            elif kind == "dereg":
                ev = Deregister()
            elif kind == "ack" and last_bu is not None:
                s = seq if status == 135 else last_bu.sequence
                ev = BaReceived(status, s, last_bu.lifetime)
                if status == 135:
                    resync_targets.add(next_seq(s))
            elif kind == "foreign":
                ev = BaReceived(status, seq, 100)
                if status == 135:
                    resync_targets.add(next_seq(seq))
            elif kind == "brr":
                ev = BrrReceived()
            elif kind == "be":
                ev = BeReceived(1 + status % 2)
            elif kind == "lost":
                ev = CoaLost()
            else:
                continue
        before = e.next_deadline
        out = e.handle(ev, now)
        after = e.next_deadline
        # deadlines never lie in the past, and a served timer makes progress
        assert after is None or after >= now
        if isinstance(ev, TimerFired) and before is not None and before <= now:
            assert after is None or after > now
        for a in out:
            if not isinstance(a, SendBu):
                continue
            # at most MAX_UPDATE_RATE BUs a second for this HoA
            if last_bu_at is not None:
                assert now - last_bu_at >= 1 / MAX_UPDATE_RATE - 1e-9
            # each BU uses the next sequence number, except around a 135 resync
            if last_bu is not None and a.sequence in resync_targets:
                resync_targets.clear()
            elif last_bu is not None:
                assert a.sequence == next_seq(last_bu.sequence)
            assert a.hoa == HOA and a.coa in COAS
            assert a.lifetime == 0 or a.lifetime % 4 == 0
            last_bu, last_bu_at = a, now
        st_ = e.state(now)
        if st_ in (BindingState.REGISTERING, BindingState.UPDATING, BindingState.DEREGISTERING):
            assert e.outstanding or st_ is BindingState.DEREGISTERING
        # a snapshot is always JSON-able and restorable
        BindingEntry.from_dict(json.loads(json.dumps(e.to_dict())), now)
