"""The validator: each kind of bad input is refused with one PolicyError naming the field,
and a refused change leaves the running policy as it was."""

from __future__ import annotations

from ipaddress import IPv6Address, IPv6Network

import pytest

from sdnmip.core.policy import Policy, RuleEngine
from sdnmip.core.policy_model import Fallback, PolicyError, Source, Strategy
from sdnmip.core.policy_parse import (
    Context,
    parse_rule,
    parse_ruleset,
    rule_to_data,
    ruleset_to_data,
)
from sdnmip.core.types import Direction, FlowDescriptor, FlowKey, Mode, UplinkView

CTX = Context(uplinks=frozenset({"wlan", "lte"}), home_prefixes=(IPv6Network("2001:db8:100::/64"),))


def doc(*rules: object, **top: object) -> dict[str, object]:
    return {"version": 1, "source": "operator", **top, "rules": list(rules)}


def refused(document: object, context: Context = CTX) -> str:
    with pytest.raises(PolicyError) as info:
        parse_ruleset(document, origin="t", context=context)
    return str(info.value)


OK_RULE = {"id": "ok", "uplink": "wlan"}

# (bad rule, the message it must give: path and reason). The bad rule is rules[1].
BAD_RULES = [
    (
        {"id": "a", "uplink": "wlan", "match": {"remote_port": 70000}},
        "rules[1].match.remote_port: 70000 is not a port (0-65535)",
    ),
    (
        {"id": "a", "uplink": "wlan", "match": {"local_port": -1}},
        "rules[1].match.local_port: -1 is not a port (0-65535)",
    ),
    (
        {"id": "a", "uplink": "wlan", "match": {"remote_port": "90-80"}},
        "rules[1].match.remote_port: '90-80' is an empty range",
    ),
    (
        {"id": "a", "uplink": "wlan", "match": {"remote_port": "http"}},
        "rules[1].match.remote_port: 'http' is not a port",
    ),
    (
        {"id": "a", "uplink": "wlan", "match": {"remote_port": [80, 1.5]}},
        "rules[1].match.remote_port[1]: expected an integer (0-65535), got a number (1.5)",
    ),
    (
        {"id": "a", "uplink": "wlan", "match": {"remote_port": []}},
        "rules[1].match.remote_port: an empty list matches nothing",
    ),
    (
        {"id": "a", "uplink": "wlan", "match": {"proto": "icmpv6", "remote_port": 80}},
        "rules[1].match.remote_port: protocol 58 has no ports",
    ),
    (
        {"id": "a", "uplink": "wlan", "match": {"proto": "tpc"}},
        "rules[1].match.proto: unknown protocol 'tpc' (did you mean 'tcp'?)",
    ),
    (
        {"id": "a", "uplink": "wlan", "match": {"proto": 256}},
        "rules[1].match.proto: 256 is not a protocol number (0-255)",
    ),
    (
        {"id": "a", "uplink": "wlan", "match": {"flow_label": 0x100000}},
        "rules[1].match.flow_label: 1048576 is not a flow label (0-1048575)",
    ),
    (
        {"id": "a", "uplink": "wlan", "match": {"dscp": 64}},
        "rules[1].match.dscp: 64 is not a DSCP (0-63)",
    ),
    (
        {"id": "a", "uplink": "wlan", "match": {"dscp": "af44"}},
        "rules[1].match.dscp: 'af44' is not a DSCP",
    ),
    (
        {"id": "a", "uplink": "wlan", "match": {"remote": "2001:db8::1/64"}},
        "rules[1].match.remote: '2001:db8::1/64' has host bits set (did you mean 2001:db8::/64?)",
    ),
    (
        {"id": "a", "uplink": "wlan", "match": {"local": "10.0.0.0/8"}},
        "rules[1].match.local: '10.0.0.0/8' is not an IPv6 prefix (IPv4 is not supported)",
    ),
    (
        {"id": "a", "uplink": "wlan", "match": {"remote": "2001:db8::/129"}},
        "rules[1].match.remote: '2001:db8::/129' is not an IPv6 prefix or address",
    ),
    (
        {"id": "a", "uplink": "wlan", "match": {"remote": 42}},
        "rules[1].match.remote: expected an IPv6 prefix or address, got an integer (42)",
    ),
    (
        {"id": "a", "uplink": "wlan", "match": {"direction": "inbound"}},
        "rules[1].match.direction: unknown direction 'inbound'",
    ),
    (
        {"id": "a", "uplink": "wlan", "match": {"app_id": ""}},
        "rules[1].match.app_id: expected an application id",
    ),
    (
        {"id": "a", "uplink": "wlan", "match": {"remote_prot": 80}},
        "rules[1].match.remote_prot: unknown key (did you mean 'remote_port'?)",
    ),
    (
        {"id": "a", "uplink": "wlan", "match": [80]},
        "rules[1].match: expected a mapping, got a list",
    ),
    (
        {"id": "a", "uplink": "wlan", "colour": "red"},
        "rules[1].colour: unknown key (expected one of: id,",
    ),
    ({"uplink": "wlan"}, "rules[1].id: required key is missing"),
    ({"id": "a b", "uplink": "wlan"}, "rules[1].id: 'a b' is not a rule id"),
    ({"id": "ok", "uplink": "lte"}, "rules[1].id: duplicate rule id 'ok' (also rules[0])"),
    ({"id": "a"}, "rules[1]: needs exactly one of uplink or strategy"),
    (
        {"id": "a", "uplink": "wlan", "strategy": "cheapest"},
        "rules[1]: needs exactly one of uplink or strategy",
    ),
    (
        {"id": "a", "uplink": "wlan0"},
        "rules[1].uplink: unknown uplink 'wlan0' (configured: lte, wlan)",
    ),
    (
        {"id": "a", "uplink": ["wlan"]},
        "rules[1].uplink: expected an uplink name (a string), got a list",
    ),
    (
        {"id": "a", "strategy": "weighted"},
        "rules[1].strategy: weighted needs its uplinks, e.g. {weighted: {wlan: 3, lte: 1}}",
    ),
    ({"id": "a", "strategy": "fastest"}, "rules[1].strategy: unknown strategy 'fastest'"),
    (
        {"id": "a", "strategy": {"weighted": {"wlan": 0, "lte": 0}}},
        "rules[1].strategy.weighted: at least one weight must be above 0",
    ),
    (
        {"id": "a", "strategy": {"weighted": {"wlan": -1}}},
        "rules[1].strategy.weighted.wlan: -1 is not a weight (0-1000000)",
    ),
    (
        {"id": "a", "strategy": {"weighted": {"wlan": 3, "eth": 1}}},
        "rules[1].strategy.weighted.eth: unknown uplink 'eth'",
    ),
    (
        {"id": "a", "strategy": {"prefer": ["wlan", "wlan"]}},
        "rules[1].strategy.prefer[1]: uplink 'wlan' is listed twice",
    ),
    (
        {"id": "a", "strategy": {"least_loaded": []}},
        "rules[1].strategy.least_loaded: expected a non-empty list of uplinks, got a list",
    ),
    (
        {"id": "a", "strategy": {"cheapest": ["wlan"], "prefer": ["lte"]}},
        "rules[1].strategy: expected a strategy name or a mapping with one strategy",
    ),
    ({"id": "a", "uplink": "wlan", "max_cost": -1}, "rules[1].max_cost: -1 is not a cost"),
    (
        {"id": "a", "uplink": "wlan", "max_cost": float("nan")},
        "rules[1].max_cost: nan is not a cost",
    ),
    (
        {"id": "a", "uplink": "wlan", "priority": 65536},
        "rules[1].priority: 65536 is not a priority (0-65535)",
    ),
    (
        {"id": "a", "uplink": "wlan", "priority": True},
        "rules[1].priority: expected an integer (0-65535), got a boolean (True)",
    ),
    (
        {"id": "a", "uplink": "wlan", "priority": "10"},
        "rules[1].priority: expected an integer (0-65535), got a string ('10')",
    ),
    (
        {"id": "a", "uplink": "wlan", "mode": "tunnel"},
        "rules[1].mode: unknown mode 'tunnel' (expected one of: anchored, direct)",
    ),
    (
        {"id": "a", "uplink": "wlan", "fallback": "drop"},
        "rules[1].fallback: unknown fallback 'drop' (expected one of: next, none)",
    ),
    (
        {"id": "a", "uplink": "wlan", "dedicated_hoa": "2001:db8:200::1"},
        "rules[1].dedicated_hoa: 2001:db8:200::1 is not in the home prefix (2001:db8:100::/64)",
    ),
    (
        {"id": "a", "uplink": "wlan", "dedicated_hoa": "fe80::1"},
        "rules[1].dedicated_hoa: fe80::1 is not a global unicast address",
    ),
    (
        {"id": "a", "uplink": "wlan", "dedicated_hoa": "2001:db8:100::/64"},
        "rules[1].dedicated_hoa: '2001:db8:100::/64' is not an IPv6 address",
    ),
    (
        {"id": "a", "uplink": "wlan", "mode": "direct", "dedicated_hoa": "2001:db8:100::5"},
        "rules[1].dedicated_hoa: not allowed with mode direct",
    ),
    ("video", "rules[1]: expected a mapping, got a string ('video')"),
]


@pytest.mark.parametrize(
    ("bad", "message"),
    BAD_RULES,
    ids=[m.split(":")[0] + "|" + m.split(": ")[1][:24] for _, m in BAD_RULES],
)
def test_bad_rule_is_refused_naming_the_field(bad: object, message: str) -> None:
    assert message in refused(doc(OK_RULE, bad))


BAD_DOCUMENTS = [
    (None, "expected a mapping, got nothing (null)"),
    ([OK_RULE], "expected a mapping, got a list"),
    ({"source": "operator", "rules": []}, "version: required key is missing"),
    ({"version": 2, "source": "operator", "rules": []}, "version: 2 is not a supported version"),
    (
        {"version": "1", "source": "operator", "rules": []},
        "version: '1' is not a supported version",
    ),
    ({"version": 1, "source": "admin", "rules": []}, "source: unknown source 'admin'"),
    (
        {"version": 1, "source": "operator", "rules": OK_RULE},
        "rules: expected a list of rules, got a mapping",
    ),
    ({"version": 1, "source": "operator", "rule": []}, "rule: unknown key (did you mean 'rules'?)"),
    (
        {"version": 1, "source": "user", "default": {"uplink": "wlan"}},
        "default: only an operator document may set default (source is user)",
    ),
    (
        {
            "version": 1,
            "source": "network",
            "precedence": ["network", "operator", "application", "user"],
        },
        "precedence: only an operator document may set precedence",
    ),
    (
        {"version": 1, "source": "operator", "precedence": ["operator", "user"]},
        "precedence: must list every source exactly once",
    ),
    (
        {"version": 1, "source": "operator", "precedence": ["operator", "user", "user", "network"]},
        "precedence: must list every source exactly once",
    ),
    (
        {"version": 1, "source": "operator", "default": {"uplink": "wlan", "fallback": "none"}},
        "default.fallback: unknown key",
    ),
    (
        {"version": 1, "source": "operator", "default": {"strategy": {"prefer": ["umts"]}}},
        "default.strategy.prefer[0]: unknown uplink 'umts'",
    ),
]


@pytest.mark.parametrize(("bad", "message"), BAD_DOCUMENTS)
def test_bad_document_is_refused_naming_the_field(bad: object, message: str) -> None:
    assert message in refused(bad)


def test_uplink_names_are_only_checked_when_known() -> None:
    rs = parse_ruleset(doc({"id": "a", "uplink": "eth9"}), origin="t")
    assert rs.rules[0].action.uplinks == ("eth9",)
    assert "unknown uplink 'eth9'" in refused(doc({"id": "a", "uplink": "eth9"}))


def test_a_good_rule_is_read_with_its_defaults() -> None:
    rs = parse_ruleset(doc({"id": "v", "uplink": "wlan"}), origin="t", context=CTX)
    (rule,) = rs.rules
    assert rule.source is Source.OPERATOR
    assert rule.priority == 0
    assert rule.mode is Mode.ANCHORED
    assert rule.fallback is Fallback.NEXT
    assert rule.dedicated_hoa is None
    assert rule.action.strategy is Strategy.UPLINK
    assert rule.qualified_id == "operator:v"


def test_match_values_are_normalised() -> None:
    rule = parse_rule(
        {
            "id": "m",
            "uplink": "lte",
            "match": {
                "proto": ["UDP", "tcp", 6],
                "remote_port": [5061, "5060", "16384-32767", "16000 - 16384"],
                "dscp": ["EF", "af41", 0],
                "remote": ["2001:db8:c1::10", "2001:db8:c1::10"],
                "direction": "incoming",
            },
        },
        source=Source.USER,
    )
    m = rule.match
    assert m.proto == (6, 17)
    assert m.remote_port == ((5060, 5061), (16000, 32767))
    assert m.dscp == ((0, 0), (34, 34), (46, 46))
    assert m.remote == (IPv6Network("2001:db8:c1::10/128"),)
    assert m.direction is Direction.INCOMING


@pytest.mark.parametrize(
    "rule",
    [
        {"id": "a", "uplink": "wlan"},
        {
            "id": "b",
            "description": "x",
            "priority": 7,
            "strategy": {"weighted": {"wlan": 3, "lte": 1}},
            "max_cost": 2.5,
            "fallback": "none",
            "match": {
                "proto": ["tcp", 17],
                "local": ["2001:db8:100::/64", "2001:db8:101::/64"],
                "remote": "2001:db8:c2::10/128",
                "local_port": [1, "3-9"],
                "remote_port": 80,
                "flow_label": "1-5",
                "dscp": 46,
                "app_id": ["x", "y"],
                "direction": "outgoing",
            },
        },
        {"id": "c", "strategy": "least_loaded", "mode": "direct"},
        {"id": "d", "strategy": {"prefer": ["lte", "wlan"]}, "dedicated_hoa": "2001:db8:100::5"},
        {"id": "e", "strategy": {"lowest_rtt": ["lte"]}, "match": {"app_id": "voice"}},
    ],
)
def test_rules_round_trip_through_data(rule: dict[str, object]) -> None:
    parsed = parse_rule(rule, source=Source.NETWORK, context=CTX)
    assert parse_rule(rule_to_data(parsed), source=Source.NETWORK, context=CTX) == parsed


def test_ruleset_round_trips_through_data() -> None:
    rs = parse_ruleset(
        doc(
            OK_RULE,
            default={"strategy": "cheapest", "max_cost": 1},
            precedence=["operator", "user", "network", "application"],
            description="d",
        ),
        origin="t",
        context=CTX,
    )
    assert parse_ruleset(ruleset_to_data(rs), origin="t", context=CTX) == rs


def test_cross_set_conflicts_are_refused_naming_the_origin() -> None:
    a = parse_ruleset(doc(OK_RULE, default={"uplink": "wlan"}), origin="a.yaml")
    same_id = parse_ruleset(doc({"id": "ok", "uplink": "lte"}), origin="b.yaml")
    other_source = parse_ruleset({"version": 1, "source": "user", "rules": [OK_RULE]}, origin="u")
    second_default = parse_ruleset(doc(default={"uplink": "lte"}), origin="c.yaml")
    with pytest.raises(
        PolicyError, match=r"b.yaml: rules\[0\].id: operator rule id 'ok' is already used in a.yaml"
    ):
        Policy.build([a, same_id])
    with pytest.raises(PolicyError, match=r"c\.yaml: default: already set by a\.yaml"):
        Policy.build([a, second_default])
    # The same id in another source is another rule.
    assert len(Policy.build([a, other_source]).rules) == 2


def test_a_refused_change_leaves_the_running_policy_untouched() -> None:
    uplinks = {
        "wlan": UplinkView("wlan", True, IPv6Address("2001:db8:1::2")),
        "lte": UplinkView("lte", True, IPv6Address("2001:db8:2::2")),
    }
    flow = FlowDescriptor(
        FlowKey(6, IPv6Address("2001:db8:100::1000"), 40000, IPv6Address("2001:db8:c1::10"), 80),
        Direction.OUTGOING,
    )
    running = Policy.build(
        [
            parse_ruleset(
                doc({"id": "web", "uplink": "lte", "match": {"remote_port": 80}}), origin="ops"
            )
        ]
    )
    engine = RuleEngine(running)
    before = engine.decide(flow, uplinks, 0.0)
    with pytest.raises(PolicyError):
        # A change that would steer the flow to wlan, but with a bad second rule.
        bad = doc(
            {"id": "web", "uplink": "wlan", "match": {"remote_port": 80}},
            {"id": "x", "uplink": "wlan", "match": {"remote_port": 70000}},
        )
        engine.install(running.update(put=[parse_ruleset(bad, origin="ops")]))
    with pytest.raises(PolicyError):
        # Good alone, but clashes with the running rule set of another origin.
        clash = parse_ruleset(doc({"id": "web", "uplink": "wlan"}), origin="rest")
        engine.install(running.update(put=[clash]))
    assert engine.policy is running
    assert running.origins == ("ops",)
    assert engine.decide(flow, uplinks, 0.0) == before
    assert before.uplink == "lte"


def test_rules_are_pushed_and_removed_one_at_a_time() -> None:
    running = Policy.build([parse_ruleset(doc(OK_RULE), origin="files")])
    web = parse_rule({"id": "web", "uplink": "lte"}, source=Source.OPERATOR, context=CTX)
    pushed = running.put_rule("rest", web)
    assert [r.qualified_id for r in pushed.rules] == ["operator:ok", "operator:web"]
    replaced = pushed.put_rule(
        "rest", parse_rule({"id": "web", "uplink": "wlan"}, source=Source.OPERATOR)
    )
    assert replaced.find(Source.OPERATOR, "web").action.uplinks == ("wlan",)  # type: ignore[union-attr]
    with pytest.raises(PolicyError, match="operator rule id 'ok' is already used in files"):
        pushed.put_rule("rest", parse_rule(OK_RULE, source=Source.OPERATOR))
    user_rule = parse_rule({"id": "u", "uplink": "lte"}, source=Source.USER)
    with pytest.raises(PolicyError, match="origin 'rest' holds operator rules, not user"):
        pushed.put_rule("rest", user_rule)
    assert pushed.remove_rule(Source.OPERATOR, "web").find(Source.OPERATOR, "web") is None
    with pytest.raises(PolicyError, match="there is no user rule 'web'"):
        pushed.remove_rule(Source.USER, "web")
    assert [r.id for r in running.rules] == ["ok"]  # every change made a new Policy
