"""Batched netlink for the binding data path: many route, proxy-ND and nft-set changes per send.

Owns: the encoding of exactly the messages a binding needs, written with `struct` (no pyroute2
per-message encoding, which costs ~0.2 ms a request, docs/datapath.md), and their delivery:
- rtnetlink: `HoA/128 encap seg6 mode encap.red segs <CoA> dev <home link>` (RTM_NEWROUTE,
  NLM_F_REPLACE: moving a binding is this one message, no instant without a route), its
  deletion, and proxy neighbour entries (NTF_PROXY). Routes and proxies carry the protocol number
  RTPROT_SDNMIP_HA, so a restarted HA finds and removes what a crashed one left behind.
- nfnetlink: one nftables transaction (batch begin .. end) adding and deleting elements of the
  HA table's `bindings` set (RFC 6275 §10.4.5 reverse-tunnel check). nft 1.0.6 has no "destroy":
  a delete of an absent element would abort the transaction, so each delete is preceded by an
  add of the same element (`sdnmip.kernel.nft` does the same in text).
Both kernels process a request in the sender's `sendmsg`, so every acknowledgement is queued when
`send` returns: a batch is one send and one drain, synchronously, in microseconds per message.

Must not: decide what is bound (the cache does) or set up anything but bindings (the daemon uses
`sdnmip.kernel` for sysctls, decap routes, rules and loading the nft table).
"""

from __future__ import annotations

import errno as errno_mod
import socket
import struct
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from ipaddress import IPv6Address

from sdnmip.kernel.errors import KernelRequestError

NETLINK_ROUTE = 0
NETLINK_NETFILTER = 12
SOL_NETLINK = 270
NETLINK_CAP_ACK = 10  # acks without the request echoed: the ack stream stays small
NETLINK_EXT_ACK = 11

NLM_F_REQUEST = 0x1
NLM_F_MULTI = 0x2
NLM_F_ACK = 0x4
NLM_F_DUMP = 0x300
NLM_F_REPLACE = 0x100
NLM_F_EXCL = 0x200
NLM_F_CREATE = 0x400
NLMSG_ERROR = 2
NLMSG_DONE = 3
NLA_F_NESTED = 0x8000

RTM_NEWROUTE = 24
RTM_DELROUTE = 25
RTM_GETROUTE = 26
RTM_NEWNEIGH = 28
RTM_DELNEIGH = 29
RTM_GETNEIGH = 30
RTA_DST = 1
RTA_OIF = 4
RTA_TABLE = 15
RTA_ENCAP_TYPE = 21
RTA_ENCAP = 22
NDA_DST = 1
NDA_PROTOCOL = 12
NTF_PROXY = 0x08
NUD_PERMANENT = 0x80
RT_TABLE_MAIN = 254
RTN_UNICAST = 1
RT_SCOPE_UNIVERSE = 0
LWTUNNEL_ENCAP_SEG6 = 5
SEG6_IPTUNNEL_SRH = 1
SEG6_IPTUN_MODE_ENCAP_RED = 3  # include/uapi/linux/seg6_iptunnel.h
IPV6_SRCRT_TYPE_4 = 4  # the SRH routing type (RFC 8754)
# Our routes and proxy entries say who made them ("ip -6 route show proto 93"): 0x5d from
# sdnmip's 0x5d1f, a value no routing daemon registered in /etc/iproute2/rt_protos uses.
RTPROT_SDNMIP_HA = 93

NFNL_SUBSYS_NFTABLES = 10
NFNL_MSG_BATCH_BEGIN = 0x10
NFNL_MSG_BATCH_END = 0x11
NFT_MSG_NEWSETELEM = 12
NFT_MSG_DELSETELEM = 14
NFPROTO_INET = 1
NFTA_SET_ELEM_LIST_TABLE = 1
NFTA_SET_ELEM_LIST_SET = 2
NFTA_SET_ELEM_LIST_ELEMENTS = 3
NFTA_LIST_ELEM = 1
NFTA_SET_ELEM_KEY = 1
NFTA_DATA_VALUE = 1

MAX_BATCH_BYTES = 60_000  # well under the default socket send buffer (212992)
MAX_MESSAGES_PER_SEND = 256  # their acks fit the receive buffer before it is drained
SO_RCVBUFFORCE = 33
RCVBUF = 8 << 20
ELEMENTS_PER_TRANSACTION = 600  # 44 octets each, twice for a delete: one transaction < 60 KB

_NLMSG = struct.Struct("=IHHII")  # len, type, flags, seq, pid
_ERR = struct.Struct("=i")
_RTMSG = struct.Struct("=BBBBBBBBI")  # family dst_len src_len tos table proto scope type flags
_NDMSG = struct.Struct("=BBHiHBB")  # family pad pad ifindex state flags type
_NFGEN = struct.Struct("=BBH")  # family, version, res_id (network order, packed by hand)
_RTA = struct.Struct("=HH")
_U32 = struct.Struct("=I")
_U16 = struct.Struct("=H")
# struct seg6_iptunnel_encap { int mode; struct ipv6_sr_hdr srh; } with one segment:
# nexthdr 0, hdrlen 2 (16 octets of segments / 8), type 4, segments_left 0, first_segment 0,
# flags 0, tag 0, then the segment. What iproute2 sends for "encap seg6 mode encap.red segs X".
_SRH_HEAD = struct.pack("=i", SEG6_IPTUN_MODE_ENCAP_RED) + bytes(
    (0, 2, IPV6_SRCRT_TYPE_4, 0, 0, 0, 0, 0)
)


def _attr(rtype: int, payload: bytes) -> bytes:
    raw = _RTA.pack(4 + len(payload), rtype) + payload
    return raw + bytes((-len(raw)) % 4)


def _msg(mtype: int, flags: int, seq: int, body: bytes) -> bytes:
    return _NLMSG.pack(16 + len(body), mtype, flags, seq, 0) + body


def encode_route_replace(seq: int, hoa: IPv6Address, coa: IPv6Address, oif: int) -> bytes:
    """RTM_NEWROUTE (create|replace): HoA/128 encap seg6 mode encap.red segs CoA dev <oif>."""
    encap = _attr(SEG6_IPTUNNEL_SRH, _SRH_HEAD + coa.packed)
    body = (
        _RTMSG.pack(socket.AF_INET6, 128, 0, 0, RT_TABLE_MAIN, RTPROT_SDNMIP_HA,
                    RT_SCOPE_UNIVERSE, RTN_UNICAST, 0)
        + _attr(RTA_DST, hoa.packed)
        + _attr(RTA_OIF, _U32.pack(oif))
        + _attr(RTA_ENCAP_TYPE, _U16.pack(LWTUNNEL_ENCAP_SEG6))
        + _attr(RTA_ENCAP | NLA_F_NESTED, encap)
    )  # fmt: skip
    flags = NLM_F_REQUEST | NLM_F_ACK | NLM_F_CREATE | NLM_F_REPLACE
    return _msg(RTM_NEWROUTE, flags, seq, body)


def encode_route_delete(seq: int, hoa: IPv6Address) -> bytes:
    body = _RTMSG.pack(
        socket.AF_INET6, 128, 0, 0, RT_TABLE_MAIN, RTPROT_SDNMIP_HA, 0, RTN_UNICAST, 0
    ) + _attr(RTA_DST, hoa.packed)
    return _msg(RTM_DELROUTE, NLM_F_REQUEST | NLM_F_ACK, seq, body)


def encode_proxy(seq: int, address: IPv6Address, ifindex: int, *, add: bool) -> bytes:
    """`ip -6 neigh add|del proxy <address> dev <ifindex>` (tagged with our protocol)."""
    body = _NDMSG.pack(socket.AF_INET6, 0, 0, ifindex, NUD_PERMANENT, NTF_PROXY, 0)
    body += _attr(NDA_DST, address.packed)
    if add:
        body += _attr(NDA_PROTOCOL, bytes((RTPROT_SDNMIP_HA,)))
        flags = NLM_F_REQUEST | NLM_F_ACK | NLM_F_CREATE | NLM_F_REPLACE
        return _msg(RTM_NEWNEIGH, flags, seq, body)
    return _msg(RTM_DELNEIGH, NLM_F_REQUEST | NLM_F_ACK, seq, body)


def binding_key(coa: IPv6Address, hoa: IPv6Address) -> bytes:
    """The `bindings` set key: `ip6 saddr . @nh,384,128` = outer source . inner source."""
    return coa.packed + hoa.packed


def _nfgen(family: int, res_id: int = 0) -> bytes:
    return _NFGEN.pack(family, 0, socket.htons(res_id))


def encode_setelem(seq: int, table: str, setname: str, keys: list[bytes], *, add: bool) -> bytes:
    elems = b"".join(
        _attr(NFTA_LIST_ELEM | NLA_F_NESTED,
              _attr(NFTA_SET_ELEM_KEY | NLA_F_NESTED, _attr(NFTA_DATA_VALUE, k)))
        for k in keys
    )  # fmt: skip
    body = (
        _nfgen(NFPROTO_INET)
        + _attr(NFTA_SET_ELEM_LIST_TABLE, table.encode() + b"\0")
        + _attr(NFTA_SET_ELEM_LIST_SET, setname.encode() + b"\0")
        + _attr(NFTA_SET_ELEM_LIST_ELEMENTS | NLA_F_NESTED, elems)
    )
    mtype = (NFNL_SUBSYS_NFTABLES << 8) | (NFT_MSG_NEWSETELEM if add else NFT_MSG_DELSETELEM)
    flags = NLM_F_REQUEST | NLM_F_ACK | (NLM_F_CREATE if add else 0)
    return _msg(mtype, flags, seq, body)


@dataclass(frozen=True, slots=True)
class Failure:
    """One message of a batch the kernel refused; `message` is kept to send it again."""

    what: str
    errno: int
    message: bytes = b""
    subject: IPv6Address | None = None  # the HoA the message was for

    @property
    def retriable(self) -> bool:
        """ENOMEM: a seg6 route allocates per-CPU memory atomically, which fails in a burst
        until the kernel's per-CPU pool has been refilled (milliseconds later)."""
        return self.errno == errno_mod.ENOMEM and bool(self.message)

    def __str__(self) -> str:
        return f"{self.what}: {errno_mod.errorcode.get(self.errno, str(self.errno))}"


# What a sent message was, for the error message: a string, or a function making it (formatting
# addresses costs microseconds per message, and is only needed when the kernel refuses one).
Expected = tuple[str | Callable[[], str], bytes, IPv6Address | None]


class _Socket:
    def __init__(self, proto: int) -> None:
        s = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW | socket.SOCK_CLOEXEC, proto)
        try:
            s.setsockopt(SOL_NETLINK, NETLINK_CAP_ACK, 1)
            s.setsockopt(SOL_NETLINK, NETLINK_EXT_ACK, 1)
            try:
                # Each ack costs about a kilobyte of receive buffer (skb truesize): root may
                # raise the limit past rmem_max; `exchange` also drains after every send.
                s.setsockopt(socket.SOL_SOCKET, SO_RCVBUFFORCE, RCVBUF)
            except PermissionError:
                s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, RCVBUF)
            s.bind((0, 0))
        except BaseException:
            s.close()
            raise
        self.sock = s
        self.seq = 0

    def next_seq(self) -> int:
        self.seq = (self.seq + 1) & 0xFFFFFFFF
        return self.seq

    def exchange(self, chunks: list[bytes], expect: dict[int, Expected]) -> list[Failure]:
        """Send `chunks` (each one sendmsg) and collect the acks of the sequence numbers in
        `expect` (seq -> (description, message, HoA)); returns the failures."""
        failures: list[Failure] = []
        waiting = dict(expect)
        for chunk in chunks:
            try:
                self.sock.send(chunk)
            except OSError as exc:
                raise KernelRequestError(
                    f"netlink batch of {len(chunk)} bytes", exc.strerror or str(exc), exc.errno
                ) from exc
            # The kernel has processed the chunk inside send(): its acks are all queued.
            while True:
                try:
                    data = self.sock.recv(1 << 20, socket.MSG_DONTWAIT)
                except BlockingIOError:
                    break
                for mtype, seq, payload in _walk(data):
                    if mtype != NLMSG_ERROR or seq not in waiting:
                        continue
                    err = -_ERR.unpack_from(payload)[0]
                    what, message, subject = waiting.pop(seq)
                    if err:
                        text = what if isinstance(what, str) else what()
                        failures.append(Failure(text, err, message, subject))
        if waiting:
            raise KernelRequestError(
                f"netlink batch ({len(expect)} requests)", f"{len(waiting)} not acknowledged"
            )
        return failures

    def dump(self, request: bytes) -> list[tuple[int, bytes]]:
        self.sock.send(request)
        out: list[tuple[int, bytes]] = []
        while True:
            data = self.sock.recv(1 << 20)
            for mtype, _seq, payload in _walk(data):
                if mtype == NLMSG_DONE:
                    return out
                if mtype == NLMSG_ERROR:
                    err = -_ERR.unpack_from(payload)[0]
                    if err:
                        raise KernelRequestError("netlink dump", os_error(err), err)
                    return out
                out.append((mtype, payload))

    def close(self) -> None:
        self.sock.close()


def os_error(err: int) -> str:
    return f"{errno_mod.errorcode.get(err, str(err))}"


def _walk(data: bytes) -> list[tuple[int, int, bytes]]:
    out = []
    pos = 0
    while pos + 16 <= len(data):
        length, mtype, _flags, seq, _pid = _NLMSG.unpack_from(data, pos)
        if length < 16:
            break
        out.append((mtype, seq, data[pos + 16 : pos + length]))
        pos += (length + 3) & ~3
    return out


def _attrs(payload: bytes, start: int) -> dict[int, bytes]:
    out: dict[int, bytes] = {}
    pos = start
    while pos + 4 <= len(payload):
        length, rtype = _RTA.unpack_from(payload, pos)
        if length < 4:
            break
        out[rtype & ~NLA_F_NESTED] = payload[pos + 4 : pos + length]
        pos += (length + 3) & ~3
    return out


def _chunks(messages: list[bytes]) -> list[bytes]:
    out: list[bytes] = []
    cur = bytearray()
    count = 0
    for m in messages:
        if cur and (len(cur) + len(m) > MAX_BATCH_BYTES or count >= MAX_MESSAGES_PER_SEND):
            out.append(bytes(cur))
            cur = bytearray()
            count = 0
        cur += m
        count += 1
    if cur:
        out.append(bytes(cur))
    return out


class RouteBatch:
    """Collects route and proxy changes; `commit` sends them in as few sendmsg calls as fit."""

    def __init__(self, oif: int) -> None:
        self.oif = oif
        self._nl = _Socket(NETLINK_ROUTE)
        self._msgs: list[bytes] = []
        self._expect: dict[int, Expected] = {}
        self.messages_sent = 0
        self.commits = 0

    def __len__(self) -> int:
        return len(self._msgs)

    def _queue(
        self, seq: int, message: bytes, what: str | Callable[[], str], subject: IPv6Address | None
    ) -> None:
        self._msgs.append(message)
        self._expect[seq] = (what, message, subject)

    def replace_route(self, hoa: IPv6Address, coa: IPv6Address) -> None:
        seq = self._nl.next_seq()
        self._queue(
            seq,
            encode_route_replace(seq, hoa, coa, self.oif),
            lambda: f"route replace {hoa}/128 encap seg6 mode encap.red segs {coa}",
            hoa,
        )

    def delete_route(self, hoa: IPv6Address) -> None:
        seq = self._nl.next_seq()
        self._queue(seq, encode_route_delete(seq, hoa), lambda: f"route del {hoa}/128", hoa)

    def proxy(self, address: IPv6Address, *, add: bool, subject: IPv6Address | None = None) -> None:
        """Add or delete the proxy entry for `address`; `subject` is the HoA it belongs to."""
        seq = self._nl.next_seq()
        verb = "add" if add else "del"
        message = encode_proxy(seq, address, self.oif, add=add)
        self._queue(seq, message, lambda: f"neigh {verb} proxy {address}", subject or address)

    def requeue(self, failures: Iterable[Failure]) -> None:
        """Queue refused messages again (same sequence numbers) for the next commit."""
        for f in failures:
            seq = _NLMSG.unpack_from(f.message)[3]
            self._queue(seq, f.message, f.what, f.subject)

    def drop(self, failures: Iterable[Failure]) -> None:
        """Forget re-queued messages (given up on)."""
        seqs = {_NLMSG.unpack_from(f.message)[3] for f in failures if f.message}
        self._msgs = [m for m in self._msgs if _NLMSG.unpack_from(m)[3] not in seqs]
        for seq in seqs:
            self._expect.pop(seq, None)

    def commit(self) -> list[Failure]:
        if not self._msgs:
            return []
        msgs, expect = self._msgs, self._expect
        self._msgs, self._expect = [], {}
        self.messages_sent += len(msgs)
        self.commits += 1
        return self._nl.exchange(_chunks(msgs), expect)

    def our_routes(self) -> list[IPv6Address]:
        """/128 routes of the main table made by an HA (protocol RTPROT_SDNMIP_HA)."""
        req = _msg(RTM_GETROUTE, NLM_F_REQUEST | NLM_F_DUMP, self._nl.next_seq(),
                   _RTMSG.pack(socket.AF_INET6, 0, 0, 0, 0, 0, 0, 0, 0))  # fmt: skip
        out = []
        for mtype, payload in self._nl.dump(req):
            if mtype != RTM_NEWROUTE or len(payload) < _RTMSG.size:
                continue
            _family, dst_len, _s, _t, table, proto, *_ = _RTMSG.unpack_from(payload)
            attrs = _attrs(payload, _RTMSG.size)
            ours = table == RT_TABLE_MAIN and proto == RTPROT_SDNMIP_HA and dst_len == 128
            if ours and RTA_DST in attrs:
                out.append(IPv6Address(attrs[RTA_DST]))
        return out

    def our_proxies(self) -> list[IPv6Address]:
        """Proxy entries on our device made by an HA (NDA_PROTOCOL = RTPROT_SDNMIP_HA)."""
        body = _NDMSG.pack(socket.AF_INET6, 0, 0, 0, 0, NTF_PROXY, 0)
        req = _msg(RTM_GETNEIGH, NLM_F_REQUEST | NLM_F_DUMP, self._nl.next_seq(), body)
        out = []
        for mtype, payload in self._nl.dump(req):
            if mtype != RTM_NEWNEIGH or len(payload) < _NDMSG.size:
                continue
            _f, _p1, _p2, ifindex, _state, flags, _type = _NDMSG.unpack_from(payload)
            attrs = _attrs(payload, _NDMSG.size)
            proto = attrs.get(NDA_PROTOCOL, b"\0")[0]
            if flags & NTF_PROXY and ifindex == self.oif and proto == RTPROT_SDNMIP_HA:
                out.append(IPv6Address(attrs[NDA_DST]))
        return out

    def close(self) -> None:
        self._nl.close()


class SetBatch:
    """Collects `bindings` set changes for one nftables transaction per `commit`."""

    def __init__(self, table: str, setname: str = "bindings") -> None:
        self.table = table
        self.setname = setname
        self._nl = _Socket(NETLINK_NETFILTER)
        self._add: dict[bytes, None] = {}
        self._del: dict[bytes, None] = {}
        self.commits = 0

    def __len__(self) -> int:
        return len(self._add) + len(self._del)

    def add(self, coa: IPv6Address, hoa: IPv6Address) -> None:
        key = binding_key(coa, hoa)
        self._del.pop(key, None)
        self._add[key] = None

    def delete(self, coa: IPv6Address, hoa: IPv6Address) -> None:
        key = binding_key(coa, hoa)
        self._add.pop(key, None)
        self._del[key] = None

    def commit(self) -> list[Failure]:
        """Send the changes as nftables transactions of at most `ELEMENTS_PER_TRANSACTION`
        elements each (a transaction must fit one sendmsg); deletions go first."""
        if not self._add and not self._del:
            return []
        work = [(k, False) for k in self._del] + [(k, True) for k in self._add]
        self._add, self._del = {}, {}
        failures: list[Failure] = []
        for i in range(0, len(work), ELEMENTS_PER_TRANSACTION):
            failures += self._transaction(work[i : i + ELEMENTS_PER_TRANSACTION])
        return failures

    def _transaction(self, work: list[tuple[bytes, bool]]) -> list[Failure]:
        self.commits += 1
        nl = self._nl
        expect: dict[int, Expected] = {}
        head = _nfgen(socket.AF_UNSPEC, NFNL_SUBSYS_NFTABLES)
        msgs = [_msg(NFNL_MSG_BATCH_BEGIN, NLM_F_REQUEST, nl.next_seq(), head)]
        dels = [k for k, add in work if not add]
        adds = [k for k, add in work if add]
        if dels:
            for add in (True, False):  # add first: deleting an absent element aborts the batch
                seq = nl.next_seq()
                msgs.append(encode_setelem(seq, self.table, self.setname, dels, add=add))
                verb = "add" if add else "delete"
                expect[seq] = (
                    f"nft {verb} element {self.table} {self.setname} x{len(dels)}",
                    b"",
                    None,
                )
        if adds:
            seq = nl.next_seq()
            msgs.append(encode_setelem(seq, self.table, self.setname, adds, add=True))
            expect[seq] = (
                f"nft add element {self.table} {self.setname} x{len(adds)}",
                b"",
                None,
            )
        msgs.append(_msg(NFNL_MSG_BATCH_END, NLM_F_REQUEST, nl.next_seq(), head))
        return nl.exchange([b"".join(msgs)], expect)

    def close(self) -> None:
        self._nl.close()


def describe_failures(failures: Iterable[Failure]) -> str:
    return "; ".join(str(f) for f in failures)
