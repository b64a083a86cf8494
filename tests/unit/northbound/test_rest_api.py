"""The REST API over a real controller logic and fake switch: every endpoint, auth on and off,
and the error cases (status, code, field)."""

from __future__ import annotations

import pytest

from sdnmip.controller.config import BindHoas, HoaBound
from tests.unit.controller.pkt import tcp_pkt
from tests.unit.controller.rig import CN1, CN2, HOA0, ILTE, IWLAN, PRIMARY

from .nbrig import TOKEN, NbRig

WEB_LTE = {"id": "web-lte", "match": {"proto": "tcp", "remote_port": 443}, "uplink": "lte"}


def egress_port(nb: NbRig, sport: int, dport: int, dst: str = CN1) -> int:
    """Where the next packet of a flow leaves the bridge (the fake switch applies the rules)."""
    port, _ = nb.rig.send(HOA0, tcp_pkt(PRIMARY, dst, sport, dport, flags=0x10)).only()
    return int(port)


# -- state views ------------------------------------------------------------------------------


def test_status_interfaces_and_flows_describe_the_mn():
    nb = NbRig.start()
    f = nb.open_tcp(40000, 80)
    st = nb.get("/v1/status")
    assert st.status == 200
    assert st.body["switch_connected"] and st.body["reconciled"] and st.body["flows"] == 1
    ifaces = nb.get("/v1/interfaces").body["interfaces"]
    assert [(i["name"], i["usable"], i["coa"], i["cost"]) for i in ifaces] == [
        ("wlan", True, "2001:db8:1::2", 10.0),
        ("lte", True, "2001:db8:2::2", 20.0),
    ]
    assert [i["flows"] for i in ifaces] == [1, 0]
    flows = nb.get("/v1/flows").body["flows"]
    assert len(flows) == 1
    row = flows[0]
    assert row["flow_id"] == f and row["proto"] == "tcp" and row["remote_port"] == 80
    assert row["uplink"] == "wlan" and row["coa"] == "2001:db8:1::2" and row["mode"] == "anchored"
    assert row["hoa"] is not None and row["moving_to"] is None
    assert nb.get(f"/v1/flows/{f}").body == row


def test_flow_filters_and_their_errors():
    nb = NbRig.start()
    nb.open_tcp(40000, 80)
    nb.open_tcp(40001, 80, dst=CN2)
    assert len(nb.get("/v1/flows?remote=2001:db8:c2::/64").body["flows"]) == 1
    assert len(nb.get("/v1/flows?proto=udp").body["flows"]) == 0
    assert len(nb.get("/v1/flows?uplink=wlan&proto=tcp").body["flows"]) == 2
    bad = nb.get("/v1/flows?colour=red")
    assert (bad.status, bad.error["code"], bad.error["field"]) == (400, "bad_request", "colour")
    bad = nb.get("/v1/flows?proto=quic")
    assert (bad.status, bad.error["field"]) == (400, "proto")
    bad = nb.get("/v1/flows?uplink=a&uplink=b")
    assert (bad.status, bad.error["field"]) == (400, "uplink")


def test_hoas_join_the_controller_view_with_the_agents_bindings():
    class Snap:
        def __init__(self, hoas):
            self.hoas = hoas
            self.counters = {}

    class Info:
        def __init__(self, hoa, role, state):
            self.hoa, self.role, self.state = hoa, role, state
            self.uplink, self.coa, self.status, self.lifetime, self.expires_in = (
                "wlan", None, 0, 60, 42.0)  # fmt: skip

    from ipaddress import IPv6Address as A

    held_only = A("2001:db8:100::77")
    snap = Snap([Info(A(PRIMARY), "primary", "bound"), Info(held_only, "held", "bound")])
    nb = NbRig.start(agent=lambda: snap)
    body = nb.get("/v1/hoas").body
    assert body["primary"] == PRIMARY and body["agent_connected"]
    rows = {h["hoa"]: h for h in body["hoas"]}
    assert rows[PRIMARY]["role"] == "primary" and rows[PRIMARY]["binding"]["state"] == "bound"
    assert rows[str(held_only)]["role"] == "held"  # known to the agent only
    assert sum(1 for h in body["hoas"] if h["role"] == "spare") == 8
    none = NbRig.start(agent=lambda: None).get("/v1/hoas").body
    assert not none["agent_connected"] and all(h["binding"] is None for h in none["hoas"])


# -- moving and removing flows ----------------------------------------------------------------


def test_move_hands_the_flow_over_after_the_binding_ack():
    nb = NbRig.start()
    f = nb.open_tcp(40000, 80)
    other = nb.open_tcp(40001, 81)
    ans = nb.post(f"/v1/flows/{f}/move", {"network": "lte"})
    assert ans.status == 200
    assert ans.body["network"] == "lte" and ans.body["pending"] and f in ans.body["moved"]
    assert nb.get(f"/v1/flows/{f}").body["moving_to"] == "lte"
    assert egress_port(nb, 40000, 80) == IWLAN  # make-before-break: not before the BA
    nb.rig.ack_binds()
    assert egress_port(nb, 40000, 80) == ILTE
    assert egress_port(nb, 40001, 81) == IWLAN  # the other flow stays
    assert nb.get(f"/v1/flows/{f}").body["pinned"] is True
    assert nb.get(f"/v1/flows/{f}").body["pinned_to"] == "lte"
    assert nb.uplink_of(other) == "wlan"


@pytest.mark.parametrize(
    ("body", "status", "field"),
    [
        ({"network": "5g"}, 422, "network"),
        ({"network": 3}, 422, "network"),
        ({}, 422, "network"),
        ({"network": "lte", "now": True}, 422, "now"),
        (["lte"], 422, None),
    ],
)
def test_move_refusals_name_the_field(body, status, field):
    nb = NbRig.start()
    f = nb.open_tcp(40000, 80)
    ans = nb.post(f"/v1/flows/{f}/move", body)
    assert (ans.status, ans.error["field"]) == (status, field)
    assert nb.rig.take_agent() == [] and nb.uplink_of(f) == "wlan"


def test_move_of_an_unknown_flow_is_404_and_to_a_dead_network_409():
    nb = NbRig.start()
    f = nb.open_tcp(40000, 80)
    assert nb.post("/v1/flows/99/move", {"network": "lte"}).status == 404
    assert nb.post("/v1/flows/abc/move", {"network": "lte"}).status == 404
    nb.rig.run(nb.rig.logic.port_status(nb.rig.now, 4, False))  # lte's carrier is lost
    ans = nb.post(f"/v1/flows/{f}/move", {"network": "lte"})
    assert (ans.status, ans.error["code"], ans.error["field"]) == (409, "conflict", "network")
    assert "not usable" in ans.error["message"]


def test_delete_flow_ends_it():
    nb = NbRig.start()
    f = nb.open_tcp(40000, 80)
    ans = nb.delete(f"/v1/flows/{f}")
    assert ans.status == 204 and ans.raw == b""
    assert nb.get(f"/v1/flows/{f}").status == 404
    assert nb.delete(f"/v1/flows/{f}").status == 404
    assert not any(r.cookie & 0xFFFFFFFFFF == f for r in nb.rig.switch.all_rules())


# -- rules ------------------------------------------------------------------------------------


def test_pushing_a_rule_resteers_matching_live_flows_and_leaves_others():
    nb = NbRig.start()
    web = nb.open_tcp(40000, 80)
    tls = nb.open_tcp(40001, 443)
    tls2 = nb.open_tcp(40002, 443, dst=CN2)
    ans = nb.post("/v1/rules/operator", WEB_LTE)
    assert ans.status == 201 and ans.headers["location"] == "/v1/rules/operator/web-lte"
    moved = {m["flow_id"]: (m["from"], m["to"]) for m in ans.body["resteered"]}
    assert moved == {tls: ("wlan", "lte"), tls2: ("wlan", "lte")}
    binds = [b for r in nb.rig.take_agent() if isinstance(r, BindHoas) for b in r.bindings]
    assert {uplink for _, uplink in binds} == {"lte"} and len(binds) == 2
    for hoa, uplink in binds:
        nb.rig.event(HoaBound(hoa, uplink))
    assert egress_port(nb, 40001, 443) == ILTE
    assert egress_port(nb, 40002, 443, dst=CN2) == ILTE
    assert egress_port(nb, 40000, 80) == IWLAN
    assert nb.uplink_of(web) == "wlan"
    # New flows follow the rule too.
    new = nb.open_tcp(40003, 443)
    assert nb.uplink_of(new) == "lte"
    assert nb.get(f"/v1/flows/{new}").body["rule_id"] == "operator:web-lte"


def test_put_replaces_and_delete_moves_flows_back():
    nb = NbRig.start()
    tls = nb.open_tcp(40001, 443)
    assert nb.put("/v1/rules/operator/web-lte", WEB_LTE).status == 201
    nb.rig.ack_binds()
    assert nb.uplink_of(tls) == "lte"
    same = nb.put("/v1/rules/operator/web-lte", {**WEB_LTE, "description": "only words"})
    assert same.status == 200 and same.body["resteered"] == []  # nothing that decides changed
    gone = nb.delete("/v1/rules/operator/web-lte")
    assert gone.status == 200 and gone.body["deleted"] == "operator:web-lte"
    assert gone.body["resteered"] == [{"flow_id": tls, "from": "lte", "to": "wlan"}]
    assert nb.delete("/v1/rules/operator/web-lte").status == 404
    assert nb.get("/v1/rules/operator/web-lte").status == 404


def test_rule_listing_by_source_and_one_rule():
    nb = NbRig.start()
    nb.post("/v1/rules/operator", WEB_LTE)
    nb.post(
        "/v1/rules/network", {"id": "drain-wlan", "priority": 5, "strategy": {"prefer": ["lte"]}}
    )
    everything = nb.get("/v1/rules").body
    assert [r["rule_id"] for r in everything["rules"]] == ["operator:web-lte", "network:drain-wlan"]
    assert everything["precedence"] == ["operator", "network", "application", "user"]
    assert everything["default"] is None
    net = nb.get("/v1/rules/network").body
    assert net["source"] == "network" and len(net["rules"]) == 1
    assert nb.get("/v1/rules?source=network").body == net
    one = nb.get("/v1/rules/network/drain-wlan").body
    assert one["origin"] == "rest:network" and one["editable"] and one["rule"]["priority"] == 5
    assert nb.get("/v1/rules/radio").status == 404
    assert nb.get("/v1/rules?source=radio").status == 404
    assert nb.get("/v1/rules?sauce=operator").status == 400


def test_post_of_an_existing_id_is_a_conflict_and_put_needs_matching_ids():
    nb = NbRig.start()
    nb.post("/v1/rules/operator", WEB_LTE)
    dup = nb.post("/v1/rules/operator", WEB_LTE)
    assert (dup.status, dup.error["code"], dup.error["field"]) == (409, "conflict", "id")
    other = nb.put("/v1/rules/operator/web-lte", {**WEB_LTE, "id": "else"})
    assert (other.status, other.error["field"]) == (422, "id")
    no_id = nb.post("/v1/rules/operator", {"uplink": "lte"})
    assert (no_id.status, no_id.error["field"]) == (422, "id")


def test_rules_from_files_are_read_only_over_rest(tmp_path):
    (tmp_path / "ops.yaml").write_text(
        "version: 1\nsource: operator\nrules:\n"
        "  - {id: bulk, match: {remote_port: 873}, uplink: lte}\n"
    )
    nb = NbRig.start(policy_dir=tmp_path)
    view = nb.get("/v1/rules/operator/bulk").body
    assert view["origin"] == str(tmp_path / "ops.yaml") and not view["editable"]
    put = nb.put("/v1/rules/operator/bulk", {"uplink": "wlan"})
    assert (put.status, put.error["code"], put.error["field"]) == (403, "forbidden", "id")
    assert "policy file" in put.error["message"]
    assert nb.delete("/v1/rules/operator/bulk").status == 403
    assert nb.get("/v1/rules/operator/bulk").body == view


# -- preferences and applications -------------------------------------------------------------


def test_user_preferences_take_effect_for_live_and_new_flows():
    nb = NbRig.start()
    f = nb.open_tcp(40000, 80)
    assert nb.get("/v1/preferences").body == {"prefer": None, "max_cost": None, "rules": []}
    ans = nb.put("/v1/preferences", {"prefer": ["lte", "wlan"]})
    assert ans.status == 200 and ans.body["preferences"]["prefer"] == ["lte", "wlan"]
    assert ans.body["resteered"] == [{"flow_id": f, "from": "wlan", "to": "lte"}]
    nb.rig.ack_binds()
    assert nb.uplink_of(f) == "lte" and nb.uplink_of(nb.open_tcp(40001, 80)) == "lte"
    # An operator rule comes first: user preferences decide only what it leaves.
    nb.post("/v1/rules/operator", {"id": "web", "match": {"remote_port": 80}, "uplink": "wlan"})
    nb.rig.ack_binds()
    assert nb.uplink_of(f) == "wlan"
    cleared = nb.delete("/v1/preferences")
    assert cleared.status == 200 and cleared.body["preferences"]["prefer"] is None


def test_max_cost_preference_uses_the_configured_costs():
    nb = NbRig.start()
    nb.put("/v1/preferences", {"prefer": ["lte", "wlan"], "max_cost": 15})  # lte costs 20
    assert nb.uplink_of(nb.open_tcp(40000, 80)) == "wlan"
    nb.put("/v1/preferences", {"prefer": ["lte", "wlan"], "max_cost": 25})
    assert nb.uplink_of(nb.open_tcp(40001, 80)) == "lte"


def test_application_declaration_attributes_and_steers_its_new_flows():
    nb = NbRig.start()
    decl = {"id": "call", "match": {"proto": "tcp", "local_port": 41000}, "uplink": "lte"}
    ans = nb.post("/v1/apps/voip/flows", decl)
    assert ans.status == 201 and ans.headers["location"] == "/v1/apps/voip/flows/call"
    assert ans.body["declaration"]["rule_id"] == "application:voip.call"
    f = nb.open_tcp(41000, 5060)
    other = nb.open_tcp(41001, 5060)
    row = nb.get(f"/v1/flows/{f}").body
    assert row["app_id"] == "voip" and row["uplink"] == "lte"
    assert row["rule_id"] == "application:voip.call"
    assert nb.get(f"/v1/flows/{other}").body["app_id"] is None and nb.uplink_of(other) == "wlan"
    assert [a["app_id"] for a in nb.get("/v1/apps").body["apps"]] == ["voip"]
    assert nb.get("/v1/flows?app_id=voip").body["flows"] == [row]
    # A user rule on the application id applies to the attributed flow (precedence: app first).
    nb.put(
        "/v1/preferences",
        {"rules": [{"id": "voip", "match": {"app_id": "voip"}, "uplink": "wlan"}]},
    )
    assert nb.uplink_of(f) == "lte"
    gone = nb.delete("/v1/apps/voip/flows")
    assert gone.status == 200
    assert gone.body["resteered"] == [{"flow_id": f, "from": "lte", "to": "wlan"}]
    assert nb.get("/v1/apps/voip/flows").status == 404


def test_declarations_are_numbered_replaced_and_withdrawn_one_by_one():
    nb = NbRig.start()
    a = nb.post("/v1/apps/app1/flows", {"match": {"remote_port": 5000}, "uplink": "lte"})
    b = nb.post("/v1/apps/app1/flows", {"match": {"remote_port": 5001}, "uplink": "lte"})
    assert (a.body["declaration"]["id"], b.body["declaration"]["id"]) == ("flow-1", "flow-2")
    put = nb.put("/v1/apps/app1/flows/flow-1", {"match": {"remote_port": 5002}, "uplink": "wlan"})
    assert put.status == 200 and put.body["declaration"]["match"] == {"remote_port": 5002}
    assert (
        nb.put("/v1/apps/app1/flows/flow-9", {"match": {"dscp": "ef"}, "uplink": "wlan"}).status
        == 201
    )
    assert nb.delete("/v1/apps/app1/flows/flow-2").status == 200
    assert [d["id"] for d in nb.get("/v1/apps/app1/flows").body["flows"]] == ["flow-1", "flow-9"]
    assert nb.delete("/v1/apps/app1/flows/flow-2").status == 404
    dup = nb.post(
        "/v1/apps/app1/flows", {"id": "flow-1", "match": {"remote_port": 1}, "uplink": "lte"}
    )
    assert (dup.status, dup.error["field"]) == (409, "id")
    assert nb.get("/v1/apps/no.such.app/flows").status == 404
    assert (
        nb.post("/v1/apps/bad.id/flows", {"match": {"remote_port": 1}, "uplink": "lte"}).status
        == 404
    )


def test_application_rules_are_changed_through_the_app_api_only():
    nb = NbRig.start()
    nb.post("/v1/apps/voip/flows", {"id": "call", "match": {"local_port": 41000}, "uplink": "lte"})
    ans = nb.delete("/v1/rules/application/voip.call")
    assert (ans.status, ans.error["code"]) == (403, "forbidden")
    assert "/v1/apps/voip/flows" in ans.error["message"]


# -- policy reload ----------------------------------------------------------------------------


def test_reload_without_a_directory_is_a_conflict():
    nb = NbRig.start()
    ans = nb.post("/v1/policy/reload")
    assert (ans.status, ans.error["code"]) == (409, "conflict")
    assert nb.get("/v1/policy").body["directory"] is None


def test_reload_takes_no_body():
    nb = NbRig.start()
    assert nb.post("/v1/policy/reload", {"force": True}).status == 400


# -- protocol: methods, bodies, auth ----------------------------------------------------------


def test_unknown_paths_404_and_wrong_methods_405_with_allow():
    nb = NbRig.start()
    missing = nb.get("/v2/flows")
    assert (missing.status, missing.error["code"]) == (404, "not_found")
    wrong = nb.request("PATCH", "/v1/flows/1")
    assert wrong.status == 405
    assert set(wrong.headers["allow"].split(", ")) == {"GET", "HEAD", "DELETE"}
    assert wrong.error["code"] == "method_not_allowed"
    assert nb.request("POST", "/v1/openapi.json").status == 405


@pytest.mark.parametrize(
    ("raw", "ctype", "status", "code"),
    [
        (b"{", "application/json", 400, "bad_request"),
        (b'{"id": "a", "id": "b", "uplink": "lte"}', "application/json", 400, "bad_request"),
        (b'{"id": "a", "uplink": "lte", "max_cost": NaN}', "application/json", 400, "bad_request"),
        (b"\xff\xfe", "application/json", 400, "bad_request"),
        (b'{"id": "a", "uplink": "lte"}', "text/plain", 415, "unsupported_media_type"),
        (b'{"id": "a", "uplink": "lte"}', None, 415, "unsupported_media_type"),
        (b" " * (64 * 1024 + 1), "application/json", 413, "payload_too_large"),
    ],
)
def test_bad_bodies_are_refused_before_the_validator(raw, ctype, status, code):
    nb = NbRig.start()
    ans = nb.request("POST", "/v1/rules/operator", raw=raw, content_type=ctype)
    assert (ans.status, ans.error["code"]) == (status, code)
    assert nb.service.engine.policy.rules == ()


def test_a_body_is_required_where_one_is_expected():
    nb = NbRig.start()
    ans = nb.post("/v1/rules/operator")
    assert (ans.status, ans.error["code"]) == (400, "bad_request")


def test_without_a_token_configured_no_auth_is_asked():
    nb = NbRig.start()
    assert nb.get("/v1/status").status == 200
    assert nb.get("/v1/status", token="anything").status == 200


@pytest.mark.parametrize(
    "path", ["/v1/status", "/v1/flows", "/metrics", "/v1/openapi.json", "/nope"]
)
def test_with_a_token_every_request_needs_it(path):
    nb = NbRig.start(token=TOKEN)
    missing = nb.get(path, token=False)
    assert (missing.status, missing.error["code"]) == (401, "unauthorized")
    assert missing.headers["www-authenticate"].startswith("Bearer")
    assert nb.get(path, token="wrong-token-0123456789").status == 401
    assert nb.get(path, token=TOKEN[:-1]).status == 401
    assert nb.get(path, headers={"Authorization": f"Basic {TOKEN}"}, token=False).status == 401
    assert nb.get(path).status == (404 if path == "/nope" else 200)


def test_a_refused_change_without_a_token_changes_nothing():
    nb = NbRig.start(token=TOKEN)
    f = nb.open_tcp(40001, 443)
    assert nb.post("/v1/rules/operator", WEB_LTE, token=False).status == 401
    assert nb.post(f"/v1/flows/{f}/move", {"network": "lte"}, token=False).status == 401
    assert nb.service.engine.policy.rules == () and nb.rig.take_agent() == []


def test_the_openapi_description_is_served():
    nb = NbRig.start()
    ans = nb.get("/v1/openapi.json")
    assert ans.status == 200 and ans.body["openapi"].startswith("3.1")
    assert "/v1/flows/{flow_id}/move" in ans.body["paths"]


def test_metrics_are_prometheus_text():
    nb = NbRig.start()
    ans = nb.get("/metrics")
    assert ans.status == 200 and ans.headers["content-type"].startswith("text/plain; version=0.0.4")
    assert b"# TYPE sdnmip_northbound_requests_total counter" in ans.raw
