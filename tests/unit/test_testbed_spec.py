"""The topology description: the shipped file matches the address plan, and every mistake is
refused with one error naming the field."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from sdnmip.testbed.spec import SpecError, load_document, load_topology, parse


@pytest.fixture
def doc() -> dict[str, Any]:
    return copy.deepcopy(load_document())


def refused(document: dict[str, Any]) -> str:
    with pytest.raises(SpecError) as info:
        parse(document)
    return str(info.value)


def test_shipped_topology_is_the_reference_address_plan():
    topo = load_topology()
    assert set(topo.nodes) == {"mn", "ar1", "ar2", "core", "ha", "cn1", "cn2"}
    assert topo.mn_node == "mn"
    assert topo.mn.uplinks == {"wlan": "iwlan", "lte": "ilte"}
    assert topo.access_router("wlan").node == "ar1"
    assert topo.access_router("wlan").advertise == ("2001:db8:1::/64",)
    assert topo.access_router("lte").advertise == ("2001:db8:2::/64",)
    assert topo.end("ha", "home0").addresses == ("2001:db8:100::1/64",)
    assert topo.end("core", "home").addresses == ("2001:db8:100::fffe/64",)
    assert topo.end("cn1", "eth0").addresses == ("2001:db8:c1::10/64",)
    assert topo.end("cn2", "eth0").addresses == ("2001:db8:c2::10/64",)
    assert topo.end("ar1", "core").addresses == ("2001:db8:f1::2/64",)
    assert topo.end("core", "ar2").addresses == ("2001:db8:f2::1/64",)
    # Tunnel-carrying links 1600, correspondents' links 1500.
    assert {name: link.mtu for name, link in topo.links.items()} == {
        "wlan": 1600, "lte": 1600, "ar1core": 1600, "ar2core": 1600, "home": 1600,
        "cn1": 1500, "cn2": 1500,
    }  # fmt: skip
    assert topo.mn.uplink_port_mtu == 1600
    assert topo.mn.hoa_port == "hoa0"
    assert topo.mn.hoa_port_mtu == 1500


def test_default_profile_shapes_the_uplinks_and_fast_does_not():
    topo = load_topology()
    wlan, lte = topo.shaping("wlan"), topo.shaping("lte")
    assert wlan is not None and lte is not None
    assert (wlan.delay_ms, wlan.rate_mbit) == (5, 100)
    assert (lte.delay_ms, lte.rate_mbit) == (25, 50)
    assert topo.shaping("cn1") is None
    fast = load_topology(profile="fast")
    assert fast.shaping("wlan") is None and fast.shaping("lte") is None
    delay = load_topology(profile="delay")
    assert delay.shaping("lte") is not None and delay.shaping("lte").rate_mbit is None


def test_set_overrides_a_value_and_the_result_is_validated():
    topo = load_topology(overrides=["profiles.default.lte.delay_ms=40"])
    assert topo.shaping("lte").delay_ms == 40
    topo = load_topology(overrides=["profiles.mine.wlan={delay_ms: 1, rate_mbit: null}"],
                         profile="mine")  # fmt: skip
    assert topo.shaping("wlan").delay_ms == 1
    with pytest.raises(SpecError, match=r"^profiles\.default\.lte\.delay_ms: expected a number"):
        load_topology(overrides=["profiles.default.lte.delay_ms=slow"])
    with pytest.raises(SpecError, match="expected KEY=VALUE"):
        load_topology(overrides=["profiles.default.lte.delay_ms"])
    with pytest.raises(SpecError, match=r"--set profile\.x: profile is not a mapping"):
        load_topology(overrides=["profile.x=1"])


def test_unknown_profile_is_refused():
    with pytest.raises(SpecError, match=r"^profile: no profile 'nope' \(profiles: default"):
        load_topology(profile="nope")


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (lambda d: d.update(colour="red"), r"^colour: unknown key"),
        (lambda d: d["links"]["wlan"].update(speed=1), r"^links\.wlan\.speed: unknown key"),
        (lambda d: d["links"]["wlan"].pop("mtu"), r"^links\.wlan\.mtu: missing"),
        (
            lambda d: d["links"]["wlan"].update(mtu="1600"),
            r"^links\.wlan\.mtu: expected an integer",
        ),
        (lambda d: d["links"]["wlan"].update(mtu=True), r"^links\.wlan\.mtu: expected an integer"),
        (lambda d: d["links"]["wlan"].update(mtu=1000), r"^links\.wlan\.mtu: 1000 is outside"),
        (lambda d: d["nodes"]["ar1"].update(role="switch"), r"^nodes\.ar1\.role: 'switch' is not"),
        (lambda d: d["nodes"].update(AR3={"role": "router"}), r"^nodes: 'AR3' does not match"),
        (
            lambda d: d["nodes"]["ar1"]["routes"][0].update(via="10.0.0.1"),
            r"^nodes\.ar1\.routes\[0\]\.via: '10\.0\.0\.1' is not an IPv6 address",
        ),
        (lambda d: d["links"]["cn1"]["b"].update(addresses=["2001:db8:c1::10"]), None),
        (
            lambda d: d["links"]["cn1"]["b"].update(addresses=["nonsense/64"]),
            r"^links\.cn1\.b\.addresses\[0\]: 'nonsense/64' is not",
        ),
        (
            lambda d: d["links"]["wlan"]["b"].update(advertise=["2001:db8:1::/56"]),
            r"^links\.wlan\.b\.advertise\[0\]: SLAAC needs a /64",
        ),
        (
            lambda d: d["links"]["wlan"]["b"].update(advertise=["2001:db8:9::/64"]),
            r"^links\.wlan\.b\.advertise\[0\]: the interface has no address in",
        ),
        (
            lambda d: d["links"]["wlan"]["b"].update(advertise=[]),
            r"^links\.wlan\.b\.advertise: the access router of uplink 'wlan' must advertise",
        ),
        (
            lambda d: d["links"]["cn1"]["b"].update(node="cn9"),
            r"^links\.cn1\.b\.node: no node 'cn9'",
        ),
        (
            lambda d: d["links"]["cn1"]["b"].update(iface="up"),
            r"^links\.cn1\.b\.iface: 'up' is reserved",
        ),
        (
            lambda d: d["links"]["cn1"]["b"].update(iface="a-very-long-name"),
            r"^links\.cn1\.b\.iface: 'a-very-long-name' does not match",
        ),
        (
            lambda d: d["links"]["cn2"]["a"].update(iface="cn1"),
            r"^links\.cn2\.a\.iface: core already has 'cn1'",
        ),
        (
            lambda d: d["profiles"]["default"].update(cn1={"delay_ms": 1, "rate_mbit": None}),
            r"^profiles\.default\.cn1: only the MN's uplink links can be shaped",
        ),
        (
            lambda d: d["profiles"]["default"]["wlan"].update(rate_mbit=0),
            r"^profiles\.default\.wlan\.rate_mbit: 0 is outside",
        ),
        (
            lambda d: d["profiles"]["default"]["wlan"].update(jitter_ms=1),
            r"^profiles\.default\.wlan\.jitter_ms: unknown key",
        ),
        (
            lambda d: d["mn"]["uplinks"].update(wifi="iwifi"),
            r"^mn\.uplinks\.wifi: the MN has no link with interface 'wifi'",
        ),
        (lambda d: d["mn"].update(hoa_port="iwlan"), r"^mn: bridge, uplink ports and hoa_port"),
        (
            lambda d: d["nodes"]["cn1"].update(role="mn"),
            r"^nodes: exactly one node must have role mn",
        ),
        (
            lambda d: d["router_advertisements"].update(min_interval_s=2.9),
            r"^router_advertisements\.min_interval_s: must be at most 0\.75",
        ),
        (
            lambda d: d["router_advertisements"].update(preferred_lifetime_s=601),
            r"^router_advertisements\.preferred_lifetime_s: must not exceed",
        ),
        (
            lambda d: d["router_advertisements"].update(router_lifetime_s=2),
            r"^router_advertisements\.router_lifetime_s: must be 0 or at least",
        ),
        (lambda d: d.update(links=[]), r"^links: expected a mapping, got list"),
    ],
)
def test_mistakes_are_refused_naming_the_field(doc, edit, message):
    edit(doc)
    if message is None:
        # An address without a length is accepted as a /128 (a valid, if unusual, choice).
        parse(doc)
        return
    err = refused(doc)
    assert "\n" not in err
    import re

    assert re.search(message, err), err


def test_unreadable_or_invalid_yaml_file_is_one_error(tmp_path):
    with pytest.raises(SpecError, match="cannot read"):
        load_topology(tmp_path / "missing.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("nodes: [unclosed\n")
    with pytest.raises(SpecError, match="not valid YAML"):
        load_topology(bad)
    scalar = tmp_path / "scalar.yaml"
    scalar.write_text("42\n")
    with pytest.raises(SpecError, match="expected a mapping at the top level"):
        load_topology(scalar)
