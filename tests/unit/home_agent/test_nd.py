"""DAD on behalf of mobile nodes and the unsolicited NAs, on a mock clock."""

from __future__ import annotations

from ipaddress import IPv6Address

import pytest

from sdnmip.home_agent.nd import Announcer, DadDone, DadRunner, SendNa, SendNs

A = IPv6Address("2001:db8:100::a")
B = IPv6Address("2001:db8:100::b")
LL_A = IPv6Address("fe80::a")
UNSPEC = IPv6Address("::")
PEER = IPv6Address("2001:db8:100::fffe")


def test_one_transmit_one_second_by_default_then_unique():
    dad = DadRunner(transmits=1, retrans_timer=1.0)
    sends, done = dad.start(0.0, A, (A,))
    assert sends == [SendNs(A)] and done == []
    assert dad.next_deadline() == 1.0
    assert dad.tick(0.999) == ([], [])
    assert dad.tick(1.0) == ([], [DadDone(A, None)])
    assert len(dad) == 0 and dad.next_deadline() is None


def test_several_transmits_are_retrans_timer_apart():
    dad = DadRunner(transmits=3, retrans_timer=0.5)
    sends, _ = dad.start(10.0, A, (A, LL_A))
    assert sends == [SendNs(A), SendNs(LL_A)]
    assert dad.tick(10.5) == ([SendNs(A), SendNs(LL_A)], [])
    assert dad.tick(11.0) == ([SendNs(A), SendNs(LL_A)], [])
    assert dad.tick(11.4) == ([], [])
    assert dad.tick(11.5) == ([], [DadDone(A, None)])


def test_many_dads_run_in_parallel_and_finish_independently():
    dad = DadRunner(transmits=1, retrans_timer=1.0)
    hoas = [IPv6Address(f"2001:db8:100::{i:x}") for i in range(1, 201)]
    for i, h in enumerate(hoas):
        dad.start(i * 0.001, h, (h,))
    assert len(dad) == 200
    _, done = dad.tick(1.1)
    assert [d.home_address for d in done] == hoas[:101]
    _, done = dad.tick(5.0)
    assert len(done) == 99 and all(d.duplicate is None for d in done)


def test_a_neighbor_advertisement_for_the_target_is_a_duplicate():
    dad = DadRunner(transmits=1, retrans_timer=1.0)
    dad.start(0.0, A, (A, LL_A))
    dad.start(0.0, B, (B,))
    assert dad.on_neighbor_advertisement(PEER) == []
    assert dad.on_neighbor_advertisement(LL_A) == [DadDone(A, LL_A)]
    assert not dad.running(A) and dad.running(B)
    assert dad.tick(2.0) == ([], [DadDone(B, None)])  # A's timer is gone with it


def test_another_nodes_dad_counts_but_address_resolution_does_not():
    dad = DadRunner(transmits=1, retrans_timer=1.0)
    dad.start(0.0, A, (A,))
    assert dad.on_neighbor_solicitation(PEER, A) == []  # resolution, unicast source
    assert dad.on_neighbor_solicitation(UNSPEC, A) == [DadDone(A, A)]


def test_zero_transmits_means_no_dad():
    dad = DadRunner(transmits=0, retrans_timer=1.0)
    assert dad.start(0.0, A, (A,)) == ([], [DadDone(A, None)])


def test_cancel_and_double_start():
    dad = DadRunner(transmits=1, retrans_timer=1.0)
    dad.start(0.0, A, (A,))
    with pytest.raises(ValueError, match="already running"):
        dad.start(0.1, A, (A,))
    assert dad.cancel(A) and not dad.cancel(A)
    assert dad.targets() == []
    assert dad.tick(5.0) == ([], [])
    dad.start(6.0, A, (A,))  # restart after a cancel: only the new timer counts
    assert dad.tick(6.5) == ([], [])
    assert dad.tick(7.0) == ([], [DadDone(A, None)])


def test_announcer_repeats_count_times_interval_apart():
    ann = Announcer(count=3, interval=1.0)
    assert ann.announce(0.0, (A, LL_A)) == [SendNa(A), SendNa(LL_A)]
    assert ann.tick(0.5) == []
    assert ann.tick(1.0) == [SendNa(A), SendNa(LL_A)]
    assert ann.tick(2.0) == [SendNa(A), SendNa(LL_A)]
    assert ann.tick(10.0) == [] and len(ann) == 0


def test_announcer_cancel_and_reannounce_do_not_double_up():
    ann = Announcer(count=3, interval=1.0)
    ann.announce(0.0, (A,))
    ann.cancel((A,))
    assert ann.tick(5.0) == []
    ann.announce(5.0, (A,))
    ann.cancel((A,))
    ann.announce(5.5, (A,))
    assert ann.tick(6.0) == []
    assert ann.tick(6.5) == [SendNa(A)]
    assert ann.tick(7.5) == [SendNa(A)]
    assert ann.tick(9.0) == []


def test_announcer_count_zero_sends_nothing():
    assert Announcer(count=0, interval=1.0).announce(0.0, (A,)) == []


def test_token_bucket_limits_binding_errors():
    from sdnmip.home_agent.ratelimit import TokenBucket

    tb = TokenBucket(rate=10.0, burst=3.0)
    assert [tb.allow(0.0) for _ in range(5)] == [True, True, True, False, False]
    assert tb.allow(0.05) is False  # half a token
    assert tb.allow(0.1) is True
    assert [tb.allow(10.0) for _ in range(4)] == [True, True, True, False]  # capped at burst
    assert tb.refused == 4
