"""The binding cache's RFC 6275 / RFC 4285 decisions, on a mock clock, from real BU packets."""

from __future__ import annotations

from ipaddress import IPv6Address, IPv6Network

from sdnmip.home_agent.cache import (
    BindingRecord,
    CancelDad,
    ForgetBinding,
    InstallBinding,
    PersistBinding,
    RemoveBinding,
    SendBindingError,
    SendIcmp,
    ServedPrefix,
    StartDad,
    home_agents_anycast,
    link_local_of,
    seq_gt,
)
from sdnmip.mipv6 import (
    BindingRefreshAdvice,
    HomeAgentAddressDiscoveryReply,
    MnHaKey,
    MobileNodeIdentifier,
    MobilePrefixAdvertisement,
    MobilityMessageReplayProtection,
    find_option,
    ntp_timestamp,
)
from sdnmip.mipv6.status import BindingAckStatus as S
from tests.unit.home_agent.ha_helpers import (
    COA1,
    COA2,
    HA,
    HOA,
    HOA2,
    KEY,
    KEY2,
    NAI,
    NAI2,
    WALL0,
    Harness,
    acks,
    bu_event,
    bu_packet,
    only_ack,
)


def of(actions: list[object], kind: type) -> list:  # type: ignore[type-arg]
    return [a for a in actions if isinstance(a, kind)]


def snapshot(h: Harness) -> dict:  # type: ignore[type-arg]
    return {
        k: (b.careof, b.nai, b.sequence, b.expires, b.timestamp)
        for k, b in h.cache.bindings.items()
    }


# ------------------------------------------------------------------------------ registration
def test_first_registration_runs_dad_then_installs_and_acknowledges():
    h = Harness()
    first = h.send(seq=7, lifetime=100)
    assert of(first, StartDad) == [StartDad(HOA, (HOA,))]
    assert acks(first) == [] and HOA not in h.cache.bindings  # no answer before DAD ends
    h.t = 1.0
    done = h.dad_ok()
    (install,) = of(done, InstallBinding)
    assert install == InstallBinding(HOA, COA1, None, (HOA,), new=True)
    (persist,) = of(done, PersistBinding)
    assert persist.record.careof == COA1 and persist.record.nai == NAI
    ack = only_ack(done)
    assert ack.ba.status == S.ACCEPTED and ack.ba.sequence == 7 and ack.ba.lifetime == 100
    assert ack.dst == COA1 and ack.home_address == HOA and ack.rh2 and ack.sign_nai == NAI
    assert not ack.ba.key_management
    # RFC 6275 §6.2.4: refresh advice below the lifetime; RFC 4283/4285 options echoed.
    assert find_option(ack.ba.options, BindingRefreshAdvice) == BindingRefreshAdvice(80)
    assert find_option(ack.ba.options, MobileNodeIdentifier).nai == NAI
    echoed = find_option(ack.ba.options, MobilityMessageReplayProtection).timestamp
    assert echoed == ntp_timestamp(WALL0 + 0.001)  # the BU's own timestamp
    b = h.cache.bindings[HOA]
    assert (b.careof, b.sequence, b.lifetime, b.expires) == (COA1, 7, 400, 401.0)
    # Actions are ordered: the data path and the store change before the BA is sent.
    kinds = [type(a) for a in done]
    assert kinds.index(InstallBinding) < kinds.index(PersistBinding) < kinds.index(type(ack))


def test_granted_lifetime_is_capped_by_configuration_and_prefix_lifetime():
    h = Harness(max_lifetime=60.0)
    h.send(lifetime=1000)
    assert only_ack(h.dad_ok()).ba.lifetime == 15  # 60 s in 4 s units
    h2 = Harness(prefixes=(ServedPrefix(IPv6Network("2001:db8:100::/64"), valid_lifetime=40.0),))
    h2.send(lifetime=1000)
    assert only_ack(h2.dad_ok()).ba.lifetime == 10


def test_without_a_flag_an_accepted_bu_gets_no_ack_but_a_refused_one_does():
    h = Harness()
    h.send(ack=False)
    assert acks(h.dad_ok()) == [] and HOA in h.cache.bindings
    assert h.cache.counters.by_status == {0: 1}
    refused = h.send(ack=False, seq=1)  # not newer than 1
    assert only_ack(refused).ba.status == S.SEQUENCE_NUMBER_OUT_OF_WINDOW


def test_dad_disabled_registers_at_once():
    h = Harness(dad=False)
    out = h.send()
    assert of(out, StartDad) == [] and only_ack(out).ba.status == S.ACCEPTED


def test_rebinding_replaces_the_route_in_one_action_and_a_refresh_touches_no_route():
    h = Harness()
    h.register(seq=1)
    h.t = 10
    out = h.send(seq=2, coa=COA2)
    assert of(out, InstallBinding) == [InstallBinding(HOA, COA2, COA1, (HOA,), new=False)]
    assert of(out, RemoveBinding) == [] and only_ack(out).ba.status == S.ACCEPTED
    assert only_ack(out).dst == COA2
    assert h.cache.bindings[HOA].careof == COA2
    h.t = 20
    refresh = h.send(seq=3, coa=COA2)
    assert of(refresh, InstallBinding) == [] and len(of(refresh, PersistBinding)) == 1
    assert h.cache.bindings[HOA].expires == 20 + 400
    c = h.cache.counters
    assert (c.registrations, c.handovers, c.refreshes) == (1, 1, 1)


def test_alternate_careof_address_option_names_the_careof():
    h = Harness(dad=False)
    h.send(alt_coa=COA2)
    assert h.cache.bindings[HOA].careof == COA2


def test_link_local_flag_runs_dad_on_and_defends_the_link_local_address_too():
    h = Harness()
    ll = link_local_of(HOA)
    assert ll == IPv6Address("fe80::1000")
    out = h.send(link_local=True)
    assert of(out, StartDad) == [StartDad(HOA, (HOA, ll))]
    assert of(h.dad_ok(), InstallBinding)[0].proxied == (HOA, ll)


# ------------------------------------------------------------------------------ sequence numbers
def test_sequence_numbers_compare_modulo_2_16():
    assert seq_gt(1, 0) and seq_gt(0, 65535) and not seq_gt(5, 5)
    assert not seq_gt(15 + 32768, 15)  # RFC 6275 §9.5.1's own example
    assert seq_gt(15 + 32767, 15)


def test_old_or_repeated_sequence_is_refused_with_the_last_accepted_number():
    h = Harness()
    h.register(seq=65535)
    before = snapshot(h)
    for seq in (65535, 65000, 65535 + 32768 - 65536):
        h.t += 1
        ack = only_ack(h.send(seq=seq, coa=COA2))
        assert ack.ba.status == S.SEQUENCE_NUMBER_OUT_OF_WINDOW and ack.ba.sequence == 65535
        assert ack.sign_nai == NAI
    assert snapshot(h) == before
    h.t += 1
    assert only_ack(h.send(seq=0, coa=COA2)).ba.status == S.ACCEPTED  # wrapped: newer


# ------------------------------------------------------------------------------ deregistration
def test_deregistration_with_lifetime_zero_removes_everything_and_answers():
    h = Harness()
    h.register(seq=1)
    h.t = 5
    out = h.send(seq=2, lifetime=0)
    assert of(out, RemoveBinding) == [RemoveBinding(HOA, COA1, (HOA,))]
    assert of(out, ForgetBinding) == [ForgetBinding(HOA)]
    ack = only_ack(out)
    assert (ack.ba.status, ack.ba.lifetime, ack.ba.sequence) == (S.ACCEPTED, 0, 2)
    assert find_option(ack.ba.options, BindingRefreshAdvice) is None
    assert HOA not in h.cache.bindings
    assert h.cache.counters.deregistrations == 1


def test_deregistration_from_home_careof_equals_home_address():
    h = Harness()
    h.register(seq=1)
    h.t = 5
    # The MN at home: no Home Address option, source = HoA.
    out = h.send(seq=2, coa=HOA, hao=False, lifetime=100)
    assert of(out, RemoveBinding) and HOA not in h.cache.bindings
    ack = only_ack(out)
    assert ack.dst == HOA and not ack.rh2


def test_deregistering_an_unknown_home_address_is_133():
    h = Harness()
    ack = only_ack(h.send(lifetime=0))
    assert ack.ba.status == S.NOT_HOME_AGENT_FOR_THIS_MOBILE_NODE


# ------------------------------------------------------------------------------ expiry
def test_binding_expires_at_its_lifetime_unless_refreshed():
    h = Harness()
    h.register(lifetime=25)  # 100 s
    assert h.cache.next_deadline() == 100.0
    h.t = 50
    h.send(seq=2, lifetime=25)  # now expires at 150
    assert h.advance(50.0) == [] and HOA in h.cache.bindings  # t=100: still bound
    out = h.advance(50.0)  # t=150
    assert of(out, RemoveBinding) == [RemoveBinding(HOA, COA1, (HOA,))]
    assert of(out, ForgetBinding) == [ForgetBinding(HOA)]
    assert HOA not in h.cache.bindings and h.cache.counters.expired == 1


def test_a_shorter_lifetime_expires_on_time():
    h = Harness()
    h.register(lifetime=250)  # 1000 s
    h.t = 10
    h.send(seq=2, lifetime=5)  # 20 s: expires at 30
    assert h.cache.next_deadline() <= 30
    assert of(h.advance(20.0), RemoveBinding)


# ------------------------------------------------------------------------------ DAD
def test_bus_during_dad_start_no_second_dad_and_the_latest_is_answered():
    h = Harness()
    assert len(of(h.send(seq=1), StartDad)) == 1
    h.t = 0.3
    assert h.send(seq=2) == []  # retransmission with a new sequence number
    h.t = 0.5
    assert h.send(seq=1, ts_wall=h.wall) == []  # an older one arriving late: not answered
    h.t = 1.0
    ack = only_ack(h.dad_ok())
    assert ack.ba.sequence == 2 and ack.ba.status == S.ACCEPTED
    assert h.cache.bindings[HOA].sequence == 2
    assert h.cache.counters.dad_started == 1


def test_dad_failure_is_134_and_leaves_nothing():
    h = Harness()
    h.send()
    h.t = 1
    out = h.cache.on_dad_result(h.t, HOA, duplicate=True)
    assert only_ack(out).ba.status == S.DUPLICATE_ADDRESS_DETECTION_FAILED
    assert of(out, InstallBinding) == [] and HOA not in h.cache.bindings
    assert h.cache.counters.dad_failed == 1 and not h.cache.pending


def test_deregistration_during_dad_cancels_it():
    h = Harness()
    h.send(seq=1)
    h.t = 0.5
    out = h.send(seq=2, lifetime=0)
    assert of(out, CancelDad) == [CancelDad(HOA)]
    assert only_ack(out).ba.status == S.NOT_HOME_AGENT_FOR_THIS_MOBILE_NODE
    assert h.dad_ok() == [] and HOA not in h.cache.bindings


# ------------------------------------------------------------------------------ validity checks
def test_bu_without_h_flag_is_refused():
    h = Harness()
    assert only_ack(h.send(home=False)).ba.status == S.ADMINISTRATIVELY_PROHIBITED
    h.register(seq=1)
    h.t = 1
    ack = only_ack(h.send(home=False, seq=2))
    assert ack.ba.status == S.REGISTRATION_TYPE_CHANGE_DISALLOWED


def test_home_address_outside_the_home_prefix_is_132_and_anycast_is_129():
    h = Harness()
    ack = only_ack(h.send(hoa=IPv6Address("2001:db8:999::1")))
    assert ack.ba.status == S.NOT_HOME_SUBNET
    for bad in (
        home_agents_anycast(IPv6Network("2001:db8:100::/64")),
        IPv6Address("2001:db8:100::"),
        HA,
    ):
        h.t += 1
        assert only_ack(h.send(hoa=bad)).ba.status == S.ADMINISTRATIVELY_PROHIBITED
    assert home_agents_anycast(IPv6Network("2001:db8:100::/64")) == IPv6Address(
        "2001:db8:100:0:fdff:ffff:ffff:fffe"
    )
    assert not h.cache.bindings and not h.cache.pending


def test_unusable_careof_is_dropped_silently():
    h = Harness()
    assert acks(h.send(coa=IPv6Address("fe80::5"))) == []
    assert not h.cache.pending and h.cache.counters.dropped == 1


# ------------------------------------------------------------------------------ RFC 4285
def test_authentication_failures_are_146_unsigned_and_change_nothing():
    h = Harness()
    h.register(seq=1)
    before = snapshot(h)
    cases = {
        "unknown NAI": {"nai": "stranger@sdnmip.example"},
        "no MN identifier": {"nai": None},
        "wrong key": {"key": MnHaKey(4096, bytes(16))},
        "SPI mismatch": {"key": MnHaKey(9999, KEY.key)},
        "no auth option": {"key": None},
    }
    for i, (why, kw) in enumerate(cases.items()):
        h.t = 1 + i
        ack = only_ack(h.send(seq=10 + i, coa=COA2, **kw))
        assert ack.ba.status == S.MIPV6_AUTH_FAIL, why
        assert ack.sign_nai is None, why
        assert of(h.send(seq=20 + i, coa=COA2, lifetime=0, **kw), RemoveBinding) == [], why
    assert snapshot(h) == before
    assert h.cache.counters.by_status[S.MIPV6_AUTH_FAIL] == 10


def test_an_unknown_nai_is_echoed_in_the_refusal():
    h = Harness()
    ack = only_ack(h.send(nai="stranger@sdnmip.example"))
    assert find_option(ack.ba.options, MobileNodeIdentifier).nai == "stranger@sdnmip.example"


def test_missing_timestamp_is_145_signed():
    h = Harness()
    ack = only_ack(h.send(ts_wall=None))
    assert ack.ba.status == S.MIPV6_MESG_ID_REQD and ack.sign_nai == NAI
    assert not h.cache.pending


def test_timestamp_out_of_window_is_144_with_the_has_time():
    h = Harness()
    h.t = 100
    for skew in (-7.5, 8.0):
        ack = only_ack(h.send(ts_wall=h.wall + skew))
        assert ack.ba.status == S.MIPV6_ID_MISMATCH and ack.sign_nai == NAI
        replay = find_option(ack.ba.options, MobilityMessageReplayProtection)
        assert replay.timestamp == ntp_timestamp(h.wall)
    assert not h.cache.pending
    assert of(h.send(ts_wall=h.wall + 6.5), StartDad)  # within 7 s: accepted, DAD starts
    assert h.cache.pending


def test_replayed_bu_is_refused_and_changes_nothing():
    h = Harness()
    packet = bu_packet(seq=1, ts_wall=WALL0)
    h.cache.on_binding_update(0.0, bu_event(packet, WALL0))
    h.dad_ok()
    h.t = 2
    moved = h.send(seq=2, coa=COA2)  # the MN moves on
    assert only_ack(moved).ba.status == S.ACCEPTED
    before = snapshot(h)
    h.t = 3
    out = h.cache.on_binding_update(h.t, bu_event(packet, h.wall))  # attacker replays seq 1
    assert only_ack(out).ba.status == S.MIPV6_ID_MISMATCH
    assert snapshot(h) == before


def test_a_captured_registration_cannot_revive_a_deregistered_binding():
    h = Harness()
    reg = bu_packet(seq=1, ts_wall=WALL0)
    h.cache.on_binding_update(0.0, bu_event(reg, WALL0))
    h.dad_ok()
    h.t = 1
    h.send(seq=2, lifetime=0)
    assert HOA not in h.cache.bindings
    h.t = 2  # within the 7 s window of the captured BU's timestamp
    out = h.cache.on_binding_update(h.t, bu_event(reg, h.wall))
    assert only_ack(out).ba.status == S.MIPV6_ID_MISMATCH
    assert not h.cache.pending and HOA not in h.cache.bindings
    h.advance(10)  # the tombstone goes once the window has passed
    assert h.cache._tombstones == {}


def test_a_second_mn_cannot_take_or_remove_a_bound_home_address():
    h = Harness()
    h.register(seq=1)
    before = snapshot(h)
    h.t = 1
    claim = only_ack(h.send(seq=50, coa=COA2, nai=NAI2, key=KEY2))
    assert claim.ba.status == S.DUPLICATE_ADDRESS_DETECTION_FAILED and claim.sign_nai == NAI2
    h.t = 2
    remove = only_ack(h.send(seq=51, coa=COA2, nai=NAI2, key=KEY2, lifetime=0))
    assert remove.ba.status == S.NOT_HOME_AGENT_FOR_THIS_MOBILE_NODE
    assert snapshot(h) == before
    # ... nor one under DAD for the first MN.
    h.send(hoa=HOA2, seq=1)
    h.t = 2.5
    assert only_ack(h.send(hoa=HOA2, nai=NAI2, key=KEY2)).ba.status == 134
    assert h.cache.pending[HOA2].nai == NAI


def test_two_mns_hold_their_own_bindings():
    h = Harness(dad=False)
    h.send(hoa=HOA)
    h.send(hoa=HOA2, nai=NAI2, key=KEY2, coa=COA2)
    assert {b.nai for b in h.cache.bindings.values()} == {NAI, NAI2}


# ------------------------------------------------------------------------------ other messages
def test_binding_errors():
    h = Harness(dad=False)
    (be,) = h.cache.on_unknown_mobility_message(COA1, HOA)
    assert isinstance(be, SendBindingError) and be.dst == COA1 and be.be.status == 2
    assert be.be.home_address == HOA
    (be,) = h.cache.on_unbound_home_address(COA1, HOA)
    assert be.be.status == 1 and be.be.home_address == HOA
    h.send()
    # Bound, but from another care-of address: RFC 6275 §10.4.5 says drop silently.
    assert h.cache.on_unbound_home_address(COA2, HOA) == []


def test_mobile_prefix_solicitation_is_answered_to_the_bound_careof_only():
    h = Harness(dad=False)
    (be,) = h.cache.on_mobile_prefix_solicitation(COA1, HOA, 77)
    assert isinstance(be, SendBindingError)
    h.send()
    (mpa,) = h.cache.on_mobile_prefix_solicitation(COA1, HOA, 77)
    assert isinstance(mpa, SendIcmp) and mpa.dst == COA1 and mpa.rh2 == HOA
    assert isinstance(mpa.message, MobilePrefixAdvertisement) and mpa.message.identifier == 77
    (pi,) = mpa.message.prefixes
    assert (pi.prefix, pi.prefix_length, pi.autonomous) == (IPv6Address("2001:db8:100::"), 64, True)
    assert pi.valid_lifetime == 0xFFFFFFFF
    assert of(h.cache.on_mobile_prefix_solicitation(COA2, HOA, 78), SendIcmp) == []


def test_haad_reply_lists_this_home_agent():
    h = Harness()
    (reply,) = h.cache.on_haad_request(COA1, 9)
    assert reply.dst == COA1 and reply.rh2 is None
    assert reply.message == HomeAgentAddressDiscoveryReply(identifier=9, home_agent_addresses=(HA,))


# ------------------------------------------------------------------------------ restore
def test_restore_installs_live_bindings_and_forgets_expired_ones():
    h = Harness()
    live = BindingRecord(HOA, COA1, NAI, 40, 400, 300.0, ntp_timestamp(WALL0 - 100), False)
    dead = BindingRecord(HOA2, COA2, NAI, 3, 400, -1.0, ntp_timestamp(WALL0 - 500), False)
    out = h.cache.restore(0.0, [live, dead])
    assert of(out, InstallBinding) == [InstallBinding(HOA, COA1, None, (HOA,), new=True)]
    assert of(out, ForgetBinding) == [ForgetBinding(HOA2)]
    assert h.cache.bindings[HOA].expires == 300.0
    h.t = 1
    assert only_ack(h.send(seq=40)).ba.status == S.SEQUENCE_NUMBER_OUT_OF_WINDOW
    assert only_ack(h.send(seq=41)).ba.status == S.ACCEPTED
