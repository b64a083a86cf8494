"""The Mobile Node's configuration file (`mn.yaml`): schema, strict loading, cross-checks.

Owns: the typed model of the one file the whole MN reads (the agent, the controller, the
northbound), its defaults (they fit the reference testbed, docs/architecture.md), and the
validation that turns every mistake into one `ConfigError` naming the field
(`home.primary_hoa: ...`). Also reads the MN-HA key file, which must be readable by its owner only.
Must not: start anything, touch the network, or hold logic of the components that read it.

The schema is declared as dataclasses: `_build` walks a dataclass's fields and their types
(str, int, float, bool, Path, IPv6Address, IPv6Network, tuples of them, optional values and
nested sections), so the schema is written once. Bounds sit in each field's metadata.
"""

from __future__ import annotations

import math
import re
import types
import typing
from dataclasses import MISSING, dataclass, field, fields, is_dataclass
from ipaddress import IPv6Address, IPv6Network, ip_address
from pathlib import Path
from typing import Any, TypeVar

import yaml

from sdnmip.controller.config import DEFAULT_FAILBACK_AFTER
from sdnmip.core.binding_messages import BindingTimers
from sdnmip.core.constants import LIFETIME_UNIT, MAX_LIFETIME
from sdnmip.core.hoa_messages import HoaTableConfig
from sdnmip.core.iid import IID_BITS, iid_of, is_reserved_iid
from sdnmip.mipv6.auth import MN_HA_KEY_LEN
from sdnmip.secret_file import SecretFileError, read_secret_file
from sdnmip.yaml_values import value_error_reason

CONFIG_VERSION = 1
MOBILITY_SPI_MIN = 256  # RFC 4285 §5.1: SPIs 0-255 are reserved
MOBILITY_SPI_MAX = 2**32 - 1
IFNAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,14}$")  # Linux: at most 15 bytes
UPLINK_NAME = re.compile(r"^[a-z][a-z0-9_-]{0,14}$")
NAI = re.compile(r"^[^@\s]+@[^@\s]+$")  # RFC 4282 §2.1: username@realm
OPENFLOW_TARGET = re.compile(r"^tcp:(?P<host>[0-9.]+|\[[0-9A-Fa-f:.]+\]):(?P<port>\d+)$")
HOST_PORT = re.compile(r"^(?P<host>[0-9.]+|\[[0-9A-Fa-f:.]+\]):(?P<port>\d+)$")
OVSDB_REMOTE = re.compile(r"^(unix:/\S+|tcp:\S+:\d+|ssl:\S+:\d+)$")
DATAPATH_TYPES = ("netdev", "system")

T = TypeVar("T")


class ConfigError(ValueError):
    """A mistake in the MN configuration; the message starts with the field's path."""


def _bounds(lo: float | None = None, hi: float | None = None, **extra: Any) -> dict[str, Any]:
    return {"lo": lo, "hi": hi, **extra}


# ------------------------------------------------------------------------------ the schema
@dataclass(frozen=True)
class Identity:
    """Who the MN is to its Home Agent: RFC 4283 NAI and the RFC 4285 MN-HA security
    association (SPI and the file holding the shared key as hex)."""

    nai: str = field(metadata={"pattern": NAI})
    spi: int = field(metadata=_bounds(MOBILITY_SPI_MIN, MOBILITY_SPI_MAX))
    key_file: Path

    def read_key(self) -> bytes:
        """The MN-HA shared key (16 octets). The file must be a regular file that only its owner
        (root, or the user running the daemon) can read or write; it holds the key as hex."""
        return read_key_file(self.key_file, "identity.key_file")


@dataclass(frozen=True)
class Home:
    """The home network: the HA's address, the Primary HoA, and the home prefixes to form new
    HoAs from until a Mobile Prefix Advertisement gives them (default: the Primary's /64)."""

    agent: IPv6Address
    primary_hoa: IPv6Address
    prefixes: tuple[IPv6Network, ...] = ()


@dataclass(frozen=True)
class Uplink:
    """One network interface of the MN: `port` is the physical OVS port (its carrier is the link
    state), `kernel_port` the OVS internal port where the kernel holds this uplink's CoA. Lower
    `cost` is preferred when HoAs must move off a lost uplink."""

    name: str = field(metadata={"pattern": UPLINK_NAME})
    port: str = field(metadata={"pattern": IFNAME})
    kernel_port: str = field(metadata={"pattern": IFNAME})
    cost: int = field(default=10, metadata=_bounds(0, 1_000_000))


@dataclass(frozen=True)
class Binding:
    """Home registrations: requested lifetime (s, whole 4 s units, RFC 6275 §6.1.7) and when to
    refresh, as a fraction of the granted lifetime."""

    lifetime: float = field(default=600.0, metadata=_bounds(LIFETIME_UNIT, MAX_LIFETIME))
    refresh_fraction: float = field(default=0.75, metadata=_bounds(0.05, 0.95))


@dataclass(frozen=True)
class Pool:
    """Spare, already registered HoAs kept for new flows; how long (s) a released HoA stays
    registered before it is deregistered; the most HoAs the MN holds (Primary included)."""

    size: int = field(default=2, metadata=_bounds(0, 64))
    hold_time: float = field(default=10.0, metadata=_bounds(0, 86_400))
    max_hoas: int = field(default=16, metadata=_bounds(1, 1024))


@dataclass(frozen=True)
class Bridge:
    """The MN's Open vSwitch bridge (set up by the controller through OVSDB)."""

    name: str = field(default="br-mn", metadata={"pattern": IFNAME})
    datapath_type: str = field(default="netdev", metadata={"choices": DATAPATH_TYPES})
    hoa_port: str = field(default="hoa0", metadata={"pattern": IFNAME})
    ovsdb: str = field(default="unix:/run/openvswitch/db.sock", metadata={"pattern": OVSDB_REMOTE})


@dataclass(frozen=True)
class Controller:
    """The OpenFlow controller: where it listens for OVS (`tcp:<address>:<port>`), flow idle
    timeouts (s), how long (s) a TCP flow's rules stay after FIN/RST, whether new outgoing flows
    may never use the Primary HoA (`strict_primary`), whether each new flow gets its own HoA
    (Figure 6, `hoa_per_flow`) or flows share the Primary, and how long (s) a lost uplink must
    be back before flows return to it (`failback_after`; null: they never do)."""

    openflow: str = field(default="tcp:127.0.0.1:6653", metadata={"pattern": OPENFLOW_TARGET})
    tcp_idle_timeout: float = field(default=60.0, metadata=_bounds(1, 86_400))
    udp_idle_timeout: float = field(default=30.0, metadata=_bounds(1, 86_400))
    tcp_linger: float = field(default=2.0, metadata=_bounds(0, 3600))
    strict_primary: bool = False
    hoa_per_flow: bool = True
    failback_after: float | None = field(
        default=DEFAULT_FAILBACK_AFTER, metadata=_bounds(0, 86_400)
    )


@dataclass(frozen=True)
class Northbound:
    """The REST API: `host:port` to listen on (IPv6 in brackets); a token file is required
    when the address is not loopback."""

    listen: str = field(default="127.0.0.1:8181", metadata={"pattern": HOST_PORT})
    token_file: Path | None = None


@dataclass(frozen=True)
class Policy:
    """Directory of YAML policy files (docs/policy.md); None: no operator rules."""

    dir: Path | None = None


@dataclass(frozen=True)
class Paths:
    """`state_dir`: what survives a restart (the agent's HoAs and bindings); `run_dir`: sockets
    (the agent's RPC socket `agent.sock`)."""

    state_dir: Path = Path("/var/lib/sdnmip/mn")
    run_dir: Path = Path("/run/sdnmip/mn")


DEFAULT_UPLINKS = (Uplink("wlan", "wlan", "iwlan", 10), Uplink("lte", "lte", "ilte", 20))


@dataclass(frozen=True)
class MnConfig:
    version: int = field(metadata=_bounds(CONFIG_VERSION, CONFIG_VERSION))
    identity: Identity
    home: Home
    uplinks: tuple[Uplink, ...] = DEFAULT_UPLINKS
    preferred_uplink: str | None = None  # None: the first uplink
    binding: Binding = field(default_factory=Binding)
    pool: Pool = field(default_factory=Pool)
    bridge: Bridge = field(default_factory=Bridge)
    controller: Controller = field(default_factory=Controller)
    northbound: Northbound = field(default_factory=Northbound)
    policy: Policy = field(default_factory=Policy)
    paths: Paths = field(default_factory=Paths)

    @property
    def preferred(self) -> str:
        return self.preferred_uplink or self.uplinks[0].name

    @property
    def home_prefixes(self) -> tuple[IPv6Network, ...]:
        """Configured home prefixes, else the Primary HoA's /64."""
        if self.home.prefixes:
            return self.home.prefixes
        return (IPv6Network((self.home.primary_hoa, IID_BITS), strict=False),)

    def uplink(self, name: str) -> Uplink:
        for u in self.uplinks:
            if u.name == name:
                return u
        raise KeyError(name)

    @property
    def agent_socket(self) -> Path:
        return self.paths.run_dir / "agent.sock"

    def table_config(self) -> HoaTableConfig:
        """What the Home Address Table (sdnmip/core/hoa_table.py) needs from this file."""
        by_cost = sorted(self.uplinks, key=lambda u: u.cost)  # stable: file order breaks ties
        return HoaTableConfig(
            primary=self.home.primary_hoa,
            home_prefixes=self.home.prefixes,
            pool_size=self.pool.size,
            hold_time=self.pool.hold_time,
            max_hoas=self.pool.max_hoas,
            default_uplink=self.preferred,
            uplink_order=tuple(u.name for u in by_cost),
            lifetime=self.binding.lifetime,
            timers=BindingTimers(refresh_fraction=self.binding.refresh_fraction),
        )


# ------------------------------------------------------------------------------ loading
def load_config(path: Path | str) -> MnConfig:
    """Read, parse and check `path`; every problem is one ConfigError naming the field."""
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"{p}: cannot read: {exc.strerror}") from None
    try:
        doc = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" line {mark.line + 1}" if mark is not None else ""
        raise ConfigError(f"{p}:{where}: not valid YAML: {getattr(exc, 'problem', exc)}") from None
    except ValueError as exc:  # a value PyYAML's constructors refuse (yaml_values.py)
        raise ConfigError(f"{p}: not valid YAML: {value_error_reason(exc)}") from None
    try:
        return parse_config(doc)
    except ConfigError as exc:
        raise ConfigError(f"{p}: {exc}") from None


def parse_config(doc: object) -> MnConfig:
    """The config from an already loaded YAML/JSON document."""
    if not isinstance(doc, dict):
        raise ConfigError(f"the file must be a mapping of sections, got {_show(doc)}")
    if "version" not in doc:
        raise ConfigError(f"version: missing (this program reads version {CONFIG_VERSION})")
    cfg = _build(MnConfig, doc, "")
    _check(cfg)
    return cfg


def _check(cfg: MnConfig) -> None:
    """Rules that span fields."""
    if not cfg.uplinks:
        raise ConfigError("uplinks: at least one uplink is needed")
    seen: dict[str, str] = {}
    for i, u in enumerate(cfg.uplinks):
        for attr in ("name", "port", "kernel_port"):
            value = getattr(u, attr)
            key = value if attr == "name" else f"dev:{value}"
            if key in seen:
                raise ConfigError(f"uplinks[{i}].{attr}: {value!r} is already used by {seen[key]}")
            seen[key] = f"uplinks[{i}].{attr}"
        if cfg.bridge.hoa_port in (u.port, u.kernel_port):
            raise ConfigError(f"uplinks[{i}]: uses bridge.hoa_port {cfg.bridge.hoa_port!r}")
    names = [u.name for u in cfg.uplinks]
    if cfg.preferred_uplink is not None and cfg.preferred_uplink not in names:
        raise ConfigError(
            f"preferred_uplink: {cfg.preferred_uplink!r} is not an uplink ({', '.join(names)})"
        )
    for i, prefix in enumerate(cfg.home.prefixes):
        if prefix.prefixlen != IID_BITS:
            raise ConfigError(f"home.prefixes[{i}]: {prefix} must be a /64 to form HoAs")
    primary = cfg.home.primary_hoa
    if not _global_unicast(primary):
        raise ConfigError(f"home.primary_hoa: {primary} is not a global unicast address")
    if cfg.home.prefixes and not any(primary in p for p in cfg.home.prefixes):
        raise ConfigError(f"home.primary_hoa: {primary} is on none of home.prefixes")
    if is_reserved_iid(iid_of(primary)):
        raise ConfigError(f"home.primary_hoa: {primary} has a reserved interface id (RFC 5453)")
    if not _global_unicast(cfg.home.agent):
        raise ConfigError(f"home.agent: {cfg.home.agent} is not a global unicast address")
    if cfg.home.agent == primary:
        raise ConfigError("home.primary_hoa: is the Home Agent's address")
    if cfg.pool.size >= cfg.pool.max_hoas:
        raise ConfigError(
            f"pool.size: {cfg.pool.size} spares do not fit max_hoas {cfg.pool.max_hoas} "
            "with the Primary"
        )
    if cfg.binding.lifetime % LIFETIME_UNIT:
        raise ConfigError(
            f"binding.lifetime: {cfg.binding.lifetime:g} is not a multiple of {LIFETIME_UNIT:g} s"
        )
    for path, target, pattern in (
        ("controller.openflow", cfg.controller.openflow, OPENFLOW_TARGET),
        ("northbound.listen", cfg.northbound.listen, HOST_PORT),
    ):
        m = pattern.match(target)
        assert m is not None  # checked by the field's pattern
        _host_port(path, m["host"], m["port"])
    nb_host = HOST_PORT.match(cfg.northbound.listen)
    assert nb_host is not None
    loopback = ip_address(nb_host["host"].strip("[]")).is_loopback
    if not loopback and cfg.northbound.token_file is None:
        raise ConfigError("northbound.token_file: required when northbound.listen is not loopback")


def _host_port(path: str, host: str, port: str) -> None:
    try:
        ip_address(host.strip("[]"))
    except ValueError:
        raise ConfigError(f"{path}: {host!r} is not an IP address") from None
    if not 0 < int(port) < 65536:
        raise ConfigError(f"{path}: port {port} is outside 1..65535")


def _global_unicast(a: IPv6Address) -> bool:
    return not (a.is_multicast or a.is_link_local or a.is_loopback or a.is_unspecified)


def read_key_file(path: Path, field_path: str) -> bytes:
    """A hex key from `path`, refused unless only its owner (root or this user) can access it."""
    try:
        text = read_secret_file(path, field_path, "key")
    except SecretFileError as exc:
        raise ConfigError(str(exc)) from None
    text = "".join(text.split()).removeprefix("0x")
    try:
        key = bytes.fromhex(text)
    except ValueError:
        raise ConfigError(f"{field_path}: {path} must hold the key as hex digits") from None
    if len(key) != MN_HA_KEY_LEN:  # RFC 4285 §5.1; the HA's keys file holds the same 16 octets
        raise ConfigError(
            f"{field_path}: the key is {len(key)} octets, {MN_HA_KEY_LEN} (32 hex digits) needed"
        )
    return key


# ------------------------------------------------------------------------------ generic reader
def _build(cls: type[T], value: object, path: str) -> T:
    if not isinstance(value, dict):
        raise ConfigError(f"{path or 'the file'}: expected a mapping, got {_show(value)}")
    hints = typing.get_type_hints(cls)
    known = {f.name: f for f in fields(cls)}  # type: ignore[arg-type]
    for key in value:
        if key not in known:
            allowed = ", ".join(known)
            raise ConfigError(f"{_join(path, key)}: unknown key (allowed: {allowed})")
    kwargs: dict[str, Any] = {}
    for name, f in known.items():
        sub = _join(path, name)
        if name not in value:
            if f.default is MISSING and f.default_factory is MISSING:
                raise ConfigError(f"{sub}: missing")
            continue
        kwargs[name] = _value(hints[name], value[name], sub, dict(f.metadata))
    return cls(**kwargs)


def _value(hint: Any, value: object, path: str, meta: dict[str, Any]) -> Any:
    origin = typing.get_origin(hint)
    if origin in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(hint) if a is not type(None)]
        if value is None:
            return None
        return _value(args[0], value, path, meta)
    if origin is tuple:
        item = typing.get_args(hint)[0]
        if not isinstance(value, list):
            raise ConfigError(f"{path}: expected a list, got {_show(value)}")
        return tuple(_value(item, v, f"{path}[{i}]", meta) for i, v in enumerate(value))
    if is_dataclass(hint):
        return _build(hint, value, path)  # type: ignore[arg-type]
    if hint is bool:
        if not isinstance(value, bool):
            raise ConfigError(f"{path}: expected true or false, got {_show(value)}")
        return value
    if hint is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigError(f"{path}: expected an integer, got {_show(value)}")
        return _in_bounds(value, path, meta)
    if hint is float:
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise ConfigError(f"{path}: expected a number, got {_show(value)}")
        return float(_in_bounds(value, path, meta))
    if not isinstance(value, str):
        raise ConfigError(f"{path}: expected a string, got {_show(value)}")
    if hint is str:
        pattern = meta.get("pattern")
        if pattern is not None and not pattern.match(value):
            raise ConfigError(f"{path}: {value!r} is not valid here (expected {pattern.pattern})")
        choices = meta.get("choices")
        if choices is not None and value not in choices:
            raise ConfigError(f"{path}: {value!r} is not one of {', '.join(choices)}")
        return value
    if hint is Path:
        if not value.startswith("/"):
            raise ConfigError(f"{path}: {value!r} must be an absolute path")
        return Path(value)
    if hint is IPv6Address:
        try:
            return IPv6Address(value)
        except ValueError:
            raise ConfigError(f"{path}: {value!r} is not an IPv6 address") from None
    if hint is IPv6Network:
        try:
            return IPv6Network(value, strict=True)
        except ValueError as exc:
            raise ConfigError(f"{path}: {value!r} is not an IPv6 prefix ({exc})") from None
    raise AssertionError(f"config schema: no reader for {hint!r} at {path}")


def _in_bounds(value: float, path: str, meta: dict[str, Any]) -> float:
    lo, hi = meta.get("lo"), meta.get("hi")
    if math.isnan(value):  # YAML `.nan` compares false with any bound
        raise ConfigError(f"{path}: expected a number, got nan")
    if (lo is not None and value < lo) or (hi is not None and value > hi):
        raise ConfigError(f"{path}: {value} is outside {lo:g}..{hi:g}")  # both set together
    return value


def _show(value: object) -> str:
    return f"{type(value).__name__} {value!r}"


def _join(path: str, key: object) -> str:
    return f"{path}.{key}" if path else str(key)
