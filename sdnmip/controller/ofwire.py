"""OpenFlow 1.3 bytes for the messages sdnmip/controller/ofmsg.py builds, fast.

Owns: `encode(msg, xid)`, which serialises flow-mods and packet-outs made of the fields and
actions the pipeline uses (basic OXM fields, set-field, output, goto-table, write-metadata)
straight to bytes with precompiled structs, and hands every other message to os-ken's own
serialiser. The output is byte-for-byte what os-ken produces (the tests compare both on every
message the logic emits).
Why: os-ken spends about 25 us per flow-mod normalising each OXM value through its generic
field tables; a new flow sends two flow-mods and a packet-out, which is most of the budget of
10,000 new flows per second.
Must not: build messages (ofmsg.py does), or know the pipeline.
"""

from __future__ import annotations

import struct
from collections.abc import Callable
from functools import lru_cache
from ipaddress import IPv6Address
from typing import Any

from os_ken.lib import type_desc
from os_ken.ofproto import ofproto_common
from os_ken.ofproto import ofproto_v1_3 as ofp
from os_ken.ofproto import ofproto_v1_3_parser as parser
from os_ken.ofproto.ofproto_protocol import ProtocolDesc

_HEADER = struct.Struct("!BBHI")  # version, type, length, xid (OpenFlow 1.3 §7.1)
_FLOW_MOD = struct.Struct("!QQBBHHHIIIH2x")  # §7.3.4.1, after the header
_PACKET_OUT = struct.Struct("!IIH6x")  # §7.3.7, after the header
_MATCH_HDR = struct.Struct("!HH")
_ACTION_OUTPUT = struct.Struct("!HHIH6x")
_INST_HDR = struct.Struct("!HH4x")
_GOTO = struct.Struct("!HHB3x")
_WRITE_META = struct.Struct("!HH4xQQ")
_OXM_HDR = struct.Struct("!I")
_BUNDLE_ADD = struct.Struct("!IIIxxH")  # experimenter, exp_type, bundle_id, pad, flags
_VERSION = ofp.OFP_VERSION
_PROTO = ProtocolDesc(ofp.OFP_VERSION)


class _Field:
    """How one basic OXM field is written: header words and a value encoder."""

    __slots__ = ("hdr", "hdr_masked", "size", "to_bytes")
    to_bytes: Callable[[Any], bytes]

    def __init__(self, num: int, size: int, to_bytes: Callable[[Any], bytes]) -> None:
        self.size = size
        self.hdr = _OXM_HDR.pack((num << 9) | size)
        self.hdr_masked = _OXM_HDR.pack((num << 9) | (1 << 8) | (2 * size))
        self.to_bytes = to_bytes


@lru_cache(maxsize=16384)
def _ipv6(text: str) -> bytes:
    return bytes(IPv6Address(text).packed)


@lru_cache(maxsize=1024)
def _mac(text: str) -> bytes:
    raw = bytes.fromhex(text.replace(":", ""))
    if len(raw) != 6:
        raise ValueError(f"not a MAC address: {text!r}")
    return raw


def _int_encoder(size: int) -> Callable[[Any], bytes]:
    def enc(v: int) -> bytes:
        return int(v).to_bytes(size, "big")

    return enc


def _fields() -> dict[str, _Field]:
    out: dict[str, _Field] = {}
    for f in ofp.oxm_types:
        if not isinstance(f.num, int):
            continue  # experimenter fields (tcp_flags): os-ken writes those
        if f.type is type_desc.IPv6Addr:
            out[f.name] = _Field(f.num, 16, _ipv6)
        elif f.type is type_desc.MacAddr:
            out[f.name] = _Field(f.num, 6, _mac)
        elif isinstance(f.type, type_desc.IntDescr):
            out[f.name] = _Field(f.num, f.type.size, _int_encoder(f.type.size))
    return out


_FIELDS = _fields()


class _Unsupported(Exception):
    """The message holds something this encoder does not write: os-ken writes it."""


def _oxm(name: str, value: Any) -> bytes:
    f = _FIELDS.get(name)
    if f is None:
        raise _Unsupported(name)
    if isinstance(value, tuple):
        v, m = value
        return f.hdr_masked + f.to_bytes(v) + f.to_bytes(m)
    return f.hdr + f.to_bytes(value)


def _match(m: Any) -> bytes:
    body = b"".join([_oxm(name, value) for name, value in m._fields2])
    length = 4 + len(body)
    return _MATCH_HDR.pack(ofp.OFPMT_OXM, length) + body + b"\x00" * (-length % 8)


def _actions(actions: Any) -> bytes:
    out = []
    for a in actions:
        cls = type(a)
        if cls is parser.OFPActionOutput:
            out.append(_ACTION_OUTPUT.pack(ofp.OFPAT_OUTPUT, 16, a.port, a.max_len))
        elif cls is parser.OFPActionSetField:
            oxm = _oxm(a.key, a.value)
            length = 4 + len(oxm)
            pad = -length % 8
            out.append(struct.pack("!HH", ofp.OFPAT_SET_FIELD, length + pad) + oxm + b"\x00" * pad)
        else:
            raise _Unsupported(cls.__name__)
    return b"".join(out)


def _instructions(insts: Any) -> bytes:
    out = []
    for i in insts:
        cls = type(i)
        if cls is parser.OFPInstructionActions:
            acts = _actions(i.actions)
            out.append(_INST_HDR.pack(i.type, 8 + len(acts)) + acts)
        elif cls is parser.OFPInstructionGotoTable:
            out.append(_GOTO.pack(ofp.OFPIT_GOTO_TABLE, 8, i.table_id))
        elif cls is parser.OFPInstructionWriteMetadata:
            out.append(_WRITE_META.pack(ofp.OFPIT_WRITE_METADATA, 24, i.metadata, i.metadata_mask))
        else:
            raise _Unsupported(cls.__name__)
    return b"".join(out)


def _flow_mod(msg: Any, xid: int) -> bytes:
    body = (
        _FLOW_MOD.pack(
            msg.cookie,
            msg.cookie_mask,
            msg.table_id,
            msg.command,
            msg.idle_timeout,
            msg.hard_timeout,
            msg.priority,
            msg.buffer_id,
            msg.out_port,
            msg.out_group,
            msg.flags,
        )
        + _match(msg.match)
        + _instructions(msg.instructions)
    )
    return _HEADER.pack(_VERSION, ofp.OFPT_FLOW_MOD, 8 + len(body), xid) + body


def _packet_out(msg: Any, xid: int) -> bytes:
    acts = _actions(msg.actions)
    data = msg.data or b""
    length = 8 + _PACKET_OUT.size + len(acts) + len(data)
    return (
        _HEADER.pack(_VERSION, ofp.OFPT_PACKET_OUT, length, xid)
        + _PACKET_OUT.pack(msg.buffer_id, msg.in_port, len(acts))
        + acts
        + bytes(data)
    )


def encode(msg: Any, xid: int) -> bytes:
    """The OpenFlow bytes of `msg` with transaction id `xid` (the message is not modified,
    except when os-ken serialises it: then its datapath/xid/buf are set as os-ken does)."""
    cls = type(msg)
    try:
        if cls is parser.OFPFlowMod:
            return _flow_mod(msg, xid)
        if cls is parser.OFPPacketOut and msg.buffer_id == ofp.OFP_NO_BUFFER:
            return _packet_out(msg, xid)
    except _Unsupported:
        pass
    return reference_encode(msg, xid)


def reference_encode(msg: Any, xid: int) -> bytes:
    """os-ken's own serialisation (the reference the fast path must equal)."""
    if msg.datapath is None:
        msg.datapath = _PROTO
    msg.xid = xid  # not set_xid(): it refuses a message that was sent before
    msg.serialize()
    return bytes(msg.buf)


def bundle_add(bundle_id: int, flags: int, inner: Any, xid: int) -> bytes:
    """An ONF bundle-add message (EXT-230) carrying `inner`; both share `xid` (EXT-230 §3.3)."""
    body = _BUNDLE_ADD.pack(
        ofproto_common.ONF_EXPERIMENTER_ID, ofp.ONF_ET_BUNDLE_ADD_MESSAGE, bundle_id, flags
    ) + encode(inner, xid)
    return _HEADER.pack(_VERSION, ofp.OFPT_EXPERIMENTER, 8 + len(body), xid) + body
