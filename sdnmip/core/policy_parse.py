"""The policy validator: plain data (from YAML or JSON) -> rule values, or one PolicyError.

This is the only way to make rules from outside input. The same functions serve the YAML files in
`flows/`, `sdnmip check-flows` and the REST API, so every path refuses the same inputs with the
same message: unknown keys, wrong types and impossible values name the field by its path
(`rules[2].match.remote_port: 70000 is not a port (0-65535)`). The inverse (`rule_to_data`,
`ruleset_to_data`) gives data that parses back to an equal value, for listing rules.

Reads no files; the document schema is documented in docs/policy.md.
"""

from __future__ import annotations

import difflib
import math
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from ipaddress import AddressValueError, IPv6Address, IPv6Network, NetmaskValueError
from typing import TypeVar

from sdnmip.core.policy_model import (
    DEFAULT_PRECEDENCE,
    Action,
    Fallback,
    Match,
    Path,
    PolicyError,
    Ranges,
    Rule,
    RuleSet,
    Source,
    Strategy,
)
from sdnmip.core.types import IPPROTO_ICMPV6, IPPROTO_TCP, IPPROTO_UDP, Direction, Mode

SCHEMA_VERSION = 1

PORT_MAX = 0xFFFF
PROTO_MAX = 0xFF
FLOW_LABEL_MAX = 0xFFFFF  # 20 bits, RFC 8200 §6
DSCP_MAX = 0x3F  # 6 bits, RFC 2474 §3
PRIORITY_MAX = 0xFFFF
WEIGHT_MAX = 1_000_000
ID_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}")
# Interface-like names (Linux IFNAMSIZ - 1 = 15 characters).
UPLINK_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,14}")
APP_ID_MAX = 128
DESCRIPTION_MAX = 1000

PROTOCOLS: dict[str, int] = {
    "tcp": IPPROTO_TCP,
    "udp": IPPROTO_UDP,
    "icmpv6": IPPROTO_ICMPV6,
    "sctp": 132,
}
# FlowKey carries ports for TCP and UDP only (0 for every other protocol).
PORT_PROTOCOLS = frozenset({IPPROTO_TCP, IPPROTO_UDP})

# DSCP names: class selectors (RFC 2474 §4.2.2), assured forwarding (RFC 2597 §6),
# expedited forwarding (RFC 3246 §2.5), lower effort (RFC 8622 §4).
DSCP_NAMES: dict[str, int] = {f"cs{i}": i << 3 for i in range(8)}
DSCP_NAMES.update({f"af{c}{d}": (c << 3) | (d << 1) for c in range(1, 5) for d in range(1, 4)})
DSCP_NAMES.update({"ef": 46, "le": 1})

RULE_KEYS = (
    "id",
    "description",
    "priority",
    "match",
    "uplink",
    "strategy",
    "max_cost",
    "mode",
    "dedicated_hoa",
    "fallback",
)
MATCH_KEYS = (
    "proto",
    "direction",
    "local",
    "remote",
    "local_port",
    "remote_port",
    "flow_label",
    "dscp",
    "app_id",
)
DOCUMENT_KEYS = ("version", "source", "description", "default", "precedence", "rules")
DEFAULT_KEYS = ("uplink", "strategy", "max_cost")
# Strategies that take a bare name (all uplinks) or a list of candidates.
LIST_STRATEGIES = {
    "prefer": Strategy.PREFER,
    "least_loaded": Strategy.LEAST_LOADED,
    "lowest_rtt": Strategy.LOWEST_RTT,
    "cheapest": Strategy.CHEAPEST,
}
BARE_STRATEGIES = ("least_loaded", "lowest_rtt", "cheapest")


@dataclass(frozen=True, slots=True)
class Context:
    """What the validator checks names and addresses against, when the caller knows it.

    `uplinks`: the configured uplink names (None: any well-formed name is accepted).
    `home_prefixes`: where a dedicated HoA must lie (None: any global unicast address).
    """

    uplinks: frozenset[str] | None = None
    home_prefixes: tuple[IPv6Network, ...] | None = None


T = TypeVar("T")


# ---- document and rules -------------------------------------------------------------------


def parse_ruleset(doc: object, *, origin: str, context: Context | None = None) -> RuleSet:
    """One policy document (`version`, `source`, `rules`, ...) -> RuleSet, or PolicyError."""
    ctx = context or Context()
    data = _mapping(doc, (), DOCUMENT_KEYS, required=("version", "source"))
    version = data["version"]
    if type(version) is not int or version != SCHEMA_VERSION:
        raise PolicyError(
            ("version",), f"{version!r} is not a supported version (this is version 1)"
        )
    source = _enum(data["source"], ("source",), Source, "source")
    description = _description(data.get("description", ""), ("description",))
    default: Action | None = None
    precedence: tuple[Source, ...] | None = None
    for key in ("default", "precedence"):
        if key in data and source is not Source.OPERATOR:
            raise PolicyError(
                (key,), f"only an operator document may set {key} (source is {source.value})"
            )
    if "default" in data:
        default = _default(data["default"], ("default",), ctx)
    if "precedence" in data:
        precedence = _precedence(data["precedence"], ("precedence",))
    raw_rules = data.get("rules", [])
    if not isinstance(raw_rules, list):
        raise PolicyError(("rules",), f"expected a list of rules, got {_kind(raw_rules)}")
    rules: list[Rule] = []
    seen: dict[str, int] = {}
    for i, raw in enumerate(raw_rules):
        rule = parse_rule(raw, source=source, context=ctx, path=("rules", i))
        if rule.id in seen:
            raise PolicyError(
                ("rules", i, "id"), f"duplicate rule id {rule.id!r} (also rules[{seen[rule.id]}])"
            )
        seen[rule.id] = i
        rules.append(rule)
    return RuleSet(
        origin=origin,
        source=source,
        rules=tuple(rules),
        default=default,
        precedence=precedence,
        description=description,
    )


def parse_rule(
    data: object, *, source: Source, context: Context | None = None, path: Path = ()
) -> Rule:
    """One rule (the items of `rules:`, or a REST request body) -> Rule, or PolicyError."""
    ctx = context or Context()
    raw = _mapping(data, path, RULE_KEYS, required=("id",))
    rule_id = _name(raw["id"], (*path, "id"), ID_RE, "a rule id")
    priority = _int(raw.get("priority", 0), (*path, "priority"), 0, PRIORITY_MAX, "a priority")
    match = parse_match(raw.get("match", {}), path=(*path, "match"))
    action = _action(raw, path, ctx)
    mode = _enum(raw.get("mode", Mode.ANCHORED.value), (*path, "mode"), Mode, "mode")
    fallback = _enum(
        raw.get("fallback", Fallback.NEXT.value), (*path, "fallback"), Fallback, "fallback"
    )
    hoa: IPv6Address | None = None
    if raw.get("dedicated_hoa") is not None:
        hoa_path = (*path, "dedicated_hoa")
        if mode is Mode.DIRECT:
            raise PolicyError(
                hoa_path, "not allowed with mode direct (a direct flow uses the uplink's CoA)"
            )
        hoa = _hoa(raw["dedicated_hoa"], hoa_path, ctx)
    return Rule(
        id=rule_id,
        source=source,
        action=action,
        match=match,
        priority=priority,
        mode=mode,
        dedicated_hoa=hoa,
        fallback=fallback,
        description=_description(raw.get("description", ""), (*path, "description")),
    )


def parse_match(data: object, *, path: Path = ()) -> Match:
    if data is None:
        return Match()
    raw = _mapping(data, path, MATCH_KEYS)

    def get(key: str, parse: Callable[[object, Path], T]) -> T | None:
        value = raw.get(key)
        return None if value is None else parse(value, (*path, key))

    proto = get("proto", _protos)
    ports: dict[str, Ranges | None] = {}
    for key in ("local_port", "remote_port"):
        ports[key] = get(key, lambda v, p: _numset(v, p, 0, PORT_MAX, "a port"))
        if ports[key] is not None and proto is not None:
            others = [p for p in proto if p not in PORT_PROTOCOLS]
            if others:
                raise PolicyError(
                    (*path, key),
                    f"protocol {others[0]} has no ports (ports need proto tcp or udp)",
                )
    return Match(
        proto=proto,
        direction=get("direction", lambda v, p: _enum(v, p, Direction, "direction")),
        local=get("local", _prefixes),
        remote=get("remote", _prefixes),
        local_port=ports["local_port"],
        remote_port=ports["remote_port"],
        flow_label=get("flow_label", lambda v, p: _numset(v, p, 0, FLOW_LABEL_MAX, "a flow label")),
        dscp=get("dscp", lambda v, p: _numset(v, p, 0, DSCP_MAX, "a DSCP", names=DSCP_NAMES)),
        app_id=get("app_id", _app_ids),
    )


def parse_action(data: object, *, path: Path = (), context: Context | None = None) -> Action:
    """An action on its own (`uplink`/`strategy`/`max_cost`), e.g. a user's default preference."""
    raw = _mapping(data, path, DEFAULT_KEYS)
    return _action(raw, path, context or Context())


# ---- actions ------------------------------------------------------------------------------


def _action(raw: Mapping[str, object], path: Path, ctx: Context) -> Action:
    has_uplink = raw.get("uplink") is not None
    has_strategy = raw.get("strategy") is not None
    if has_uplink == has_strategy:
        raise PolicyError(path, "needs exactly one of uplink or strategy")
    max_cost: float | None = None
    if raw.get("max_cost") is not None:
        max_cost = _number(raw["max_cost"], (*path, "max_cost"), "a cost")
    if has_uplink:
        name = _uplink(raw["uplink"], (*path, "uplink"), ctx)
        return Action(Strategy.UPLINK, (name,), max_cost=max_cost)
    return _strategy(raw["strategy"], (*path, "strategy"), ctx, max_cost)


def _strategy(value: object, path: Path, ctx: Context, max_cost: float | None) -> Action:
    if isinstance(value, str):
        if value in BARE_STRATEGIES:
            return Action(LIST_STRATEGIES[value], None, max_cost=max_cost)
        if value in ("weighted", "prefer"):
            raise PolicyError(path, f"{value} needs its uplinks, e.g. {_example(value)}")
        raise PolicyError(
            path, _unknown("strategy", value, (*BARE_STRATEGIES, "weighted", "prefer"))
        )
    if not isinstance(value, dict) or len(value) != 1:
        raise PolicyError(
            path,
            "expected a strategy name or a mapping with one strategy, e.g. "
            "{weighted: {wlan: 3, lte: 1}}",
        )
    ((kind, arg),) = value.items()
    sub = (*path, str(kind))
    if kind == "weighted":
        names, weights = _weights(arg, sub, ctx)
        return Action(Strategy.WEIGHTED, names, weights, max_cost)
    if kind in LIST_STRATEGIES:
        return Action(LIST_STRATEGIES[kind], _uplink_list(arg, sub, ctx), max_cost=max_cost)
    raise PolicyError(path, _unknown("strategy", kind, ("weighted", *LIST_STRATEGIES)))


def _weights(value: object, path: Path, ctx: Context) -> tuple[tuple[str, ...], tuple[int, ...]]:
    if not isinstance(value, dict) or not value:
        raise PolicyError(
            path, f"expected a mapping of uplink to weight, e.g. {_example('weighted')}"
        )
    names: list[str] = []
    weights: list[int] = []
    for name, weight in value.items():
        names.append(_uplink(name, (*path, str(name)), ctx))
        weights.append(_int(weight, (*path, str(name)), 0, WEIGHT_MAX, "a weight"))
    if not any(weights):
        raise PolicyError(path, "at least one weight must be above 0")
    return tuple(names), tuple(weights)


def _uplink_list(value: object, path: Path, ctx: Context) -> tuple[str, ...]:
    if not isinstance(value, list) or not value:
        raise PolicyError(path, f"expected a non-empty list of uplinks, got {_kind(value)}")
    names: list[str] = []
    for i, item in enumerate(value):
        name = _uplink(item, (*path, i), ctx)
        if name in names:
            raise PolicyError((*path, i), f"uplink {name!r} is listed twice")
        names.append(name)
    return tuple(names)


def _uplink(value: object, path: Path, ctx: Context) -> str:
    name = _name(value, path, UPLINK_RE, "an uplink name")
    if ctx.uplinks is not None and name not in ctx.uplinks:
        known = ", ".join(sorted(ctx.uplinks)) or "none"
        raise PolicyError(path, f"unknown uplink {name!r} (configured: {known})")
    return name


def _default(value: object, path: Path, ctx: Context) -> Action:
    return parse_action(value, path=path, context=ctx)


def _precedence(value: object, path: Path) -> tuple[Source, ...]:
    every = ", ".join(s.value for s in Source)
    if not isinstance(value, list):
        raise PolicyError(
            path, f"expected a list of every source once ({every}), got {_kind(value)}"
        )
    order = tuple(_enum(item, (*path, i), Source, "source") for i, item in enumerate(value))
    if len(set(order)) != len(order) or len(order) != len(DEFAULT_PRECEDENCE):
        raise PolicyError(path, f"must list every source exactly once ({every})")
    return order


def _hoa(value: object, path: Path, ctx: Context) -> IPv6Address:
    if not isinstance(value, str):
        raise PolicyError(path, f"expected an IPv6 address, got {_kind(value)}")
    try:
        addr = IPv6Address(value)
    except AddressValueError:
        raise PolicyError(path, f"{value!r} is not an IPv6 address") from None
    if (
        addr.is_unspecified
        or addr.is_loopback
        or addr.is_multicast
        or addr.is_link_local
        or addr.ipv4_mapped is not None
    ):
        raise PolicyError(path, f"{addr} is not a global unicast address")
    if ctx.home_prefixes is not None and not any(addr in p for p in ctx.home_prefixes):
        prefixes = ", ".join(str(p) for p in ctx.home_prefixes)
        raise PolicyError(path, f"{addr} is not in the home prefix ({prefixes})")
    return addr


# ---- match fields -------------------------------------------------------------------------


def _items(value: object, path: Path) -> list[tuple[object, Path]]:
    """A field that takes one value or a non-empty list of values (any of them matches)."""
    if isinstance(value, list):
        if not value:
            raise PolicyError(path, "an empty list matches nothing: leave the field out instead")
        return [(item, (*path, i)) for i, item in enumerate(value)]
    return [(value, path)]


def _protos(value: object, path: Path) -> tuple[int, ...]:
    out: list[int] = []
    for item, p in _items(value, path):
        if isinstance(item, str):
            if item.lower() not in PROTOCOLS:
                raise PolicyError(p, _unknown("protocol", item, tuple(PROTOCOLS)) + " or 0-255")
            number = PROTOCOLS[item.lower()]
        else:
            number = _int(item, p, 0, PROTO_MAX, "a protocol number")
        if number not in out:
            out.append(number)
    return tuple(sorted(out))


def _numset(
    value: object,
    path: Path,
    low: int,
    high: int,
    what: str,
    *,
    names: Mapping[str, int] | None = None,
) -> Ranges:
    """An int, a "lo-hi" string, a name (DSCP) or a list of those -> merged inclusive ranges."""
    ranges: list[tuple[int, int]] = []
    for item, p in _items(value, path):
        if isinstance(item, str):
            text = item.strip().lower()
            if names is not None and text in names:
                ranges.append((names[text], names[text]))
                continue
            m = re.fullmatch(r"(\d+)\s*(?:-\s*(\d+))?", text)
            if m is None:
                hint = " or a name such as ef, af41, cs1" if names else ""
                raise PolicyError(p, f"{item!r} is not {what}, a range like '10-20'{hint}")
            lo = _in_range(int(m.group(1)), p, low, high, what)
            hi = lo if m.group(2) is None else _in_range(int(m.group(2)), p, low, high, what)
            if hi < lo:
                raise PolicyError(p, f"{item!r} is an empty range (start above end)")
            ranges.append((lo, hi))
        else:
            number = _int(item, p, low, high, what)
            ranges.append((number, number))
    return merge_ranges(ranges)


def merge_ranges(ranges: list[tuple[int, int]]) -> Ranges:
    merged: list[tuple[int, int]] = []
    for lo, hi in sorted(ranges):
        if merged and lo <= merged[-1][1] + 1:
            merged[-1] = (merged[-1][0], max(merged[-1][1], hi))
        else:
            merged.append((lo, hi))
    return tuple(merged)


def _prefixes(value: object, path: Path) -> tuple[IPv6Network, ...]:
    out: list[IPv6Network] = []
    for item, p in _items(value, path):
        if not isinstance(item, str):
            raise PolicyError(p, f"expected an IPv6 prefix or address, got {_kind(item)}")
        if "." in item and ":" not in item:
            raise PolicyError(p, f"{item!r} is not an IPv6 prefix (IPv4 is not supported)")
        try:
            net = IPv6Network(item, strict=True)
        except ValueError as exc:
            if isinstance(exc, NetmaskValueError) or "/" not in item:
                raise PolicyError(p, f"{item!r} is not an IPv6 prefix or address") from None
            try:
                loose = IPv6Network(item, strict=False)
            except ValueError:
                raise PolicyError(p, f"{item!r} is not an IPv6 prefix or address") from None
            raise PolicyError(p, f"{item!r} has host bits set (did you mean {loose}?)") from None
        if net not in out:
            out.append(net)
    return tuple(out)


def _app_ids(value: object, path: Path) -> tuple[str, ...]:
    out: list[str] = []
    for item, p in _items(value, path):
        if not isinstance(item, str) or not item or len(item) > APP_ID_MAX:
            raise PolicyError(p, f"expected an application id (1-{APP_ID_MAX} characters)")
        if item not in out:
            out.append(item)
    return tuple(out)


# ---- scalars ------------------------------------------------------------------------------


def _mapping(
    value: object, path: Path, allowed: tuple[str, ...], required: tuple[str, ...] = ()
) -> dict[str, object]:
    if not isinstance(value, dict):
        raise PolicyError(path, f"expected a mapping, got {_kind(value)}")
    for key in value:
        if not isinstance(key, str) or key not in allowed:
            raise PolicyError((*path, str(key)), _unknown("key", key, allowed))
    # A key given as null (`rules:` with nothing after it) is the same as a missing key.
    present = {key: item for key, item in value.items() if item is not None}
    for key in required:
        if key not in present:
            raise PolicyError((*path, key), "required key is missing")
    return present


def _int(value: object, path: Path, low: int, high: int, what: str) -> int:
    # bool is an int in Python; `yes`/`on` in YAML 1.1 are booleans, never numbers here.
    if type(value) is not int:
        raise PolicyError(path, f"expected an integer ({low}-{high}), got {_kind(value)}")
    return _in_range(value, path, low, high, what)


def _in_range(value: int, path: Path, low: int, high: int, what: str) -> int:
    if not low <= value <= high:
        raise PolicyError(path, f"{value} is not {what} ({low}-{high})")
    return value


def _number(value: object, path: Path, what: str) -> float:
    if type(value) not in (int, float):
        raise PolicyError(path, f"expected a number, got {_kind(value)}")
    number = float(value)  # type: ignore[arg-type]
    if not math.isfinite(number) or number < 0:
        raise PolicyError(path, f"{value} is not {what} (a finite number >= 0)")
    return number


def _name(value: object, path: Path, pattern: re.Pattern[str], what: str) -> str:
    if not isinstance(value, str):
        raise PolicyError(path, f"expected {what} (a string), got {_kind(value)}")
    if pattern.fullmatch(value) is None:
        raise PolicyError(
            path,
            f"{value!r} is not {what} (letters, digits, '_', '.', '-'; "
            f"at most {_max_len(pattern)} characters)",
        )
    return value


def _max_len(pattern: re.Pattern[str]) -> int:
    m = re.search(r"\{0,(\d+)\}", pattern.pattern)
    return 1 + int(m.group(1)) if m else 0


E = TypeVar("E", Source, Direction, Mode, Fallback)


def _enum(value: object, path: Path, kind: type[E], what: str) -> E:
    choices = tuple(str(member.value) for member in kind)
    if isinstance(value, str):
        for member in kind:
            if member.value == value:
                return member
    raise PolicyError(path, _unknown(what, value, choices))


def _description(value: object, path: Path) -> str:
    if not isinstance(value, str) or len(value) > DESCRIPTION_MAX:
        raise PolicyError(path, f"expected a text of at most {DESCRIPTION_MAX} characters")
    return value


def _unknown(what: str, value: object, choices: tuple[str, ...]) -> str:
    # An unknown key is named by the error's path already.
    text = "unknown key" if what == "key" else f"unknown {what} {value!r}"
    if isinstance(value, str):
        close = difflib.get_close_matches(value, choices, n=1)
        if close:
            return f"{text} (did you mean {close[0]!r}?)"
    return f"{text} (expected one of: {', '.join(choices)})"


def _kind(value: object) -> str:
    if value is None:
        return "nothing (null)"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, dict):
        return "a mapping"
    scalars = {bool: "a boolean", int: "an integer", float: "a number", str: "a string"}
    name = scalars.get(type(value), type(value).__name__)
    return f"{name} ({value!r})"


def _example(strategy: str) -> str:
    if strategy == "weighted":
        return "{weighted: {wlan: 3, lte: 1}}"
    return "{prefer: [wlan, lte]}"


# ---- back to data -------------------------------------------------------------------------


def ranges_to_data(ranges: Ranges) -> object:
    items: list[object] = [lo if lo == hi else f"{lo}-{hi}" for lo, hi in ranges]
    return items[0] if len(items) == 1 else items


def match_to_data(match: Match) -> dict[str, object]:
    names = {number: name for name, number in PROTOCOLS.items()}
    out: dict[str, object] = {}
    if match.proto is not None:
        protos: list[object] = [names.get(p, p) for p in match.proto]
        out["proto"] = protos[0] if len(protos) == 1 else protos
    if match.direction is not None:
        out["direction"] = match.direction.value
    for key, nets in (("local", match.local), ("remote", match.remote)):
        if nets is not None:
            texts = [str(n) for n in nets]
            out[key] = texts[0] if len(texts) == 1 else texts
    for key, ranges in (
        ("local_port", match.local_port),
        ("remote_port", match.remote_port),
        ("flow_label", match.flow_label),
        ("dscp", match.dscp),
    ):
        if ranges is not None:
            out[key] = ranges_to_data(ranges)
    if match.app_id is not None:
        out["app_id"] = match.app_id[0] if len(match.app_id) == 1 else list(match.app_id)
    return out


def action_to_data(action: Action) -> dict[str, object]:
    out: dict[str, object] = {}
    if action.strategy is Strategy.UPLINK:
        assert action.uplinks is not None
        out["uplink"] = action.uplinks[0]
    elif action.strategy is Strategy.WEIGHTED:
        assert action.uplinks is not None
        out["strategy"] = {"weighted": dict(zip(action.uplinks, action.weights, strict=True))}
    elif action.uplinks is None:
        out["strategy"] = action.strategy.value
    else:
        out["strategy"] = {action.strategy.value: list(action.uplinks)}
    if action.max_cost is not None:
        out["max_cost"] = action.max_cost
    return out


def rule_to_data(rule: Rule) -> dict[str, object]:
    """A rule as plain data that `parse_rule` turns back into an equal Rule."""
    out: dict[str, object] = {"id": rule.id}
    if rule.description:
        out["description"] = rule.description
    out["priority"] = rule.priority
    out["match"] = match_to_data(rule.match)
    out.update(action_to_data(rule.action))
    out["mode"] = rule.mode.value
    if rule.dedicated_hoa is not None:
        out["dedicated_hoa"] = str(rule.dedicated_hoa)
    out["fallback"] = rule.fallback.value
    return out


def ruleset_to_data(ruleset: RuleSet) -> dict[str, object]:
    out: dict[str, object] = {"version": SCHEMA_VERSION, "source": ruleset.source.value}
    if ruleset.description:
        out["description"] = ruleset.description
    if ruleset.default is not None:
        out["default"] = action_to_data(ruleset.default)
    if ruleset.precedence is not None:
        out["precedence"] = [s.value for s in ruleset.precedence]
    out["rules"] = [rule_to_data(r) for r in ruleset.rules]
    return out
