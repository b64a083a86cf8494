"""docs/configuration.md lists every key of mn.yaml and ha.yaml, and no key the loaders refuse,
with the defaults the loaders really give."""

from __future__ import annotations

import dataclasses
import re
import typing
from ipaddress import IPv6Address, IPv6Network
from pathlib import Path
from typing import Any

import pytest

from sdnmip.home_agent.config import HaConfig
from sdnmip.home_agent.config import parse_config as parse_ha
from sdnmip.mn.config import MnConfig
from sdnmip.mn.config import parse_config as parse_mn

DOC = Path(__file__).resolve().parents[2] / "docs" / "configuration.md"
ROW = re.compile(r"^\| `(?P<key>[^`]+)` \| (?P<type>[^|]+) \| (?P<default>[^|]+) \|")
# Defaults the doc describes in words (in italics) rather than as a literal.
DESCRIBED = {"home.prefixes", "uplinks", "preferred_uplink"}

MIN_MN: dict[str, Any] = {
    "version": 1,
    "identity": {"nai": "mn1@sdnmip.example", "spi": 4096, "key_file": "/etc/sdnmip/mn.key"},
    "home": {"agent": "2001:db8:100::1", "primary_hoa": "2001:db8:100::1000"},
}
MIN_HA: dict[str, Any] = {
    "home_link": "home0",
    "address": "2001:db8:100::1",
    "home_prefixes": [{"prefix": "2001:db8:100::/64"}],
    "keys_file": "/etc/sdnmip/ha-keys.yaml",
    "database": "/var/lib/sdnmip/ha.sqlite",
    "control_socket": "/run/sdnmip/ha.sock",
}


def table(section: str) -> dict[str, tuple[str, str]]:
    """key -> (type, default) of the table under `## <section>`."""
    text = DOC.read_text()
    start = text.index(f"\n## {section}\n")
    end = text.find("\n#", start + 1)  # the next heading of any level
    rows = {}
    for line in text[start:end].splitlines():
        m = ROW.match(line)
        if m and m["key"] != "key":
            rows[m["key"]] = (m["type"].strip(), m["default"].strip())
    return rows


def schema_keys(cls: type, prefix: str = "") -> list[str]:
    """Every key a dataclass schema accepts: leaves and lists, not the section names."""
    out = []
    hints = typing.get_type_hints(cls)
    for f in dataclasses.fields(cls):
        hint, path = hints[f.name], prefix + f.name
        item = typing.get_args(hint)[0] if typing.get_origin(hint) is tuple else None
        if dataclasses.is_dataclass(hint):
            out += schema_keys(hint, path + ".")  # a section
        elif item is not None and dataclasses.is_dataclass(item):
            out += [path, *schema_keys(item, path + "[].")]
        else:
            out.append(path)
    return out


def value_at(cfg: object, key: str) -> object:
    for part in key.split("."):
        cfg = getattr(cfg, part[:-2])[0] if part.endswith("[]") else getattr(cfg, part)
    return cfg


def literal(text: str) -> object:
    """A default as the doc writes it: `600`, `br-mn`, `false`, `null`, `infinite`."""
    m = re.fullmatch(r"`([^`]*)`", text)
    assert m, f"default {text!r} is neither a literal in backquotes nor described"
    raw = m[1]
    if raw in ("null", "infinite"):
        return None
    if raw in ("true", "false"):
        return raw == "true"
    try:
        return float(raw)
    except ValueError:
        return raw


def same(doc: object, real: object) -> bool:
    if isinstance(real, bool) or real is None:
        return doc == real
    if isinstance(real, int | float):
        return isinstance(doc, float) and doc == float(real)
    if isinstance(real, IPv6Address | IPv6Network | Path):
        return doc == str(real)
    return doc == real


@pytest.mark.parametrize(
    ("section", "cls", "parse", "minimal"),
    [("mn.yaml", MnConfig, parse_mn, MIN_MN), ("ha.yaml", HaConfig, parse_ha, MIN_HA)],
)
def test_every_key_is_documented_with_the_default_the_loader_gives(section, cls, parse, minimal):
    rows = table(section)
    keys = schema_keys(cls)
    assert sorted(rows) == sorted(keys), (
        f"missing from the doc: {sorted(set(keys) - set(rows))}; "
        f"not in the schema: {sorted(set(rows) - set(keys))}"
    )
    loaded = parse(minimal)
    required = set()
    for key, (_, default) in rows.items():
        if default == "required":
            required.add(key.split(".")[0].split("[")[0])
            continue
        if key in DESCRIBED:
            assert default.startswith("*"), f"{key}: a described default is in italics"
            continue
        assert same(literal(default), value_at(loaded, key)), (
            f"{key}: the doc says {default}, the loader gives {value_at(loaded, key)!r}"
        )
    # Exactly the sections and keys the doc calls required are what the minimal file holds.
    assert required == set(minimal) | ({"uplinks"} if section == "mn.yaml" else set())


def test_a_key_the_doc_does_not_list_is_refused():
    with pytest.raises(ValueError, match=r"pool\.sizes"):
        parse_mn({**MIN_MN, "pool": {"sizes": 2}})
    with pytest.raises(ValueError, match=r"dad\.transmit"):
        parse_ha({**MIN_HA, "dad": {"transmit": 2}})
