"""Changing rules re-steers the flows they match, and only those; the match index agrees with a
plain reading of the rules."""

from __future__ import annotations

from collections import Counter
from ipaddress import IPv6Address, IPv6Network

from hypothesis import given, settings
from hypothesis import strategies as st

from sdnmip.core.policy import Policy, RuleEngine, affected_flows
from sdnmip.core.policy_model import Match, Rule
from sdnmip.core.policy_parse import parse_ruleset
from sdnmip.core.types import Decision, Direction, FlowDescriptor
from tests.unit.core.policy_helpers import CN1, CN2, UP, flow, policy, sources

WEB = {"id": "web", "match": {"proto": "tcp", "remote_port": 80}, "uplink": "wlan"}
DNS = {"id": "dns", "match": {"proto": "udp", "remote_port": 53}, "uplink": "wlan"}

WEB_FLOW = flow(6, 80)
DNS_FLOW = flow(17, 53)
OTHER_FLOW = flow(6, 22)
FLOWS = [WEB_FLOW, DNS_FLOW, OTHER_FLOW]


def test_changing_one_rule_affects_only_the_flows_it_matches() -> None:
    old = policy(WEB, DNS)
    new = policy({**WEB, "uplink": "lte"}, DNS)
    assert affected_flows(old, new, FLOWS) == [WEB_FLOW]


def test_adding_and_removing_rules_affect_the_flows_they_match() -> None:
    old = policy(WEB)
    added = policy(WEB, DNS)
    assert affected_flows(old, added, FLOWS) == [DNS_FLOW]
    assert affected_flows(added, old, FLOWS) == [DNS_FLOW]


def test_a_rule_added_behind_one_that_never_steps_aside_affects_nothing() -> None:
    pinned = {**WEB, "fallback": "none"}
    old = policy(pinned)
    new = policy(pinned, {"id": "tcp", "match": {"proto": "tcp"}, "uplink": "lte"})
    assert affected_flows(old, new, [WEB_FLOW]) == []
    # ... but a rule added behind one that steps aside may decide when the first is down.
    assert affected_flows(policy(WEB), policy(WEB, {"id": "tcp", "uplink": "lte"}), [WEB_FLOW]) == [
        WEB_FLOW
    ]


def test_a_description_or_priority_change_that_keeps_the_order_affects_nothing() -> None:
    old = policy(WEB, DNS)
    new = policy({**WEB, "description": "web to wlan", "priority": 9}, DNS)
    assert affected_flows(old, new, FLOWS) == []


def test_mode_hoa_default_and_precedence_changes_are_seen() -> None:
    old = policy(WEB)
    assert affected_flows(old, policy({**WEB, "mode": "direct"}), FLOWS) == [WEB_FLOW]
    assert affected_flows(old, policy({**WEB, "dedicated_hoa": "2001:db8:100::80"}), FLOWS) == [
        WEB_FLOW
    ]
    # Every flow may reach the default (WEB's rule steps aside when wlan is down).
    assert affected_flows(old, policy(WEB, default={"uplink": "lte"}), FLOWS) == FLOWS
    pinned = {**WEB, "fallback": "none"}
    assert affected_flows(policy(pinned), policy(pinned, default={"uplink": "lte"}), FLOWS) == [
        DNS_FLOW,
        OTHER_FLOW,
    ]
    user_web = {**WEB, "id": "user-web", "uplink": "lte"}
    order = ["operator", "user", "network", "application"]
    before = sources(operator=[], network=[WEB], user=[user_web])
    ops = {"version": 1, "source": "operator", "rules": [], "precedence": order}
    after = before.update(put=[parse_ruleset(ops, origin="operator")])
    assert affected_flows(before, after, FLOWS) == [WEB_FLOW]


def test_apply_installs_and_returns_only_the_flows_whose_decision_changes() -> None:
    engine = RuleEngine(policy(WEB, DNS))
    live = [(f, engine.decide(f, UP, 0.0)) for f in FLOWS]
    # DNS is affected (its rule changes) but still lands on wlan: not a move.
    new = policy(
        {**WEB, "uplink": "lte"}, {**DNS, "strategy": {"prefer": ["wlan"]}, "uplink": None}
    )
    moves = engine.apply(new, live, UP, 1.0)
    assert engine.policy is new
    assert [(m.flow, m.old.uplink, m.new.uplink, m.new.rule_id) for m in moves] == [
        (WEB_FLOW, "wlan", "lte", "operator:web")
    ]


def test_a_flow_moved_by_hand_stays_unless_its_rules_change() -> None:
    engine = RuleEngine(policy(WEB, DNS))
    by_hand = Decision("lte", rule_id=None)
    moves = engine.apply(policy(WEB, {**DNS, "uplink": "lte"}), [(WEB_FLOW, by_hand)], UP, 0.0)
    assert moves == []


def test_changing_a_split_re_spreads_the_flows_it_matches() -> None:
    flows = [flow(6, 5201, local_port=i, remote=CN2) for i in range(100)]
    rule = {
        "id": "split",
        "match": {"remote_port": 5201},
        "strategy": {"weighted": {"wlan": 1, "lte": 1}},
    }
    engine = RuleEngine(policy(rule))
    live = [(f, engine.decide(f, UP, 0.0)) for f in flows]
    assert Counter(d.uplink for _, d in live) == {"wlan": 50, "lte": 50}
    moves = engine.apply(
        policy({**rule, "strategy": {"weighted": {"wlan": 3, "lte": 1}}}), live, UP, 1.0
    )
    after = {f.key: d.uplink for f, d in live}
    after.update({m.flow.key: m.new.uplink for m in moves})
    assert Counter(after.values()) == {"wlan": 75, "lte": 25}
    assert 0 < len(moves) < 100


# ---- the index against a plain reading of each rule -----------------------------------------

PORTS = st.integers(0, 12)
ADDRS = st.sampled_from(
    [
        IPv6Address(a)
        for a in (
            "2001:db8::",
            "2001:db8::1",
            "2001:db8::ff",
            "2001:db8:0:1::",
            "2001:db9::1",
            "::",
        )
    ]
)
NETS = st.sampled_from(
    [
        IPv6Network(n)
        for n in ("2001:db8::/32", "2001:db8::/64", "2001:db8::1/128", "2001:db8:0:1::/64", "::/0")
    ]
)


def ranges(low: int, high: int):  # type: ignore[no-untyped-def]
    pair = st.tuples(st.integers(low, high), st.integers(0, 3)).map(
        lambda p: (p[0], min(high, p[0] + p[1]))
    )
    return st.lists(pair, min_size=1, max_size=3).map(_merge)


def _merge(pairs: list[tuple[int, int]]) -> tuple[tuple[int, int], ...]:
    from sdnmip.core.policy_parse import merge_ranges

    return merge_ranges(pairs)


def maybe(strategy):  # type: ignore[no-untyped-def]
    return st.none() | strategy


MATCHES = st.builds(
    Match,
    proto=maybe(
        st.lists(st.sampled_from([6, 17, 58]), min_size=1, max_size=2, unique=True).map(tuple)
    ),
    direction=maybe(st.sampled_from(list(Direction))),
    local=maybe(st.lists(NETS, min_size=1, max_size=2, unique=True).map(tuple)),
    remote=maybe(st.lists(NETS, min_size=1, max_size=2, unique=True).map(tuple)),
    local_port=maybe(ranges(0, 12)),
    remote_port=maybe(ranges(0, 12)),
    flow_label=maybe(ranges(0, 5)),
    dscp=maybe(ranges(0, 5)),
    app_id=maybe(
        st.lists(st.sampled_from(["a", "b"]), min_size=1, max_size=2, unique=True).map(tuple)
    ),
)
FLOW_STRATEGY = st.builds(
    lambda proto, lp, rp, local, remote, d, fl, ds, app: flow(
        proto,
        rp,
        local_port=lp,
        local=local,
        remote=remote,
        direction=d,
        flow_label=fl,
        dscp=ds,
        app_id=app,
    ),
    st.sampled_from([6, 17, 58, 50]),
    PORTS,
    PORTS,
    ADDRS,
    ADDRS,
    st.sampled_from(list(Direction)),
    st.integers(0, 6),
    st.integers(0, 6),
    st.sampled_from([None, "a", "b", "c"]),
)


def plain_match(m: Match, f: FlowDescriptor) -> bool:
    def within(rs: tuple[tuple[int, int], ...] | None, v: int) -> bool:
        return rs is None or any(lo <= v <= hi for lo, hi in rs)

    k = f.key
    return (
        (m.proto is None or k.proto in m.proto)
        and (m.direction is None or f.direction is m.direction)
        and (m.local is None or any(k.local in n for n in m.local))
        and (m.remote is None or any(k.remote in n for n in m.remote))
        and within(m.local_port, k.local_port)
        and within(m.remote_port, k.remote_port)
        and within(m.flow_label, f.flow_label)
        and within(m.dscp, f.dscp)
        and (m.app_id is None or f.app_id in m.app_id)
    )


@settings(max_examples=300, deadline=None)
@given(
    matches=st.lists(MATCHES, min_size=0, max_size=12),
    flows=st.lists(FLOW_STRATEGY, min_size=1, max_size=10),
)
def test_the_index_finds_exactly_the_rules_whose_match_holds(
    matches: list[Match], flows: list[FlowDescriptor]
) -> None:
    from sdnmip.core.policy_model import RuleSet, Source
    from sdnmip.core.policy_parse import parse_action

    action = parse_action({"uplink": "wlan"})
    rules = tuple(Rule(f"r{i:02d}", Source.OPERATOR, action, m) for i, m in enumerate(matches))
    p = Policy.build([RuleSet("t", Source.OPERATOR, rules)])
    for f in flows:
        assert p.matching(f) == tuple(r for r in p.rules if plain_match(r.match, f))
        expected = next((r.qualified_id for r in p.rules if plain_match(r.match, f)), None)
        assert RuleEngine(p).decide(f, UP, 0.0).rule_id == expected


def test_the_index_on_prefix_boundaries() -> None:
    p = policy(
        {"id": "host", "match": {"remote": "2001:db8:c1::10"}, "uplink": "lte"},
        {"id": "net", "match": {"remote": "2001:db8:c1::/64"}, "uplink": "wlan"},
    )
    assert RuleEngine(p).decide(flow(remote=CN1), UP, 0.0).rule_id == "operator:host"
    assert (
        RuleEngine(p).decide(flow(remote=IPv6Address("2001:db8:c1::11")), UP, 0.0).rule_id
        == "operator:net"
    )
    assert (
        RuleEngine(p)
        .decide(flow(remote=IPv6Address("2001:db8:c1:0:ffff:ffff:ffff:ffff")), UP, 0.0)
        .rule_id
        == "operator:net"
    )
    assert (
        RuleEngine(p).decide(flow(remote=IPv6Address("2001:db8:c1:1::")), UP, 0.0).rule_id is None
    )
