"""The agent's kernel side in the testbed (no HA needed): the MN data path of docs/datapath.md is
set up from the CoAs and routers the agent learns by netlink, removed on a clean stop, and a
pulled carrier is reported to the controller."""

from __future__ import annotations

import json
from collections.abc import Iterator
from ipaddress import IPv6Address
from typing import Any

import pytest

from sdnmip.mn_agent.api import EventKind, UplinkInfo
from sdnmip.testbed import Testbed
from sdnmip.testbed.mn_service import HOME_PREFIX, PRIMARY_HOA, MnAgentService
from tests.integration.helpers import link_local, poll

TESTBED_PROFILE = "fast"
HA = "2001:db8:100::1"


def mn(tb: Testbed, *argv: str) -> Any:
    """Run in the MN namespace: parsed JSON for `-j`, else the text with blanks collapsed."""
    out = tb.run(tb.topology.mn_node, *argv).stdout
    if "-j" in argv:
        return json.loads(out)
    return "\n".join(" ".join(line.split()) for line in out.splitlines())


def kernel_state(tb: Testbed) -> dict[str, Any]:
    """What the agent may change: rules, non-kernel routes of every table, hoa0's addresses,
    nft tables, permanent neighbours."""
    routes = [
        r
        for r in mn(tb, "ip", "-6", "-j", "route", "show", "table", "all")
        if r.get("protocol") not in ("kernel", "ra") and r.get("type") != "multicast"
    ]
    return {
        "rules": mn(tb, "ip", "-6", "-j", "rule"),
        "routes": routes,
        "hoa0": mn(tb, "ip", "-6", "-j", "addr", "show", "dev", "hoa0"),
        "nft": mn(tb, "nft", "list", "tables"),
        "neigh": [
            n for n in mn(tb, "ip", "-6", "-j", "neigh") if "PERMANENT" in n.get("state", [])
        ],
    }


@pytest.fixture(scope="module")
def baseline(testbed: Testbed) -> dict[str, Any]:
    testbed.wait_coas()
    return kernel_state(testbed)


@pytest.fixture(scope="module")
def agent(testbed: Testbed, baseline: dict[str, Any]) -> Iterator[MnAgentService]:
    svc = MnAgentService(testbed, name="mn-agent-k")
    svc.start()
    try:
        yield svc
    finally:
        if svc.alive():
            svc.stop()


def _rules(tb: Testbed) -> set[str]:
    return set(mn(tb, "ip", "-6", "rule").splitlines())


def test_data_path_follows_the_coas_and_routers(testbed: Testbed, agent: MnAgentService):
    coa = {u: testbed.mn_coa(u) for u in ("wlan", "lte")}
    snap = agent.wait_status("both uplinks usable", lambda s: all(u.usable for u in s.uplinks))
    assert {u.name: str(u.coa) for u in snap.uplinks} == coa
    router = link_local(testbed, "ar1", "mn")
    assert snap.uplinks[0].router == IPv6Address(router)
    rules = _rules(testbed)
    assert f"10: from all to {coa['wlan']} ipproto ipv6 lookup 250" in rules
    assert f"10: from all to {coa['lte']} ipproto ipv6 lookup 250" in rules
    assert f"1101: from {HOME_PREFIX} iif iwlan lookup 1101" in rules
    assert f"1201: from {coa['wlan']} lookup 1001" in rules
    assert "5: from all fwmark 0x5d1f0029 ipproto ipv6 lookup local" in rules
    assert "1000: from all lookup local" in rules and "0: from all lookup local" not in rules
    via_router = mn(testbed, "ip", "-6", "route", "show", "table", "1001")
    assert f"default via {router} dev iwlan" in via_router
    encap = mn(testbed, "ip", "-6", "route", "show", "table", "1101")
    assert f"encap seg6 mode encap.red segs 1 [ {HA} ]" in encap and "dev iwlan" in encap
    down = mn(testbed, "ip", "-6", "route", "show", "table", "1201")
    assert f"{HOME_PREFIX} via fe80::5d1f dev iwlan" in down
    decap = mn(testbed, "ip", "-6", "route", "show", "table", "250")
    assert f"{coa['wlan']} encap seg6local action End.DT6 table 1201 dev iwlan" in decap
    addrs = mn(testbed, "ip", "-6", "-j", "addr", "show", "dev", "hoa0")[0]["addr_info"]
    assert [(a["local"], a["prefixlen"]) for a in addrs if "local" in a] == [(PRIMARY_HOA, 128)]
    nft = mn(testbed, "nft", "list", "set", "inet", "sdnmip_mn", "own")
    assert coa["wlan"] in nft and coa["lte"] in nft
    # Applications (no source chosen) leave from the Primary HoA into OVS; signalling and
    # outer packets from a CoA leave by that CoA's uplink.
    app = mn(testbed, "ip", "-6", "route", "get", "2001:db8:c1::10")
    assert "dev hoa0" in app and f"src {PRIMARY_HOA}" in app
    sig = mn(testbed, "ip", "-6", "route", "get", HA, "from", coa["lte"])
    assert "dev ilte" in sig and "table 1002" in sig


def test_a_pulled_carrier_is_reported_and_restored(testbed: Testbed, agent: MnAgentService):
    with agent.client() as c:
        c.subscribe()
        testbed.set_carrier("wlan", False)
        try:
            lost = poll("wlan reported without carrier", lambda: _uplink_event(c, "wlan", False))
            assert not lost.usable and lost.coa is not None  # the CoA port keeps its address
        finally:
            testbed.set_carrier("wlan", True)
        back = poll("wlan reported with carrier", lambda: _uplink_event(c, "wlan", True))
        assert back.usable


def _uplink_event(c: Any, name: str, carrier: bool) -> UplinkInfo | None:
    ev = c.next_event(timeout=0.2)
    if ev is None or ev.kind is not EventKind.UPLINK:
        return None
    info = ev.data
    assert isinstance(info, UplinkInfo)
    return info if info.name == name and info.carrier is carrier else None


def test_a_clean_stop_removes_the_data_path_and_keeps_the_state(
    testbed: Testbed, agent: MnAgentService, baseline: dict[str, Any]
):
    assert agent.stop() == 0
    assert kernel_state(testbed) == baseline
    saved = json.loads((agent.state_dir / "agent-state.json").read_text())
    assert saved["table"]["hoas"][0]["hoa"] == PRIMARY_HOA
    assert not agent.socket_path.exists()


def test_after_a_crash_a_restart_sweeps_what_the_dead_agent_left(
    testbed: Testbed, agent: MnAgentService, baseline: dict[str, Any]
):
    agent.start()
    agent.wait_status("both uplinks usable", lambda s: all(u.usable for u in s.uplinks))
    agent.kill()
    assert kernel_state(testbed) != baseline  # a crash cleans nothing up
    # A CoA that went away while the agent was down leaves a decap rule nobody will remove.
    stale = "2001:db8:1::dead"
    testbed.run(
        testbed.topology.mn_node, "ip", "-6", "rule", "add", "pref", "10", "to", stale,
        "ipproto", "41", "lookup", "250",
    )  # fmt: skip
    agent.start()
    agent.wait_status("both uplinks usable", lambda s: all(u.usable for u in s.uplinks))
    assert not any(stale in r for r in _rules(testbed))
    assert agent.stop() == 0
    assert kernel_state(testbed) == baseline
