"""The policy as values: rule sources, matches, actions, rules, rule sets and the error class.

Everything here is immutable and already valid: these objects are built only by the validator
(`sdnmip.core.policy_parse`) and by `Policy.build`, which checks what spans several rule sets
(unique rule ids per source, one default, one precedence). This module does no matching and no
choosing (see `policy.py` and `strategies.py`) and never reads files.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable
from dataclasses import dataclass, field
from ipaddress import IPv6Address, IPv6Network

from sdnmip.core.types import Direction, Mode

PathPart = str | int
Path = tuple[PathPart, ...]
# Inclusive integer intervals, sorted and non-overlapping (ports, DSCP, flow labels, addresses).
Ranges = tuple[tuple[int, int], ...]


class PolicyError(ValueError):
    """A policy input was refused. The message names the bad field by its path.

    `path` is the location inside one document (`("rules", 2, "match", "remote_port")`), `origin`
    the document (a file name, "rest", ...), `line` the 1-based line when the origin is a file.
    """

    def __init__(
        self, path: Path, reason: str, *, origin: str | None = None, line: int | None = None
    ) -> None:
        self.path = path
        self.reason = reason
        self.origin = origin
        self.line = line
        super().__init__(self._text())

    def _text(self) -> str:
        where = format_path(self.path)
        body = f"{where}: {self.reason}" if where else self.reason
        if self.origin is None:
            return body
        if self.line is None:
            return f"{self.origin}: {body}"
        return f"{self.origin}:{self.line}: {body}"

    def located(self, origin: str, line: int | None) -> PolicyError:
        """The same error, placed in a document (for messages that name a file and line)."""
        return PolicyError(self.path, self.reason, origin=origin, line=line)


def format_path(path: Path) -> str:
    """("rules", 2, "match", "remote_port") -> "rules[2].match.remote_port"."""
    text = ""
    for part in path:
        if isinstance(part, int):
            text += f"[{part}]"
        else:
            text += f".{part}" if text else part
    return text


class Source(enum.Enum):
    """Who stated a rule. Precedence between sources is `DEFAULT_PRECEDENCE` unless the operator
    sets another order (docs/policy.md says why this order)."""

    OPERATOR = "operator"  # the MN's administrator: files in flows/, the REST API
    NETWORK = "network"  # indicated by the network, e.g. an external SDN controller
    APPLICATION = "application"  # a program on the MN declaring its own flows
    USER = "user"  # the user's preferences ("prefer wlan", a cost ceiling)


DEFAULT_PRECEDENCE: tuple[Source, ...] = (
    Source.OPERATOR,
    Source.NETWORK,
    Source.APPLICATION,
    Source.USER,
)


class Fallback(enum.Enum):
    """What a rule does when none of its uplinks is usable."""

    NEXT = "next"  # step aside: the next matching rule (then the default) decides
    NONE = "none"  # no other network: the flow is held on the rule's uplink (not sent)


class Strategy(enum.Enum):
    """How an action picks one uplink among its candidates (all skip unusable uplinks)."""

    UPLINK = "uplink"  # one named uplink
    PREFER = "prefer"  # the first usable in a preference list
    WEIGHTED = "weighted"  # smooth weighted round-robin of new flows
    LEAST_LOADED = "least_loaded"  # lowest measured rate (UplinkView.rate_bps)
    LOWEST_RTT = "lowest_rtt"  # lowest UplinkView.rtt_ms (unknown RTT ranks last)
    CHEAPEST = "cheapest"  # lowest UplinkView.cost


@dataclass(frozen=True, slots=True)
class Action:
    """Which network: a strategy over candidate uplinks.

    `uplinks` None means every uplink the controller knows, in its configured order.
    `weights` is parallel to `uplinks` for WEIGHTED and empty otherwise.
    `max_cost` drops candidates whose configured cost is above it.
    """

    strategy: Strategy
    uplinks: tuple[str, ...] | None
    weights: tuple[int, ...] = ()
    max_cost: float | None = None


@dataclass(frozen=True, slots=True)
class Match:
    """Which flows a rule applies to. None = any value; a tuple = any of its values (OR);
    the fields together must all hold (AND). Ranges are inclusive."""

    proto: tuple[int, ...] | None = None
    direction: Direction | None = None
    local: tuple[IPv6Network, ...] | None = None
    remote: tuple[IPv6Network, ...] | None = None
    local_port: Ranges | None = None
    remote_port: Ranges | None = None
    flow_label: Ranges | None = None
    dscp: Ranges | None = None
    app_id: tuple[str, ...] | None = None

    @property
    def specificity(self) -> tuple[int, int]:
        """(fields given, prefix bits): more specific rules go first within one priority.

        Prefix bits are the shortest prefix length of `local` plus that of `remote`, so a rule for
        one correspondent (/128) sorts before a rule for its whole network (/64).
        """
        fields = sum(
            value is not None
            for value in (
                self.proto,
                self.direction,
                self.local,
                self.remote,
                self.local_port,
                self.remote_port,
                self.flow_label,
                self.dscp,
                self.app_id,
            )
        )
        bits = 0
        for nets in (self.local, self.remote):
            if nets is not None:
                bits += min(net.prefixlen for net in nets)
        return fields, bits


@dataclass(frozen=True, slots=True)
class Rule:
    """One rule of one source. `id` is unique within its source."""

    id: str
    source: Source
    action: Action
    match: Match = field(default_factory=Match)
    priority: int = 0
    mode: Mode = Mode.ANCHORED
    dedicated_hoa: IPv6Address | None = None
    fallback: Fallback = Fallback.NEXT
    description: str = ""

    @property
    def qualified_id(self) -> str:
        """What `Decision.rule_id` carries: unique across sources ("operator:voice")."""
        return f"{self.source.value}:{self.id}"


@dataclass(frozen=True, slots=True)
class RuleSet:
    """The rules of one document (one YAML file, the REST API's operator rules, one application).

    `origin` names the document and is unique in a Policy. Only operator rule sets may carry a
    `default` action or a `precedence`, and only one rule set of a Policy may carry each.
    """

    origin: str
    source: Source
    rules: tuple[Rule, ...] = ()
    default: Action | None = None
    precedence: tuple[Source, ...] | None = None
    description: str = ""


def sort_key(rule: Rule, precedence: tuple[Source, ...]) -> tuple[int, int, int, int, str]:
    """Source precedence, then priority (high first), then specificity, then id: a total order."""
    fields, bits = rule.match.specificity
    return (precedence.index(rule.source), -rule.priority, -fields, -bits, rule.id)


def ordered_rules(rulesets: Iterable[RuleSet], precedence: tuple[Source, ...]) -> tuple[Rule, ...]:
    rules = [rule for rs in rulesets for rule in rs.rules]
    return tuple(sorted(rules, key=lambda r: sort_key(r, precedence)))
