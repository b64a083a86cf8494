"""Handover of one flow, link loss, re-steering, and which flows move together."""

from __future__ import annotations

from ipaddress import IPv6Address as A

import pytest

from sdnmip.controller.config import BindFailed, BindHoas, ClaimHoa, HoaBound, UplinkState
from sdnmip.controller.logic import FlowError
from sdnmip.core.types import Decision, Mode

from .pkt import ACK, tcp_pkt, udp_pkt
from .rig import CN1, CN2, COA, HOA0, ILTE, IWLAN, LTE, PRIMARY, WLAN, Rig, ScriptedPolicy


def _egress(rig: Rig, sport: int, dport: int, dst: str = CN1) -> tuple[int, A]:
    port, f = rig.send(HOA0, tcp_pkt(PRIMARY, dst, sport, dport, flags=ACK)).only()
    return port, f["ipv6_src"]


def _two_flows_to_cn1(rig: Rig) -> tuple[int, int]:
    rig.send(HOA0, tcp_pkt(PRIMARY, CN1, 40000, 80))
    rig.send(HOA0, tcp_pkt(PRIMARY, CN1, 40001, 81))
    rig.take_agent()
    return rig.flow_for(CN1, 80).flow_id, rig.flow_for(CN1, 81).flow_id


def test_handover_moves_only_the_moved_flow_and_only_after_the_binding_ack():
    rig = Rig.start()
    _, f81 = _two_flows_to_cn1(rig)
    hoa81 = rig.logic.flows.get(f81).hoa
    rig.run(rig.logic.move_flow(rig.now, f81, "lte"))
    assert rig.take_agent() == [BindHoas(((hoa81, "lte"),), "move")]
    # Make-before-break: until the HA has the new binding, the flow stays where it was.
    assert _egress(rig, 40001, 81) == (IWLAN, hoa81)
    rig.event(HoaBound(hoa81, "lte"))
    assert _egress(rig, 40001, 81) == (ILTE, hoa81)  # same HoA, new uplink
    assert _egress(rig, 40000, 80) == (IWLAN, A(PRIMARY))  # the other flow to CN1 untouched
    # The switch was done in place: one rule per direction and flow, no packet-in.
    assert sum(1 for r in rig.switch.all_rules() if r.cookie & 0xFFFFFFFFFF == f81) == 2
    # The downlink rule needs no change: the return path works from either tunnel port.
    res = rig.send(ILTE, tcp_pkt(CN1, str(hoa81), 81, 40001, flags=ACK))
    assert res.only()[0] == HOA0 and res.packet_ins == []


def test_a_late_binding_ack_for_an_abandoned_move_changes_nothing():
    rig = Rig.start()
    _, f81 = _two_flows_to_cn1(rig)
    hoa = rig.logic.flows.get(f81).hoa
    rig.run(rig.logic.move_flow(rig.now, f81, "lte"))
    rig.run(rig.logic.move_flow(rig.now, f81, "wlan"))
    rig.event(HoaBound(hoa, "lte"))  # the BA of the first request arrives late
    assert _egress(rig, 40001, 81)[0] == IWLAN


def test_failed_bind_leaves_the_flow_where_it_was():
    rig = Rig.start()
    _, f81 = _two_flows_to_cn1(rig)
    hoa = rig.logic.flows.get(f81).hoa
    rig.run(rig.logic.move_flow(rig.now, f81, "lte"))
    rig.event(BindFailed(hoa, "lte", "BA status 129"))
    assert rig.logic.hoas.record(hoa).target == "wlan"
    assert _egress(rig, 40001, 81)[0] == IWLAN


def test_moving_a_flow_moves_every_flow_that_shares_its_hoa():
    # Figure 6 puts flows to different CNs on one HoA; the HoA is what moves.
    rig = Rig.start()
    rig.send(HOA0, tcp_pkt(PRIMARY, CN1, 40000, 80))
    rig.send(HOA0, tcp_pkt(PRIMARY, CN2, 40000, 80))
    a, b = rig.flow_for(CN1, 80), rig.flow_for(CN2, 80)
    assert a.hoa == b.hoa
    rig.take_agent()
    rig.run(rig.logic.move_flow(rig.now, a.flow_id, "lte"))
    rig.ack_binds()
    assert _egress(rig, 40000, 80, CN1)[0] == ILTE
    assert _egress(rig, 40000, 80, CN2)[0] == ILTE


def test_hoa_per_flow_gives_each_outgoing_flow_its_own_hoa_so_it_moves_alone():
    rig = Rig.start(hoa_per_flow=True)
    rig.send(HOA0, tcp_pkt(PRIMARY, CN1, 40000, 80))
    rig.send(HOA0, tcp_pkt(PRIMARY, CN2, 40000, 80))
    a, b = rig.flow_for(CN1, 80), rig.flow_for(CN2, 80)
    assert a.hoa != b.hoa and A(PRIMARY) not in (a.hoa, b.hoa)
    assert sum(isinstance(r, ClaimHoa) for r in rig.take_agent()) == 2
    rig.run(rig.logic.move_flow(rig.now, a.flow_id, "lte"))
    rig.ack_binds()
    assert _egress(rig, 40000, 80, CN1)[0] == ILTE
    assert _egress(rig, 40000, 80, CN2)[0] == IWLAN


def test_own_hoa_decision_reserves_the_hoa_against_later_flows():
    policy = ScriptedPolicy({5060: Decision("wlan", own_hoa=True)})
    rig = Rig.start(policy=policy)
    rig.send(HOA0, udp_pkt(PRIMARY, CN1, 5060, 5060))
    call = rig.flow_for(CN1, 5060)
    for port in range(1000, 1004):  # flows to other CNs would otherwise reuse it
        rig.send(HOA0, udp_pkt(PRIMARY, f"2001:db8:c2::{port}", port, 80))
    assert rig.logic.flows.hoa_flow_count(call.hoa) == 1


def test_link_loss_moves_every_flow_of_the_dead_uplink_at_once_with_one_batch_of_binds():
    policy = ScriptedPolicy({80: Decision("wlan"), 81: Decision("wlan"), 443: Decision("lte")})
    rig = Rig.start(policy=policy)
    rig.send(HOA0, tcp_pkt(PRIMARY, CN1, 40000, 80))
    rig.send(HOA0, tcp_pkt(PRIMARY, CN1, 40001, 81))
    rig.send(HOA0, tcp_pkt(PRIMARY, CN1, 40002, 443))
    rig.take_agent()
    on_wlan = {e.hoa for e in rig.logic.flows if e.uplink == "wlan"}
    assert len(on_wlan) == 2
    rig.run(rig.logic.port_status(rig.now, WLAN, False))
    # Uplink rules switched immediately, before any BA.
    for sport, dport in ((40000, 80), (40001, 81), (40002, 443)):
        assert _egress(rig, sport, dport)[0] == ILTE
    binds = [r for r in rig.take_agent() if isinstance(r, BindHoas)]
    assert len(binds) == 1
    assert {h for h, _ in binds[0].bindings} == on_wlan
    assert {u for _, u in binds[0].bindings} == {"lte"}
    # New flows avoid the dead uplink.
    port, _ = rig.send(HOA0, tcp_pkt(PRIMARY, CN2, 40003, 80)).only()
    assert port == ILTE


def test_losing_the_coa_counts_as_link_loss_and_ends_direct_flows():
    policy = ScriptedPolicy({53: Decision("wlan", mode=Mode.DIRECT)})
    rig = Rig.start(policy=policy)
    rig.send(HOA0, udp_pkt(PRIMARY, CN1, 5353, 53))
    rig.send(HOA0, tcp_pkt(PRIMARY, CN1, 40000, 80))
    rig.take_agent()
    rig.event(UplinkState("wlan", False, None))
    assert [e.key.remote_port for e in rig.logic.flows] == [80]
    assert _egress(rig, 40000, 80)[0] == ILTE
    # A new flow; the policy's fallback for a dead uplink is anchored.
    assert rig.send(HOA0, udp_pkt(PRIMARY, CN1, 5353, 53)).only()[0] == ILTE


def test_no_move_to_an_unknown_or_dead_uplink_or_of_a_direct_flow():
    policy = ScriptedPolicy({53: Decision("wlan", mode=Mode.DIRECT)})
    rig = Rig.start(policy=policy)
    rig.send(HOA0, udp_pkt(PRIMARY, CN1, 5353, 53))
    rig.send(HOA0, tcp_pkt(PRIMARY, CN1, 40000, 80))
    direct, anchored = rig.flow_for(CN1, 53), rig.flow_for(CN1, 80)
    with pytest.raises(FlowError, match="direct"):
        rig.logic.move_flow(rig.now, direct.flow_id, "lte")
    with pytest.raises(FlowError, match="no uplink named 'wifi'"):
        rig.logic.move_flow(rig.now, anchored.flow_id, "wifi")
    with pytest.raises(FlowError, match="no live flow 99"):
        rig.logic.move_flow(rig.now, 99, "lte")
    rig.run(rig.logic.port_status(rig.now, LTE, False))
    with pytest.raises(FlowError, match="not usable"):
        rig.logic.move_flow(rig.now, anchored.flow_id, "lte")


def test_resteer_moves_flows_whose_decision_changed_and_leaves_pinned_ones():
    policy = ScriptedPolicy({80: Decision("wlan"), 81: Decision("wlan")})
    rig = Rig.start(policy=policy)
    f80, f81 = _two_flows_to_cn1(rig)
    hoa80 = rig.logic.flows.get(f80).hoa
    assert rig.run(rig.logic.resteer(rig.now)).outputs == [] and rig.take_agent() == []
    policy.by_port[80] = Decision("lte", rule_id="cheap")
    rig.run(rig.logic.resteer(rig.now))
    assert rig.take_agent() == [BindHoas(((hoa80, "lte"),), "policy")]
    rig.event(HoaBound(hoa80, "lte"))
    assert _egress(rig, 40000, 80)[0] == ILTE
    assert rig.logic.flows.get(f80).rule_id == "cheap"
    # A user's explicit move sticks.
    rig.run(rig.logic.move_flow(rig.now, f81, "lte"))
    rig.ack_binds()
    policy.by_port[81] = Decision("wlan")
    rig.run(rig.logic.resteer(rig.now))
    assert rig.take_agent() == []


def test_claimed_spare_bound_elsewhere_sends_at_once_via_the_chosen_uplink_and_rebinds():
    policy = ScriptedPolicy({443: Decision("lte")})
    rig = Rig.start(policy=policy, spare_uplink="wlan")
    rig.send(HOA0, tcp_pkt(PRIMARY, CN1, 40000, 443))  # the idle Primary, re-bound to lte
    assert rig.take_agent() == [BindHoas(((A(PRIMARY), "lte"),), "new flow")]
    port, f = rig.send(HOA0, tcp_pkt(PRIMARY, CN1, 40001, 443)).only()
    assert port == ILTE  # at once, before any BA
    assert rig.take_agent() == [
        ClaimHoa(f["ipv6_src"]),
        BindHoas(((f["ipv6_src"], "lte"),), "new flow"),
    ]


def test_port_stats_give_uplink_rates_to_the_policy():
    from sdnmip.controller.uplinks import PortCounters

    rig = Rig.start()
    rig.logic.port_stats(10.0, [PortCounters(WLAN, 1000, 0)])
    rig.logic.port_stats(12.0, [PortCounters(WLAN, 251000, 0)])
    views = {v.name: v for v in rig.logic.uplink_views()}
    assert views["wlan"].rate_bps == pytest.approx(1_000_000)
    assert views["wlan"].coa == A(COA["wlan"])


def test_moving_a_flow_where_it_already_is_does_nothing():
    rig = Rig.start()
    _, f81 = _two_flows_to_cn1(rig)
    assert rig.logic.move_flow(rig.now, f81, "wlan") == []
