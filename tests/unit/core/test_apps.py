"""Application declarations (hints -> app_id attribution) and the SteeringEngine around the rule
engine: costs, preference order, and which live flows a policy change affects."""

from __future__ import annotations

from ipaddress import IPv6Address

import pytest

from sdnmip.core.apps import AppIndex, app_origin, declaration_to_data, parse_declaration
from sdnmip.core.policy import Policy
from sdnmip.core.policy_model import PolicyError, RuleSet, Source
from sdnmip.core.steering import SteeringEngine
from sdnmip.core.types import Direction

from .policy_helpers import CN1, CN2, flow, policy, uplink, uplinks


def apps(**decls: list[dict[str, object]]) -> Policy:
    sets = []
    for app, bodies in decls.items():
        rules = tuple(parse_declaration(app, b, decl_id=f"d{i}") for i, b in enumerate(bodies))
        sets.append(RuleSet(app_origin(app), Source.APPLICATION, rules))
    return Policy.build(sets)


def test_a_hint_attributes_flows_to_the_application():
    idx = AppIndex(apps(voip=[{"match": {"proto": "udp", "local_port": 41000}, "uplink": "lte"}]))
    assert idx.app_of(flow(17, 5060, local_port=41000)) == "voip"
    assert idx.app_of(flow(17, 5060, local_port=41001)) is None
    assert idx.app_of(flow(6, 5060, local_port=41000)) is None  # TCP: not the hint
    f = flow(17, 5060, local_port=41000)
    assert idx.attribute(f).app_id == "voip" and idx.attribute(f).key == f.key
    other = flow(17, 5060)
    assert idx.attribute(other) is other


def test_the_more_specific_hint_wins_then_the_app_id():
    idx = AppIndex(
        apps(
            browser=[{"match": {"remote_port": 443}, "uplink": "wlan"}],
            video=[{"match": {"remote": str(CN1), "remote_port": 443}, "uplink": "wlan"}],
            aaa=[{"match": {"remote_port": 443}, "uplink": "wlan"}],
        )
    )
    assert idx.app_of(flow(6, 443, remote=CN1)) == "video"
    assert idx.app_of(flow(6, 443, remote=CN2)) == "aaa"


def test_an_app_id_already_on_the_flow_is_kept():
    idx = AppIndex(apps(voip=[{"match": {"local_port": 41000}, "uplink": "lte"}]))
    assert idx.app_of(flow(17, 1, local_port=41000, app_id="given")) == "given"
    assert not AppIndex(Policy.build())


def test_declarations_become_application_rules_matching_the_app():
    rule = parse_declaration(
        "voip", {"match": {"local_port": 41000, "direction": "outgoing"}, "uplink": "lte",
                 "priority": 9}, decl_id="call",
    )  # fmt: skip
    assert rule.source is Source.APPLICATION and rule.id == "voip.call"
    assert rule.match.app_id == ("voip",) and rule.match.direction is Direction.OUTGOING
    data = declaration_to_data("voip", rule)
    assert data["id"] == "call" and data["rule_id"] == "application:voip.call"
    assert data["match"] == {"direction": "outgoing", "local_port": 41000}
    assert data["priority"] == 9 and data["uplink"] == "lte"


@pytest.mark.parametrize(
    ("app", "body", "decl", "path"),
    [
        ("voip", {"uplink": "lte"}, "d", ("match",)),
        (
            "voip",
            {"match": {"proto": "tcp", "direction": "incoming"}, "uplink": "lte"},
            "d",
            ("match",),
        ),
        (
            "voip",
            {"match": {"app_id": "x", "local_port": 1}, "uplink": "lte"},
            "d",
            ("match", "app_id"),
        ),
        ("voip", {"match": {"local_port": 1}, "uplink": "lte", "colour": 1}, "d", ("colour",)),
        ("voip", {"match": {"local_port": 1}, "uplink": "lte", "id": "e"}, "d", ("id",)),
        ("voi.p", {"match": {"local_port": 1}, "uplink": "lte"}, "d", ("app_id",)),
        ("voip", {"match": {"local_port": 1}, "uplink": "lte"}, "a.b", ("id",)),
        ("voip", {"match": {"local_port": 1}, "uplink": "lte"}, "x" * 32, ("id",)),
        ("voip", {"match": {"local_port": -1}, "uplink": "lte"}, "d", ("match", "local_port")),
    ],
)
def test_bad_declarations_name_the_field(app, body, decl, path):
    with pytest.raises(PolicyError) as err:
        parse_declaration(app, body, decl_id=decl)
    assert err.value.path == path


# -- SteeringEngine ---------------------------------------------------------------------------


def test_engine_decides_by_attributed_app_id():
    p = policy({"id": "no-lte-backup", "match": {"app_id": "backup"}, "uplink": "wlan",
                "fallback": "none"}, source="user")  # fmt: skip
    p = p.update(put=[apps(backup=[{"match": {"remote_port": 873}, "uplink": "lte"}]).rulesets[0]])
    eng = SteeringEngine(p)
    up = uplinks(uplink("wlan"), uplink("lte"))
    # application precedes user by default: the app's own wish (lte) wins...
    assert eng.decide(flow(6, 873), up, 0.0).uplink == "lte"
    # ...unless the operator puts the user first.
    ops = policy(source="operator", precedence=["operator", "user", "network", "application"])
    eng.install(p.update(put=ops.rulesets))
    assert eng.decide(flow(6, 873), up, 0.0).uplink == "wlan"
    assert eng.decide(flow(6, 22), up, 0.0).uplink == "wlan"  # not the app's: the default


def test_engine_gives_views_the_configured_costs_and_order():
    p = policy({"id": "cheap", "strategy": "cheapest"})
    up = uplinks(uplink("wlan"), uplink("lte"))
    assert SteeringEngine(p).decide(flow(), up, 0.0).uplink == "wlan"  # no costs: a tie
    eng = SteeringEngine(p, costs={"wlan": 10, "lte": 5})
    assert eng.decide(flow(), up, 0.0).uplink == "lte"
    # With no rule, the first usable uplink in the preference order decides.
    assert (
        SteeringEngine(Policy.build(), order=["lte", "wlan"]).decide(flow(), up, 0.0).uplink
        == "lte"
    )
    capped = SteeringEngine(policy({"id": "c", "strategy": {"prefer": ["lte", "wlan"]},
                                    "max_cost": 6}), costs={"wlan": 10, "lte": 5})  # fmt: skip
    assert capped.decide(flow(), up, 0.0).uplink == "lte"


def test_install_reports_the_live_flows_whose_deciding_rules_change():
    eng = SteeringEngine(policy({"id": "web", "match": {"remote_port": 80}, "uplink": "wlan"}))
    live = [(1, flow(6, 80)), (2, flow(6, 443)), (3, flow(17, 41000, local_port=41000))]
    tls = {"id": "tls", "match": {"remote_port": 443}, "uplink": "lte"}
    new = eng.policy.update(put=policy(tls, source="network").rulesets)
    assert eng.install(new, live) == {2}
    # A declaration changes which flows an application owns: a user rule on that app now
    # decides flow 3.
    user = policy({"id": "u", "match": {"app_id": "voip"}, "uplink": "lte"}, source="user")
    assert eng.install(eng.policy.update(put=user.rulesets), live) == set()
    decl = apps(voip=[{"match": {"local_port": 41000}, "uplink": "lte"}]).rulesets
    assert eng.install(eng.policy.update(put=decl), live) == {3}
    assert eng.install(eng.policy.update(remove=[app_origin("voip")]), live) == {3}


def test_views_are_rebuilt_only_when_the_controller_changes_them():
    eng = SteeringEngine(policy({"id": "c", "strategy": "cheapest"}), costs={"wlan": 1, "lte": 2})
    up = uplinks(uplink("wlan"), uplink("lte"))
    first = eng._views(up)
    assert eng._views(up) is first
    assert eng._views(dict(up)) is not first
    assert first["wlan"].cost == 1.0 and first["lte"].coa == IPv6Address(up["lte"].coa)
