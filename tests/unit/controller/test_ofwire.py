"""The fast encoder writes exactly the bytes os-ken writes, for every message the logic emits."""

from __future__ import annotations

import copy
from ipaddress import IPv6Address
from typing import Any

import pytest
from os_ken.ofproto import ofproto_v1_3 as ofp
from os_ken.ofproto import ofproto_v1_3_parser as parser

from sdnmip.controller import ofmsg, ofwire
from sdnmip.controller.config import UplinkState
from sdnmip.core.types import Decision, Mode

from .pkt import ACK, FIN, RST, icmp_pkt, tcp_pkt, udp_pkt
from .rig import CN1, CN2, HOA0, IWLAN, LTE, PRIMARY, Rig, ScriptedPolicy

POLICY = ScriptedPolicy({443: Decision("lte"), 53: Decision("lte", mode=Mode.DIRECT)})


def _corpus() -> list[Any]:
    """Every OpenFlow message a busy scenario makes the logic emit."""
    seen: list[Any] = []
    rig = Rig.start(policy=POLICY)
    run = rig.run

    def recording(actions: list[Any]) -> Any:
        seen.extend(a for a in actions if isinstance(a, parser.MsgBase))
        return run(actions)

    rig.run = recording  # type: ignore[method-assign]
    recording(rig.logic.reconcile(0.0, []))  # static rules
    rig.send(HOA0, tcp_pkt(PRIMARY, CN1, 40000, 80))  # anchored TCP on wlan
    rig.send(HOA0, tcp_pkt(PRIMARY, CN1, 40001, 443))  # anchored TCP on lte
    rig.send(HOA0, udp_pkt(PRIMARY, CN2, 5353, 53))  # direct UDP
    rig.send(HOA0, icmp_pkt(PRIMARY, CN2, 128))  # ping
    rig.send(IWLAN, udp_pkt(CN2, PRIMARY, 7000, 7001))  # incoming flow
    rig.ack_binds()
    e = rig.flow_for(CN1, 443)
    recording(rig.logic.move_flow(rig.now, e.flow_id, "wlan"))
    rig.ack_binds()  # modify-strict of the moved rules
    rig.event(UplinkState("lte", True, IPv6Address("2001:db8:2::99"), "02:aa:00:00:00:09"))
    rig.send(HOA0, tcp_pkt(PRIMARY, CN1, 40000, 80, flags=FIN | ACK))
    rig.send(IWLAN, tcp_pkt(CN1, PRIMARY, 80, 40000, flags=RST))
    rig.advance(5.0)  # deletes by cookie
    recording(rig.logic.port_status(rig.now, LTE, False))
    dump = [ofmsg.flow_stat(_roundtrip(m)) for m in seen if isinstance(m, parser.OFPFlowMod)]
    foreign = ofmsg.FlowStat(0, 100, 0x7E57000000000000, (("in_port", 2),), ())
    recording(rig.logic.reconcile(rig.now, [*dump[:5], foreign]))  # strict deletes
    seen += [ofmsg.barrier(), ofmsg.flow_stats_request(), ofmsg.port_stats_request()]
    return seen


def _roundtrip(msg: Any) -> Any:
    """A flow-mod as a switch would report it in a flow-stats reply (enough for reconcile)."""
    return parser.OFPFlowStats(
        table_id=msg.table_id,
        priority=msg.priority,
        cookie=msg.cookie,
        match=msg.match,
        instructions=msg.instructions,
        packet_count=0,
        byte_count=0,
        idle_timeout=msg.idle_timeout,
        hard_timeout=0,
        flags=msg.flags,
    )


CORPUS = _corpus()


def test_the_corpus_covers_every_message_kind_the_logic_sends() -> None:
    kinds = {(type(m).__name__, getattr(m, "command", None)) for m in CORPUS}
    assert ("OFPFlowMod", ofp.OFPFC_ADD) in kinds
    assert ("OFPFlowMod", ofp.OFPFC_MODIFY_STRICT) in kinds
    assert ("OFPFlowMod", ofp.OFPFC_DELETE) in kinds
    assert ("OFPFlowMod", ofp.OFPFC_DELETE_STRICT) in kinds
    assert ("OFPPacketOut", None) in kinds


@pytest.mark.parametrize("i", range(len(CORPUS)))
def test_fast_encoding_equals_os_kens(i: int) -> None:
    msg = CORPUS[i]
    fast = ofwire.encode(msg, 0x1234 + i)
    reference = ofwire.reference_encode(msg, 0x1234 + i)
    msg.datapath = msg.xid = None
    assert fast == reference, type(msg).__name__


def test_encoding_does_not_modify_the_message() -> None:
    msg = next(m for m in CORPUS if isinstance(m, parser.OFPFlowMod))
    before = (msg.xid, msg.buf, msg.datapath)
    ofwire.encode(msg, 7)
    assert (msg.xid, msg.buf, msg.datapath) == before


def test_bundle_add_equals_os_kens() -> None:
    inner = next(m for m in CORPUS if isinstance(m, parser.OFPFlowMod))
    fast = ofwire.bundle_add(9, ofmsg.BUNDLE_FLAGS, inner, 77)
    ref_inner = copy.copy(inner)
    ref_inner.datapath = ofwire._PROTO
    ref_inner.xid = None
    ref = parser.ONFBundleAddMsg(ofwire._PROTO, 9, ofmsg.BUNDLE_FLAGS, ref_inner, [])
    assert fast == ofwire.reference_encode(ref, 77)
