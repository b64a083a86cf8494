"""The testbed's topology description: strict loading and validation of `topology.yaml`.

Owns: the typed, validated model of nodes, links, addresses, link profiles, the MN's bridge and the
router advertisement settings, and `--set`/`--profile` overrides. Every mistake in the file is one
`SpecError` naming the field.

Must not: touch the system (no namespaces, no processes). Pure data in, data out.
"""

from __future__ import annotations

import copy
import ipaddress
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

import yaml

from sdnmip.yaml_values import value_error_reason

ROLES = ("mn", "router", "host")
NODE_NAME = re.compile(r"^[a-z][a-z0-9]{0,7}$")
LINK_NAME = re.compile(r"^[a-z][a-z0-9_-]{0,15}$")
# Linux limits interface names to 15 bytes; the link emulator adds WIRE_SUFFIX to shaped ends.
IFACE_NAME = re.compile(r"^[a-z][a-z0-9_-]{0,14}$")
WIRE_SUFFIX = "-w"
# Names that collide with sysctl directories (net.ipv6.conf.all/default) or iproute2 keywords
# (an interface named `up` breaks `ip link set up up`).
RESERVED_IFACES = frozenset({"all", "default", "lo", "up", "down", "dev", "type", "name"})
MIN_MTU = 1280  # RFC 8200 §5: every IPv6 link carries at least 1280 bytes
MAX_MTU = 65535
# RFC 6275 §7.5 lowers RFC 4861's RA interval limits for routers serving mobile nodes; radvd
# accepts them when the Advertisement Interval option is on, as it is in the testbed.
MIN_MIN_RTR_ADV_INTERVAL_S = 0.03
MIN_MAX_RTR_ADV_INTERVAL_S = 0.07
SLAAC_PREFIX_LEN = 64  # RFC 4862 §5.5.3 with RFC 4291 64-bit interface identifiers
DEFAULT_QUEUE_PKTS = 1000  # as netem's default limit


class SpecError(ValueError):
    """A mistake in the topology description; the message names the field."""


@dataclass(frozen=True)
class Shaping:
    """What the link emulator does to one uplink, in each direction."""

    delay_ms: float
    rate_mbit: float | None
    queue_pkts: int = DEFAULT_QUEUE_PKTS

    @property
    def active(self) -> bool:
        return self.delay_ms > 0 or self.rate_mbit is not None

    def describe(self) -> str:
        rate = "no rate limit" if self.rate_mbit is None else f"{self.rate_mbit:g} Mbit/s"
        return f"delay {self.delay_ms:g} ms, {rate}"


@dataclass(frozen=True)
class Route:
    to: str  # "default" or a prefix
    via: str


@dataclass(frozen=True)
class Node:
    name: str
    role: str
    routes: tuple[Route, ...]


@dataclass(frozen=True)
class End:
    """One end of a link: an interface of a node with its static addresses."""

    node: str
    iface: str
    addresses: tuple[str, ...]  # with prefix length, e.g. "2001:db8:1::1/64"
    advertise: tuple[str, ...]  # prefixes radvd advertises on this interface


@dataclass(frozen=True)
class Link:
    name: str
    mtu: int
    a: End
    b: End

    @property
    def ends(self) -> tuple[End, End]:
        return (self.a, self.b)


@dataclass(frozen=True)
class MnSpec:
    bridge: str
    uplinks: dict[str, str]  # MN interface (OVS port) -> internal port holding its CoA
    uplink_port_mtu: int
    hoa_port: str
    hoa_port_mtu: int


@dataclass(frozen=True)
class RaSpec:
    min_interval_s: float
    max_interval_s: float
    router_lifetime_s: int
    valid_lifetime_s: int
    preferred_lifetime_s: int


@dataclass(frozen=True)
class Topology:
    profile: str
    profiles: dict[str, dict[str, Shaping]]
    nodes: dict[str, Node]
    links: dict[str, Link]
    mn: MnSpec
    ra: RaSpec
    document: dict[str, Any]  # the validated document, to record in the testbed's state

    @property
    def mn_node(self) -> str:
        return next(n.name for n in self.nodes.values() if n.role == "mn")

    def shaping(self, link: str) -> Shaping | None:
        """The active profile's shaping of `link`, or None for a plain veth."""
        shaping = self.profiles[self.profile].get(link)
        return shaping if shaping is not None and shaping.active else None

    def uplink_link(self, uplink: str) -> Link:
        """The link whose MN end is the interface `uplink`."""
        for link in self.links.values():
            for end in link.ends:
                if end.node == self.mn_node and end.iface == uplink:
                    return link
        raise KeyError(uplink)

    def access_router(self, uplink: str) -> End:
        """The far end of `uplink`: the access router's interface that advertises its prefix."""
        link = self.uplink_link(uplink)
        return link.b if link.a.node == self.mn_node else link.a

    def end(self, node: str, iface: str) -> End:
        for link in self.links.values():
            for end in link.ends:
                if end.node == node and end.iface == iface:
                    return end
        raise KeyError(f"{node}/{iface}")

    def ends_of(self, node: str) -> list[tuple[Link, End]]:
        return [
            (link, end) for link in self.links.values() for end in link.ends if end.node == node
        ]


# ------------------------------------------------------------------------------ field readers
def _mapping(value: object, path: str) -> Mapping[str, Any]:
    if not isinstance(value, Mapping):
        raise SpecError(f"{path}: expected a mapping, got {_show(value)}")
    for key in value:
        if not isinstance(key, str):
            raise SpecError(f"{path}: keys must be strings, got {_show(key)}")
    return value


def _keys(
    value: object, path: str, required: Iterable[str], optional: Iterable[str] = ()
) -> Mapping[str, Any]:
    mapping = _mapping(value, path)
    req, opt = list(required), list(optional)
    unknown = [k for k in mapping if k not in req and k not in opt]
    if unknown:
        allowed = ", ".join(req + opt)
        raise SpecError(f"{_join(path, unknown[0])}: unknown key (allowed: {allowed})")
    for key in req:
        if key not in mapping:
            raise SpecError(f"{_join(path, key)}: missing")
    return mapping


def _str(value: object, path: str, pattern: re.Pattern[str] | None = None) -> str:
    if not isinstance(value, str):
        raise SpecError(f"{path}: expected a string, got {_show(value)}")
    if pattern is not None and not pattern.match(value):
        raise SpecError(f"{path}: {value!r} does not match {pattern.pattern}")
    return value


def _int(value: object, path: str, lo: int, hi: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise SpecError(f"{path}: expected an integer, got {_show(value)}")
    if not lo <= value <= hi:
        raise SpecError(f"{path}: {value} is outside {lo}..{hi}")
    return value


def _number(value: object, path: str, lo: float, hi: float) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise SpecError(f"{path}: expected a number, got {_show(value)}")
    if not lo <= value <= hi:
        raise SpecError(f"{path}: {value} is outside {lo:g}..{hi:g}")
    return float(value)


def _list(value: object, path: str) -> Sequence[Any]:
    if not isinstance(value, list):
        raise SpecError(f"{path}: expected a list, got {_show(value)}")
    return value


def _show(value: object) -> str:
    return f"{type(value).__name__} {value!r}"


def _join(path: str, key: object) -> str:
    return f"{path}.{key}" if path else str(key)


# ------------------------------------------------------------------------------ sections
def _shaping(value: object, path: str) -> Shaping:
    m = _keys(value, path, ["delay_ms", "rate_mbit"], ["queue_pkts"])
    rate = m["rate_mbit"]
    return Shaping(
        delay_ms=_number(m["delay_ms"], f"{path}.delay_ms", 0, 10_000),
        rate_mbit=None if rate is None else _number(rate, f"{path}.rate_mbit", 0.01, 100_000),
        queue_pkts=_int(
            m.get("queue_pkts", DEFAULT_QUEUE_PKTS), f"{path}.queue_pkts", 1, 1_000_000
        ),
    )


def _node(name: str, value: object, path: str) -> Node:
    m = _keys(value, path, ["role"], ["routes"])
    role = _str(m["role"], f"{path}.role")
    if role not in ROLES:
        raise SpecError(f"{path}.role: {role!r} is not one of {', '.join(ROLES)}")
    routes = []
    for i, item in enumerate(_list(m.get("routes", []), f"{path}.routes")):
        rpath = f"{path}.routes[{i}]"
        r = _keys(item, rpath, ["to", "via"])
        to = _str(r["to"], f"{rpath}.to")
        if to != "default":
            to = str(_network(to, f"{rpath}.to"))
        routes.append(Route(to=to, via=str(_address(r["via"], f"{rpath}.via"))))
    return Node(name=name, role=role, routes=tuple(routes))


def _address(value: object, path: str) -> ipaddress.IPv6Address:
    text = _str(value, path)
    try:
        return ipaddress.IPv6Address(text)
    except ValueError:
        raise SpecError(f"{path}: {text!r} is not an IPv6 address") from None


def _network(value: object, path: str) -> ipaddress.IPv6Network:
    text = _str(value, path)
    try:
        return ipaddress.IPv6Network(text)
    except ValueError:
        raise SpecError(f"{path}: {text!r} is not an IPv6 prefix (host bits must be 0)") from None


def _iface(value: object, path: str) -> str:
    name = _str(value, path, IFACE_NAME)
    if name in RESERVED_IFACES:
        raise SpecError(f"{path}: {name!r} is reserved (sysctl or iproute2 keyword)")
    return name


def _end(value: object, path: str, nodes: Mapping[str, Node]) -> End:
    m = _keys(value, path, ["node", "iface"], ["addresses", "advertise"])
    node = _str(m["node"], f"{path}.node")
    if node not in nodes:
        raise SpecError(f"{path}.node: no node {node!r} (nodes: {', '.join(nodes)})")
    addresses = []
    for i, item in enumerate(_list(m.get("addresses", []), f"{path}.addresses")):
        text = _str(item, f"{path}.addresses[{i}]")
        try:
            addresses.append(ipaddress.IPv6Interface(text))
        except ValueError:
            raise SpecError(f"{path}.addresses[{i}]: {text!r} is not an IPv6 address/len") from None
    advertise = []
    for i, item in enumerate(_list(m.get("advertise", []), f"{path}.advertise")):
        ipath = f"{path}.advertise[{i}]"
        prefix = _network(item, ipath)
        if prefix.prefixlen != SLAAC_PREFIX_LEN:
            raise SpecError(f"{ipath}: SLAAC needs a /{SLAAC_PREFIX_LEN}, got /{prefix.prefixlen}")
        if not any(a.network == prefix for a in addresses):
            raise SpecError(f"{ipath}: the interface has no address in {prefix}")
        advertise.append(str(prefix))
    if advertise and nodes[node].role != "router":
        raise SpecError(f"{path}.advertise: only a router advertises (node {node!r} is not one)")
    return End(
        node=node,
        iface=_iface(m["iface"], f"{path}.iface"),
        addresses=tuple(str(a) for a in addresses),
        advertise=tuple(advertise),
    )


def _link(name: str, value: object, path: str, nodes: Mapping[str, Node]) -> Link:
    m = _keys(value, path, ["mtu", "a", "b"])
    link = Link(
        name=name,
        mtu=_int(m["mtu"], f"{path}.mtu", MIN_MTU, MAX_MTU),
        a=_end(m["a"], f"{path}.a", nodes),
        b=_end(m["b"], f"{path}.b", nodes),
    )
    if link.a.node == link.b.node:
        raise SpecError(f"{path}: both ends are on node {link.a.node!r}")
    return link


def _mn(value: object, path: str) -> MnSpec:
    m = _keys(value, path, ["bridge", "uplinks", "uplink_port_mtu", "hoa_port", "hoa_port_mtu"])
    uplinks = {
        _iface(k, f"{path}.uplinks"): _iface(v, f"{path}.uplinks.{k}")
        for k, v in _mapping(m["uplinks"], f"{path}.uplinks").items()
    }
    if not uplinks:
        raise SpecError(f"{path}.uplinks: the MN needs at least one uplink")
    return MnSpec(
        bridge=_iface(m["bridge"], f"{path}.bridge"),
        uplinks=uplinks,
        uplink_port_mtu=_int(m["uplink_port_mtu"], f"{path}.uplink_port_mtu", MIN_MTU, MAX_MTU),
        hoa_port=_iface(m["hoa_port"], f"{path}.hoa_port"),
        hoa_port_mtu=_int(m["hoa_port_mtu"], f"{path}.hoa_port_mtu", MIN_MTU, MAX_MTU),
    )


def _ra(value: object, path: str) -> RaSpec:
    keys = [
        "min_interval_s",
        "max_interval_s",
        "router_lifetime_s",
        "valid_lifetime_s",
        "preferred_lifetime_s",
    ]
    m = _keys(value, path, keys)
    ra = RaSpec(
        min_interval_s=_number(
            m["min_interval_s"], f"{path}.min_interval_s", MIN_MIN_RTR_ADV_INTERVAL_S, 1350
        ),
        max_interval_s=_number(
            m["max_interval_s"], f"{path}.max_interval_s", MIN_MAX_RTR_ADV_INTERVAL_S, 1800
        ),
        router_lifetime_s=_int(m["router_lifetime_s"], f"{path}.router_lifetime_s", 0, 9000),
        valid_lifetime_s=_int(m["valid_lifetime_s"], f"{path}.valid_lifetime_s", 1, 2**31),
        preferred_lifetime_s=_int(
            m["preferred_lifetime_s"], f"{path}.preferred_lifetime_s", 1, 2**31
        ),
    )
    if ra.min_interval_s > 0.75 * ra.max_interval_s:  # RFC 4861 §6.2.1
        raise SpecError(f"{path}.min_interval_s: must be at most 0.75 x max_interval_s")
    if ra.router_lifetime_s and ra.router_lifetime_s < ra.max_interval_s:  # RFC 4861 §6.2.1
        raise SpecError(f"{path}.router_lifetime_s: must be 0 or at least max_interval_s")
    if ra.preferred_lifetime_s > ra.valid_lifetime_s:  # RFC 4861 §4.6.2
        raise SpecError(f"{path}.preferred_lifetime_s: must not exceed valid_lifetime_s")
    return ra


def _check_names(nodes: Mapping[str, Node], links: Mapping[str, Link], mn: MnSpec) -> None:
    mns = [n.name for n in nodes.values() if n.role == "mn"]
    if len(mns) != 1:
        raise SpecError(f"nodes: exactly one node must have role mn, found {mns or 'none'}")
    seen: dict[tuple[str, str], str] = {}
    for link in links.values():
        for side, end in zip("ab", link.ends, strict=True):
            key = (end.node, end.iface)
            if key in seen:
                raise SpecError(
                    f"links.{link.name}.{side}.iface: {end.node} already has {end.iface!r} "
                    f"(links.{seen[key]})"
                )
            seen[key] = link.name
    mn_ifaces = {iface for node, iface in seen if node == mns[0]}
    for uplink, port in mn.uplinks.items():
        if uplink not in mn_ifaces:
            raise SpecError(f"mn.uplinks.{uplink}: the MN has no link with interface {uplink!r}")
        if port in mn_ifaces or port == mn.bridge:
            raise SpecError(f"mn.uplinks.{uplink}: port {port!r} clashes with another name")
    internal = [*mn.uplinks.values(), mn.hoa_port]
    if len(set(internal)) != len(internal) or mn.hoa_port in mn_ifaces or mn.bridge in internal:
        raise SpecError("mn: bridge, uplink ports and hoa_port must have distinct names")
    extra = mn_ifaces - set(mn.uplinks)
    if extra:
        raise SpecError(f"mn.uplinks: MN interface {sorted(extra)[0]!r} is not listed as an uplink")


def _check_uplinks(topo_mn: str, links: Mapping[str, Link], mn: MnSpec) -> None:
    for uplink in mn.uplinks:
        link = next(
            link
            for link in links.values()
            if (topo_mn, uplink) in {(e.node, e.iface) for e in link.ends}
        )
        far = link.b if link.a.node == topo_mn else link.a
        side = "b" if far is link.b else "a"
        if len(far.advertise) != 1:
            raise SpecError(
                f"links.{link.name}.{side}.advertise: the access router of uplink {uplink!r} must "
                "advertise exactly one prefix (one CoA per uplink)"
            )


def _check_profiles(
    profiles: Mapping[str, dict[str, Shaping]], links: Mapping[str, Link], mn_node: str, mn: MnSpec
) -> None:
    uplink_links = {
        link.name: link
        for link in links.values()
        if any(e.node == mn_node and e.iface in mn.uplinks for e in link.ends)
    }
    for pname, shaped in profiles.items():
        for lname in shaped:
            if lname not in uplink_links:
                raise SpecError(
                    f"profiles.{pname}.{lname}: only the MN's uplink links can be shaped "
                    f"({', '.join(sorted(uplink_links))})"
                )
            link = uplink_links[lname]
            far = link.b if link.a.node == mn_node else link.a
            if len(far.iface) + len(WIRE_SUFFIX) > 15:
                raise SpecError(
                    f"profiles.{pname}.{lname}: interface {far.iface!r} is too long to shape "
                    f"(at most {15 - len(WIRE_SUFFIX)} characters)"
                )


def parse(document: object) -> Topology:
    """Validate a loaded YAML document into a Topology (or raise SpecError naming the field)."""
    top = _keys(
        document, "", ["profile", "profiles", "nodes", "links", "mn", "router_advertisements"]
    )
    nodes = {
        _str(name, "nodes", NODE_NAME): _node(name, value, f"nodes.{name}")
        for name, value in _mapping(top["nodes"], "nodes").items()
    }
    links = {
        _str(name, "links", LINK_NAME): _link(name, value, f"links.{name}", nodes)
        for name, value in _mapping(top["links"], "links").items()
    }
    profiles: dict[str, dict[str, Shaping]] = {}
    for pname, pvalue in _mapping(top["profiles"], "profiles").items():
        entries = _mapping({} if pvalue is None else pvalue, f"profiles.{pname}")
        profiles[pname] = {
            lname: _shaping(svalue, f"profiles.{pname}.{lname}")
            for lname, svalue in entries.items()
        }
    profile = _str(top["profile"], "profile")
    if profile not in profiles:
        raise SpecError(f"profile: no profile {profile!r} (profiles: {', '.join(profiles)})")
    mn = _mn(top["mn"], "mn")
    _check_names(nodes, links, mn)
    mn_node = next(n.name for n in nodes.values() if n.role == "mn")
    _check_uplinks(mn_node, links, mn)
    _check_profiles(profiles, links, mn_node, mn)
    linked = {e.node for link in links.values() for e in link.ends}
    for name in nodes:
        if name not in linked:
            raise SpecError(f"nodes.{name}: the node has no link")
    return Topology(
        profile=profile,
        profiles=profiles,
        nodes=nodes,
        links=links,
        mn=mn,
        ra=_ra(top["router_advertisements"], "router_advertisements"),
        document=copy.deepcopy(dict(top)),
    )


def apply_override(document: dict[str, Any], assignment: str) -> None:
    """Apply one `path.to.key=value` to the raw document (value parsed as YAML). Missing
    intermediate mappings are created; validation afterwards catches unknown keys."""
    path, sep, raw = assignment.partition("=")
    if not sep or not path:
        raise SpecError(
            f"--set {assignment!r}: expected KEY=VALUE, e.g. profiles.default.lte.delay_ms=40"
        )
    try:
        value = yaml.safe_load(raw) if raw else None
    except (yaml.YAMLError, ValueError):  # ValueError: an integer of thousands of digits
        raise SpecError(f"--set {path}: {raw!r} is not a YAML value") from None
    keys = path.split(".")
    node: Any = document
    for i, key in enumerate(keys[:-1]):
        nxt = node.get(key) if isinstance(node, dict) else None
        if nxt is None and isinstance(node, dict):
            nxt = node[key] = {}
        if not isinstance(nxt, dict):
            raise SpecError(f"--set {path}: {'.'.join(keys[: i + 1])} is not a mapping")
        node = nxt
    node[keys[-1]] = value


def default_path() -> Path:
    return Path(str(resources.files("sdnmip.testbed").joinpath("topology.yaml")))


def load_document(path: Path | None = None) -> dict[str, Any]:
    source = path or default_path()
    try:
        text = source.read_text()
    except OSError as exc:
        raise SpecError(f"{source}: cannot read ({exc.strerror})") from None
    try:
        document = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise SpecError(f"{source}: not valid YAML ({exc})") from None
    except ValueError as exc:  # a value PyYAML's constructors refuse (yaml_values.py)
        raise SpecError(f"{source}: not valid YAML ({value_error_reason(exc)})") from None
    if not isinstance(document, dict):
        raise SpecError(f"{source}: expected a mapping at the top level")
    return document


def load_topology(
    path: Path | None = None, *, profile: str | None = None, overrides: Sequence[str] = ()
) -> Topology:
    """Load the topology (the shipped reference one by default), apply `--set` overrides and the
    profile choice, and validate the result."""
    document = load_document(path)
    for assignment in overrides:
        apply_override(document, assignment)
    if profile is not None:
        document["profile"] = profile
    return parse(document)
