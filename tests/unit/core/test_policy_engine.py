"""The engine's decisions: matching, precedence, fallbacks, defaults, what a Decision carries."""

from __future__ import annotations

from ipaddress import IPv6Address

import pytest

from sdnmip.core.policy import Policy, RuleEngine, is_held
from sdnmip.core.policy_api import PolicyEngine
from sdnmip.core.policy_parse import parse_ruleset
from sdnmip.core.types import IPPROTO_ICMPV6, IPPROTO_UDP, Direction, Mode, UplinkView
from tests.unit.core.policy_helpers import CN1, CN2, UP, flow, policy, sources, uplink, uplinks

WLAN_DOWN = uplinks(uplink("wlan", up=False), uplink("lte"))
ALL_DOWN = uplinks(uplink("wlan", up=False), uplink("lte", up=False))


def decide(p: Policy, f=None, ups=UP):  # type: ignore[no-untyped-def]
    return RuleEngine(p).decide(f or flow(), ups, 0.0)


def test_engine_satisfies_the_controller_protocol() -> None:
    engine: PolicyEngine = RuleEngine()
    assert engine.decide(flow(), UP, 0.0).uplink == "wlan"


def test_without_rules_the_first_usable_uplink_in_configured_order_decides() -> None:
    empty = Policy.build()
    assert decide(empty).uplink == "wlan"
    assert decide(empty, ups=uplinks(uplink("lte"), uplink("wlan"))).uplink == "lte"
    d = decide(empty, ups=WLAN_DOWN)
    assert (d.uplink, d.mode, d.dedicated_hoa, d.rule_id) == ("lte", Mode.ANCHORED, None, None)


def test_the_decision_carries_mode_dedicated_hoa_and_the_qualified_rule_id() -> None:
    p = policy(
        {
            "id": "voice",
            "match": {"proto": "udp", "remote_port": 5060},
            "uplink": "lte",
            "dedicated_hoa": "2001:db8:100::5060",
        },
        {"id": "dns", "match": {"remote_port": 53}, "uplink": "wlan", "mode": "direct"},
    )
    voice = decide(p, flow(IPPROTO_UDP, 5060))
    assert (voice.uplink, voice.mode, voice.rule_id) == ("lte", Mode.ANCHORED, "operator:voice")
    assert voice.dedicated_hoa == IPv6Address("2001:db8:100::5060")
    dns = decide(p, flow(IPPROTO_UDP, 53))
    assert (dns.uplink, dns.mode, dns.dedicated_hoa, dns.rule_id) == (
        "wlan",
        Mode.DIRECT,
        None,
        "operator:dns",
    )


@pytest.mark.parametrize(
    ("match", "hit", "miss"),
    [
        ({"proto": "udp"}, flow(IPPROTO_UDP), flow(6)),
        ({"proto": ["udp", "icmpv6"]}, flow(IPPROTO_ICMPV6, 0), flow(6)),
        ({"direction": "incoming"}, flow(direction=Direction.INCOMING), flow()),
        ({"remote": "2001:db8:c1::/64"}, flow(remote=CN1), flow(remote=CN2)),
        (
            {"remote": ["2001:db8:c2::10", "2001:db8:c1::/48"]},
            flow(remote=CN1),
            flow(remote=IPv6Address("2001:db8:c3::1")),
        ),
        ({"local": "2001:db8:100::1000"}, flow(), flow(local=IPv6Address("2001:db8:100::1001"))),
        ({"remote_port": "8000-8099"}, flow(remote_port=8099), flow(remote_port=8100)),
        ({"remote_port": [22, "80-81"]}, flow(remote_port=22), flow(remote_port=23)),
        ({"local_port": 5353}, flow(local_port=5353), flow(local_port=5354)),
        ({"flow_label": "10"}, flow(flow_label=10), flow(flow_label=11)),
        ({"flow_label": 0xFFFFF}, flow(flow_label=0xFFFFF), flow()),
        ({"dscp": "ef"}, flow(dscp=46), flow(dscp=0)),
        ({"dscp": ["af41", "cs1"]}, flow(dscp=8), flow(dscp=10)),
        ({"app_id": "player"}, flow(app_id="player"), flow(app_id="other")),
        ({"app_id": ["a", "b"]}, flow(app_id="b"), flow(app_id=None)),
        (
            {"proto": "tcp", "remote_port": 443, "remote": "2001:db8:c1::10"},
            flow(6, 443),
            flow(6, 443, remote=CN2),
        ),
    ],
)
def test_each_match_field(match: dict[str, object], hit, miss) -> None:  # type: ignore[no-untyped-def]
    p = policy({"id": "r", "match": match, "uplink": "lte"})
    assert decide(p, hit).rule_id == "operator:r"
    assert decide(p, miss).rule_id is None


def test_an_empty_match_matches_every_flow() -> None:
    p = policy({"id": "all", "uplink": "lte"})
    assert decide(p, flow(IPPROTO_ICMPV6, 0, direction=Direction.INCOMING)).uplink == "lte"


def test_source_precedence_beats_priority() -> None:
    p = sources(
        user=[{"id": "prefer-lte", "priority": 65535, "uplink": "lte"}],
        application=[{"id": "app", "priority": 1000, "match": {"app_id": "x"}, "uplink": "lte"}],
        network=[{"id": "net", "priority": 5, "match": {"remote_port": 80}, "uplink": "lte"}],
        operator=[{"id": "web", "priority": 0, "match": {"proto": "tcp"}, "uplink": "wlan"}],
    )
    assert decide(p, flow(6, 80, app_id="x")).rule_id == "operator:web"
    assert decide(p, flow(IPPROTO_UDP, 80, app_id="x")).rule_id == "network:net"
    assert decide(p, flow(IPPROTO_UDP, 81, app_id="x")).rule_id == "application:app"
    assert decide(p, flow(IPPROTO_UDP, 81)).rule_id == "user:prefer-lte"


def test_the_operator_may_reorder_the_sources() -> None:
    ops = parse_ruleset(
        {
            "version": 1,
            "source": "operator",
            "rules": [],
            "precedence": ["operator", "user", "network", "application"],
        },
        origin="ops",
    )
    app = parse_ruleset(
        {"version": 1, "source": "application", "rules": [{"id": "a", "uplink": "lte"}]},
        origin="app",
    )
    user = parse_ruleset(
        {
            "version": 1,
            "source": "user",
            "rules": [{"id": "never-lte", "uplink": "wlan", "fallback": "none"}],
        },
        origin="user",
    )
    assert decide(Policy.build([app, user])).rule_id == "application:a"
    p = Policy.build([ops, app, user])
    assert decide(p).rule_id == "user:never-lte"
    # The user's "wlan only" holds even when wlan is down: the application cannot take lte.
    held = decide(p, ups=WLAN_DOWN)
    assert held.uplink == "wlan" and is_held(held, WLAN_DOWN)


def test_within_a_source_priority_then_specificity_then_id() -> None:
    p = policy(
        {"id": "b-any", "uplink": "lte"},
        {"id": "a-any", "uplink": "lte"},
        {"id": "port", "match": {"remote_port": 80}, "uplink": "lte"},
        {
            "id": "port-host",
            "match": {"remote_port": 80, "remote": "2001:db8:c1::10"},
            "uplink": "lte",
        },
        {
            "id": "port-net",
            "match": {"remote_port": 80, "remote": "2001:db8:c1::/64"},
            "uplink": "lte",
        },
        {"id": "low-but-high", "priority": 1, "match": {"remote_port": 9}, "uplink": "wlan"},
        {"id": "z-high", "priority": 1, "uplink": "wlan"},
    )
    assert [r.id for r in p.rules] == [
        "low-but-high",
        "z-high",
        "port-host",
        "port-net",
        "port",
        "a-any",
        "b-any",
    ]
    assert decide(p, flow(6, 80)).rule_id == "operator:z-high"


def test_fallback_next_steps_aside_when_the_uplink_is_down() -> None:
    p = policy(
        {"id": "video", "match": {"remote_port": 443}, "uplink": "wlan"},
        {"id": "web", "match": {"proto": "tcp"}, "strategy": {"prefer": ["wlan", "lte"]}},
    )
    assert decide(p, flow(6, 443)).rule_id == "operator:video"
    d = decide(p, flow(6, 443), WLAN_DOWN)
    assert (d.uplink, d.rule_id) == ("lte", "operator:web")
    # Past every rule: the default, which also skips the unusable uplink.
    d = decide(policy({"id": "video", "uplink": "wlan"}), flow(), WLAN_DOWN)
    assert (d.uplink, d.rule_id) == ("lte", None)


def test_fallback_none_holds_the_flow_on_its_uplink() -> None:
    p = policy(
        {"id": "bulk", "match": {"remote_port": 873}, "uplink": "lte", "fallback": "none"},
        {"id": "rest", "uplink": "wlan"},
    )
    lte_down = uplinks(uplink("wlan"), uplink("lte", up=False))
    d = decide(p, flow(6, 873), lte_down)
    assert (d.uplink, d.rule_id) == ("lte", "operator:bulk")
    assert is_held(d, lte_down)
    assert not is_held(decide(p, flow(6, 873)), UP)
    # An uplink the controller does not know counts as unusable, and is held too.
    only_wlan = uplinks(uplink("wlan"))
    d = decide(p, flow(6, 873), only_wlan)
    assert d.uplink == "lte" and is_held(d, only_wlan)


def test_an_uplink_without_a_care_of_address_is_not_usable() -> None:
    no_coa = uplinks(UplinkView("wlan", True, None), uplink("lte"))
    p = policy({"id": "v", "uplink": "wlan"})
    assert decide(p, ups=no_coa).uplink == "lte"


def test_with_no_usable_uplink_the_default_holds_on_its_first_candidate() -> None:
    d = decide(Policy.build(), ups=ALL_DOWN)
    assert (d.uplink, d.rule_id) == ("wlan", None) and is_held(d, ALL_DOWN)
    p = policy(default={"strategy": {"prefer": ["lte", "wlan"]}})
    assert decide(p, ups=ALL_DOWN).uplink == "lte"


def test_a_configured_default_and_its_builtin_fallback() -> None:
    p = policy(default={"uplink": "lte"})
    assert decide(p).uplink == "lte"
    # The configured default's uplink is down: any usable uplink rather than none.
    lte_down = uplinks(uplink("wlan"), uplink("lte", up=False))
    assert decide(p, ups=lte_down).uplink == "wlan"


def test_no_uplinks_at_all_is_a_bug_and_fails_loudly() -> None:
    with pytest.raises(ValueError, match="no uplinks"):
        decide(Policy.build(), ups={})


def test_max_cost_leaves_expensive_uplinks_out() -> None:
    ups = uplinks(uplink("lte", cost=5.0), uplink("wlan", cost=1.0))
    p = policy({"id": "cheap-only", "strategy": "least_loaded", "max_cost": 2})
    assert decide(p, ups=ups).uplink == "wlan"
    ups["wlan"] = uplink("wlan", up=False, cost=1.0)
    assert decide(p, ups=ups).rule_id is None  # nothing cheap enough: next, then the default


def test_decisions_are_shared_values() -> None:
    engine = RuleEngine(policy({"id": "v", "uplink": "wlan"}))
    assert engine.decide(flow(), UP, 0.0) is engine.decide(flow(remote_port=1), UP, 1.0)
