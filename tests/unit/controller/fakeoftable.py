"""A fake OpenFlow 1.3 switch for unit tests (after Faucet's fakeoftable idea, written anew).

It applies the controller's flow-mods (add, modify, modify-strict, delete, delete-strict, cookies
and cookie masks, priorities, idle timeouts on a mock clock, SEND_FLOW_REM) and packet-outs, and
answers behavioural questions: a packet entering port X leaves by which ports, with which header
fields, and does the controller get a copy (from which table, with which reason)?

Packets are field dicts (see pkt.py). Matching follows OpenFlow: a field the packet lacks never
matches (prerequisites), masks apply to both sides, the highest priority wins, and two different
matching rules at the same priority are an error (the result would depend on the switch).
Instructions run in the OpenFlow 1.3 order: apply-actions, write-metadata, goto-table.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from ipaddress import IPv6Address
from typing import Any

from os_ken.ofproto import ofproto_v1_3 as ofp
from os_ken.ofproto import ofproto_v1_3_parser as parser

from sdnmip.controller import ofmsg

from .pkt import Fields, build, dissect

MAX_TABLE_HOPS = 16


class AmbiguousMatch(AssertionError):
    pass


@dataclass
class Rule:
    table_id: int
    priority: int
    cookie: int
    match: dict[str, Any]  # name -> value or (value, mask), canonical form
    match_items: tuple[tuple[str, Any], ...]
    instructions: list[Any]
    idle_timeout: int
    hard_timeout: int
    flags: int
    installed_at: float
    last_used: float
    packets: int = 0
    bytes: int = 0

    @property
    def key(self) -> tuple[int, int, frozenset[tuple[str, Any]]]:
        return (self.table_id, self.priority, frozenset(self.match.items()))


@dataclass(frozen=True)
class FlowRemoved:
    cookie: int
    table_id: int
    priority: int
    reason: int
    packets: int
    bytes: int


@dataclass(frozen=True)
class PacketIn:
    table_id: int
    reason: int
    in_port: int
    cookie: int
    data: bytes
    fields: Fields


@dataclass
class Result:
    """What became of one packet."""

    outputs: list[tuple[int, Fields]] = field(default_factory=list)
    packet_ins: list[PacketIn] = field(default_factory=list)

    def ports(self) -> list[int]:
        return [p for p, _ in self.outputs]

    def only(self) -> tuple[int, Fields]:
        assert len(self.outputs) == 1, f"expected one output, got {self.outputs}"
        return self.outputs[0]


def _to_int(name: str, v: Any) -> Any:
    if isinstance(v, IPv6Address):
        return int(v)
    if name.startswith("eth_") and isinstance(v, str):
        return int(v.replace(":", ""), 16)
    return v


def _field_matches(name: str, want: Any, have: Any) -> bool:
    if isinstance(want, tuple):
        value, mask = (_to_int(name, x) for x in want)
        return (_to_int(name, have) & mask) == (value & mask)
    return _to_int(name, have) == _to_int(name, want)


def _canon(items: Any) -> dict[str, Any]:
    return dict(ofmsg.match_key(items))


class FakeOFTable:
    def __init__(self, now: float = 0.0) -> None:
        self.now = now
        self.rules: dict[int, list[Rule]] = {}
        self.removed: list[FlowRemoved] = []  # flow-removed messages not yet collected
        self.flow_mods = 0

    # -- controller -> switch -------------------------------------------------------------------

    def apply(self, msg: Any) -> Result | None:
        if isinstance(msg, parser.OFPFlowMod):
            self.flow_mods += 1
            self._flow_mod(msg)
            return None
        if isinstance(msg, parser.OFPPacketOut):
            assert msg.buffer_id == ofp.OFP_NO_BUFFER, "OVS does not buffer: send the packet"
            result = Result()
            self._apply_actions(
                msg.actions,
                dissect(msg.data),
                in_port=msg.in_port,
                rule=None,
                result=result,
                metadata=0,
            )
            return result
        if isinstance(
            msg, parser.OFPBarrierRequest | parser.OFPFlowStatsRequest | parser.OFPPortStatsRequest
        ):
            return None
        raise AssertionError(f"fake switch does not handle {type(msg).__name__}")

    def _flow_mod(self, fm: Any) -> None:
        items = tuple(fm.match._fields2)
        match = _canon(items)
        cmd = fm.command
        if cmd == ofp.OFPFC_ADD:
            table = self.rules.setdefault(fm.table_id, [])
            new = Rule(
                fm.table_id,
                fm.priority,
                fm.cookie,
                match,
                items,
                list(fm.instructions),
                fm.idle_timeout,
                fm.hard_timeout,
                fm.flags,
                self.now,
                self.now,
            )
            for i, old in enumerate(table):
                if old.key == new.key:
                    # OF 1.3 §6.4: replaces; counters copied unless OFPFF_RESET_COUNTS.
                    new.packets, new.bytes = old.packets, old.bytes
                    table[i] = new
                    return
            table.append(new)
        elif cmd in (ofp.OFPFC_MODIFY, ofp.OFPFC_MODIFY_STRICT):
            strict = cmd == ofp.OFPFC_MODIFY_STRICT
            for rule in self._select(fm, match, strict):
                rule.instructions = list(fm.instructions)  # cookie, counters, timeouts kept
        elif cmd in (ofp.OFPFC_DELETE, ofp.OFPFC_DELETE_STRICT):
            strict = cmd == ofp.OFPFC_DELETE_STRICT
            for rule in self._select(fm, match, strict):
                self._remove(rule, ofp.OFPRR_DELETE)
        else:
            raise AssertionError(f"unknown flow-mod command {cmd}")

    def _select(self, fm: Any, match: dict[str, Any], strict: bool) -> list[Rule]:
        out = []
        tables = (
            self.rules.values()
            if fm.table_id == ofp.OFPTT_ALL
            else [self.rules.get(fm.table_id, [])]
        )
        for table in tables:
            for rule in table:
                if fm.cookie_mask and (rule.cookie ^ fm.cookie) & fm.cookie_mask:
                    continue
                if strict:
                    if rule.priority == fm.priority and rule.match == match:
                        out.append(rule)
                elif all(rule.match.get(k) == v for k, v in match.items()):
                    out.append(rule)  # at least as specific as the request
        return out

    def _remove(self, rule: Rule, reason: int) -> None:
        self.rules[rule.table_id].remove(rule)
        if rule.flags & ofp.OFPFF_SEND_FLOW_REM:
            self.removed.append(
                FlowRemoved(
                    rule.cookie, rule.table_id, rule.priority, reason, rule.packets, rule.bytes
                )
            )

    # -- time -----------------------------------------------------------------------------------

    def advance(self, now: float) -> list[FlowRemoved]:
        """Move the clock; expire idle rules; return (and forget) pending flow-removed messages."""
        self.now = now
        for table in list(self.rules.values()):
            for rule in list(table):
                if rule.idle_timeout and now - rule.last_used >= rule.idle_timeout:
                    self._remove(rule, ofp.OFPRR_IDLE_TIMEOUT)
        out, self.removed = self.removed, []
        return out

    # -- packets --------------------------------------------------------------------------------

    def process(self, in_port: int, pkt: Fields, size: int = 100) -> Result:
        """Run a packet through the pipeline from table 0."""
        result = Result()
        f = copy.copy(pkt)
        f["in_port"] = in_port
        metadata = 0
        table_id: int | None = 0
        for _ in range(MAX_TABLE_HOPS):
            if table_id is None:
                return result
            f["metadata"] = metadata
            rule = self._lookup(table_id, f)
            if rule is None:
                return result  # OF 1.3 default table-miss: drop
            rule.packets += 1
            rule.bytes += size
            rule.last_used = self.now
            next_table = None
            for inst in sorted(rule.instructions, key=_inst_order):
                if isinstance(inst, parser.OFPInstructionActions):
                    self._apply_actions(
                        inst.actions,
                        f,
                        in_port=in_port,
                        rule=rule,
                        result=result,
                        metadata=metadata,
                    )
                elif isinstance(inst, parser.OFPInstructionWriteMetadata):
                    mask = inst.metadata_mask
                    metadata = (metadata & ~mask) | (inst.metadata & mask)
                elif isinstance(inst, parser.OFPInstructionGotoTable):
                    assert inst.table_id > table_id, "goto must go forward"
                    next_table = inst.table_id
                else:
                    raise AssertionError(f"fake switch: unknown instruction {inst}")
            table_id = next_table
        raise AssertionError("pipeline loop")

    def _lookup(self, table_id: int, f: Fields) -> Rule | None:
        best: list[Rule] = []
        for rule in self.rules.get(table_id, []):
            if all(k in f and _field_matches(k, v, f[k]) for k, v in rule.match.items()):
                if not best or rule.priority > best[0].priority:
                    best = [rule]
                elif rule.priority == best[0].priority:
                    best.append(rule)
        if len(best) > 1 and len({ofmsg.instructions_key(r.instructions) for r in best}) > 1:
            raise AmbiguousMatch(f"table {table_id}: {len(best)} rules at one priority match {f}")
        return best[0] if best else None

    def _apply_actions(
        self,
        actions: list[Any],
        f: Fields,
        *,
        in_port: int,
        rule: Rule | None,
        result: Result,
        metadata: int,
    ) -> None:
        for act in actions:
            if isinstance(act, parser.OFPActionSetField):
                value = act.value
                if act.key.startswith("ipv6_") and act.key != "ipv6_flabel":
                    value = IPv6Address(value)
                assert act.key in f, f"set_field {act.key} on a packet without it"
                f[act.key] = value
            elif isinstance(act, parser.OFPActionOutput):
                out = {k: v for k, v in f.items() if k not in ("in_port", "metadata")}
                if act.port == ofp.OFPP_CONTROLLER:
                    assert rule is not None, "packet-out to the controller"
                    data = build(out)
                    if act.max_len != ofp.OFPCML_NO_BUFFER:
                        data = data[: act.max_len]
                    table_miss = rule.priority == 0 and not rule.match
                    result.packet_ins.append(
                        PacketIn(
                            rule.table_id,
                            ofp.OFPR_NO_MATCH if table_miss else ofp.OFPR_ACTION,
                            in_port,
                            rule.cookie,
                            data,
                            out,
                        )
                    )
                else:
                    assert act.port != in_port, "output to the input port needs OFPP_IN_PORT"
                    result.outputs.append((act.port, out))
            else:
                raise AssertionError(f"fake switch: unknown action {act}")

    # -- inspection -----------------------------------------------------------------------------

    def all_rules(self) -> list[Rule]:
        return [r for t in sorted(self.rules) for r in self.rules[t]]

    def dump(self) -> list[ofmsg.FlowStat]:
        """What a flow-stats reply would say."""
        return [
            ofmsg.FlowStat(
                table_id=r.table_id,
                priority=r.priority,
                cookie=r.cookie,
                match=r.match_items,
                instructions=ofmsg.instructions_key(r.instructions),
                packet_count=r.packets,
                byte_count=r.bytes,
                idle_timeout=r.idle_timeout,
                hard_timeout=r.hard_timeout,
                flags=r.flags,
            )
            for r in self.all_rules()
        ]

    def signature(self) -> set[tuple[Any, ...]]:
        """The table's content as a set (cookie, key, actions): equal tables, equal signatures."""
        return {(r.cookie, r.key, ofmsg.instructions_key(r.instructions)) for r in self.all_rules()}


def _inst_order(inst: Any) -> int:
    if isinstance(inst, parser.OFPInstructionActions):
        return 0
    if isinstance(inst, parser.OFPInstructionWriteMetadata):
        return 1
    return 2
