"""Lazily parsed flow-stats entries read exactly like os-ken's eager ones."""

from __future__ import annotations

import struct
from typing import Any

from os_ken.ofproto import ofproto_v1_3 as ofp
from os_ken.ofproto import ofproto_v1_3_parser as parser

from sdnmip.controller import ofmsg
from sdnmip.controller.ofstats import LazyFlowStats

from .test_ofwire import CORPUS


def _entry(fm: Any, packets: int, octets: int) -> bytes:
    """One ofp_flow_stats entry (OpenFlow 1.3 §7.3.5.2) for the rule a flow-mod installs."""
    body = bytearray()
    match_len = fm.match.serialize(body, 0)
    for inst in fm.instructions:
        inst.serialize(body, len(body))
    length = ofp.OFP_FLOW_STATS_0_SIZE + len(body)
    fixed = struct.pack(
        ofp.OFP_FLOW_STATS_0_PACK_STR, length, fm.table_id, 12, 34, fm.priority,
        fm.idle_timeout, fm.hard_timeout, fm.flags, fm.cookie, packets, octets,
    )  # fmt: skip
    assert match_len % 8 == 0
    return fixed + bytes(body)


def test_lazy_entries_equal_eager_ones_for_every_rule_the_logic_installs() -> None:
    adds = [m for m in CORPUS if isinstance(m, parser.OFPFlowMod) and m.command == ofp.OFPFC_ADD]
    assert len(adds) > 20
    buf = b"".join(_entry(fm, i, 100 * i) for i, fm in enumerate(adds))
    offset = 0
    for i, fm in enumerate(adds):
        eager = parser.OFPFlowStats.parser(buf, offset)
        lazy = LazyFlowStats.parser(buf, offset)
        assert (lazy.cookie, lazy.packet_count, lazy.byte_count) == (fm.cookie, i, 100 * i)
        assert ofmsg.flow_stat(lazy) == ofmsg.flow_stat(eager)
        assert lazy.length == eager.length
        offset += lazy.length
    assert offset == len(buf)


def test_counters_are_read_without_parsing_the_match() -> None:
    fm = next(m for m in CORPUS if isinstance(m, parser.OFPFlowMod))
    lazy = LazyFlowStats.parser(_entry(fm, 5, 500), 0)
    assert (lazy.packet_count, lazy.byte_count) == (5, 500)
    assert lazy._match is None and lazy._instructions is None
