"""Flow-stats replies parsed lazily: fixed fields at once, match and instructions on demand.

Owns: `LazyFlowStats` (same attributes as os-ken's OFPFlowStats) and `install()`, which makes
os-ken build flow-stats reply bodies from it. The periodic counter poll reads only cookies and
counters of every rule; os-ken's eager parse of each rule's match and instructions costs about
100 us per rule (over a second for 10,000 flows), while the fixed fields cost about 1 us.
Reconciliation still gets full matches and instructions: they are parsed, by os-ken's own
parsers, the first time they are read.
Must not: change anything else in os-ken, or hold state beyond the message it came from.
"""

from __future__ import annotations

import struct
from typing import Any

from os_ken.ofproto import ofproto_v1_3 as ofp
from os_ken.ofproto import ofproto_v1_3_parser as parser

_FIXED = struct.Struct(ofp.OFP_FLOW_STATS_0_PACK_STR)
_MATCH_OFFSET = ofp.OFP_FLOW_STATS_0_SIZE
_FLOW_STATS_FIXED = ofp.OFP_FLOW_STATS_SIZE - ofp.OFP_MATCH_SIZE  # header without the match


class LazyFlowStats:
    __slots__ = (
        "_buf",
        "_instructions",
        "_match",
        "_offset",
        "byte_count",
        "cookie",
        "duration_nsec",
        "duration_sec",
        "flags",
        "hard_timeout",
        "idle_timeout",
        "length",
        "packet_count",
        "priority",
        "table_id",
    )
    length: int
    table_id: int
    duration_sec: int
    duration_nsec: int
    priority: int
    idle_timeout: int
    hard_timeout: int
    flags: int
    cookie: int
    packet_count: int
    byte_count: int
    _buf: Any
    _offset: int
    _match: Any
    _instructions: list[Any] | None

    @classmethod
    def parser(cls, buf: Any, offset: int) -> LazyFlowStats:
        s = cls.__new__(cls)
        (
            s.length,
            s.table_id,
            s.duration_sec,
            s.duration_nsec,
            s.priority,
            s.idle_timeout,
            s.hard_timeout,
            s.flags,
            s.cookie,
            s.packet_count,
            s.byte_count,
        ) = _FIXED.unpack_from(buf, offset)
        s._buf = buf
        s._offset = offset
        s._match = None
        s._instructions = None
        return s

    @property
    def match(self) -> Any:
        if self._match is None:
            self._match = parser.OFPMatch.parser(self._buf, self._offset + _MATCH_OFFSET)
        return self._match

    @property
    def instructions(self) -> list[Any]:
        if self._instructions is None:
            match_len = -(-self.match.length // 8) * 8
            offset = self._offset + _MATCH_OFFSET + match_len
            left = self.length - (_FLOW_STATS_FIXED + match_len)
            out: list[Any] = []
            while left > 0:
                inst = parser.OFPInstruction.parser(self._buf, offset)
                out.append(inst)
                offset += inst.len
                left -= inst.len
            self._instructions = out
        return self._instructions


def install() -> None:
    """Make os-ken parse every flow-stats reply body with LazyFlowStats (idempotent)."""
    parser.OFPFlowStatsReply.cls_stats_body_cls = LazyFlowStats
