"""Controller restart: the switch keeps forwarding; on reconnect the logic makes it exact again."""

from __future__ import annotations

import json
from ipaddress import IPv6Address as A

from sdnmip.controller import ofmsg
from sdnmip.controller import pipeline as pl
from sdnmip.controller.config import UplinkState
from sdnmip.controller.logic import MnLogic
from sdnmip.core.types import Decision, Mode

from .pkt import ACK, tcp_pkt, udp_pkt
from .rig import CN1, CN2, HOA0, ILTE, IWLAN, LTE, PRIMARY, WLAN, Rig, ScriptedPolicy

POLICY = ScriptedPolicy({443: Decision("lte"), 53: Decision("lte", mode=Mode.DIRECT)})


def _busy_rig() -> Rig:
    rig = Rig.start(policy=POLICY)
    rig.send(HOA0, tcp_pkt(PRIMARY, CN1, 40000, 80))
    rig.send(HOA0, tcp_pkt(PRIMARY, CN1, 40001, 443))
    rig.send(HOA0, udp_pkt(PRIMARY, CN2, 5353, 53))
    rig.send(IWLAN, tcp_pkt(CN2, PRIMARY, 6000, 22))
    rig.ack_binds()
    return rig


def _restart(rig: Rig, router_known: bool = True) -> MnLogic:
    """A new controller process: state from its persisted snapshot (through JSON), fresh runtime."""
    snapshot = json.loads(json.dumps(rig.logic.snapshot()))
    logic = MnLogic.restore(rig.logic.cfg, POLICY, snapshot)
    for name, u in rig.logic.uplinks.items():  # the agent re-reports the uplinks on reconnect
        router = u.router_mac if router_known else None
        assert logic.agent_event(rig.now, UplinkState(name, u.agent_up, u.coa, router)) == []
    return logic


def _traffic_works(rig: Rig) -> None:
    assert rig.send(HOA0, tcp_pkt(PRIMARY, CN1, 40000, 80, flags=ACK)).ports() == [IWLAN]
    assert rig.send(HOA0, tcp_pkt(PRIMARY, CN1, 40001, 443, flags=ACK)).ports() == [ILTE]
    assert rig.send(HOA0, udp_pkt(PRIMARY, CN2, 5353, 53)).ports() == [LTE]
    res = rig.send(IWLAN, tcp_pkt(CN2, PRIMARY, 6000, 22, flags=ACK))
    assert res.ports() == [HOA0] and res.packet_ins == []


def test_reconnect_with_an_intact_switch_changes_nothing():
    rig = _busy_rig()
    before = rig.switch.signature()
    rig.logic = _restart(rig)
    actions = rig.logic.reconcile(rig.now, rig.switch.dump())
    assert actions == []
    assert rig.switch.signature() == before
    _traffic_works(rig)


def test_reconcile_sweeps_foreign_and_stale_rules_and_restores_missing_ones_without_duplicates():
    rig = _busy_rig()
    expected = rig.switch.signature()
    fid = rig.flow_for(CN1, 443).flow_id
    # While the controller was away: the testbed's plumbing was added, a rule of an ended flow
    # lingers, and one of our rules (the 443 flow's uplink rule) was lost.
    testbed = pl.TESTBED_COOKIE
    rig.switch.apply(
        pl.TABLES[pl.TableId.INGRESS].add(0, pl.cookie(pl.CookieKind.STATIC), [], [])
    )  # replaced by ours below: same key
    foreign = ofmsg.flow_mod(
        command=ofmsg.OFPFC_ADD,
        table_id=0,
        priority=50,
        cookie=testbed,
        match_=ofmsg.match([("in_port", WLAN)]),
        instructions=[ofmsg.apply_actions([ofmsg.output(IWLAN)])],
    )
    rig.switch.apply(foreign)
    stale = ofmsg.flow_mod(
        command=ofmsg.OFPFC_ADD,
        table_id=pl.TableId.UPLINK,
        priority=pl.PRIO_FLOW,
        cookie=pl.cookie(pl.CookieKind.FLOW_UP, 777),
        match_=ofmsg.match([("in_port", HOA0), ("eth_type", 0x86DD), ("ip_proto", 17)]),
        instructions=[ofmsg.apply_actions([ofmsg.output(IWLAN)])],
        idle_timeout=60,
        flags=ofmsg.OFPFF_SEND_FLOW_REM,
    )
    rig.switch.apply(stale)
    rig.switch.apply(ofmsg.delete_by_cookie(pl.cookie(pl.CookieKind.FLOW_UP, fid), pl.ALL_ONES_64))
    rig.switch.removed.clear()
    assert rig.switch.signature() != expected

    rig.logic = _restart(rig)
    rig.run(rig.logic.reconcile(rig.now, rig.switch.dump()))
    assert rig.switch.signature() == expected
    keys = [r.key for r in rig.switch.all_rules()]
    assert len(keys) == len(set(keys))
    # Reconciling again finds nothing to do.
    assert rig.logic.reconcile(rig.now, rig.switch.dump()) == []
    _traffic_works(rig)


def test_changed_actions_are_fixed_in_place():
    rig = _busy_rig()
    expected = rig.switch.signature()
    e = rig.flow_for(CN1, 80)
    # Someone (ovs-ofctl) points the flow's uplink rule elsewhere.
    rig.switch.apply(
        ofmsg.flow_mod(
            command=ofmsg.OFPFC_MODIFY_STRICT,
            table_id=pl.TableId.UPLINK,
            priority=pl.PRIO_FLOW,
            cookie=0,
            match_=ofmsg.match(rig.logic.rules.up_match(e)),
            instructions=[ofmsg.apply_actions([ofmsg.output(ILTE)])],
        )
    )
    assert rig.send(HOA0, tcp_pkt(PRIMARY, CN1, 40000, 80, flags=ACK)).ports() == [ILTE]
    actions = rig.logic.reconcile(rig.now, rig.switch.dump())
    assert [a.command for a in actions] == [ofmsg.OFPFC_MODIFY_STRICT]
    rig.run(actions)
    assert rig.switch.signature() == expected


def test_a_fresh_switch_gets_the_pipeline_and_every_persisted_flow():
    rig = _busy_rig()
    expected = rig.switch.signature()
    from .fakeoftable import FakeOFTable

    rig.switch = FakeOFTable(rig.now)  # OVS restarted and lost everything
    rig.logic = _restart(rig)
    rig.run(rig.logic.reconcile(rig.now, rig.switch.dump()))
    assert rig.switch.signature() == expected
    _traffic_works(rig)


def test_counters_come_from_the_dump_and_from_flow_stats():
    rig = _busy_rig()
    for _ in range(3):
        rig.send(HOA0, tcp_pkt(PRIMARY, CN1, 40000, 80, flags=ACK))
    rig.logic = _restart(rig)
    rig.logic.reconcile(rig.now, rig.switch.dump())
    e = rig.flow_for(CN1, 80)
    assert e.up.packets == 3  # the first packet went by packet-out, not the rule
    rig.send(HOA0, tcp_pkt(PRIMARY, CN1, 40000, 80, flags=ACK))
    rig.logic.flow_stats(7.0, rig.switch.dump())
    assert e.up.packets == 4 and e.last_seen == 7.0
    assert e.hoa == A(PRIMARY)


def test_a_direct_flows_rule_survives_reconcile_before_the_router_is_known_again():
    rig = _busy_rig()
    expected = rig.switch.signature()
    logic = _restart(rig, router_known=False)
    rig.logic = logic
    rig.run(logic.reconcile(rig.now, rig.switch.dump()))
    assert rig.switch.signature() == expected
    assert rig.flow_for(CN2, 53).up.installed


def test_flows_on_an_uplink_that_left_the_configuration_are_ended():
    from dataclasses import replace

    rig = _busy_rig()
    cfg = rig.logic.cfg
    snapshot = json.loads(json.dumps(rig.logic.snapshot()))
    logic = MnLogic.restore(replace(cfg, uplinks=cfg.uplinks[:1]), POLICY, snapshot)
    rig.logic = logic
    rig.run(logic.reconcile(rig.now, rig.switch.dump()))
    assert {e.uplink for e in logic.flows} == {"wlan"}
    assert all(
        r.table_id != pl.TableId.DIRECT_IN or r.match.get("in_port") != LTE
        for r in rig.switch.all_rules()
    )
    assert rig.send(HOA0, tcp_pkt(PRIMARY, CN1, 40000, 80, flags=ACK)).ports() == [IWLAN]


def test_after_a_restart_an_uplink_not_yet_reported_keeps_its_flows():
    rig = _busy_rig()
    snapshot = json.loads(json.dumps(rig.logic.snapshot()))
    logic = MnLogic.restore(rig.logic.cfg, POLICY, snapshot)
    wlan = rig.logic.uplinks["wlan"]
    # The agent reports wlan first; lte is unknown, not dead: nothing moves, nothing ends.
    assert logic.agent_event(0, UplinkState("wlan", True, wlan.coa, wlan.router_mac)) == []
    assert {e.uplink for e in logic.flows} == {"wlan", "lte"}
    # Once lte is reported down, its flows are rescued.
    actions = logic.agent_event(0, UplinkState("lte", False, None))
    assert actions and {e.uplink for e in logic.flows} == {"wlan"}


class _Unreadable:
    """A dump entry whose match must not be needed (a stale flow's rule)."""

    def __init__(self, stat: ofmsg.FlowStat) -> None:
        self.stat = stat
        self.table_id, self.priority, self.cookie = stat.table_id, stat.priority, stat.cookie
        self.packet_count, self.byte_count = stat.packet_count, stat.byte_count

    @property
    def match(self) -> ofmsg.MatchItems:
        raise AssertionError("the match of a stale flow's rule was read")

    @property
    def instructions(self) -> tuple[object, ...]:
        raise AssertionError("the instructions of a stale flow's rule were read")


def test_rules_of_flows_ended_before_the_snapshot_are_deleted_by_cookie_one_message_each():
    rig = _busy_rig()
    flow_ids = {e.flow_id for e in rig.logic.flows}
    # The controller ended every flow, but the switch went away before its deletes arrived:
    # the snapshot has no flows, the switch still has their rules.
    for fid in sorted(flow_ids):
        rig.logic.remove_flow(rig.now, fid)
    logic = MnLogic.restore(rig.logic.cfg, POLICY, json.loads(json.dumps(rig.logic.snapshot())))
    dump = [
        _Unreadable(s) if pl.parse_cookie(s.cookie)[0] in pl.FLOW_KINDS else s  # type: ignore[index]
        for s in rig.switch.dump()
    ]
    out = logic.reconcile(rig.now, dump)
    assert logic.adoption.adopted == [] and logic.adoption.rejected == []
    deletes = [m for m in out if m.command == ofmsg.OFPFC_DELETE]
    assert sorted(pl.parse_cookie(m.cookie)[1] for m in deletes) == sorted(flow_ids)  # type: ignore[index]
    rig.run(out)
    assert rig.switch.signature() == Rig.start(policy=POLICY).switch.signature()
