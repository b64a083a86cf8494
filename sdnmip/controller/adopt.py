"""Rebuilding a flow the controller does not know from its rules on the switch (adoption).

Owns: `rebuild()`, which turns the per-flow rules of one unknown flow id found in a flow dump
(its uplink rule, its downlink rule, or both) back into a `FlowEntry`, and the strict check that
they are rules this controller would have built: every fact is read from the rule (5-tuple and
addresses from the match; the HoA, or the CoA and access router, and the uplink from the
actions and ports), the rules are built again from the entry by `RuleBuilder` and must come out
identical (table, priority, match, actions), and the HoA must lie in a home prefix, the output
or input port must be an uplink's, and the local address must be the Primary HoA.
Must not: change any table (the logic adds the entry and holds its HoA), guess anything it can
read from the rules, or build rules itself.

Why: the controller persists its tables at most once a second, so a controller killed (SIGKILL,
power) just after creating a flow restarts without it while the switch still forwards it
(fail_mode secure). Its rules carry our cookie and its flow id; their match and actions say
everything that forwarding needs, so the restarted controller takes the flow over instead of
deleting the rules of a working connection.

What the rules do not say, and what an adopted flow gets instead:
- who opened the flow: for ICMPv6 the message types say it (an echo request leaving the MN is
  outgoing); for other protocols the side with the lower port is taken for the server (the
  usual convention: a service listens on a well-known or registered port, its clients use
  ephemeral ones); equal ports count as outgoing;
- flow label, DSCP, application, the policy rule that placed it, and the uplink a user pinned
  it to: zero/None (policy decisions re-run on the next resteer);
- `own_hoa` (the flow reserves its HoA): set when the configuration gives every flow its own
  HoA (`hoa_per_flow`), for outgoing flows on a dynamic HoA that no other adopted or live flow
  uses; `shared` when another live flow to the same correspondent already uses the HoA;
- counters of earlier instances of its rules (only the current rules' counters are known).
A flow of which only the downlink rule is left (its uplink rule idled out, as happens to a
receive-only UDP flow) has no uplink on the switch; the caller supplies one (where the HoA's
other flows go, else where the HoA is bound), and its uplink rule comes back when its next
packet misses, as it would have without the restart.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from ipaddress import IPv6Address
from typing import Any

from sdnmip.controller import ofmsg
from sdnmip.controller import pipeline as pl
from sdnmip.controller.config import LogicConfig
from sdnmip.controller.reconcile import rule_key
from sdnmip.controller.rules import Egress, RuleBuilder
from sdnmip.core.flows import FlowEntry, icmpv6_peer_type
from sdnmip.core.types import (
    IPPROTO_ICMPV6,
    IPPROTO_TCP,
    IPPROTO_UDP,
    Direction,
    FlowDescriptor,
    FlowKey,
    Mode,
)

# RFC 4443 §4.1 echo request, RFC 4620 §4 node information query: sent by the side that starts.
ICMPV6_REQUESTS = frozenset({128, 139})


@dataclass(frozen=True, slots=True)
class Rebuilt:
    """A flow rebuilt from its rules; `has_up` is False when only its downlink rule was left."""

    entry: FlowEntry
    has_up: bool


@dataclass(frozen=True, slots=True)
class Rejected:
    """Rules with our flow cookie that are not a flow we would have built (deleted instead)."""

    flow_id: int
    reason: str


@dataclass(slots=True)
class AdoptionReport:
    """What one reconciliation adopted and refused, for the shell to log."""

    adopted: list[int] = field(default_factory=list)
    rejected: list[Rejected] = field(default_factory=list)
    superseded: list[int] = field(default_factory=list)  # live flows an adopted one replaced


class _Refused(Exception):
    """One rule does not parse as ours; the message is the reason."""


def rebuild(
    flow_id: int,
    rules: Sequence[ofmsg.FlowStatView],
    cfg: LogicConfig,
    builder: RuleBuilder,
    uplink_for: Callable[[IPv6Address], str],
) -> Rebuilt | Rejected:
    """The flow `flow_id` from its rules in a dump, or why they are not a flow of ours.

    `uplink_for(hoa)` names the uplink of an anchored flow whose uplink rule is gone.
    """
    try:
        return _rebuild(flow_id, rules, cfg, builder, uplink_for)
    except _Refused as exc:
        return Rejected(flow_id, str(exc))


def _rebuild(
    flow_id: int,
    rules: Sequence[ofmsg.FlowStatView],
    cfg: LogicConfig,
    builder: RuleBuilder,
    uplink_for: Callable[[IPv6Address], str],
) -> Rebuilt:
    up: ofmsg.FlowStatView | None = None
    down: ofmsg.FlowStatView | None = None
    for stat in rules:
        parsed = pl.parse_cookie(stat.cookie)
        if parsed is None or parsed[1] != flow_id or parsed[0] not in pl.FLOW_KINDS:
            raise AssertionError(f"rule with cookie {stat.cookie:#x} is not of flow {flow_id}")
        if parsed[0] is pl.CookieKind.FLOW_UP:
            if up is not None:
                raise _Refused("several uplink rules")
            up = stat
        else:
            if down is not None:
                raise _Refused("several downlink rules")
            down = stat
    ports = _Ports(cfg)
    if up is not None:
        entry, egress = _from_up(flow_id, up, cfg, ports)
        _same(builder.up_rule(entry, egress), up, "uplink rule")
        if down is not None:
            _same(builder.down_rule(entry), down, "downlink rule (does not fit its uplink rule)")
        return Rebuilt(entry, has_up=True)
    if down is None:
        raise AssertionError(f"no rules of flow {flow_id}")
    entry = _from_down(flow_id, down, cfg, ports, uplink_for)
    _same(builder.down_rule(entry), down, "downlink rule")
    return Rebuilt(entry, has_up=False)


class _Ports:
    """Uplink names by the ofport of their internal (i<U>) and physical ports."""

    __slots__ = ("by_phys", "by_tun")

    def __init__(self, cfg: LogicConfig) -> None:
        self.by_tun = {u.tun_port: u.name for u in cfg.uplinks}
        self.by_phys = {u.phys_port: u.name for u in cfg.uplinks}


def _from_up(
    fid: int, stat: ofmsg.FlowStatView, cfg: LogicConfig, ports: _Ports
) -> tuple[FlowEntry, Egress | None]:
    if stat.table_id != pl.TableId.UPLINK:
        raise _Refused(f"uplink rule in table {stat.table_id}")
    m = _match(stat)
    local, remote = _addr(m, "ipv6_src"), _addr(m, "ipv6_dst")
    key = _key(m, local, remote, outgoing=True)
    sets, port = _actions(stat)
    if port in ports.by_tun:
        hoa = sets.get("ipv6_src", local)
        if not isinstance(hoa, IPv6Address):
            raise _Refused("rewrites ipv6_src to no address")
        _check_hoa(hoa, cfg)
        entry = _entry(
            fid, key, cfg, hoa=hoa, uplink=ports.by_tun[port], mode=Mode.ANCHORED, coa=None
        )
        return entry, None
    if port in ports.by_phys:
        coa, router = sets.get("ipv6_src"), sets.get("eth_dst")
        if not isinstance(coa, IPv6Address) or not isinstance(router, str):
            raise _Refused("direct rule without a CoA or router to rewrite to")
        if cfg.in_home(coa):
            raise _Refused(f"direct rule's CoA {coa} is in a home prefix")
        entry = _entry(
            fid, key, cfg, hoa=None, uplink=ports.by_phys[port], mode=Mode.DIRECT, coa=coa
        )
        return entry, Egress(coa, router)
    raise _Refused(f"outputs to port {port}, which is no uplink's")


def _from_down(
    fid: int,
    stat: ofmsg.FlowStatView,
    cfg: LogicConfig,
    ports: _Ports,
    uplink_for: Callable[[IPv6Address], str],
) -> FlowEntry:
    m = _match(stat)
    remote, wire = _addr(m, "ipv6_src"), _addr(m, "ipv6_dst")
    sets, _ = _actions(stat)
    local = sets.get("ipv6_dst", wire)
    if not isinstance(local, IPv6Address):
        raise _Refused("rewrites ipv6_dst to no address")
    key = _key(m, local, remote, outgoing=False)
    if stat.table_id == pl.TableId.DOWNLINK:
        _check_hoa(wire, cfg)
        return _entry(
            fid, key, cfg, hoa=wire, uplink=uplink_for(wire), mode=Mode.ANCHORED, coa=None
        )
    if stat.table_id == pl.TableId.DIRECT_IN:
        in_port = m.get("in_port")
        if not isinstance(in_port, int) or in_port not in ports.by_phys:
            raise _Refused(f"direct downlink rule from port {in_port}, which is no uplink's")
        if cfg.in_home(wire):
            raise _Refused(f"direct rule's CoA {wire} is in a home prefix")
        uplink = ports.by_phys[in_port]
        return _entry(fid, key, cfg, hoa=None, uplink=uplink, mode=Mode.DIRECT, coa=wire)
    raise _Refused(f"downlink rule in table {stat.table_id}")


def _entry(
    fid: int,
    key: FlowKey,
    cfg: LogicConfig,
    *,
    hoa: IPv6Address | None,
    uplink: str,
    mode: Mode,
    coa: IPv6Address | None,
) -> FlowEntry:
    if key.local != cfg.primary_hoa:
        raise _Refused(f"local address {key.local} is not the Primary HoA")
    desc = FlowDescriptor(key, guess_direction(key))
    return FlowEntry(fid, desc, hoa, uplink, mode, coa=coa)


def guess_direction(key: FlowKey) -> Direction:
    """Who opened the flow, as far as its 5-tuple tells (see the module docstring)."""
    if key.proto == IPPROTO_ICMPV6:
        return Direction.OUTGOING if key.local_port in ICMPV6_REQUESTS else Direction.INCOMING
    if key.local_port < key.remote_port:
        return Direction.INCOMING
    return Direction.OUTGOING


def _check_hoa(hoa: IPv6Address, cfg: LogicConfig) -> None:
    if not cfg.in_home(hoa):
        raise _Refused(f"HoA {hoa} is not in a home prefix")
    if hoa in cfg.ha_addresses:
        raise _Refused(f"HoA {hoa} is the home agent's address")


def _match(stat: ofmsg.FlowStatView) -> dict[str, Any]:
    return dict(ofmsg.match_key(stat.match))


def _addr(m: Mapping[str, Any], name: str) -> IPv6Address:
    value = m.get(name)
    if not isinstance(value, IPv6Address):
        raise _Refused(f"no exact {name} in the match")
    return value


def _key(m: Mapping[str, Any], local: IPv6Address, remote: IPv6Address, outgoing: bool) -> FlowKey:
    """The application's 5-tuple from one direction's match (the inverse of rules._l4)."""
    proto = m.get("ip_proto")
    if not isinstance(proto, int):
        raise _Refused("no ip_proto in the match")
    if proto in (IPPROTO_TCP, IPPROTO_UDP):
        name = "tcp" if proto == IPPROTO_TCP else "udp"
        src, dst = m.get(f"{name}_src"), m.get(f"{name}_dst")
        if not isinstance(src, int) or not isinstance(dst, int):
            raise _Refused(f"no {name} ports in the match")
        local_port, remote_port = (src, dst) if outgoing else (dst, src)
    elif proto == IPPROTO_ICMPV6:
        sent = m.get("icmpv6_type")
        if not isinstance(sent, int):
            raise _Refused("no icmpv6_type in the match")
        # The type the rule's direction carries: the MN's on the way up, the remote's down.
        local_port = sent if outgoing else icmpv6_peer_type(sent)
        remote_port = icmpv6_peer_type(local_port)
    else:
        local_port = remote_port = 0
    return FlowKey(proto, local, local_port, remote, remote_port)


def _actions(stat: ofmsg.FlowStatView) -> tuple[dict[str, Any], int]:
    """The set-fields (by field) and the output port of a one-apply-actions rule."""
    inst = stat.instructions
    if len(inst) != 1 or inst[0][0] != ofmsg.OFPIT_APPLY_ACTIONS:
        raise _Refused("instructions are not one apply-actions")
    sets: dict[str, Any] = {}
    outputs: list[int] = []
    for act in inst[0][1]:
        if act[0] == "set_field":
            sets[act[1]] = act[2]
        elif act[0] == "output":
            outputs.append(act[1])
        else:
            raise _Refused(f"action {act[0]} is not ours")
    if len(outputs) != 1:
        raise _Refused(f"{len(outputs)} outputs")
    return sets, outputs[0]


def _same(msg: Any, stat: ofmsg.FlowStatView, what: str) -> None:
    """The rule we would build for the entry must be the rule on the switch, exactly."""
    if rule_key(msg) != (stat.table_id, stat.priority, ofmsg.match_key(stat.match)):
        raise _Refused(f"{what}: match or priority is not what this controller builds")
    if ofmsg.instructions_key(msg.instructions) != stat.instructions:
        raise _Refused(f"{what}: actions are not what this controller builds")
