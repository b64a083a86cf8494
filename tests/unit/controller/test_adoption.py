"""A controller killed before its snapshot held its newest flows takes them over from the switch
when it restarts (adoption), deletes rules with our cookie that are not flows it would have
built, and brings the agent's HoA claims in line with its live flows, whichever of the switch
and the agent reconnects first."""

from __future__ import annotations

import json
from collections.abc import Iterable
from ipaddress import IPv6Address as A
from typing import Any

import pytest
from os_ken.ofproto import ofproto_v1_3_parser as parser

from sdnmip.controller import ofmsg
from sdnmip.controller import pipeline as pl
from sdnmip.controller.config import (
    AgentHoas,
    BindHoas,
    ClaimHoa,
    HoaBound,
    ReleaseHoa,
    SparePool,
    UplinkState,
)
from sdnmip.controller.logic import MnLogic
from sdnmip.core.policy import Policy
from sdnmip.core.policy_parse import parse_ruleset
from sdnmip.core.steering import SteeringEngine
from sdnmip.core.types import Decision, Direction, Mode

from .pkt import ACK, icmp_pkt, tcp_pkt, udp_pkt
from .rig import (
    CN1,
    CN2,
    COA,
    HOA0,
    HOA0_MAC,
    ILTE,
    IWLAN,
    LTE,
    PRIMARY,
    ROUTER_MAC,
    SPARES,
    TUN_MAC,
    Rig,
    ScriptedPolicy,
)

POLICY = ScriptedPolicy({443: Decision("lte"), 53: Decision("lte", mode=Mode.DIRECT)})
ORDERS = pytest.mark.parametrize("agent_first", [True, False], ids=["agent-first", "switch-first"])


class Agent:
    """What the MN agent holds, as the logic's requests leave it: the HoAs claimed by the
    controller, the spare pool, and where each HoA is bound (every BU acknowledged)."""

    def __init__(self) -> None:
        self.claimed: set[A] = set()
        self.spares: dict[A, str] = {A(s): "wlan" for s in SPARES}
        self.bound: dict[A, str] = {A(PRIMARY): "wlan", **self.spares}

    def apply(self, requests: Iterable[Any]) -> None:
        for r in requests:
            if isinstance(r, ClaimHoa):
                self.spares.pop(r.hoa, None)
                self.claimed.add(r.hoa)
            elif isinstance(r, ReleaseHoa):
                self.claimed.discard(r.hoa)
                self.spares[r.hoa] = self.bound[r.hoa]  # back to the pool
            elif isinstance(r, BindHoas):
                for hoa, uplink in r.bindings:
                    self.bound[hoa] = uplink
                    if hoa in self.spares:
                        self.spares[hoa] = uplink

    def snapshot(self) -> list[Any]:
        """The logic's events for the agent's snapshot (what agent_link.AgentTranslator sends)."""
        return [
            *(UplinkState(n, True, A(COA[n]), ROUTER_MAC[n]) for n in ("wlan", "lte")),
            *(HoaBound(h, u) for h, u in self.bound.items()),
            SparePool(tuple(self.spares.items())),
            AgentHoas(frozenset(self.claimed), tuple(self.bound.items())),
        ]


def settle(rig: Rig, agent: Agent) -> None:
    """The agent performs the logic's requests and reports every binding done."""
    while reqs := rig.take_agent():
        agent.apply(reqs)
        for r in reqs:
            if isinstance(r, BindHoas):
                for hoa, uplink in r.bindings:
                    rig.event(HoaBound(hoa, uplink))


def restart(rig: Rig, snapshot: dict[str, Any], agent: Agent, *, agent_first: bool) -> list[Any]:
    """A new controller process restored from `snapshot` meets the same switch and agent.
    Returns the flow-mods of its reconciliation."""
    rig.logic = MnLogic.restore(rig.logic.cfg, rig.logic.policy, json.loads(json.dumps(snapshot)))
    if agent_first:
        for ev in agent.snapshot():
            rig.event(ev)
    actions = rig.logic.reconcile(rig.now, rig.switch.dump())
    rig.run(actions)
    if not agent_first:
        for ev in agent.snapshot():
            rig.event(ev)
    return [a for a in actions if isinstance(a, parser.OFPFlowMod)]


def _start(**cfg: Any) -> tuple[Rig, Agent, dict[str, Any]]:
    """An MN with one flow in its last snapshot."""
    rig = Rig.start(policy=cfg.pop("policy", POLICY), **cfg)
    agent = Agent()
    rig.send(HOA0, tcp_pkt(PRIMARY, CN1, 40000, 80))
    settle(rig, agent)
    return rig, agent, rig.logic.snapshot()


def _facts(e: Any) -> tuple[Any, ...]:
    return (e.flow_id, e.key, e.hoa, e.uplink, e.mode, e.coa, e.desc.direction)


def _fake_rule(cookie: int, table: int, match: list[tuple[str, Any]], acts: list[Any]) -> Any:
    """A flow-mod the controller would never build (bypasses the pipeline's checks)."""
    return ofmsg.flow_mod(
        command=ofmsg.OFPFC_ADD,
        table_id=table,
        priority=pl.PRIO_FLOW,
        cookie=cookie,
        match_=ofmsg.match(match),
        instructions=[ofmsg.apply_actions(acts)],
        idle_timeout=300,
        flags=ofmsg.OFPFF_SEND_FLOW_REM,
    )


def _cookies(rig: Rig, fid: int) -> list[int]:
    return [r.cookie for r in rig.switch.all_rules() if r.cookie & pl.COOKIE_ID_MASK == fid]


# -- adoption ---------------------------------------------------------------------------------


@ORDERS
def test_flows_created_after_the_snapshot_are_adopted_and_keep_forwarding(
    agent_first: bool,
) -> None:
    rig, agent, snap = _start(hoa_per_flow=True)
    rig.send(HOA0, tcp_pkt(PRIMARY, CN1, 40001, 443))  # lte, a HoA of its own
    rig.send(HOA0, udp_pkt(PRIMARY, CN2, 5353, 53))  # direct via lte
    rig.send(HOA0, icmp_pkt(PRIMARY, CN2, 128))  # ping from the MN
    rig.send(IWLAN, tcp_pkt(CN2, PRIMARY, 6000, 22))  # incoming, on the Primary
    settle(rig, agent)
    newer = {e.flow_id: _facts(e) for e in rig.logic.flows if e.key.local_port != 40000}
    assert len(newer) == 4
    hoa_443 = rig.flow_for(CN1, 443).hoa
    table = rig.switch.signature()

    flow_mods = restart(rig, snap, agent, agent_first=agent_first)

    logic = rig.logic
    assert logic.adoption.adopted == sorted(newer) and logic.adoption.rejected == []
    assert {e.flow_id: _facts(e) for e in logic.flows if e.flow_id in newer} == newer
    assert flow_mods == [] and rig.switch.signature() == table  # nothing deleted or changed
    assert rig.take_agent() == []  # the agent already counts the claims
    assert logic.hoas.is_held(hoa_443) and hoa_443 not in logic.hoas.spares()
    assert logic.hoas.record(hoa_443).target == "lte"  # type: ignore[union-attr]
    # Packets still leave with the flows' addresses, by rules alone.
    up = rig.send(HOA0, tcp_pkt(PRIMARY, CN1, 40001, 443, flags=ACK))
    assert up.packet_ins == [] and up.only()[0] == ILTE and up.only()[1]["ipv6_src"] == hoa_443
    down = rig.send(ILTE, tcp_pkt(CN1, str(hoa_443), 443, 40001, flags=ACK))
    assert down.packet_ins == [] and down.only()[0] == HOA0
    assert down.only()[1]["ipv6_dst"] == A(PRIMARY) and down.only()[1]["eth_dst"] == HOA0_MAC
    direct = rig.send(HOA0, udp_pkt(PRIMARY, CN2, 5353, 53))
    assert direct.only()[0] == LTE and direct.only()[1]["ipv6_src"] == A(COA["lte"])
    assert rig.send(HOA0, icmp_pkt(PRIMARY, CN2, 128)).packet_ins == []
    assert rig.send(IWLAN, tcp_pkt(CN2, PRIMARY, 6000, 22, flags=ACK)).ports() == [HOA0]
    # Flow ids stay unique, and the adopted flows are in the next snapshot.
    rig.send(HOA0, tcp_pkt(PRIMARY, CN1, 40002, 80))
    latest = max(logic.flows, key=lambda e: e.flow_id)
    assert latest.key.local_port == 40002 and latest.flow_id > max(newer)
    saved = {row["flow_id"] for row in logic.snapshot()["flows"]["flows"]}
    assert set(newer) <= saved
    assert logic.reconcile(rig.now, rig.switch.dump()) == []  # and a second pass finds nothing


def test_adopted_flows_age_out_like_any_other_and_release_their_hoas() -> None:
    rig, agent, snap = _start(hoa_per_flow=True)
    rig.send(HOA0, tcp_pkt(PRIMARY, CN1, 40001, 443))
    settle(rig, agent)
    hoas = {e.hoa for e in rig.logic.flows}
    assert len(hoas) == 2 and hoas <= agent.claimed
    restart(rig, snap, agent, agent_first=True)
    assert len(rig.logic.flows) == 2
    rig.advance(rig.logic.cfg.idle_timeout(6) + 1)  # no packets: both rules of both flows idle
    assert len(rig.logic.flows) == 0
    settle(rig, agent)
    assert agent.claimed == set()  # nothing leaked
    assert {r.addr for r in rig.logic.hoas.held()} == {A(PRIMARY)}


def test_a_flow_with_only_its_downlink_rule_left_is_adopted_and_follows_its_hoas_binding() -> None:
    rig, agent, snap = _start(hoa_per_flow=True)
    rig.send(HOA0, udp_pkt(PRIMARY, CN1, 5000, 443))  # lte
    settle(rig, agent)
    e = rig.flow_for(CN1, 443)
    hoa, fid = e.hoa, e.flow_id
    up = pl.cookie(pl.CookieKind.FLOW_UP, fid)
    rig.switch.apply(ofmsg.delete_by_cookie(up, pl.ALL_ONES_64))  # it idled out
    rig.switch.removed.clear()
    restart(rig, snap, agent, agent_first=False)  # the HoA's binding is learnt afterwards
    adopted = rig.flow_for(CN1, 443)
    assert rig.logic.adoption.adopted == [fid]
    assert adopted.uplink == "lte" and adopted.hoa == hoa
    assert not adopted.up.installed and adopted.down.installed
    assert _cookies(rig, fid) == [pl.cookie(pl.CookieKind.FLOW_DOWN, fid)]
    back = rig.send(ILTE, udp_pkt(CN1, str(hoa), 443, 5000))
    assert back.packet_ins == [] and back.only()[0] == HOA0
    out = rig.send(HOA0, udp_pkt(PRIMARY, CN1, 5000, 443))  # its miss re-installs the rule
    assert out.only()[0] == ILTE and out.only()[1]["ipv6_src"] == hoa
    assert rig.send(HOA0, udp_pkt(PRIMARY, CN1, 5000, 443)).packet_ins == []


def test_an_adopted_flow_replaces_an_older_live_flow_with_its_5_tuple() -> None:
    rig, agent, snap = _start(hoa_per_flow=True)
    old = rig.flow_for(CN1, 80)
    # After the snapshot the old flow ended (its rules deleted) and the application opened the
    # same 5-tuple again: a new flow with a new HoA.
    rig.run(rig.logic.remove_flow(rig.now, old.flow_id))
    rig.advance(0.1)
    settle(rig, agent)
    rig.send(HOA0, tcp_pkt(PRIMARY, CN1, 40000, 80))
    settle(rig, agent)
    new = rig.flow_for(CN1, 80)
    assert new.hoa != old.hoa
    restart(rig, snap, agent, agent_first=True)
    assert rig.logic.adoption.superseded == [old.flow_id]
    assert [_facts(e) for e in rig.logic.flows] == [_facts(new)]
    assert rig.send(HOA0, tcp_pkt(PRIMARY, CN1, 40000, 80, flags=ACK)).only()[1]["ipv6_src"] == (
        new.hoa
    )
    settle(rig, agent)
    assert agent.claimed == {new.hoa}


def test_a_controller_without_any_snapshot_adopts_every_flow_on_the_switch() -> None:
    rig, agent, _ = _start(hoa_per_flow=True)
    rig.send(HOA0, tcp_pkt(PRIMARY, CN1, 40001, 443))
    settle(rig, agent)
    facts = sorted(_facts(e) for e in rig.logic.flows)
    table = rig.switch.signature()
    rig.logic = MnLogic(rig.logic.cfg, POLICY)
    rig.run(rig.logic.reconcile(rig.now, rig.switch.dump()))
    for ev in agent.snapshot():
        rig.event(ev)
    assert sorted(_facts(e) for e in rig.logic.flows) == facts
    assert rig.switch.signature() == table and rig.take_agent() == []


# -- rules with our cookie that are not ours ----------------------------------------------------

OUTSIDE = "2001:db8:99::5"
FID = 500


def _up_match(local: str = PRIMARY, sport: int = 41000) -> list[tuple[str, Any]]:
    return [("in_port", HOA0), ("eth_type", 0x86DD), ("ipv6_src", local), ("ipv6_dst", CN1),
            ("ip_proto", 6), ("tcp_src", sport), ("tcp_dst", 80)]  # fmt: skip


def _to(hoa: str, port: int = IWLAN, mac: str = TUN_MAC["wlan"]) -> list[Any]:
    return [ofmsg.set_field("ipv6_src", hoa), ofmsg.set_field("eth_dst", mac), ofmsg.output(port)]


def _down(hoa: str, dport: int = 41000) -> Any:
    match = [("eth_type", 0x86DD), ("ipv6_src", CN1), ("ipv6_dst", hoa), ("ip_proto", 6),
             ("tcp_src", 80), ("tcp_dst", dport)]  # fmt: skip
    acts = [ofmsg.set_field("ipv6_dst", PRIMARY), ofmsg.set_field("eth_dst", HOA0_MAC),
            ofmsg.output(HOA0)]  # fmt: skip
    return _fake_rule(pl.cookie(pl.CookieKind.FLOW_DOWN, FID), pl.TableId.DOWNLINK, match, acts)


def _up(match: list[tuple[str, Any]], acts: list[Any], table: int = pl.TableId.UPLINK) -> Any:
    return _fake_rule(pl.cookie(pl.CookieKind.FLOW_UP, FID), table, match, acts)


GOOD_HOA = SPARES[0]
GARBAGE = [
    ([_up(_up_match(), _to(OUTSIDE))], "not in a home prefix"),
    ([_up(_up_match(), _to(GOOD_HOA, port=99))], "no uplink's"),
    ([_up(_up_match(local=CN2), _to(GOOD_HOA))], "not the Primary HoA"),
    ([_up(_up_match()[:-1], _to(GOOD_HOA))], "no tcp ports"),
    ([_up([*_up_match(), ("ip_dscp", 10)], _to(GOOD_HOA))], "match or priority"),
    ([_up(_up_match(), _to(GOOD_HOA, mac="02:00:00:00:99:99"))], "actions"),
    ([_up(_up_match(), [ofmsg.output(IWLAN), ofmsg.output(ILTE)])], "2 outputs"),
    ([_up(_up_match(), _to(GOOD_HOA), table=pl.TableId.DOWNLINK)], "in table 3"),
    ([_up(_up_match(), _to(GOOD_HOA)), _down(GOOD_HOA, dport=41001)], "does not fit"),
    ([_down(OUTSIDE)], "not in a home prefix"),
    ([_down("2001:db8:100::1")], "home agent"),
]


@pytest.mark.parametrize(("rules", "why"), GARBAGE, ids=[why for _, why in GARBAGE])
def test_rules_with_our_cookie_that_we_would_not_build_are_deleted(rules: list[Any], why: str):
    rig, agent, snap = _start()
    table = rig.switch.signature()
    for r in rules:
        rig.switch.apply(r)
    restart(rig, snap, agent, agent_first=True)
    assert [r.flow_id for r in rig.logic.adoption.rejected] == [FID]
    assert why in rig.logic.adoption.rejected[0].reason
    assert FID not in rig.logic.flows and rig.logic.adoption.adopted == []
    assert _cookies(rig, FID) == [] and rig.switch.signature() == table
    assert not rig.logic.hoas.is_held(A(GOOD_HOA)) and rig.take_agent() == []


def test_a_well_formed_rule_pair_of_an_unknown_flow_is_adopted() -> None:
    """The same hand-made rules as above, right this time: the checks are not just refusing."""
    rig, agent, snap = _start()
    rig.switch.apply(_up(_up_match(), _to(GOOD_HOA)))
    rig.switch.apply(_down(GOOD_HOA))
    restart(rig, snap, agent, agent_first=True)
    assert rig.logic.adoption.adopted == [FID]
    e = rig.logic.flows.get(FID)
    assert e is not None and (e.hoa, e.uplink, e.desc.direction) == (
        A(GOOD_HOA),
        "wlan",
        Direction.OUTGOING,
    )
    assert rig.take_agent() == [ClaimHoa(A(GOOD_HOA))]  # the agent still had it as a spare


# -- HoA claims against the agent's -------------------------------------------------------------


@ORDERS
def test_a_claim_of_a_flow_that_ended_while_the_controller_was_down_is_released(
    agent_first: bool,
) -> None:
    rig, agent, snap = _start(hoa_per_flow=True)
    rig.send(HOA0, tcp_pkt(PRIMARY, CN1, 40001, 443))
    settle(rig, agent)
    lost = rig.flow_for(CN1, 443)
    kept = rig.flow_for(CN1, 80)
    assert agent.claimed == {lost.hoa, kept.hoa}
    rig.switch.apply(ofmsg.delete_by_cookie(pl.cookie(pl.CookieKind.FLOW_UP, lost.flow_id),
                                            pl.FLOW_COOKIE_MASK))  # fmt: skip
    rig.switch.removed.clear()  # its rules idled out while no controller listened
    restart(rig, snap, agent, agent_first=agent_first)
    assert rig.logic.adoption.adopted == []
    assert rig.take_agent() == [ReleaseHoa(lost.hoa)]
    assert not rig.logic.hoas.is_held(lost.hoa) and rig.logic.hoas.is_held(kept.hoa)
    # A later snapshot of the agent (it reconnects) agrees: nothing more to do.
    agent.apply([ReleaseHoa(lost.hoa)])
    for ev in agent.snapshot():
        rig.event(ev)
    assert rig.take_agent() == []


@ORDERS
def test_a_hoa_an_adopted_flow_uses_that_the_agent_offers_as_a_spare_is_claimed(
    agent_first: bool,
) -> None:
    rig, agent, snap = _start(hoa_per_flow=True)
    rig.send(HOA0, tcp_pkt(PRIMARY, CN1, 40001, 8080))
    claim = [r for r in rig.take_agent() if isinstance(r, ClaimHoa)]
    assert len(claim) == 1  # the controller died before this request reached the agent
    hoa = claim[0].hoa
    restart(rig, snap, agent, agent_first=agent_first)
    assert rig.logic.adoption.adopted == [rig.flow_for(CN1, 8080).flow_id]
    assert rig.take_agent() == [ClaimHoa(hoa)]
    assert rig.logic.hoas.is_held(hoa) and hoa not in rig.logic.hoas.spares()


def test_persisted_flows_claims_are_restored_too_and_the_primary_is_never_released() -> None:
    rig, agent, snap = _start(hoa_per_flow=True)
    hoa = rig.flow_for(CN1, 80).hoa
    agent.claimed.discard(hoa)  # the agent lost the claim (its state is older than ours)
    agent.spares[hoa] = "wlan"
    agent.claimed.add(A(PRIMARY))  # a confused agent: still never released
    restart(rig, snap, agent, agent_first=False)
    assert rig.take_agent() == [ClaimHoa(hoa)]


def test_a_hoa_a_policy_dedicates_is_not_released_while_unused() -> None:
    pinned = A(SPARES[7])
    rules = {"version": 1, "source": "operator",
             "rules": [{"id": "pin", "match": {"remote_port": [8443]}, "uplink": "wlan",
                        "dedicated_hoa": str(pinned)}]}  # fmt: skip
    engine = SteeringEngine(Policy.build([parse_ruleset(rules, origin="t")]), order=["wlan"])
    rig, agent, snap = _start(policy=engine)
    unused = A(SPARES[6])
    agent.apply([ClaimHoa(pinned), ClaimHoa(unused)])  # both claimed, no flow uses either
    restart(rig, snap, agent, agent_first=True)
    assert rig.take_agent() == [ReleaseHoa(unused)]


def test_an_adopted_hoa_bound_elsewhere_than_its_rules_say_takes_its_flows_along() -> None:
    rig, agent, snap = _start(hoa_per_flow=True)
    rig.send(HOA0, tcp_pkt(PRIMARY, CN1, 40001, 8080))  # wlan
    settle(rig, agent)
    hoa = rig.flow_for(CN1, 8080).hoa
    # The old controller moved the HoA to lte and died before the BA came (rules still wlan).
    agent.bound[hoa] = "lte"
    restart(rig, snap, agent, agent_first=True)
    assert rig.flow_for(CN1, 8080).uplink == "lte"
    out = rig.send(HOA0, tcp_pkt(PRIMARY, CN1, 40001, 8080, flags=ACK))
    assert out.packet_ins == [] and out.only()[0] == ILTE


@ORDERS
def test_a_persisted_flow_whose_rules_idled_out_while_away_ends_and_releases_its_hoa(
    agent_first: bool,
) -> None:
    rig, agent, _ = _start(hoa_per_flow=True)
    rig.send(HOA0, tcp_pkt(PRIMARY, CN1, 40001, 443))
    settle(rig, agent)
    gone, kept = rig.flow_for(CN1, 80), rig.flow_for(CN1, 443)
    snap = rig.logic.snapshot()  # both flows in it
    rig.switch.apply(ofmsg.delete_by_cookie(pl.cookie(pl.CookieKind.FLOW_UP, gone.flow_id),
                                            pl.FLOW_COOKIE_MASK))  # fmt: skip
    rig.switch.removed.clear()  # both its rules idled out while no controller listened
    table = rig.switch.signature()
    restart(rig, snap, agent, agent_first=agent_first)
    assert [e.flow_id for e in rig.logic.flows] == [kept.flow_id]
    assert rig.switch.signature() == table  # nothing put back
    assert rig.take_agent() == [ReleaseHoa(gone.hoa)]
    assert not rig.logic.hoas.is_held(gone.hoa)


def test_after_a_switch_lost_its_tables_every_persisted_flow_gets_its_rules_back() -> None:
    from .fakeoftable import FakeOFTable

    rig, agent, _ = _start(hoa_per_flow=True)
    snap = rig.logic.snapshot()
    expected = rig.switch.signature()
    rig.switch = FakeOFTable(rig.now)  # OVS restarted: no rules at all, not even the canary
    restart(rig, snap, agent, agent_first=True)
    assert rig.switch.signature() == expected and rig.take_agent() == []


def test_an_adopted_flow_on_an_uplink_the_agent_already_reported_lost_is_rescued() -> None:
    """The agent's snapshot (lte gone) comes before the switch's dump: the rescue of lte's flows
    ran before the adopted flow was known, so reconciling must rescue it (was: stuck on lte)."""
    rig, agent, snap = _start(hoa_per_flow=True)
    rig.send(HOA0, tcp_pkt(PRIMARY, CN1, 40001, 443))  # lte, after the snapshot
    settle(rig, agent)
    hoa = rig.flow_for(CN1, 443).hoa
    rig.logic = MnLogic.restore(rig.logic.cfg, rig.logic.policy, json.loads(json.dumps(snap)))
    lte_gone = UplinkState("lte", False, None)  # lte went away while no controller ran
    for ev in agent.snapshot():
        lost = isinstance(ev, UplinkState) and ev.name == "lte"
        rig.event(lte_gone if lost else ev)
    rig.run(rig.logic.reconcile(rig.now, rig.switch.dump()))
    assert rig.logic.adoption.adopted == [rig.flow_for(CN1, 443).flow_id]
    assert [r for r in rig.take_agent() if isinstance(r, BindHoas)] == [
        BindHoas(((hoa, "wlan"),), "uplink lost")
    ]
    out = rig.send(HOA0, tcp_pkt(PRIMARY, CN1, 40001, 443, flags=ACK))
    assert out.packet_ins == [] and out.only()[0] == IWLAN and out.only()[1]["ipv6_src"] == hoa


def test_an_adopted_hoa_follows_a_binding_reported_after_the_agents_snapshot() -> None:
    """The old controller moved the HoA and died; the BA came after the agent's snapshot (which
    still said lte) and before the switch reconnected. The flow must follow the binding the
    agent reported last, or the HA drops its packets (RFC 6275 §10.4.5)."""
    rig, agent, snap = _start(hoa_per_flow=True)
    rig.send(HOA0, tcp_pkt(PRIMARY, CN1, 40001, 443))  # lte
    settle(rig, agent)
    hoa = rig.flow_for(CN1, 443).hoa
    rig.logic = MnLogic.restore(rig.logic.cfg, rig.logic.policy, json.loads(json.dumps(snap)))
    for ev in agent.snapshot():
        rig.event(ev)
    agent.bound[hoa] = "wlan"
    rig.event(HoaBound(hoa, "wlan"))
    rig.run(rig.logic.reconcile(rig.now, rig.switch.dump()))
    assert rig.flow_for(CN1, 443).uplink == "wlan"
    out = rig.send(HOA0, tcp_pkt(PRIMARY, CN1, 40001, 443, flags=ACK))
    assert out.packet_ins == [] and out.only()[0] == IWLAN


@ORDERS
def test_an_adopted_hoa_bound_at_an_uplink_lost_meanwhile_does_not_drag_its_flows_there(
    agent_first: bool,
) -> None:
    """The old controller moved the HoA to lte and died; the BA came, then lte went away. The
    agent reports the HoA bound at the dead lte: its flows must not follow it there (was: moved
    onto lte and left there), they stay on wlan and the HoA is bound back to wlan."""
    rig, agent, snap = _start(hoa_per_flow=True)
    rig.send(HOA0, tcp_pkt(PRIMARY, CN1, 40001, 8080))  # wlan
    settle(rig, agent)
    hoa = rig.flow_for(CN1, 8080).hoa
    agent.bound[hoa] = "lte"
    rig.logic = MnLogic.restore(rig.logic.cfg, rig.logic.policy, json.loads(json.dumps(snap)))
    lte_gone = UplinkState("lte", False, None)
    events = [lte_gone if isinstance(e, UplinkState) and e.name == "lte" else e
              for e in agent.snapshot()]  # fmt: skip
    if agent_first:
        for ev in events:
            rig.event(ev)
    rig.run(rig.logic.reconcile(rig.now, rig.switch.dump()))
    if not agent_first:
        for ev in events:
            rig.event(ev)
    assert rig.flow_for(CN1, 8080).uplink == "wlan"
    assert (hoa, "wlan") in [
        b for r in rig.take_agent() if isinstance(r, BindHoas) for b in r.bindings
    ]
    out = rig.send(HOA0, tcp_pkt(PRIMARY, CN1, 40001, 8080, flags=ACK))
    assert out.packet_ins == [] and out.only()[0] == IWLAN
