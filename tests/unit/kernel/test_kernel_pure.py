"""Pure parts of sdnmip.kernel: validation, nft rendering, BPF/ICMPv6 filters, sysctl paths.

No root, no namespaces: the kernel behaviour itself is tested in tests/integration/kernel.
"""

from __future__ import annotations

import struct
from ipaddress import IPv6Address, IPv6Network
from pathlib import Path

import pytest

from sdnmip.kernel import nft, sysctl
from sdnmip.kernel.addr import v6addr, v6prefix
from sdnmip.kernel.errors import KernelConfigError, KernelRequestError
from sdnmip.kernel.rawsock import bpf_inner_next_header, icmp6_pass_only
from sdnmip.kernel.rules import Rule
from sdnmip.kernel.tunnel import MH_DIVERT_RULE, decap_rule


def test_addresses_and_prefixes_are_parsed_or_named_in_the_error() -> None:
    assert v6addr("coa", "2001:db8::1") == IPv6Address("2001:db8::1")
    assert v6prefix("prefix", "default") == IPv6Network("::/0")
    assert v6prefix("prefix", IPv6Address("2001:db8::1")) == IPv6Network("2001:db8::1/128")
    with pytest.raises(KernelConfigError, match=r"coa='192\.0\.2\.1': not an IPv6"):
        v6addr("coa", "192.0.2.1")
    with pytest.raises(KernelConfigError, match="prefix='2001:db8::1/64'"):
        v6prefix("prefix", "2001:db8::1/64")


def test_rules_validate_and_print_like_iproute2() -> None:
    r = Rule.make(1001, 111, src="2001:db8:100::/64", iif="iwlan")
    assert str(r) == "pref 1001 from 2001:db8:100::/64 iif iwlan lookup 111"
    assert str(decap_rule(IPv6Address("2001:db8:1::100"))) == (
        "pref 10 to 2001:db8:1::100/128 ipproto 41 lookup 250"
    )
    assert MH_DIVERT_RULE.fwmark == 0x5D1F0029 and MH_DIVERT_RULE.table == 255
    with pytest.raises(KernelConfigError, match="dport"):
        Rule.make(1, 2, dport=5201)  # a port needs a transport protocol
    with pytest.raises(KernelConfigError, match="table=0"):
        Rule(1, 0)
    with pytest.raises(KernelConfigError, match="ipproto=300"):
        Rule(1, 2, ipproto=300)
    assert Rule.make(5, 7, fwmark=1).fwmask == 0xFFFFFFFF


def test_ha_table_renders_the_documented_rules() -> None:
    text = nft.render(nft.FilterSpec.for_ha(["2001:db8:100::1"]))
    assert "elements = { 2001:db8:100::1 }" in text
    assert "typeof ip6 saddr . @nh,384,128" in text
    assert (
        "ip6 saddr @own icmpv6 type parameter-problem icmpv6 code 2 @th,112,8 60 "
        '@th,384,8 { 58, 135 } counter drop comment "pp-hao"'
    ) in text
    assert "ip6 saddr . @nh,384,128 != @bindings counter drop" in text
    assert "mh-divert" not in text and "pp-rh2" not in text


def test_mn_table_renders_the_documented_rules() -> None:
    text = nft.render(nft.FilterSpec.for_mn(["2001:db8:2::100", "2001:db8:1::100"]))
    assert "elements = { 2001:db8:1::100, 2001:db8:2::100 }" in text
    assert "@th,112,8 43 @th,384,8 { 58, 135 } @th,400,8 2 counter drop" in text
    assert "ip6 nexthdr 41 @nh,368,8 135 counter meta mark set 0x5d1f0029" in text
    assert 'icmpv6 type nd-redirect counter drop comment "redirect"' in text
    assert "bindings" not in text and "pp-hao" not in text


def test_nft_names_and_values() -> None:
    assert nft.hoa_int(IPv6Address("2001:db8:100::2001")) == "0x20010db8010000000000000000002001"
    with pytest.raises(KernelConfigError, match="table='x y'"):
        nft.FilterSpec("x y", frozenset())
    text = nft.render(nft.FilterSpec("t", frozenset(), drop_redirects=False))
    assert "chain" not in text  # nothing to hook: no empty base chains


def test_bpf_program_tests_the_inner_next_header() -> None:
    prog = bpf_inner_next_header(135)
    assert prog[0] == (0x30, 0, 0, 6)  # ldb [6]: inner IPv6 next header
    assert prog[1] == (0x15, 0, 1, 135)


def test_icmp6_filter_passes_only_the_listed_types() -> None:
    words = struct.unpack("=8I", icmp6_pass_only({4, 129}))
    blocked = {t for t in range(256) if words[t >> 5] >> (t & 31) & 1}
    assert set(range(256)) - blocked == {4, 129}


def test_sysctl_paths_are_checked(tmp_path: Path) -> None:
    (tmp_path / "conf" / "wlan").mkdir(parents=True)
    (tmp_path / "conf" / "wlan" / "forwarding").write_text("0\n")
    (tmp_path / "neigh" / "wlan").mkdir(parents=True)
    (tmp_path / "neigh" / "wlan" / "proxy_delay").write_text("80\n")
    sysctl.set_conf("wlan", "forwarding", 1, root=tmp_path)
    assert sysctl.get_conf("wlan", "forwarding", root=tmp_path) == "1"
    sysctl.set_neigh("wlan", "proxy_delay", 0, root=tmp_path)
    assert sysctl.get_neigh("wlan", "proxy_delay", root=tmp_path) == "0"
    with pytest.raises(KernelConfigError, match="dev='lte'"):
        sysctl.set_conf("lte", "forwarding", 1, root=tmp_path)
    with pytest.raises(KernelConfigError, match="key='accept_ra'"):
        sysctl.get_conf("wlan", "accept_ra", root=tmp_path)
    with pytest.raises(KernelConfigError, match="key='a/b'"):
        sysctl.get_conf("wlan", "a/b", root=tmp_path)
    (tmp_path / "conf" / "wlan" / "forwarding").unlink()
    (tmp_path / "conf" / "wlan" / "forwarding").mkdir()  # writing a directory fails
    with pytest.raises(KernelRequestError, match="forwarding = 1"):
        sysctl.set_conf("wlan", "forwarding", 1, root=tmp_path)
