"""The reference testbed once it is up (one testbed shared by this module, default profile):
the MN reaches both correspondents over each uplink through its OVS bridge, holds one CoA per uplink
from the access routers' RAs, and the link profiles are in force."""

from __future__ import annotations

import ipaddress
import json

import pytest

from sdnmip.ovsdb.idl import Ovsdb
from sdnmip.testbed import TESTBED_COOKIE, Testbed, TestbedError, load_topology
from tests.integration.helpers import eui64_address, link_local, of_port_counters, ping, poll

TESTBED_PROFILE = "default"
RTT_TOLERANCE_MS = 5.0
UPLINKS = ["wlan", "lte"]
CNS = ["cn1", "cn2"]


@pytest.mark.parametrize("uplink", UPLINKS)
def test_mn_holds_one_coa_per_uplink_from_its_access_routers_ra(testbed: Testbed, uplink: str):
    topo = testbed.topology
    port = topo.mn.uplinks[uplink]
    router = topo.access_router(uplink)
    (prefix,) = router.advertise
    coas = testbed.coa_info(uplink)
    assert len(coas) == 1, coas
    (coa,) = coas
    assert ipaddress.IPv6Address(coa.address) in ipaddress.IPv6Network(prefix)
    assert coa.prefixlen == 64
    # Autoconfigured by the kernel from the RA: finite lifetime, interface id from the port's MAC.
    assert coa.dynamic and coa.valid_lft is not None and coa.valid_lft > 0
    assert not coa.tentative
    with Ovsdb(testbed.db_remote) as db:
        mac = db.get_mac(port)
    assert coa.address == eui64_address(prefix, mac)
    assert testbed.mn_coa(uplink) == coa.address
    # The default route through this uplink was learnt from the same access router's RA.
    proc = testbed.run(topo.mn_node, "ip", "-6", "-j", "route", "show", "default", "dev", port)
    (route,) = json.loads(proc.stdout)
    assert route["protocol"] == "ra"
    assert route["gateway"] == link_local(testbed, router.node, router.iface)


@pytest.mark.parametrize("cn", CNS)
@pytest.mark.parametrize("uplink", UPLINKS)
def test_mn_reaches_correspondent_over_each_uplink_through_ovs(
    testbed: Testbed, uplink: str, cn: str
):
    mn = testbed.topology.mn
    with Ovsdb(testbed.db_remote) as db:
        uplink_of, port_of = db.get_ofport(uplink), db.get_ofport(mn.uplinks[uplink])
    before = of_port_counters(testbed, mn.bridge)
    sent, received, _ = ping(testbed, mn.uplinks[uplink], testbed.addr(cn, "eth0"), count=5)
    assert (sent, received) == (5, 5)
    after = of_port_counters(testbed, mn.bridge)
    # Requests entered OVS from the CoA port and left on the uplink; replies came back in on the
    # uplink and were handed to the CoA port (other traffic, RAs and ND, only adds to these).
    assert after[port_of][0] - before[port_of][0] >= 5  # rx from the kernel's CoA port
    assert after[uplink_of][1] - before[uplink_of][1] >= 5  # tx onto the uplink
    assert after[uplink_of][0] - before[uplink_of][0] >= 5  # rx of the replies
    assert after[port_of][1] - before[port_of][1] >= 5  # tx of the replies to the kernel


def test_link_profiles_are_in_force(testbed: Testbed):
    topo = testbed.topology
    wlan, lte = topo.shaping("wlan"), topo.shaping("lte")
    assert wlan is not None and lte is not None
    target = testbed.addr("cn1", "eth0")
    _, got_w, rtt_wlan = ping(testbed, topo.mn.uplinks["wlan"], target, count=8)
    _, got_l, rtt_lte = ping(testbed, topo.mn.uplinks["lte"], target, count=8)
    assert got_w == 8 and got_l == 8
    # Delay is applied in both directions: the RTT grows by twice the one-way delay.
    assert 2 * wlan.delay_ms <= rtt_wlan < 2 * wlan.delay_ms + RTT_TOLERANCE_MS
    assert 2 * lte.delay_ms <= rtt_lte < 2 * lte.delay_ms + RTT_TOLERANCE_MS
    expected = 2 * (lte.delay_ms - wlan.delay_ms)
    assert abs((rtt_lte - rtt_wlan) - expected) < RTT_TOLERANCE_MS, (rtt_wlan, rtt_lte)


def test_mn_bridge_is_configured_as_specified(testbed: Testbed):
    mn = testbed.topology.mn
    with Ovsdb(testbed.db_remote) as db:
        assert db.bridges() == [mn.bridge]
        assert db.ports(mn.bridge) == sorted(
            [mn.bridge, *mn.uplinks, *mn.uplinks.values(), mn.hoa_port]
        )
        assert db.fail_mode(mn.bridge) == "secure"
        assert db.controller_targets(mn.bridge) == []
    node = testbed.topology.mn_node
    links = {
        link["ifname"]: link
        for link in json.loads(testbed.run(node, "ip", "-j", "link", "show").stdout)
    }
    for port in mn.uplinks.values():
        assert links[port]["mtu"] == mn.uplink_port_mtu  # mtu_request took effect
    assert links[mn.hoa_port]["mtu"] == mn.hoa_port_mtu
    hoa_addrs = json.loads(
        testbed.run(node, "ip", "-6", "-j", "addr", "show", "dev", mn.hoa_port).stdout
    )
    assert [a for link in hoa_addrs for a in link["addr_info"] if "local" in a] == []
    flows = testbed.ofctl("dump-flows", mn.bridge).stdout
    plumbing = [line for line in flows.splitlines() if "cookie=" in line]
    assert len(plumbing) == 2 * len(mn.uplinks)
    assert all(f"cookie={TESTBED_COOKIE:#x}" in line for line in plumbing)


def test_ovsdb_api_is_idempotent_and_reversible(testbed: Testbed):
    bridge = testbed.topology.mn.bridge
    with Ovsdb(testbed.db_remote) as db:
        db.ensure_port(bridge, "tbscratch", type="internal", mtu_request=1400)
        ofport = db.get_ofport("tbscratch")
        db.ensure_port(bridge, "tbscratch", type="internal", mtu_request=1400)  # no change
        assert db.get_ofport("tbscratch") == ofport
        db.set_other_config("Interface", "tbscratch", {"sdnmip-test": "1"})
        assert db.get_other_config("Interface", "tbscratch")["sdnmip-test"] == "1"
        db.remove_port(bridge, "tbscratch")
        db.remove_port(bridge, "tbscratch")  # already gone: nothing to do
        assert "tbscratch" not in db.ports(bridge)
        assert db.fail_mode(bridge) == "secure"
        # Controllers on a bridge of its own: setting the first controller flushes a bridge's flows.
        db.ensure_bridge("tbscratchbr", datapath_type="netdev", fail_mode="secure")
        db.ensure_bridge("tbscratchbr", datapath_type="netdev", fail_mode="secure")
        db.set_controller("tbscratchbr", ["tcp:127.0.0.1:6653"])
        db.set_controller("tbscratchbr", ["tcp:127.0.0.1:6653"])
        assert db.controller_targets("tbscratchbr") == ["tcp:127.0.0.1:6653"]
        db.set_fail_mode("tbscratchbr", "standalone")
        assert db.fail_mode("tbscratchbr") == "standalone"
        db.remove_bridge("tbscratchbr")
        db.remove_bridge("tbscratchbr")
        assert db.bridges() == [bridge]
    poll(
        "the scratch device to disappear",
        lambda: (
            True
            if "tbscratch" not in testbed.run(testbed.topology.mn_node, "ip", "-br", "link").stdout
            else None
        ),
    )


def test_up_twice_is_refused_clearly_and_leaves_the_testbed_intact(testbed: Testbed):
    again = Testbed(load_topology(), testbed.prefix)
    with pytest.raises(TestbedError) as info:
        again.up()
    message = str(info.value)
    assert f"testbed {testbed.prefix} already exists" in message
    assert f"sdnmip testbed down --prefix {testbed.prefix}" in message
    assert "\n" not in message
    assert all(testbed.status().namespaces.values())
    _, received, _ = ping(
        testbed, testbed.topology.mn.uplinks["wlan"], testbed.addr("cn2", "eth0"), 2
    )
    assert received == 2


def test_status_reports_namespaces_processes_coas_and_profiles(testbed: Testbed):
    st = Testbed.attach(testbed.prefix).status()
    assert st.healthy
    assert set(st.namespaces) == {testbed.ns(n) for n in testbed.topology.nodes}
    names = {p.name for p in st.processes}
    assert {"ovsdb-server", "ovs-vswitchd", "radvd-ar1-mn", "radvd-ar2-mn"} <= names
    assert {"wire-wlan", "wire-lte"} <= names
    by_uplink = {u.uplink: u for u in st.uplinks}
    assert by_uplink["wlan"].coas == [testbed.mn_coa("wlan")]
    assert by_uplink["lte"].shaping == "delay 25 ms, 50 Mbit/s"
