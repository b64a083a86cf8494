"""ha.yaml and the keys file: strict validation with one error naming the field, permission
checks on the keys file, and secrets that never show up in a repr or an error."""

from __future__ import annotations

import os
from ipaddress import IPv6Address, IPv6Network
from pathlib import Path

import pytest
import yaml

from sdnmip.home_agent.config import ConfigError, HaConfig, load_config, parse_config
from sdnmip.home_agent.keys import KeysFileError, KeyStore, load_keys, parse_keys

ROOT = Path(__file__).resolve().parents[3]
DEPLOY = ROOT / "deploy"
SECRET = "a1b2c3d4e5f60718293a4b5c6d7e8f90"
ME = os.geteuid()  # the HA insists on root; unit tests run as whoever runs them


def minimal(**extra: object) -> dict[str, object]:
    doc: dict[str, object] = {
        "home_link": "home0",
        "address": "2001:db8:100::1",
        "home_prefixes": [{"prefix": "2001:db8:100::/64"}],
        "keys_file": "/etc/sdnmip/ha-keys.yaml",
        "database": "/var/lib/sdnmip/ha.sqlite",
        "control_socket": "/run/sdnmip/ha.sock",
    }
    doc.update(extra)
    return doc


def test_the_shipped_example_config_is_valid():
    cfg = load_config(DEPLOY / "ha.yaml")
    assert isinstance(cfg, HaConfig)
    assert cfg.address == IPv6Address("2001:db8:100::1")
    assert cfg.home_prefixes[0].prefix == IPv6Network("2001:db8:100::/64")
    assert cfg.home_prefixes[0].valid_lifetime is None
    assert (cfg.dad.transmits, cfg.dad.retrans_timer) == (1, 1.0)


def test_defaults():
    cfg = parse_config(minimal())
    assert cfg.max_binding_lifetime == 3600 and cfg.refresh_advice == 0.8
    assert cfg.replay_window == 7.0 and cfg.dad.duration == 1.0
    assert cfg.unsolicited_na.count == 3 and cfg.tunnel_source_check
    assert parse_config(minimal(refresh_advice=None)).refresh_advice is None


@pytest.mark.parametrize(
    ("doc", "field", "words"),
    [
        (minimal(colour="blue"), "colour", "unknown key"),
        (minimal(dad={"transmit": 1}), "dad.transmit", "unknown key"),
        (minimal(dad={"transmits": "1"}), "dad.transmits", "integer"),
        (minimal(dad={"transmits": True}), "dad.transmits", "integer"),
        (minimal(dad={"retrans_timer": 0}), "dad.retrans_timer", "0.01..60"),
        (minimal(address="2001:db8:200::1"), "address", "none of home_prefixes"),
        (minimal(address="fe80::1"), "address", "global unicast"),
        (minimal(address="banana"), "address", "not an IPv6 address"),
        (minimal(home_prefixes=[]), "home_prefixes", "non-empty list"),
        (minimal(home_prefixes=[{"prefix": "2001:db8:100::1/64"}]), "home_prefixes[0].prefix",
         "host bits"),
        (minimal(home_prefixes=[{"prefix": "2001:db8:100::/64", "valid_lifetime": "x"}]),
         "home_prefixes[0].valid_lifetime", "number"),
        (minimal(home_prefixes=[{"prefix": "2001:db8:100::/64"}, {"prefix": "2001:db8::/32"}]),
         "home_prefixes[1].prefix", "overlaps"),
        (minimal(home_prefixes=[{"prefix": "2001:db8:100::/64", "valid_lifetime": 3}]),
         "home_prefixes[0].valid_lifetime", "4.."),
        (minimal(keys_file="keys.yaml"), "keys_file", "absolute"),
        (minimal(home_link="a/b"), "home_link", "interface name"),
        (minimal(max_binding_lifetime=10**6), "max_binding_lifetime", "4..262140"),
        (minimal(tunnel_source_check="yes"), "tunnel_source_check", "true or false"),
        (minimal(log_level="loud"), "log_level", "one of"),
        ({k: v for k, v in minimal().items() if k != "database"}, "database", "required"),
        ([1, 2], "", "mapping"),
    ],
)  # fmt: skip
def test_one_error_naming_the_field(doc: object, field: str, words: str):
    with pytest.raises(ConfigError) as exc:
        parse_config(doc, "ha.yaml")
    assert exc.value.field == field
    assert words in str(exc.value)
    assert str(exc.value).startswith(f"ha.yaml: {field}" if field else "ha.yaml")


def test_unreadable_or_bad_yaml_file(tmp_path: Path):
    with pytest.raises(ConfigError, match="cannot read"):
        load_config(tmp_path / "missing.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("home_link: [\n")
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_config(bad)


# ------------------------------------------------------------------------------ keys
def write_keys(path: Path, mode: int = 0o600, body: object | None = None) -> Path:
    doc = (
        body
        if body is not None
        else {"mobile_nodes": {"mn1@x.example": {"spi": 300, "secret": SECRET}}}
    )
    path.write_text(yaml.safe_dump(doc))
    os.chmod(path, mode)
    return path


def test_keys_load_and_never_show_the_secret(tmp_path: Path):
    keys = load_keys(write_keys(tmp_path / "k.yaml"), owner_uid=ME)
    assert keys["mn1@x.example"].spi == 300
    assert keys["mn1@x.example"].key == bytes.fromhex(SECRET)
    for text in (repr(keys), str(keys), repr(keys["mn1@x.example"]), repr(dict(keys))):
        assert SECRET not in text and bytes.fromhex(SECRET).hex() not in text
        assert "\\xa1\\xb2" not in text


@pytest.mark.parametrize("mode", [0o640, 0o604, 0o660, 0o644])
def test_keys_readable_by_others_are_refused_naming_the_fix(tmp_path: Path, mode: int):
    path = write_keys(tmp_path / "k.yaml", mode)
    with pytest.raises(KeysFileError) as exc:
        load_keys(path, owner_uid=ME)
    msg = str(exc.value)
    assert str(path) in msg and f"chmod 600 {path}" in msg and "\n" not in msg


def test_keys_not_owned_by_root_are_refused(tmp_path: Path):
    path = write_keys(tmp_path / "k.yaml")
    if ME == 0:
        os.chown(path, 65534, 65534)  # as root: give it away; otherwise it is ours, not root's
    with pytest.raises(KeysFileError, match="must be owned by root"):
        load_keys(path)


def test_missing_keys_file(tmp_path: Path):
    with pytest.raises(KeysFileError, match="does not exist"):
        load_keys(tmp_path / "nope.yaml", owner_uid=ME)


@pytest.mark.parametrize(
    ("nodes", "words"),
    [
        ({"not-an-nai": {"spi": 300, "secret": SECRET}}, "not an NAI"),
        ({"a@b": {"spi": 255, "secret": SECRET}}, "reserved"),
        ({"a@b": {"spi": "300", "secret": SECRET}}, "integer"),
        ({"a@b": {"spi": 300, "secret": SECRET[:-2]}}, "16 octets"),
        ({"a@b": {"spi": 300, "secret": SECRET[:-1] + "g"}}, "hex digits"),
        ({"a@b": {"spi": 300}}, "exactly the keys spi and secret"),
        ({"a@b": {"spi": 300, "secret": SECRET}, "c@d": {"spi": 300, "secret": SECRET}},
         "already used"),
    ],
)  # fmt: skip
def test_bad_key_entries_name_the_nai_and_field_not_the_secret(nodes: object, words: str):
    with pytest.raises(KeysFileError) as exc:
        parse_keys({"mobile_nodes": nodes}, "/etc/k.yaml")
    assert words in str(exc.value)
    assert SECRET[:-2] not in str(exc.value) and "/etc/k.yaml" in str(exc.value)


def test_bad_yaml_in_keys_does_not_echo_the_line(tmp_path: Path):
    path = tmp_path / "k.yaml"
    path.write_text(f"mobile_nodes:\n  a@b: {{spi: 300, secret: {SECRET}\n")
    os.chmod(path, 0o600)
    with pytest.raises(KeysFileError) as exc:
        load_keys(path, owner_uid=ME)
    assert SECRET not in str(exc.value) and exc.value.__cause__ is None


def test_the_shipped_keys_example_is_valid():
    with open(DEPLOY / "ha-keys.example.yaml") as f:
        keys = parse_keys(yaml.safe_load(f), "example")
    assert isinstance(keys, KeyStore) and len(keys) == 1
