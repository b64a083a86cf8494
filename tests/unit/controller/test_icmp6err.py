"""ICMPv6 errors about a flow on a dynamic HoA reach the kernel as if about the Primary HoA."""

from __future__ import annotations

import struct
from ipaddress import IPv6Address as A

from os_ken.lib.packet import packet_utils

from sdnmip.controller import pipeline as pl

from .pkt import build, dissect, tcp_pkt
from .rig import CN1, HOA0, HOA0_MAC, IWLAN, PRIMARY, Rig

ROUTER = "2001:db8:f1::2"
PTB, MTU = 2, 1400


def icmp_error(src: str, dst: str, icmp_type: int, quoted: bytes, word: int = 0) -> bytes:
    """An Ethernet frame carrying an ICMPv6 error quoting `quoted` (an IPv6 packet)."""
    body = struct.pack("!BBHI", icmp_type, 0, 0, word) + quoted
    pseudo = A(src).packed + A(dst).packed + struct.pack("!I3xB", len(body), 58)
    csum = packet_utils.checksum(pseudo + body)
    body = body[:2] + struct.pack("!H", csum) + body[4:]
    ip = struct.pack("!IHBB", 6 << 28, len(body), 58, 64) + A(src).packed + A(dst).packed
    return b"\x02" * 6 + b"\x04" * 6 + b"\x86\xdd" + ip + body


def _flow_on_dynamic_hoa(rig: Rig) -> A:
    rig.send(HOA0, tcp_pkt(PRIMARY, CN1, 40000, 80))
    return rig.send(HOA0, tcp_pkt(PRIMARY, CN1, 40001, 80)).only()[1]["ipv6_src"]


def _icmp_ok(frame: bytes) -> bool:
    ip = frame[14:54]
    body = frame[54:]
    pseudo = ip[8:24] + ip[24:40] + struct.pack("!I3xB", len(body), 58)
    return packet_utils.checksum(pseudo + body) == 0


def test_packet_too_big_for_a_dynamic_hoa_is_rewritten_to_the_primary():
    rig = Rig.start()
    hoa = _flow_on_dynamic_hoa(rig)
    sent = build(tcp_pkt(str(hoa), CN1, 40001, 80, payload=b"x" * 100))[14:]  # what left the MN
    err = icmp_error(ROUTER, str(hoa), PTB, sent, MTU)
    assert _icmp_ok(err)
    res = rig.switch.process(IWLAN, dissect(err))
    assert res.outputs == [] and len(res.packet_ins) == 1  # no rule for it: to the controller
    actions = rig.logic.packet_in(rig.now, IWLAN, pl.TableId.DOWNLINK, err)
    (out,) = actions
    assert out.actions[-1].port == HOA0 and out.actions[0].value == HOA0_MAC
    frame = out.data
    assert A(frame[38:54]) == A(PRIMARY)  # outer destination
    assert A(frame[54 + 8 + 8 : 54 + 8 + 24]) == A(PRIMARY)  # quoted source
    assert A(frame[54 + 8 + 24 : 54 + 8 + 40]) == A(CN1)  # quoted destination unchanged
    assert struct.unpack("!I", frame[58:62])[0] == MTU
    assert frame[54 + 8 + 40 :] == sent[40:]  # quoted transport header and data untouched
    assert _icmp_ok(frame)
    assert rig.logic.stats["icmp_errors_translated"] == 1


def test_errors_about_the_primary_pass_unchanged_and_others_are_refused():
    rig = Rig.start()
    rig.send(HOA0, tcp_pkt(PRIMARY, CN1, 40000, 80))
    sent = build(tcp_pkt(PRIMARY, CN1, 40000, 80))[14:]
    err = icmp_error(ROUTER, PRIMARY, 1, sent)
    (out,) = rig.logic.packet_in(rig.now, IWLAN, pl.TableId.DOWNLINK, err)
    assert out.data == err
    stranger = build(tcp_pkt(PRIMARY, CN1, 40999, 80))[14:]
    assert (
        rig.logic.packet_in(
            rig.now, IWLAN, pl.TableId.DOWNLINK, icmp_error(ROUTER, PRIMARY, 1, stranger)
        )
        == []
    )
    assert (
        rig.logic.packet_in(
            rig.now, IWLAN, pl.TableId.DOWNLINK, icmp_error(ROUTER, PRIMARY, 1, b"\x60junk")
        )
        == []
    )
    assert rig.logic.refused["ICMPv6 error about no flow of ours"] == 1
    assert any(r.startswith("ICMPv6 error quoting junk") for r in rig.logic.refused)
