"""Failback: flows return to an uplink once it has been back for `failback_after`."""

from __future__ import annotations

from ipaddress import IPv6Address as A

import pytest

from sdnmip.controller.config import BindHoas, ConfigError, HoaBound, UplinkState
from sdnmip.controller.logic import MnLogic
from sdnmip.core.types import Decision

from .pkt import ACK, tcp_pkt
from .rig import CN1, CN2, COA, HOA0, ILTE, IWLAN, PRIMARY, ROUTER_MAC, WLAN, Rig, ScriptedPolicy
from .rig import make_config as make_logic_config


def _egress(rig: Rig, sport: int, dport: int, dst: str = CN1) -> int:
    port, _ = rig.send(HOA0, tcp_pkt(PRIMARY, dst, sport, dport, flags=ACK)).only()
    return port


def _binds(rig: Rig) -> list[tuple[A, str, str]]:
    return [
        (hoa, uplink, r.reason)
        for r in rig.agent
        if isinstance(r, BindHoas)
        for hoa, uplink in r.bindings
    ]


def _lose_wlan(rig: Rig) -> None:
    """wlan's carrier goes: every flow on it is rescued to lte at once (BAs accepted)."""
    rig.run(rig.logic.port_status(rig.now, WLAN, False))
    rig.ack_binds()


def _restore_wlan(rig: Rig) -> None:
    rig.run(rig.logic.port_status(rig.now, WLAN, True))


def test_flows_go_back_to_the_preferred_uplink_after_the_delay_and_not_before() -> None:
    rig = Rig.start(hoa_per_flow=True)  # policy: wlan, else lte
    rig.send(HOA0, tcp_pkt(PRIMARY, CN1, 40000, 80))
    hoa = rig.flow_for(CN1, 80).hoa
    rig.ack_binds()
    assert rig.logic.next_deadline() is None  # coming up at start is not a return
    _lose_wlan(rig)
    assert _egress(rig, 40000, 80) == ILTE
    rig.now = 10.0
    _restore_wlan(rig)
    assert rig.take_agent() == []
    assert rig.logic.next_deadline() == pytest.approx(13.0)  # default failback_after: 3 s
    rig.advance(2.9)
    assert rig.take_agent() == [] and _egress(rig, 40000, 80) == ILTE
    rig.advance(0.2)
    assert _binds(rig) == [(hoa, "wlan", "failback")]
    assert rig.logic.stats["moves_failback"] == 1
    # Make-before-break: the rule switches when the HA has the binding, not before.
    assert _egress(rig, 40000, 80) == ILTE
    rig.event(HoaBound(hoa, "wlan"))
    assert _egress(rig, 40000, 80) == IWLAN
    assert rig.logic.next_deadline() is None


def test_a_flap_within_the_delay_cancels_and_the_wait_starts_again() -> None:
    rig = Rig.start(hoa_per_flow=True)
    rig.send(HOA0, tcp_pkt(PRIMARY, CN1, 40000, 80))
    hoa = rig.flow_for(CN1, 80).hoa
    rig.ack_binds()
    _lose_wlan(rig)
    _restore_wlan(rig)  # t=0: would fail back at 3
    rig.advance(1.0)
    _lose_wlan(rig)  # t=1: lost again
    assert rig.logic.next_deadline() is None
    rig.advance(1.0)
    _restore_wlan(rig)  # t=2: the wait starts again, until 5
    rig.advance(1.5)  # t=3.5: past the first deadline
    assert rig.take_agent() == [] and _egress(rig, 40000, 80) == ILTE
    assert rig.logic.stats["failbacks_cancelled"] == 1
    rig.advance(1.6)  # t=5.1
    assert _binds(rig) == [(hoa, "wlan", "failback")]


def test_the_agent_losing_the_coa_is_a_loss_too_and_its_return_a_return() -> None:
    rig = Rig.start(hoa_per_flow=True, failback_after=1.0)
    rig.send(HOA0, tcp_pkt(PRIMARY, CN1, 40000, 80))
    hoa = rig.flow_for(CN1, 80).hoa
    rig.ack_binds()
    rig.event(UplinkState("wlan", False, None))
    rig.ack_binds()
    assert _egress(rig, 40000, 80) == ILTE
    rig.event(UplinkState("wlan", True, A(COA["wlan"]), ROUTER_MAC["wlan"]))
    rig.advance(1.0)
    assert _binds(rig) == [(hoa, "wlan", "failback")]


def test_null_never_fails_back() -> None:
    rig = Rig.start(hoa_per_flow=True, failback_after=None)
    rig.send(HOA0, tcp_pkt(PRIMARY, CN1, 40000, 80))
    rig.ack_binds()
    _lose_wlan(rig)
    _restore_wlan(rig)
    assert rig.logic.next_deadline() is None
    rig.advance(60.0)
    assert rig.take_agent() == [] and _egress(rig, 40000, 80) == ILTE
    # A new flow still takes the preferred uplink.
    assert rig.send(HOA0, tcp_pkt(PRIMARY, CN2, 40001, 80)).only()[0] == IWLAN


def test_zero_fails_back_as_soon_as_the_uplink_is_usable() -> None:
    rig = Rig.start(hoa_per_flow=True, failback_after=0.0)
    rig.send(HOA0, tcp_pkt(PRIMARY, CN1, 40000, 80))
    hoa = rig.flow_for(CN1, 80).hoa
    rig.ack_binds()
    _lose_wlan(rig)
    _restore_wlan(rig)
    assert _binds(rig) == [(hoa, "wlan", "failback")]


def test_a_pinned_flow_returns_to_its_pin_and_not_where_the_policy_would_put_it() -> None:
    policy = ScriptedPolicy({443: Decision("lte"), 8443: Decision("wlan")})
    rig = Rig.start(policy=policy, hoa_per_flow=True)
    rig.send(HOA0, tcp_pkt(PRIMARY, CN1, 40000, 443))  # policy: lte
    rig.send(HOA0, tcp_pkt(PRIMARY, CN1, 40001, 8443))  # policy: wlan
    rig.ack_binds()
    to_wlan, to_lte = rig.flow_for(CN1, 443), rig.flow_for(CN1, 8443)
    rig.run(rig.logic.move_flow(rig.now, to_wlan.flow_id, "wlan"))
    rig.run(rig.logic.move_flow(rig.now, to_lte.flow_id, "lte"))
    rig.ack_binds()
    assert (to_wlan.pinned, to_lte.pinned) == ("wlan", "lte")
    assert (_egress(rig, 40000, 443), _egress(rig, 40001, 8443)) == (IWLAN, ILTE)
    _lose_wlan(rig)
    assert _egress(rig, 40000, 443) == ILTE
    _restore_wlan(rig)
    rig.advance(3.0)
    # The flow pinned to wlan goes back (its policy says lte); the one pinned to lte stays
    # (its policy says wlan).
    assert _binds(rig) == [(to_wlan.hoa, "wlan", "failback")]
    rig.ack_binds()
    assert (_egress(rig, 40000, 443), _egress(rig, 40001, 8443)) == (IWLAN, ILTE)
    assert (to_wlan.pinned, to_lte.pinned) == ("wlan", "lte")


def test_a_hoa_whose_flows_disagree_stays_and_one_whose_flows_agree_moves() -> None:
    policy = ScriptedPolicy({80: Decision("wlan"), 443: Decision("wlan")})
    rig = Rig.start(policy=policy)  # no HoA per flow: Figure 6 shares HoAs across CNs
    rig.send(HOA0, tcp_pkt(PRIMARY, CN1, 40000, 80))
    rig.send(HOA0, tcp_pkt(PRIMARY, CN2, 40000, 443))
    rig.send(HOA0, tcp_pkt(PRIMARY, CN1, 40001, 80))  # CN1 already on the first: another HoA
    a, b = rig.flow_for(CN1, 80), rig.flow_for(CN2, 443)
    c = next(e for e in rig.logic.flows if e.key.local_port == 40001)
    assert a.hoa == b.hoa != c.hoa
    rig.ack_binds()
    _lose_wlan(rig)
    policy.by_port[443] = Decision("lte")  # while wlan was away, the CN2 flow came to want lte
    _restore_wlan(rig)
    rig.advance(3.0)
    assert _binds(rig) == [(c.hoa, "wlan", "failback")]
    rig.ack_binds()
    assert _egress(rig, 40000, 80) == _egress(rig, 40000, 443, CN2) == ILTE
    assert _egress(rig, 40001, 80) == IWLAN


def test_a_snapshot_of_the_old_format_loads_with_pins_where_the_flows_are() -> None:
    rig = Rig.start(hoa_per_flow=True)
    rig.send(HOA0, tcp_pkt(PRIMARY, CN1, 40000, 80))
    rig.send(HOA0, tcp_pkt(PRIMARY, CN1, 40001, 81))
    rig.ack_binds()
    moved = rig.flow_for(CN1, 81)
    rig.run(rig.logic.move_flow(rig.now, moved.flow_id, "lte"))
    rig.ack_binds()
    snap = rig.logic.snapshot()
    rows = snap["flows"]["flows"]
    assert {r["remote_port"]: r["pinned"] for r in rows} == {80: None, 81: "lte"}
    again = MnLogic.restore(rig.logic.cfg, rig.logic.policy, snap)
    assert again.flows.get(moved.flow_id).pinned == "lte"
    for r in rows:  # as written before pins named their uplink
        r["pinned"] = r["remote_port"] == 81
    old = MnLogic.restore(rig.logic.cfg, rig.logic.policy, snap)
    assert {e.key.remote_port: e.pinned for e in old.flows} == {80: None, 81: "lte"}
    rows[0]["pinned"] = 7
    with pytest.raises(ValueError, match="pinned"):
        MnLogic.restore(rig.logic.cfg, rig.logic.policy, snap)


@pytest.mark.parametrize("bad", [-0.1, 86_401.0, float("nan")])
def test_a_bad_failback_delay_is_refused_naming_the_key(bad: float) -> None:
    with pytest.raises(ConfigError, match="failback_after"):
        make_logic_config(failback_after=bad)


def test_a_restarted_controller_still_fails_back_to_an_uplink_lost_before_it() -> None:
    rig = Rig.start(hoa_per_flow=True)
    rig.send(HOA0, tcp_pkt(PRIMARY, CN1, 40000, 80))
    hoa = rig.flow_for(CN1, 80).hoa
    rig.ack_binds()
    _lose_wlan(rig)
    rig.now = 10.0
    _restore_wlan(rig)  # back, but the controller stops before failback_after has passed
    snap = rig.logic.snapshot()
    assert snap["lost_uplinks"] == ["wlan"]
    # The new process learns the uplinks afresh, wlan usable from the start.
    again = Rig(MnLogic.restore(rig.logic.cfg, rig.logic.policy, snap), rig.switch, now=11.0)
    for name in ("wlan", "lte"):
        again.event(UplinkState(name, True, A(COA[name]), ROUTER_MAC[name]))
    again.run(again.logic.port_status(again.now, WLAN, True))
    again.run(again.logic.reconcile(again.now, rig.switch.dump()))
    assert again.logic.next_deadline() == pytest.approx(14.0)  # the whole delay again
    again.advance(3.1)
    assert _binds(again) == [(hoa, "wlan", "failback")]
    assert again.logic.snapshot()["lost_uplinks"] == []


def test_a_snapshot_without_lost_uplinks_loads_and_a_bad_one_is_refused() -> None:
    rig = Rig.start(hoa_per_flow=True)
    snap = rig.logic.snapshot()
    del snap["lost_uplinks"]  # as written before failback
    assert MnLogic.restore(rig.logic.cfg, rig.logic.policy, snap).snapshot()["lost_uplinks"] == []
    snap["lost_uplinks"] = "wlan"
    with pytest.raises(ValueError, match="lost_uplinks"):
        MnLogic.restore(rig.logic.cfg, rig.logic.policy, snap)
