"""The MN's OpenFlow 1.3 pipeline, declared as data, and the wrapper that enforces it.

Owns: every table id, priority tier, cookie layout and metadata bit the controller uses (named
here and nowhere else), the declaration of each table (what it may match, which fields it may
rewrite, where it may go next, whether it may send to the controller, whether its rules are
per-flow), and `Table`, through which every flow-mod is built and checked (Faucet's
faucet_pipeline.py / ValveTable idea: a flow-mod that breaks the declaration is a bug and fails
loudly with PipelineViolation).
Must not: decide anything about flows (sdnmip/controller/logic.py) or build raw messages other
than through sdnmip/controller/ofmsg.py.

```
            in_port=hoa0 (IPv6, not multicast/link-local)      META_UP
 0 INGRESS  in_port=i<U>, dst in a home prefix (not the HA) -> META_DOWN ---> 1 TCP_END
            in_port=<U>                                        META_DIRECT_IN
            in_port=i<U>, dst = the HA / anything else -> output U; MH (135) to a HoA -> drop
 1 TCP_END  TCP with FIN or RST: copy to the controller, then goto by metadata:
            META_UP -> 2 UPLINK, META_DOWN -> 3 DOWNLINK, META_DIRECT_IN -> 4 DIRECT_IN
 2 UPLINK   per flow (from hoa0): ipv6_src := HoA, eth_dst := MAC(i<U>), output i<U>
            direct mode: ipv6_src := CoA, eth_src := MAC(i<U>), eth_dst := router, output U
            miss -> controller (new outgoing flow, or an expired uplink rule)
 3 DOWNLINK per flow (inner packets to a HoA, from any i<U>): ipv6_dst := Primary,
            eth_dst := MAC(hoa0), output hoa0; miss -> controller (Figure 5, expired rule)
 4 DIRECT_IN per direct flow (in_port=U, dst = CoA): ipv6_dst := Primary -> hoa0;
            otherwise U -> i<U> (the kernel owns the CoA: tunnel, signalling, ND)
```

Cookies: bits 63-48 0x5D1F (sdnmip), bits 47-40 the kind, bits 39-0 the flow id (0 for the
pipeline's own rules). `FLOW_COOKIE_MASK` selects both rules of one flow.
"""

from __future__ import annotations

import enum
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from os_ken.ofproto import ofproto_v1_3_parser as parser

from sdnmip.controller import ofmsg

# -- cookies ------------------------------------------------------------------------------------

COOKIE_PREFIX = 0x5D1F
COOKIE_PREFIX_SHIFT = 48
COOKIE_KIND_SHIFT = 40
COOKIE_ID_BITS = 40
COOKIE_ID_MASK = (1 << COOKIE_ID_BITS) - 1
COOKIE_PREFIX_MASK = 0xFFFF << COOKIE_PREFIX_SHIFT
# Prefix and flow id, any kind: both directions of one flow.
FLOW_COOKIE_MASK = COOKIE_PREFIX_MASK | COOKIE_ID_MASK
ALL_ONES_64 = (1 << 64) - 1
# The testbed's own plumbing flows; swept at reconciliation like any foreign cookie.
TESTBED_COOKIE = 0x7E57000000000000


class CookieKind(enum.IntEnum):
    STATIC = 0x01  # table-miss and dispatch rules that do not depend on ports
    PLUMBING = 0x02  # per-port rules (hoa0, each uplink)
    FLOW_UP = 0x10  # a flow's uplink-direction rule
    FLOW_DOWN = 0x11  # a flow's downlink-direction rule


FLOW_KINDS = frozenset({CookieKind.FLOW_UP, CookieKind.FLOW_DOWN})


def cookie(kind: CookieKind, ident: int = 0) -> int:
    if not 0 <= ident <= COOKIE_ID_MASK:
        raise ValueError(f"cookie id {ident} does not fit in {COOKIE_ID_BITS} bits")
    return (COOKIE_PREFIX << COOKIE_PREFIX_SHIFT) | (int(kind) << COOKIE_KIND_SHIFT) | ident


def parse_cookie(value: int) -> tuple[CookieKind, int] | None:
    """(kind, id) of an sdnmip cookie; None for anyone else's (or an unknown kind)."""
    if value >> COOKIE_PREFIX_SHIFT != COOKIE_PREFIX:
        return None
    try:
        kind = CookieKind((value >> COOKIE_KIND_SHIFT) & 0xFF)
    except ValueError:
        return None
    return kind, value & COOKIE_ID_MASK


def is_ours(value: int) -> bool:
    return parse_cookie(value) is not None


# -- tables, priorities, metadata ---------------------------------------------------------------


class TableId(enum.IntEnum):
    INGRESS = 0
    TCP_END = 1
    UPLINK = 2
    DOWNLINK = 3
    DIRECT_IN = 4


PRIO_MISS = 0
PRIO_PLUMB_LOW = 100  # default forwarding of a port (i<U> -> U, U -> i<U>)
PRIO_DISPATCH = 200  # send a class of packets into the flow tables
PRIO_FILTER = 300  # drops that must win over dispatch (MH, multicast from hoa0)
PRIO_PLUMB_HIGH = 400  # kernel traffic to the HA that must not be taken for inner packets
PRIO_TCP_FIN = 300
PRIO_TCP_RST = 310  # above FIN so a packet with both flags has one well-defined rule
PRIO_TCP_PASS = 100
PRIO_FLOW = 1000  # per-flow rules

META_DIR_MASK = 0x3  # metadata bits 0-1: which way the packet is going
META_UP = 0x1  # from hoa0: an application's packet
META_DOWN = 0x2  # from i<U>: an inner packet the kernel decapsulated, to a HoA
META_DIRECT_IN = 0x3  # from a physical uplink

IPPROTO_MH = 135  # RFC 6275 §6.1: Mobility Header
TCP_FIN = 0x001
TCP_RST = 0x004
# Bytes of a FIN/RST copy sent to the controller: Ethernet + IPv6 + a few extension headers + TCP.
TCP_END_COPY_LEN = 256

ETH_TYPE_IPV6 = ofmsg.ETH_TYPE_IPV6

_L4 = frozenset(
    {"ip_proto", "tcp_src", "tcp_dst", "udp_src", "udp_dst", "icmpv6_type", "icmpv6_code"}
)


@dataclass(frozen=True, slots=True)
class TableSpec:
    """What one table may do."""

    table_id: TableId
    name: str
    match_fields: frozenset[str]
    set_fields: frozenset[str]
    next_tables: frozenset[TableId]
    priorities: frozenset[int]
    cookie_kinds: frozenset[CookieKind]
    to_controller: bool = False
    writes_metadata: bool = False


PIPELINE: tuple[TableSpec, ...] = (
    TableSpec(
        TableId.INGRESS,
        "ingress",
        match_fields=frozenset({"in_port", "eth_type", "ipv6_dst", "ip_proto"}),
        set_fields=frozenset(),
        next_tables=frozenset({TableId.TCP_END}),
        priorities=frozenset(
            {PRIO_MISS, PRIO_PLUMB_LOW, PRIO_DISPATCH, PRIO_FILTER, PRIO_PLUMB_HIGH}
        ),
        cookie_kinds=frozenset({CookieKind.STATIC, CookieKind.PLUMBING}),
        writes_metadata=True,
    ),
    TableSpec(
        TableId.TCP_END,
        "tcp_end",
        match_fields=frozenset({"metadata", "eth_type", "ip_proto", "tcp_flags"}),
        set_fields=frozenset(),
        next_tables=frozenset({TableId.UPLINK, TableId.DOWNLINK, TableId.DIRECT_IN}),
        priorities=frozenset({PRIO_MISS, PRIO_TCP_PASS, PRIO_TCP_FIN, PRIO_TCP_RST}),
        cookie_kinds=frozenset({CookieKind.STATIC}),
        to_controller=True,
    ),
    TableSpec(
        TableId.UPLINK,
        "uplink",
        match_fields=frozenset({"in_port", "eth_type", "ipv6_src", "ipv6_dst"}) | _L4,
        set_fields=frozenset({"ipv6_src", "eth_src", "eth_dst"}),
        next_tables=frozenset(),
        priorities=frozenset({PRIO_MISS, PRIO_FLOW}),
        cookie_kinds=frozenset({CookieKind.STATIC, CookieKind.FLOW_UP}),
        to_controller=True,
    ),
    TableSpec(
        TableId.DOWNLINK,
        "downlink",
        match_fields=frozenset({"eth_type", "ipv6_src", "ipv6_dst"}) | _L4,
        set_fields=frozenset({"ipv6_dst", "eth_dst"}),
        next_tables=frozenset(),
        priorities=frozenset({PRIO_MISS, PRIO_FLOW}),
        cookie_kinds=frozenset({CookieKind.STATIC, CookieKind.FLOW_DOWN}),
        to_controller=True,
    ),
    TableSpec(
        TableId.DIRECT_IN,
        "direct_in",
        match_fields=frozenset({"in_port", "eth_type", "ipv6_src", "ipv6_dst"}) | _L4,
        set_fields=frozenset({"ipv6_dst", "eth_dst"}),
        next_tables=frozenset(),
        priorities=frozenset({PRIO_MISS, PRIO_PLUMB_LOW, PRIO_FLOW}),
        cookie_kinds=frozenset({CookieKind.STATIC, CookieKind.PLUMBING, CookieKind.FLOW_DOWN}),
    ),
)

SPECS: dict[int, TableSpec] = {spec.table_id: spec for spec in PIPELINE}


class PipelineViolation(AssertionError):
    """A flow-mod that does not respect the pipeline declaration: a bug in the controller."""


def check_flow_mod(msg: Any) -> None:
    """Raise PipelineViolation unless `msg` (an OFPFlowMod) respects its table's declaration."""
    command = msg.command
    if command in (ofmsg.OFPFC_DELETE, ofmsg.OFPFC_DELETE_STRICT):
        _check_delete(msg)
        return
    spec = SPECS.get(msg.table_id)
    if spec is None:
        raise PipelineViolation(f"flow-mod for undeclared table {msg.table_id}")
    where = f"table {spec.name}"
    if msg.priority not in spec.priorities:
        raise PipelineViolation(f"{where}: priority {msg.priority} is not a declared tier")
    parsed = parse_cookie(msg.cookie)
    if parsed is None or parsed[0] not in spec.cookie_kinds:
        raise PipelineViolation(f"{where}: cookie {msg.cookie:#018x} is not allowed here")
    kind, ident = parsed
    if kind in FLOW_KINDS:
        if ident == 0 or msg.idle_timeout <= 0 or not msg.flags & ofmsg.OFPFF_SEND_FLOW_REM:
            raise PipelineViolation(
                f"{where}: a per-flow rule needs a flow id, an idle timeout and SEND_FLOW_REM"
            )
        if msg.priority != PRIO_FLOW:
            raise PipelineViolation(f"{where}: per-flow rules use PRIO_FLOW")
    elif msg.idle_timeout or msg.hard_timeout or ident:
        raise PipelineViolation(f"{where}: pipeline rules are permanent and carry id 0")
    for name, _ in ofmsg.match_items(msg.match):
        if name not in spec.match_fields:
            raise PipelineViolation(f"{where}: may not match on {name}")
    for inst in msg.instructions:
        _check_instruction(spec, where, inst)


def _check_instruction(spec: TableSpec, where: str, inst: Any) -> None:
    if isinstance(inst, parser.OFPInstructionGotoTable):
        if inst.table_id not in spec.next_tables:
            raise PipelineViolation(f"{where}: may not go to table {inst.table_id}")
    elif isinstance(inst, parser.OFPInstructionWriteMetadata):
        if not spec.writes_metadata or inst.metadata_mask & ~META_DIR_MASK:
            raise PipelineViolation(f"{where}: may not write metadata {inst.metadata_mask:#x}")
    elif isinstance(inst, parser.OFPInstructionActions):
        for act in inst.actions:
            if isinstance(act, parser.OFPActionSetField):
                if act.key not in spec.set_fields:
                    raise PipelineViolation(f"{where}: may not rewrite {act.key}")
            elif isinstance(act, parser.OFPActionOutput):
                if act.port == ofmsg.OFPP_CONTROLLER and not spec.to_controller:
                    raise PipelineViolation(f"{where}: may not send to the controller")
            else:
                raise PipelineViolation(f"{where}: undeclared action {type(act).__name__}")
    else:
        raise PipelineViolation(f"{where}: undeclared instruction {type(inst).__name__}")


def _check_delete(msg: Any) -> None:
    if msg.command == ofmsg.OFPFC_DELETE_STRICT:
        # Strict deletes name one rule exactly (match + priority): allowed for any cookie, so
        # reconciliation can sweep foreign rules without touching anything else.
        if msg.table_id >= ofmsg.OFPTT_ALL or msg.cookie_mask != ALL_ONES_64:
            raise PipelineViolation("a strict delete names one table and one exact cookie")
        return
    if msg.cookie_mask & COOKIE_PREFIX_MASK != COOKIE_PREFIX_MASK or not is_ours(msg.cookie):
        raise PipelineViolation("a non-strict delete must be limited to sdnmip cookies")


class Table:
    """Builds the flow-mods of one table and checks each against the declaration."""

    def __init__(self, table_id: TableId) -> None:
        self.spec = SPECS[table_id]
        self.table_id = int(table_id)

    def add(
        self,
        priority: int,
        cookie_: int,
        match_items: Sequence[tuple[str, Any]],
        instructions: Sequence[Any],
        *,
        idle_timeout: int = 0,
        flags: int = 0,
    ) -> Any:
        return self._checked(
            ofmsg.OFPFC_ADD,
            priority,
            cookie_,
            match_items,
            instructions,
            idle_timeout=idle_timeout,
            flags=flags,
        )

    def modify_strict(
        self,
        priority: int,
        cookie_: int,
        match_items: Sequence[tuple[str, Any]],
        instructions: Sequence[Any],
        *,
        idle_timeout: int = 0,
        flags: int = 0,
    ) -> Any:
        """Replace the actions of exactly this rule in place (no gap: make-before-break).

        OpenFlow 1.3 modify keeps the rule's counters and timeouts, and does nothing if the rule
        has gone meanwhile (the next packet then misses and the logic re-installs it).
        """
        return self._checked(
            ofmsg.OFPFC_MODIFY_STRICT,
            priority,
            cookie_,
            match_items,
            instructions,
            idle_timeout=idle_timeout,
            flags=flags,
        )

    def _checked(
        self,
        command: int,
        priority: int,
        cookie_: int,
        match_items: Sequence[tuple[str, Any]],
        instructions: Sequence[Any],
        *,
        idle_timeout: int,
        flags: int,
    ) -> Any:
        msg = ofmsg.flow_mod(
            command=command,
            table_id=self.table_id,
            priority=priority,
            cookie=cookie_,
            match_=ofmsg.match(match_items),
            instructions=instructions,
            idle_timeout=idle_timeout,
            flags=flags,
        )
        check_flow_mod(msg)
        return msg


TABLES: dict[TableId, Table] = {tid: Table(tid) for tid in TableId}


def delete_rule(
    table_id: int, priority: int, cookie_: int, match_items: Sequence[tuple[str, Any]]
) -> Any:
    """Delete exactly one rule (match, priority and cookie), in any table: the reconciliation's
    sweep of rules that are not ours or no longer expected."""
    msg = ofmsg.flow_mod(
        command=ofmsg.OFPFC_DELETE_STRICT,
        table_id=table_id,
        priority=priority,
        cookie=cookie_,
        cookie_mask=ALL_ONES_64,
        match_=ofmsg.match(match_items),
    )
    check_flow_mod(msg)
    return msg


def delete_flow_rules(flow_id: int) -> Any:
    """Delete both rules of one flow, in every table, by cookie."""
    msg = ofmsg.delete_by_cookie(cookie(CookieKind.FLOW_UP, flow_id), FLOW_COOKIE_MASK)
    check_flow_mod(msg)
    return msg
