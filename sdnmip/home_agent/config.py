"""`ha.yaml`: strict loading and validation of the Home Agent's configuration.

Owns: the typed model of the configuration (`HaConfig`) and its parser. Every mistake in the file
(an unknown key, a wrong type, an address outside its prefix, a value out of range) is one
`ConfigError` naming the field, e.g. ``ha.yaml: dad.transmits: must be an integer in 0..10``.
The defaults here are the documented ones (docs/home_agent.md, "ha.yaml reference").

Must not: read the keys file (`keys.py` does), touch the system, or know anything of flows.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from ipaddress import IPv6Address, IPv6Network
from pathlib import Path
from typing import Any, TypeVar

import yaml

from sdnmip.yaml_values import value_error_reason

T = TypeVar("T")

INFINITE = "infinite"
INFINITY_LIFETIME = 0xFFFFFFFF  # RFC 4861 §4.6.2: all ones in a Prefix Information lifetime
MAX_LIFETIME_SECONDS = 0xFFFF * 4  # RFC 6275 §6.1.8: a 16-bit Lifetime in units of 4 s
DEFAULT_MAX_LIFETIME = 3600.0  # granted at most an hour unless configured
DEFAULT_REFRESH_ADVICE = 0.8  # RFC 6275 §10.3.1: advise a refresh before the lifetime ends
DEFAULT_REPLAY_WINDOW = 7.0  # RFC 4285 §6 suggests 7 s as "close enough" for timestamps
RETRANS_TIMER_DEFAULT = 1.0  # RFC 4861 §10: RetransTimer 1,000 ms
DUP_ADDR_DETECT_TRANSMITS_DEFAULT = 1  # RFC 4862 §5.1
MAX_NEIGHBOR_ADVERTISEMENT = 3  # RFC 4861 §10: unsolicited NAs sent on a change
DEFAULT_BE_RATE = 10.0  # Binding Errors per second (RFC 6275 §9.3.3 asks for rate limiting)
LOG_LEVELS = ("debug", "info", "warning", "error")
IFNAME_MAX = 15  # Linux IFNAMSIZ - 1


class ConfigError(ValueError):
    """A mistake in ha.yaml: `field` is the dotted path of the offending key."""

    def __init__(self, source: str, field_path: str, reason: str) -> None:
        where = f"{source}: {field_path}" if field_path else source
        super().__init__(f"{where}: {reason}")
        self.field = field_path
        self.reason = reason


@dataclass(frozen=True, slots=True)
class HomePrefix:
    """A prefix of the home link the HA serves (RFC 6275 §10.3.1 "home subnet prefix").

    Lifetimes are in seconds, `None` for infinite; they bound the lifetime the HA grants
    (RFC 6275 §10.3.1) and are advertised in Mobile Prefix Advertisements (§10.6.2).
    """

    prefix: IPv6Network
    valid_lifetime: float | None = None
    preferred_lifetime: float | None = None


@dataclass(frozen=True, slots=True)
class DadConfig:
    """RFC 4862 §5.4 Duplicate Address Detection on behalf of the MN (RFC 6275 §10.3.1)."""

    transmits: int = DUP_ADDR_DETECT_TRANSMITS_DEFAULT
    retrans_timer: float = RETRANS_TIMER_DEFAULT

    @property
    def duration(self) -> float:
        """How long DAD takes: RetransTimer after each of the DupAddrDetectTransmits NSs."""
        return self.transmits * self.retrans_timer


@dataclass(frozen=True, slots=True)
class NaConfig:
    """Unsolicited Neighbor Advertisements for a newly proxied HoA (RFC 6275 §10.4.1)."""

    count: int = MAX_NEIGHBOR_ADVERTISEMENT
    interval: float = RETRANS_TIMER_DEFAULT


@dataclass(frozen=True, slots=True)
class HaConfig:
    """The validated configuration of one Home Agent."""

    home_link: str
    address: IPv6Address
    home_prefixes: tuple[HomePrefix, ...]
    keys_file: Path
    database: Path
    control_socket: Path
    max_binding_lifetime: float = DEFAULT_MAX_LIFETIME
    refresh_advice: float | None = DEFAULT_REFRESH_ADVICE
    replay_window: float = DEFAULT_REPLAY_WINDOW
    dad: DadConfig = field(default_factory=DadConfig)
    unsolicited_na: NaConfig = field(default_factory=NaConfig)
    binding_errors_per_second: float = DEFAULT_BE_RATE
    tunnel_source_check: bool = True
    log_level: str = "info"

    def serves(self, address: IPv6Address) -> HomePrefix | None:
        """The home prefix `address` belongs to, or None (RFC 6275 §10.3.1, status 132)."""
        for hp in self.home_prefixes:
            if address in hp.prefix:
                return hp
        return None

    def describe(self) -> dict[str, object]:
        """A JSON-able summary for `sdnmip ha status` (paths and numbers; nothing secret)."""
        return {
            "home_link": self.home_link,
            "address": str(self.address),
            "home_prefixes": [str(p.prefix) for p in self.home_prefixes],
            "max_binding_lifetime": self.max_binding_lifetime,
            "dad": {"transmits": self.dad.transmits, "retrans_timer": self.dad.retrans_timer},
            "replay_window": self.replay_window,
            "tunnel_source_check": self.tunnel_source_check,
            "database": str(self.database),
            "keys_file": str(self.keys_file),
        }


# ------------------------------------------------------------------------------ field parsers
class _Reader:
    """Typed access to one mapping of the document, remembering which keys were used."""

    def __init__(self, source: str, path: str, data: object) -> None:
        self.source = source
        self.path = path
        if not isinstance(data, Mapping):
            raise ConfigError(source, path, f"must be a mapping, got {_kind(data)}")
        for key in data:
            if not isinstance(key, str):
                raise ConfigError(source, self._at(str(key)), "keys must be strings")
        self.data: Mapping[str, Any] = data
        self.used: set[str] = set()

    def _at(self, key: str) -> str:
        return f"{self.path}.{key}" if self.path else key

    def error(self, key: str, reason: str) -> ConfigError:
        return ConfigError(self.source, self._at(key), reason)

    def get(self, key: str, parse: Callable[[str, object], T], default: T | None = None) -> T:
        self.used.add(key)
        if key not in self.data:
            if default is None:
                raise self.error(key, "is required")
            return default
        return parse(self._at(key), self.data[key])

    def optional(self, key: str, parse: Callable[[str, object], T]) -> T | None:
        self.used.add(key)
        value = self.data.get(key)
        return None if value is None else parse(self._at(key), value)

    def sub(self, key: str) -> _Reader:
        self.used.add(key)
        return _Reader(self.source, self._at(key), self.data.get(key, {}) or {})

    def done(self) -> None:
        unknown = sorted(set(self.data) - self.used)
        if unknown:
            known = ", ".join(sorted(self.used))
            raise self.error(unknown[0], f"unknown key (known keys here: {known})")


def _kind(value: object) -> str:
    return "nothing" if value is None else type(value).__name__


def _parsers(source: str) -> _Parsers:
    return _Parsers(source)


class _Parsers:
    def __init__(self, source: str) -> None:
        self.source = source

    def err(self, path: str, reason: str) -> ConfigError:
        return ConfigError(self.source, path, reason)

    def string(self, path: str, value: object) -> str:
        if not isinstance(value, str) or not value:
            raise self.err(path, f"must be a non-empty string, got {_kind(value)}")
        return value

    def ifname(self, path: str, value: object) -> str:
        name = self.string(path, value)
        if len(name) > IFNAME_MAX or "/" in name or name.strip() != name or name in (".", ".."):
            raise self.err(path, f"{name!r} is not a valid interface name")
        return name

    def path(self, path: str, value: object) -> Path:
        text = self.string(path, value)
        p = Path(text)
        if not p.is_absolute():
            raise self.err(path, f"{text!r} must be an absolute path")
        return p

    def address(self, path: str, value: object) -> IPv6Address:
        text = self.string(path, value)
        try:
            addr = IPv6Address(text)
        except ValueError:
            raise self.err(path, f"{text!r} is not an IPv6 address") from None
        if addr.is_multicast or addr.is_unspecified or addr.is_loopback or addr.is_link_local:
            raise self.err(path, f"{addr} must be a global unicast address")
        return addr

    def prefix(self, path: str, value: object) -> IPv6Network:
        text = self.string(path, value)
        try:
            net = IPv6Network(text, strict=True)
        except ValueError as exc:
            raise self.err(path, f"{text!r} is not an IPv6 prefix ({exc})") from None
        if net.is_multicast or net.is_link_local or net.prefixlen > 64 or net.prefixlen == 0:
            raise self.err(path, f"{net} must be a global unicast prefix of length 1..64")
        return net

    def number(self, path: str, value: object, lo: float, hi: float) -> float:
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise self.err(path, f"must be a number, got {_kind(value)}")
        v = float(value)
        if not math.isfinite(v) or not lo <= v <= hi:
            raise self.err(path, f"must be in {lo:g}..{hi:g}, got {value}")
        return v

    def integer(self, path: str, value: object, lo: int, hi: int) -> int:
        if isinstance(value, bool) or not isinstance(value, int) or not lo <= value <= hi:
            raise self.err(path, f"must be an integer in {lo}..{hi}, got {value!r}")
        return value

    def boolean(self, path: str, value: object) -> bool:
        if not isinstance(value, bool):
            raise self.err(path, f"must be true or false, got {value!r}")
        return value

    def lifetime(self, path: str, value: object, lo: float = 0) -> float | None:
        if value == INFINITE:
            return None
        return self.number(path, value, lo, INFINITY_LIFETIME - 1)

    def choice(self, path: str, value: object, choices: tuple[str, ...]) -> str:
        if value not in choices:
            raise self.err(path, f"must be one of {', '.join(choices)}, got {value!r}")
        return str(value)


def _home_prefix(p: _Parsers, path: str, value: object) -> HomePrefix:
    r = _Reader(p.source, path, value)
    hp = HomePrefix(
        prefix=r.get("prefix", p.prefix),
        # At least one 4 s lifetime unit, or no binding could be granted (RFC 6275 §10.3.1).
        valid_lifetime=r.optional("valid_lifetime", lambda k, v: p.lifetime(k, v, 4)),
        preferred_lifetime=r.optional("preferred_lifetime", p.lifetime),
    )
    r.done()
    if (
        hp.valid_lifetime is not None
        and hp.preferred_lifetime is not None
        and hp.preferred_lifetime > hp.valid_lifetime
    ):
        raise p.err(f"{path}.preferred_lifetime", "must not exceed valid_lifetime (RFC 4861)")
    return hp


def parse_config(document: object, source: str = "ha.yaml") -> HaConfig:
    """Validate a loaded YAML document; raises ConfigError naming the first bad field."""
    p = _parsers(source)
    r = _Reader(source, "", document)

    def prefixes(path: str, value: object) -> tuple[HomePrefix, ...]:
        if not isinstance(value, list) or not value:
            raise p.err(path, f"must be a non-empty list of prefixes, got {_kind(value)}")
        out = tuple(_home_prefix(p, f"{path}[{i}]", v) for i, v in enumerate(value))
        for i, a in enumerate(out):
            for b in out[:i]:
                if a.prefix.overlaps(b.prefix):
                    raise p.err(f"{path}[{i}].prefix", f"{a.prefix} overlaps {b.prefix}")
        return out

    dad_r = r.sub("dad")
    dad = DadConfig(
        transmits=dad_r.get(
            "transmits", lambda k, v: p.integer(k, v, 0, 10), DUP_ADDR_DETECT_TRANSMITS_DEFAULT
        ),
        retrans_timer=dad_r.get(
            "retrans_timer", lambda k, v: p.number(k, v, 0.01, 60.0), RETRANS_TIMER_DEFAULT
        ),
    )
    dad_r.done()
    na_r = r.sub("unsolicited_na")
    na = NaConfig(
        count=na_r.get("count", lambda k, v: p.integer(k, v, 0, 10), MAX_NEIGHBOR_ADVERTISEMENT),
        interval=na_r.get("interval", lambda k, v: p.number(k, v, 0.01, 60.0), 1.0),
    )
    na_r.done()

    def refresh(path: str, value: object) -> float:
        return p.number(path, value, 0.05, 0.95)

    refresh_set = "refresh_advice" in r.data
    cfg = HaConfig(
        home_link=r.get("home_link", p.ifname),
        address=r.get("address", p.address),
        home_prefixes=r.get("home_prefixes", prefixes),
        keys_file=r.get("keys_file", p.path),
        database=r.get("database", p.path),
        control_socket=r.get("control_socket", p.path),
        max_binding_lifetime=r.get(
            "max_binding_lifetime",
            lambda k, v: p.number(k, v, 4, MAX_LIFETIME_SECONDS),
            DEFAULT_MAX_LIFETIME,
        ),
        refresh_advice=r.optional("refresh_advice", refresh)
        if refresh_set
        else DEFAULT_REFRESH_ADVICE,
        replay_window=r.get(
            "replay_window", lambda k, v: p.number(k, v, 0.1, 3600.0), DEFAULT_REPLAY_WINDOW
        ),
        dad=dad,
        unsolicited_na=na,
        binding_errors_per_second=r.get(
            "binding_errors_per_second", lambda k, v: p.number(k, v, 0, 10_000), DEFAULT_BE_RATE
        ),
        tunnel_source_check=r.get("tunnel_source_check", p.boolean, True),
        log_level=r.get("log_level", lambda k, v: p.choice(k, v, LOG_LEVELS), "info"),
    )
    r.done()
    if cfg.serves(cfg.address) is None:
        raise p.err("address", f"{cfg.address} is in none of home_prefixes")
    return cfg


def load_config(path: Path) -> HaConfig:
    """Read and validate `path`; ConfigError names the file and the field."""
    source = str(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(source, "", f"cannot read: {exc.strerror}") from None
    try:
        document = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" (line {mark.line + 1})" if mark is not None else ""
        raise ConfigError(source, "", f"not valid YAML{where}") from None
    except ValueError as exc:  # a value PyYAML's constructors refuse (yaml_values.py)
        raise ConfigError(source, "", f"not valid YAML: {value_error_reason(exc)}") from None
    return parse_config(document, source)
