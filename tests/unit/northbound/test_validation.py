"""Every kind of bad input through the northbound is refused with one message naming the field,
and nothing changes: the running policy is the same object, no flow moves, no Binding Update is
asked for, nothing is saved."""

from __future__ import annotations

from typing import Any

import pytest

from .nbrig import NbRig

GOOD = {"id": "tls", "match": {"proto": "tcp", "remote_port": 443}, "uplink": "lte"}

RULE_CASES = [
    # unknown keys
    ({**GOOD, "uplnk": "lte"}, "uplnk", "unknown key"),
    ({**GOOD, "match": {"remote_prot": 443}}, "match.remote_prot", "did you mean 'remote_port'"),
    # wrong types
    ({**GOOD, "priority": "high"}, "priority", "expected an integer"),
    ({**GOOD, "priority": True}, "priority", "expected an integer"),
    ({**GOOD, "match": {"remote_port": 443.5}}, "match.remote_port", ""),
    ({**GOOD, "match": []}, "match", "expected a mapping"),
    ({**GOOD, "uplink": ["lte"]}, "uplink", ""),
    # impossible values
    ({**GOOD, "match": {"remote_port": 70000}}, "match.remote_port", "70000 is not a port"),
    ({**GOOD, "match": {"proto": "icmpv6", "remote_port": 80}}, "match.remote_port", "no ports"),
    ({**GOOD, "match": {"remote": "2001:db8::1/64"}}, "match.remote", "did you mean 2001:db8::/64"),
    ({**GOOD, "match": {"remote": "10.0.0.0/8"}}, "match.remote", ""),
    ({**GOOD, "match": {"dscp": 64}}, "match.dscp", ""),
    ({**GOOD, "match": {"remote_port": []}}, "match.remote_port", ""),
    ({**GOOD, "uplink": "5g"}, "uplink", "5g"),
    ({**GOOD, "priority": 70000}, "priority", "not a priority"),
    (
        {"id": "tls", "uplink": "lte", "strategy": "cheapest"},
        None,
        "exactly one of uplink or strategy",
    ),
    ({"id": "w", "strategy": {"weighted": {"wlan": 0, "lte": 0}}}, "strategy.weighted", ""),
    ({"id": "w", "strategy": "weighted"}, "strategy", "needs its uplinks"),
    (
        {**GOOD, "mode": "direct", "dedicated_hoa": "2001:db8:100::5"},
        "dedicated_hoa",
        "not allowed",
    ),
    ({**GOOD, "dedicated_hoa": "2001:db8:5::5"}, "dedicated_hoa", ""),
    ({**GOOD, "max_cost": -1}, "max_cost", ""),
    ({**GOOD, "fallback": "never"}, "fallback", "unknown fallback"),
    ({**GOOD, "id": "has space"}, "id", "not a rule id"),
]


def snapshot(nb: NbRig) -> tuple[Any, ...]:
    return (
        nb.engine.policy,
        tuple((e.flow_id, e.uplink, e.hoa) for e in nb.rig.logic.flows),
        tuple((r.addr, r.target) for r in nb.rig.logic.hoas.held()),
    )


def refused_without_change(nb: NbRig, ans: Any, before: tuple[Any, ...], field: str | None,
                           words: str) -> None:  # fmt: skip
    assert ans.status == 422, ans.body
    assert ans.error["code"] == "invalid"
    assert ans.error["field"] == field
    assert words in ans.error["message"]
    assert ans.error["message"].strip() and "Traceback" not in ans.error["message"]
    assert snapshot(nb) == before
    assert snapshot(nb)[0] is before[0]  # the very same Policy object is in force
    assert nb.rig.take_agent() == []


@pytest.fixture
def nb(tmp_path):
    nb = NbRig.start(state=tmp_path / "saved.json")
    nb.open_tcp(40000, 443)
    nb.open_tcp(40001, 80)
    nb.rig.take_agent()
    return nb


@pytest.mark.parametrize(("body", "field", "words"), RULE_CASES)
def test_bad_rules_are_refused_naming_the_field(nb, tmp_path, body, field, words):
    before = snapshot(nb)
    refused_without_change(nb, nb.post("/v1/rules/operator", body), before, field, words)
    path_id = body.get("id") if isinstance(body.get("id"), str) and " " not in body["id"] else "x"
    body_put = {k: v for k, v in body.items() if k != "id"}
    if field != "id":
        ans = nb.put(f"/v1/rules/network/{path_id}", body_put)
        refused_without_change(nb, ans, before, field, words)
    assert not (tmp_path / "saved.json").exists()


PREFERENCE_CASES = [
    ({"prefer": "wlan"}, "prefer", "non-empty list"),
    ({"prefer": []}, "prefer", "non-empty list"),
    ({"prefer": ["wlan", "5g"]}, "prefer[1]", "5g"),
    ({"prefer": ["wlan"], "max_cost": "cheap"}, "max_cost", "expected a number"),
    ({"prefer": ["wlan"], "maximum_cost": 3}, "maximum_cost", "unknown key"),
    ({"rules": {"id": "x"}}, "rules", "list"),
    (
        {"rules": [{"id": "a", "uplink": "lte", "match": {"dscp": "platinum"}}]},
        "rules[0].match.dscp",
        "",
    ),
    (
        {"prefer": ["lte"], "rules": [{"id": "prefer", "uplink": "lte"}]},
        "rules[0].id",
        "already used",
    ),
    (
        {"rules": [{"id": "a", "uplink": "lte"}, {"id": "a", "uplink": "wlan"}]},
        "rules[1].id",
        "already used",
    ),
    (["wlan"], None, "expected a JSON object"),
]


@pytest.mark.parametrize(("body", "field", "words"), PREFERENCE_CASES)
def test_bad_preferences_are_refused_naming_the_field(nb, body, field, words):
    nb.put("/v1/preferences", {"prefer": ["wlan", "lte"]})  # a running preference to keep
    nb.rig.take_agent()
    before = snapshot(nb)
    refused_without_change(nb, nb.put("/v1/preferences", body), before, field, words)
    assert nb.get("/v1/preferences").body["prefer"] == ["wlan", "lte"]


DECLARATION_CASES = [
    ({"uplink": "lte"}, "match", "required"),
    ({"match": {"proto": "udp"}, "uplink": "lte"}, "match", "at least one of"),
    (
        {"match": {"local_port": 5000, "app_id": "other"}, "uplink": "lte"},
        "match.app_id",
        "from the URL",
    ),
    ({"match": {"local_port": 5000, "colour": 1}, "uplink": "lte"}, "match.colour", "unknown key"),
    ({"match": {"local_port": 99999}, "uplink": "lte"}, "match.local_port", "not a port"),
    ({"match": {"local_port": 5000}}, None, "exactly one of uplink or strategy"),
    ({"match": {"local_port": 5000}, "uplink": "lte", "extra": 1}, "extra", "unknown key"),
    (
        {"id": "bad id", "match": {"local_port": 5000}, "uplink": "lte"},
        "id",
        "not a declaration id",
    ),
    ({"id": "x" * 40, "match": {"local_port": 5000}, "uplink": "lte"}, "id", "at most 31"),
]


@pytest.mark.parametrize(("body", "field", "words"), DECLARATION_CASES)
def test_bad_declarations_are_refused_naming_the_field(nb, body, field, words):
    before = snapshot(nb)
    refused_without_change(nb, nb.post("/v1/apps/app1/flows", body), before, field, words)
    assert nb.get("/v1/apps").body == {"apps": []}


def test_a_refused_replacement_keeps_the_rule_it_would_replace(nb):
    assert nb.post("/v1/rules/operator", GOOD).status == 201
    nb.rig.ack_binds()
    before = snapshot(nb)
    rule = nb.get("/v1/rules/operator/tls").body
    ans = nb.put("/v1/rules/operator/tls", {**GOOD, "uplink": "satellite"})
    refused_without_change(nb, ans, before, "uplink", "satellite")
    assert nb.get("/v1/rules/operator/tls").body == rule


def test_good_changes_are_saved_and_come_back_after_a_restart(tmp_path):
    saved = tmp_path / "saved.json"
    nb = NbRig.start(state=saved)
    nb.post("/v1/rules/operator", GOOD)
    nb.put("/v1/preferences", {"prefer": ["lte"], "max_cost": 50})
    nb.post("/v1/apps/voip/flows", {"id": "call", "match": {"local_port": 41000}, "uplink": "lte"})
    assert saved.stat().st_mode & 0o777 == 0o600
    from sdnmip.core.policy import EMPTY_POLICY
    from sdnmip.northbound.policy_store import RuleSetFile

    from .nbrig import CONTEXT

    policy, problems = RuleSetFile(saved).load(EMPTY_POLICY, CONTEXT)
    assert problems == []
    assert [r.qualified_id for r in policy.rules] == [
        r.qualified_id for r in nb.engine.policy.rules
    ]
    assert set(policy.rulesets) == set(nb.engine.policy.rulesets)


def test_saved_rules_that_no_longer_fit_are_dropped_and_reported(tmp_path):
    saved = tmp_path / "saved.json"
    nb = NbRig.start(state=saved)
    nb.post("/v1/rules/operator", GOOD)
    nb.post("/v1/rules/user", {"id": "mine", "uplink": "wlan"})
    from sdnmip.core.policy import EMPTY_POLICY
    from sdnmip.core.policy_parse import Context
    from sdnmip.northbound.policy_store import RuleSetFile

    only_wlan = Context(uplinks=frozenset({"wlan"}))  # lte left the configuration
    policy, problems = RuleSetFile(saved).load(EMPTY_POLICY, only_wlan)
    assert [r.qualified_id for r in policy.rules] == ["user:mine"]
    assert len(problems) == 1 and "rest:operator" in problems[0] and "lte" in problems[0]
    saved.write_text("{not json")
    policy, problems = RuleSetFile(saved).load(EMPTY_POLICY, only_wlan)
    assert policy is EMPTY_POLICY and "not JSON" in problems[0]
