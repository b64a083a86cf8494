"""The one module that builds OpenFlow 1.3 messages, as plain values (datapath=None).

Owns: builders for matches, actions, instructions, flow-mods, packet-outs, barriers and stats
requests; the canonical (comparable) form of a match and of an instruction list, shared by the
reconciliation and the tests; the conversion of flow-stats replies into `FlowStat` values.
Must not: know the pipeline's tables, cookies or priorities (sdnmip/controller/pipeline.py), hold
state, or send anything: the app shell attaches a datapath to these messages and sends them.

Speed: `OFPMatch(**kwargs)` normalises every field through os-ken's OXM tables (about 50 us for
a 5-tuple match); `match()` hands os-ken the fields already in wire order through its
`_ordered_fields` argument (about 1.5 us), which serialises to the same bytes (see the tests).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from ipaddress import IPv6Address, IPv6Network
from typing import Any, Protocol

from os_ken.ofproto import ofproto_v1_3 as ofp
from os_ken.ofproto import ofproto_v1_3_parser as parser

# os-ken ships no type information: its message objects are Any to mypy.
OFMessage = Any
OFMatch = Any
OFAction = Any
OFInstruction = Any

OFPP_CONTROLLER: int = ofp.OFPP_CONTROLLER
OFPTT_ALL: int = ofp.OFPTT_ALL
OFPFF_SEND_FLOW_REM: int = ofp.OFPFF_SEND_FLOW_REM
OFPFC_ADD: int = ofp.OFPFC_ADD
OFPFC_MODIFY_STRICT: int = ofp.OFPFC_MODIFY_STRICT
OFPFC_DELETE: int = ofp.OFPFC_DELETE
OFPFC_DELETE_STRICT: int = ofp.OFPFC_DELETE_STRICT
OFPRR_IDLE_TIMEOUT: int = ofp.OFPRR_IDLE_TIMEOUT
OFPRR_HARD_TIMEOUT: int = ofp.OFPRR_HARD_TIMEOUT
OFPRR_DELETE: int = ofp.OFPRR_DELETE
OFPCML_NO_BUFFER: int = ofp.OFPCML_NO_BUFFER
OFPIT_APPLY_ACTIONS: int = ofp.OFPIT_APPLY_ACTIONS
OFP_NO_BUFFER: int = ofp.OFP_NO_BUFFER
OFPP_ANY: int = ofp.OFPP_ANY
OFPG_ANY: int = ofp.OFPG_ANY
ETH_TYPE_IPV6 = 0x86DD

MatchItems = tuple[tuple[str, Any], ...]


def _oxm_rank(num: int | tuple[int, int]) -> int:
    # The order os-ken's OFPMatch(**kwargs) gives: OXM class/field number; experimenter fields
    # (ONF tcp_flags) by experimenter id, i.e. after the basic fields.
    return num[0] if isinstance(num, tuple) else num


_OXM_RANK: dict[str, int] = {f.name: _oxm_rank(f.num) for f in ofp.oxm_types}


# -- matches, actions, instructions -------------------------------------------------------------


def match(items: Iterable[tuple[str, Any]]) -> OFMatch:
    """An OFPMatch from (field, value) pairs; masked fields as (value, mask).

    Values in os-ken's user form: ints, MAC and IPv6 addresses as strings. Unknown field names
    raise KeyError naming the field.
    """
    fields = sorted(items, key=lambda kv: _OXM_RANK[kv[0]])
    return parser.OFPMatch(_ordered_fields=fields)


def match_items(m: OFMatch) -> MatchItems:
    """The (field, value) pairs of an OFPMatch, in its own order."""
    return tuple(m._fields2)


def ipv6_prefix(net: IPv6Network) -> tuple[str, str]:
    """A masked ipv6_src/ipv6_dst value for a prefix."""
    return (str(net.network_address), str(net.netmask))


def set_field(name: str, value: Any) -> OFAction:
    return parser.OFPActionSetField(**{name: value})


def output(port: int, max_len: int = OFPCML_NO_BUFFER) -> OFAction:
    return parser.OFPActionOutput(port, max_len)


def apply_actions(actions: Sequence[OFAction]) -> OFInstruction:
    return parser.OFPInstructionActions(OFPIT_APPLY_ACTIONS, list(actions))


def goto_table(table_id: int) -> OFInstruction:
    return parser.OFPInstructionGotoTable(table_id)


def write_metadata(value: int, mask: int) -> OFInstruction:
    return parser.OFPInstructionWriteMetadata(value, mask)


# -- messages -----------------------------------------------------------------------------------


def flow_mod(
    *,
    command: int,
    table_id: int,
    priority: int,
    cookie: int,
    match_: OFMatch,
    instructions: Sequence[OFInstruction] = (),
    idle_timeout: int = 0,
    hard_timeout: int = 0,
    flags: int = 0,
    cookie_mask: int = 0,
    out_port: int = OFPP_ANY,
) -> OFMessage:
    return parser.OFPFlowMod(
        None,
        cookie=cookie,
        cookie_mask=cookie_mask,
        table_id=table_id,
        command=command,
        idle_timeout=idle_timeout,
        hard_timeout=hard_timeout,
        priority=priority,
        buffer_id=OFP_NO_BUFFER,
        out_port=out_port,
        out_group=OFPG_ANY,
        flags=flags,
        match=match_,
        instructions=list(instructions),
    )


def delete_by_cookie(cookie: int, cookie_mask: int, table_id: int = OFPTT_ALL) -> OFMessage:
    """Delete every rule whose cookie equals `cookie` under `cookie_mask` (any match)."""
    return flow_mod(
        command=OFPFC_DELETE,
        table_id=table_id,
        priority=0,
        cookie=cookie,
        cookie_mask=cookie_mask,
        match_=parser.OFPMatch(),
    )


def packet_out(
    data: bytes, actions: Sequence[OFAction], in_port: int = OFPP_CONTROLLER
) -> OFMessage:
    """Send a whole packet (never a buffer id: OVS does not buffer) through `actions`."""
    return parser.OFPPacketOut(
        None, buffer_id=OFP_NO_BUFFER, in_port=in_port, actions=list(actions), data=data
    )


def barrier() -> OFMessage:
    return parser.OFPBarrierRequest(None)


def flow_stats_request(
    cookie: int = 0, cookie_mask: int = 0, table_id: int = OFPTT_ALL
) -> OFMessage:
    return parser.OFPFlowStatsRequest(
        None,
        0,
        table_id,
        OFPP_ANY,
        OFPG_ANY,
        cookie,
        cookie_mask,
        parser.OFPMatch(),
    )


def port_stats_request() -> OFMessage:
    return parser.OFPPortStatsRequest(None, 0, OFPP_ANY)


def set_config(miss_send_len: int = OFPCML_NO_BUFFER) -> OFMessage:
    """Switch configuration: packet-ins without an explicit max_len carry whole packets."""
    return parser.OFPSetConfig(None, ofp.OFPC_FRAG_NORMAL, miss_send_len)


# OpenFlow 1.3 bundles are the ONF extension EXT-230, which Open vSwitch implements.
BUNDLE_OPEN: int = ofp.ONF_BCT_OPEN_REQUEST
BUNDLE_COMMIT: int = ofp.ONF_BCT_COMMIT_REQUEST
BUNDLE_DISCARD: int = ofp.ONF_BCT_DISCARD_REQUEST
BUNDLE_FLAGS: int = ofp.ONF_BF_ATOMIC | ofp.ONF_BF_ORDERED


def bundle_control(bundle_id: int, type_: int, flags: int = BUNDLE_FLAGS) -> OFMessage:
    """Open, commit or discard bundle `bundle_id` (messages go in by ofwire.bundle_add)."""
    return parser.ONFBundleCtrlMsg(None, bundle_id, type_, flags, [])


# -- canonical forms and replies ----------------------------------------------------------------

_ALL_ONES = {"metadata": (1 << 64) - 1, "tcp_flags": 0xFFFF}


def _canon_value(name: str, value: Any) -> Any:
    if isinstance(value, tuple):
        v, m = value
        if name in _ALL_ONES and m == _ALL_ONES[name]:
            return _canon_value(name, v)
        return (_canon_value(name, v), _canon_value(name, m))
    if name.startswith("ipv6_") and name != "ipv6_flabel" and isinstance(value, str):
        return IPv6Address(value)
    if name.startswith("eth_") and isinstance(value, str):
        return value.lower()
    return value


def match_key(items: Iterable[tuple[str, Any]]) -> frozenset[tuple[str, Any]]:
    """A match in a form that compares equal however the switch spelled it."""
    return frozenset((name, _canon_value(name, value)) for name, value in items)


def instructions_key(instructions: Iterable[OFInstruction]) -> tuple[Any, ...]:
    """An instruction list in a comparable form (order of actions kept: it matters)."""
    out: list[Any] = []
    for inst in instructions:
        if isinstance(inst, parser.OFPInstructionGotoTable):
            out.append(("goto", inst.table_id))
        elif isinstance(inst, parser.OFPInstructionWriteMetadata):
            out.append(("metadata", inst.metadata, inst.metadata_mask))
        elif isinstance(inst, parser.OFPInstructionActions):
            out.append((inst.type, actions_key(inst.actions)))
        else:
            out.append(("other", repr(inst)))
    return tuple(out)


def actions_key(actions: Iterable[OFAction]) -> tuple[Any, ...]:
    out: list[Any] = []
    for act in actions:
        if isinstance(act, parser.OFPActionOutput):
            # max_len only matters for the controller port.
            out.append(("output", act.port, act.max_len if act.port == OFPP_CONTROLLER else 0))
        elif isinstance(act, parser.OFPActionSetField):
            out.append(("set_field", act.key, _canon_value(act.key, act.value)))
        else:
            out.append(("other", repr(act)))
    return tuple(out)


@dataclass(frozen=True, slots=True)
class FlowStat:
    """One rule of a flow-stats reply, as the logic reads it."""

    table_id: int
    priority: int
    cookie: int
    match: MatchItems
    instructions: tuple[Any, ...]  # instructions_key() form
    packet_count: int = 0
    byte_count: int = 0
    idle_timeout: int = 0
    hard_timeout: int = 0
    flags: int = 0


class FlowStatView(Protocol):
    """What reconciliation and the counters read of one flow-stats entry (FlowStat, or
    LazyFlowStat, which converts the match and instructions only when they are read)."""

    @property
    def table_id(self) -> int: ...

    @property
    def priority(self) -> int: ...

    @property
    def cookie(self) -> int: ...

    @property
    def match(self) -> MatchItems: ...

    @property
    def instructions(self) -> tuple[Any, ...]: ...

    @property
    def packet_count(self) -> int: ...

    @property
    def byte_count(self) -> int: ...


class LazyFlowStat:
    """A FlowStatView over an os-ken flow-stats entry, converting its match and instructions
    on first use: reconciliation deletes a stale flow's rules by cookie without reading them."""

    __slots__ = ("_instructions", "_match", "_stat", "byte_count", "cookie", "packet_count",
                 "priority", "table_id")  # fmt: skip

    def __init__(self, stat: Any) -> None:
        self._stat = stat
        self.table_id: int = stat.table_id
        self.priority: int = stat.priority
        self.cookie: int = stat.cookie
        self.packet_count: int = stat.packet_count
        self.byte_count: int = stat.byte_count
        self._match: MatchItems | None = None
        self._instructions: tuple[Any, ...] | None = None

    @property
    def match(self) -> MatchItems:
        if self._match is None:
            self._match = match_items(self._stat.match)
        return self._match

    @property
    def instructions(self) -> tuple[Any, ...]:
        if self._instructions is None:
            self._instructions = instructions_key(self._stat.instructions)
        return self._instructions


def flow_stat(stat: Any) -> FlowStat:
    """Convert one os-ken OFPFlowStats into a FlowStat."""
    return FlowStat(
        table_id=stat.table_id,
        priority=stat.priority,
        cookie=stat.cookie,
        match=match_items(stat.match),
        instructions=instructions_key(stat.instructions),
        packet_count=stat.packet_count,
        byte_count=stat.byte_count,
        idle_timeout=stat.idle_timeout,
        hard_timeout=stat.hard_timeout,
        flags=stat.flags,
    )


def flow_counters(stat: Any) -> FlowStat:
    """Only the identity and counters of one flow-stats entry (match and instructions left
    empty, so that a lazily parsed entry is never fully parsed): for counter polls."""
    return FlowStat(
        table_id=stat.table_id,
        priority=stat.priority,
        cookie=stat.cookie,
        match=(),
        instructions=(),
        packet_count=stat.packet_count,
        byte_count=stat.byte_count,
    )
