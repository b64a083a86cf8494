"""The MN config file: defaults that fit the testbed, one error naming the field for every mistake,
and the key file's permissions."""

from __future__ import annotations

import os
from ipaddress import IPv6Address, IPv6Network
from pathlib import Path
from typing import Any

import pytest
import yaml

from sdnmip.mn.config import ConfigError, load_config, parse_config

REPO = Path(__file__).resolve().parents[3]

MINIMAL: dict[str, Any] = {
    "version": 1,
    "identity": {"nai": "mn1@example.net", "spi": 4096, "key_file": "/etc/sdnmip/mn.key"},
    "home": {"agent": "2001:db8:100::1", "primary_hoa": "2001:db8:100::1000"},
}


def doc(**sections: Any) -> dict[str, Any]:
    d = {k: (dict(v) if isinstance(v, dict) else v) for k, v in MINIMAL.items()}
    for path, value in sections.items():
        *parents, last = path.split("__")
        node = d
        for p in parents:
            node = node.setdefault(p, {})
        if value is DELETE:
            node.pop(last)
        else:
            node[last] = value
    return d


DELETE = object()
UPLINK_B = {"name": "b", "port": "y", "kernel_port": "z"}


def error(d: dict[str, Any]) -> str:
    with pytest.raises(ConfigError) as e:
        parse_config(d)
    return str(e.value)


def test_minimal_file_gets_testbed_defaults():
    cfg = parse_config(doc())
    assert [(u.name, u.port, u.kernel_port) for u in cfg.uplinks] == [
        ("wlan", "wlan", "iwlan"),
        ("lte", "lte", "ilte"),
    ]
    assert cfg.preferred == "wlan"
    assert cfg.home_prefixes == (IPv6Network("2001:db8:100::/64"),)
    assert (cfg.pool.size, cfg.bridge.name, cfg.bridge.hoa_port) == (2, "br-mn", "hoa0")
    assert cfg.agent_socket == Path("/run/sdnmip/mn/agent.sock")
    t = cfg.table_config()
    assert t.primary == IPv6Address("2001:db8:100::1000")
    assert (t.default_uplink, t.uplink_order, t.pool_size) == ("wlan", ("wlan", "lte"), 2)


def test_failback_after_defaults_to_three_seconds_and_null_turns_it_off():
    assert parse_config(doc()).controller.failback_after == 3.0
    assert parse_config(doc(controller__failback_after=None)).controller.failback_after is None
    assert parse_config(doc(controller__failback_after=0)).controller.failback_after == 0.0


def test_the_example_deploy_file_is_valid():
    cfg = load_config(REPO / "deploy" / "mn.yaml")
    assert cfg.home.agent == IPv6Address("2001:db8:100::1")
    assert cfg.uplink("lte").kernel_port == "ilte"


def test_uplink_order_follows_cost():
    cfg = parse_config(
        doc(
            uplinks=[
                {"name": "wlan", "port": "wlan", "kernel_port": "iwlan", "cost": 50},
                {"name": "lte", "port": "lte", "kernel_port": "ilte", "cost": 5},
            ],
            preferred_uplink="wlan",
        )
    )
    assert cfg.table_config().uplink_order == ("lte", "wlan")
    assert cfg.table_config().default_uplink == "wlan"


@pytest.mark.parametrize(
    ("change", "expect"),
    [
        ({"surprise": 1}, "surprise: unknown key"),
        ({"version": 2}, "version: 2 is outside 1..1"),
        ({"version": DELETE}, "version: missing"),
        ({"identity__spi": 12}, "identity.spi: 12 is outside 256.."),
        ({"identity__spi": "12"}, "identity.spi: expected an integer"),
        ({"identity__nai": "nobody"}, "identity.nai: 'nobody' is not valid"),
        ({"identity__key_file": "mn.key"}, "identity.key_file: 'mn.key' must be an absolute path"),
        ({"identity__colour": "red"}, "identity.colour: unknown key"),
        ({"home__agent": "10.0.0.1"}, "home.agent: '10.0.0.1' is not an IPv6 address"),
        ({"home__agent": "fe80::1"}, "home.agent: fe80::1 is not a global unicast"),
        ({"home__primary_hoa": DELETE}, "home.primary_hoa: missing"),
        ({"home__prefixes": ["2001:db8:100::/48"]}, "home.prefixes[0]: 2001:db8:100::/48 must be"),
        ({"home__prefixes": ["2001:db8:200::/64"]}, "home.primary_hoa: 2001:db8:100::1000 is on"),
        ({"home__prefixes": "2001:db8:100::/64"}, "home.prefixes: expected a list"),
        ({"home__primary_hoa": "2001:db8:100::"}, "home.primary_hoa: 2001:db8:100:: has a"),
        ({"uplinks": []}, "uplinks: at least one uplink"),
        ({"uplinks": [{"name": "wlan", "port": "wlan"}]}, "uplinks[0].kernel_port: missing"),
        (
            {"uplinks": [{"name": "a", "port": "x", "kernel_port": "y"}, UPLINK_B]},
            "uplinks[1].port: 'y' is already used by uplinks[0].kernel_port",
        ),
        (
            {"uplinks": [{"name": "a", "port": "averyveryverylongname", "kernel_port": "b"}]},
            "uplinks[0].port: 'averyveryverylongname' is not valid",
        ),
        ({"preferred_uplink": "5g"}, "preferred_uplink: '5g' is not an uplink"),
        ({"binding__lifetime": 2}, "binding.lifetime: 2 is outside 4.."),
        ({"binding__lifetime": 30}, "binding.lifetime: 30 is not a multiple of 4"),
        ({"binding__refresh_fraction": 1.5}, "binding.refresh_fraction: 1.5 is outside"),
        ({"pool__size": 16}, "pool.size: 16 spares do not fit max_hoas 16"),
        ({"pool__size": True}, "pool.size: expected an integer"),
        ({"bridge__datapath_type": "dpdk"}, "bridge.datapath_type: 'dpdk' is not one of"),
        ({"bridge__ovsdb": "db.sock"}, "bridge.ovsdb: 'db.sock' is not valid"),
        ({"controller__openflow": "tcp:localhost:6653"}, "controller.openflow: 'tcp:localhost"),
        ({"controller__openflow": "tcp:127.0.0.1:70000"}, "controller.openflow: port 70000"),
        ({"controller__strict_primary": "yes"}, "controller.strict_primary: expected true"),
        ({"controller__failback_after": -1}, "controller.failback_after: -1 is outside 0..86400"),
        ({"controller__failback_after": "soon"}, "controller.failback_after: expected a number"),
        ({"controller__failback_after": float("nan")}, "controller.failback_after: expected a"),
        ({"northbound__listen": "[2001:db8::1]:8181"}, "northbound.token_file: required"),
        ({"paths__state_dir": "state"}, "paths.state_dir: 'state' must be an absolute path"),
    ],
)
def test_every_mistake_is_one_error_naming_the_field(change: dict[str, Any], expect: str):
    assert expect in error(doc(**change))


def test_load_names_the_file_and_yaml_errors(tmp_path: Path):
    p = tmp_path / "mn.yaml"
    p.write_text("version: 1\nidentity: [unclosed\n")
    with pytest.raises(ConfigError, match=r"mn\.yaml: line \d+: not valid YAML"):
        load_config(p)
    p.write_text(yaml.safe_dump(doc(home__agent="nope")))
    with pytest.raises(ConfigError, match=r"mn\.yaml: home\.agent: 'nope'"):
        load_config(p)
    with pytest.raises(ConfigError, match="cannot read"):
        load_config(tmp_path / "absent.yaml")


def test_yaml_tags_are_not_executed(tmp_path: Path):
    p = tmp_path / "mn.yaml"
    p.write_text("version: !!python/object/apply:os.system ['true']\n")
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_config(p)


def _key(tmp_path: Path, text: str, mode: int) -> Path:
    p = tmp_path / "mn.key"
    p.write_text(text)
    os.chmod(p, mode)
    return p


def test_key_file_is_read_as_hex_when_only_its_owner_can_access_it(tmp_path: Path):
    p = _key(tmp_path, "00112233445566778899aabbccddeeff\n", 0o600)
    cfg = parse_config(doc(identity__key_file=str(p)))
    assert cfg.identity.read_key() == bytes.fromhex("00112233445566778899aabbccddeeff")


@pytest.mark.parametrize(
    ("text", "mode", "expect"),
    [
        ("00112233445566778899aabbccddeeff", 0o644, "accessible to others (mode 0644)"),
        ("00112233445566778899aabbccddeeff", 0o640, "accessible to others"),
        ("not hex at all", 0o600, "must hold the key as hex digits"),
        ("0011", 0o600, "the key is 2 octets, 16 (32 hex digits) needed"),
        ("00" * 32, 0o600, "the key is 32 octets"),
    ],
)
def test_bad_key_files_are_refused(tmp_path: Path, text: str, mode: int, expect: str):
    p = _key(tmp_path, text, mode)
    cfg = parse_config(doc(identity__key_file=str(p)))
    with pytest.raises(ConfigError) as e:
        cfg.identity.read_key()
    assert str(e.value).startswith("identity.key_file:") and expect in str(e.value)


def test_a_missing_key_file_is_named(tmp_path: Path):
    cfg = parse_config(doc(identity__key_file=str(tmp_path / "none.key")))
    with pytest.raises(ConfigError, match=r"identity\.key_file: .*none\.key: No such file"):
        cfg.identity.read_key()
