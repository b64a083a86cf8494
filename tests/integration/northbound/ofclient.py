"""A small blocking OpenFlow 1.3 client: what an external SDN controller does when it watches the
MN's bridge next to sdnmip (docs/northbound.md, "External SDN controllers").

It speaks raw OpenFlow over a stream socket (the bridge's management socket, or any TCP/Unix
connection OVS accepts), using os-ken's message classes only to encode and decode, so nothing of
sdnmip is involved: hello, role request, flow-stats, port-status, and a flow-mod that must be
refused while the connection is a slave.
"""

from __future__ import annotations

import socket
import struct
import time
from dataclasses import dataclass
from typing import Any

from os_ken.ofproto import ofproto_parser
from os_ken.ofproto import ofproto_v1_3 as ofp
from os_ken.ofproto import ofproto_v1_3_parser as parser

HEADER = struct.Struct("!BBHI")


class _Datapath:
    """What os-ken's message classes need to serialize and parse (no connection)."""

    ofproto = ofp
    ofproto_parser = parser

    def set_xid(self, msg: Any) -> None:  # os-ken asks the datapath for an xid
        pass


@dataclass
class Received:
    msg: Any
    xid: int


class OpenFlowClient:
    def __init__(self, sock: socket.socket, timeout: float = 5.0) -> None:
        self.sock = sock
        self.sock.settimeout(timeout)
        self.dp = _Datapath()
        self._xid = 0x5000
        self._buf = b""
        self.received: list[Received] = []  # everything read, in order

    @classmethod
    def unix(cls, path: str, timeout: float = 5.0) -> OpenFlowClient:
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.connect(path)
        return cls(s, timeout)

    def close(self) -> None:
        self.sock.close()

    # -- sending --------------------------------------------------------------------------------

    def send(self, msg: Any) -> int:
        self._xid += 1
        msg.xid = self._xid
        msg.serialize()
        self.sock.sendall(bytes(msg.buf))
        return int(self._xid)

    def handshake(self) -> None:
        self.send(parser.OFPHello(self.dp))
        self.expect(lambda m: isinstance(m, parser.OFPHello), "hello")
        xid = self.send(parser.OFPFeaturesRequest(self.dp))
        self.reply(xid, "features reply")
        # Open vSwitch sends no asynchronous message (port-status...) to a connection made to
        # its management socket (a "service" connection) until it sets a non-zero
        # miss_send_len; the role then decides which ones it gets (a slave: port-status).
        self.send(parser.OFPSetConfig(self.dp, ofp.OFPC_FRAG_NORMAL, 128))

    def request_role(self, role: int, generation_id: int) -> Any:
        xid = self.send(parser.OFPRoleRequest(self.dp, role, generation_id))
        return self.reply(xid, "role reply")

    def flow_stats(self) -> list[Any]:
        """Every rule of every table (all parts of the multipart reply)."""
        xid = self.send(
            parser.OFPFlowStatsRequest(self.dp, 0, ofp.OFPTT_ALL, ofp.OFPP_ANY, ofp.OFPG_ANY)
        )
        rules: list[Any] = []
        while True:
            part = self.reply(xid, "flow stats reply")
            rules.extend(part.body)
            if not part.flags & ofp.OFPMPF_REPLY_MORE:
                return rules

    def barrier(self) -> Any:
        return self.reply(self.send(parser.OFPBarrierRequest(self.dp)), "barrier reply")

    # -- receiving ------------------------------------------------------------------------------

    def read(self, deadline: float) -> Received | None:
        while len(self._buf) < HEADER.size or len(self._buf) < self._length():
            left = deadline - time.monotonic()
            if left <= 0:
                return None
            self.sock.settimeout(left)
            try:
                chunk = self.sock.recv(65536)
            except TimeoutError:
                return None
            if not chunk:
                raise ConnectionError("the switch closed the connection")
            self._buf += chunk
        length = self._length()
        data, self._buf = self._buf[:length], self._buf[length:]
        version, msg_type, msg_len, xid = HEADER.unpack_from(data)
        msg = ofproto_parser.msg(self.dp, version, msg_type, msg_len, xid, data)
        got = Received(msg, xid)
        self.received.append(got)
        return got

    def _length(self) -> int:
        return int(HEADER.unpack_from(self._buf)[2])

    def expect(self, pred: Any, what: str, timeout: float = 5.0) -> Any:
        deadline = time.monotonic() + timeout
        while True:
            got = self.read(deadline)
            if got is None:
                raise TimeoutError(f"no {what} within {timeout:g} s")
            if isinstance(got.msg, parser.OFPEchoRequest):
                self.send(parser.OFPEchoReply(self.dp, data=got.msg.data))
                continue
            if pred(got.msg):
                return got.msg

    def reply(self, xid: int, what: str, timeout: float = 5.0) -> Any:
        msg = self.expect(lambda m: m.xid == xid, what, timeout)
        if isinstance(msg, parser.OFPErrorMsg):
            raise SwitchError(msg)
        return msg


class SwitchError(Exception):
    def __init__(self, msg: Any) -> None:
        super().__init__(f"OpenFlow error type {msg.type} code {msg.code}")
        self.type = msg.type
        self.code = msg.code
