"""Reloading the policy files through the northbound: on request and on change, a bad file keeps
the old policy (reported in the answer, the log and the metrics), and a good change re-steers the
live flows it affects."""

from __future__ import annotations

import logging
import os

import pytest

from sdnmip.northbound.errors import Invalid

from .nbrig import NbRig

TLS_WLAN = """version: 1
source: operator
rules:
  - id: tls
    match: {proto: tcp, remote_port: 443}
    uplink: wlan
"""
TLS_LTE = TLS_WLAN.replace("uplink: wlan", "uplink: lte")
BAD = TLS_WLAN.replace("remote_port: 443", "remote_port: 70000")


def metric(nb: NbRig, line_start: str) -> str:
    text = nb.get("/metrics").raw.decode()
    return next(line for line in text.splitlines() if line.startswith(line_start))


def bump_mtime(path):
    st = path.stat()
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns + 1_000_000_000))


@pytest.fixture
def setup(tmp_path):
    policy = tmp_path / "flows"
    policy.mkdir()
    (policy / "tls.yaml").write_text(TLS_WLAN)
    nb = NbRig.start(policy_dir=policy)
    tls = nb.open_tcp(40000, 443)
    web = nb.open_tcp(40001, 80)
    return nb, policy, tls, web


def test_reload_on_request_resteers_the_flows_the_change_affects(setup):
    nb, policy, tls, web = setup
    assert nb.uplink_of(tls) == "wlan"
    (policy / "tls.yaml").write_text(TLS_LTE)
    ans = nb.post("/v1/policy/reload")
    assert ans.status == 200 and ans.body["changed"]
    assert ans.body["resteered"] == [{"flow_id": tls, "from": "wlan", "to": "lte"}]
    nb.rig.ack_binds()
    assert (nb.uplink_of(tls), nb.uplink_of(web)) == ("lte", "wlan")
    info = nb.get("/v1/policy").body
    assert info["last_reload"]["ok"] and info["last_reload"]["error"] is None
    assert metric(nb, 'sdnmip_policy_reloads_total{result="ok"}').endswith(" 1")


def test_a_bad_file_keeps_the_old_policy_and_is_reported(setup, caplog):
    nb, policy, tls, _ = setup
    running = nb.engine.policy
    (policy / "tls.yaml").write_text(BAD)
    with caplog.at_level(logging.ERROR, "sdnmip.northbound"):
        ans = nb.post("/v1/policy/reload")
    assert ans.status == 422
    err = ans.error
    assert err["code"] == "invalid" and err["field"] == "rules[0].match.remote_port"
    assert err["origin"] == str(policy / "tls.yaml") and err["line"] == 5
    assert "70000 is not a port" in err["message"]
    assert nb.engine.policy is running and nb.rig.take_agent() == []
    assert nb.uplink_of(tls) == "wlan"
    assert "the running policy stays" in caplog.text and "tls.yaml:5" in caplog.text
    info = nb.get("/v1/policy").body["last_reload"]
    assert not info["ok"] and info["error"]["field"] == "rules[0].match.remote_port"
    assert metric(nb, "sdnmip_policy_reload_ok").endswith(" 0")
    assert metric(nb, 'sdnmip_policy_reloads_total{result="refused"}').endswith(" 1")
    assert nb.get("/v1/status").body["policy_ok"] is False
    # New flows still follow the old policy.
    assert nb.uplink_of(nb.open_tcp(40002, 443)) == "wlan"
    # Fixing the file brings the new one in.
    (policy / "tls.yaml").write_text(TLS_LTE)
    assert nb.post("/v1/policy/reload").status == 200
    assert metric(nb, "sdnmip_policy_reload_ok").endswith(" 1")


def test_files_that_clash_refuse_the_whole_reload(setup):
    nb, policy, _, _ = setup
    running = nb.engine.policy
    (policy / "again.yaml").write_text(TLS_LTE)  # the same operator rule id in a second file
    ans = nb.post("/v1/policy/reload")
    assert ans.status == 422 and "already used" in ans.error["message"]
    assert nb.engine.policy is running


def test_poll_reloads_on_change_and_reports_a_bad_file_once(setup, caplog):
    nb, policy, tls, _ = setup
    service = nb.service
    assert service.directory is not None and not service.directory.pending()
    assert service.reload(force=False) == {"changed": False, "resteered": []}
    (policy / "tls.yaml").write_text(BAD)
    bump_mtime(policy / "tls.yaml")
    assert service.directory.pending()
    with caplog.at_level(logging.ERROR, "sdnmip.northbound"), pytest.raises(Invalid):
        service.reload(force=False)
    # The same bad files are not reported again at every poll.
    assert not service.directory.pending()
    assert caplog.text.count("policy reload refused") == 1
    (policy / "tls.yaml").write_text(TLS_LTE)
    bump_mtime(policy / "tls.yaml")
    out = service.reload(force=False)
    assert out["changed"] and [m["flow_id"] for m in out["resteered"]] == [tls]


def test_rest_rules_survive_a_file_reload(setup):
    nb, policy, _, web = setup
    nb.post("/v1/rules/network", {"id": "web", "match": {"remote_port": 80}, "uplink": "lte"})
    nb.rig.ack_binds()
    (policy / "tls.yaml").write_text(TLS_LTE)
    assert nb.post("/v1/policy/reload").status == 200
    assert nb.get("/v1/rules/network/web").status == 200
    assert nb.uplink_of(web) == "lte"


def test_a_flow_moved_by_hand_stays_until_its_rules_change(setup):
    nb, policy, _, web = setup
    nb.post(f"/v1/flows/{web}/move", {"network": "lte"})
    nb.rig.ack_binds()
    (policy / "other.yaml").write_text(
        "version: 1\nsource: operator\nrules: [{id: dns, match: {remote_port: 53}, uplink: lte}]\n"
    )
    ans = nb.post("/v1/policy/reload")
    assert ans.body["resteered"] == []
    assert nb.uplink_of(web) == "lte"  # pinned: its rules did not change
    (policy / "other.yaml").write_text(
        "version: 1\nsource: operator\nrules: [{id: web, match: {remote_port: 80}, uplink: wlan}]\n"
    )
    ans = nb.post("/v1/policy/reload")
    assert ans.body["resteered"] == [{"flow_id": web, "from": "lte", "to": "wlan"}]
    assert nb.get(f"/v1/flows/{web}").body["pinned"] is False


def test_calling_off_a_handover_still_waiting_for_its_ba_reads_from_its_target(setup):
    nb, policy, tls, _web = setup
    (policy / "tls.yaml").write_text(TLS_LTE)
    moved = nb.post("/v1/policy/reload").body["resteered"]
    assert moved == [{"flow_id": tls, "from": "wlan", "to": "lte"}]
    # No BA yet: the flow still leaves by wlan, going to lte. The rule goes back to wlan.
    (policy / "tls.yaml").write_text(TLS_WLAN)
    back = nb.post("/v1/policy/reload").body["resteered"]
    assert back == [{"flow_id": tls, "from": "lte", "to": "wlan"}]
    nb.rig.ack_binds()
    assert nb.uplink_of(tls) == "wlan"
