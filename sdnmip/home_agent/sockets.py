"""The HA's raw IPv6 sockets: receivers drained in batches, one IPV6_HDRINCL sender, and
multicast/anycast membership.

Owns: socket options the daemon needs beyond `sdnmip.kernel.rawsock`: the received hop limit
(RFC 4861 §7.1.1/§7.1.2: ND messages count only with hop limit 255), draining every queued packet
in one event-loop callback (no future per packet: the HA takes thousands of BUs a second),
IPV6_JOIN_GROUP for the solicited-node groups of addresses under DAD (RFC 4862 §5.4.2: another
node's DAD solicitation is sent there), IPV6_JOIN_ANYCAST for the Home-Agents anycast address
(RFC 6275 §10.5), and a sender with multicast loopback off (our own DAD solicitation looped back
would look like another node's DAD for the same address).

Must not: parse Mobile IPv6 (the codec does) or decide anything.
"""

from __future__ import annotations

import socket
import struct
from collections.abc import Iterable
from dataclasses import dataclass
from ipaddress import IPv6Address

from sdnmip.kernel.errors import KernelConfigError, KernelRequestError
from sdnmip.kernel.rawsock import (
    ICMP6_FILTER,
    IPV6_HDRINCL,
    IPV6_PKTINFO,
    IPV6_RECVPKTINFO,
    MAX_PACKET,
    icmp6_pass_only,
)

IPV6_RECVHOPLIMIT = 51
IPV6_HOPLIMIT = 52
IPV6_JOIN_ANYCAST = 27
IPV6_LEAVE_ANYCAST = 28
SO_RCVBUFFORCE = 33  # asm-generic/socket.h (root may exceed net.core.rmem_max)
SOURCE_CACHE = 4096
_CMSG_SPACE = 256
_I32 = struct.Struct("=i")
_U32 = struct.Struct("=I")


@dataclass(frozen=True, slots=True)
class Received:
    """One packet: the bytes after the IPv6 header, its addresses, interface and hop limit."""

    data: bytes
    src: IPv6Address
    dst: IPv6Address
    ifindex: int
    hop_limit: int | None


def _mreq(address: IPv6Address, ifindex: int) -> bytes:
    return address.packed + _U32.pack(ifindex)


class Receiver:
    """A non-blocking raw socket on one next-header value."""

    def __init__(
        self,
        proto: int,
        *,
        dev: str | None = None,
        icmp6_types: Iterable[int] | None = None,
        hop_limit: bool = False,
        rcvbuf: int = 4 << 20,
    ) -> None:
        self.proto = proto
        s = socket.socket(socket.AF_INET6, socket.SOCK_RAW | socket.SOCK_CLOEXEC, proto)
        try:
            s.setsockopt(socket.IPPROTO_IPV6, IPV6_RECVPKTINFO, 1)
            if hop_limit:
                s.setsockopt(socket.IPPROTO_IPV6, IPV6_RECVHOPLIMIT, 1)
            if dev is not None:
                try:
                    s.setsockopt(socket.SOL_SOCKET, socket.SO_BINDTODEVICE, dev.encode())
                except OSError as exc:
                    raise KernelConfigError("dev", dev, f"cannot bind: {exc.strerror}") from exc
            if icmp6_types is not None:
                s.setsockopt(socket.IPPROTO_ICMPV6, ICMP6_FILTER, icmp6_pass_only(icmp6_types))
            try:
                s.setsockopt(socket.SOL_SOCKET, SO_RCVBUFFORCE, rcvbuf)
            except PermissionError:
                s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
            s.setblocking(False)
        except BaseException:
            s.close()
            raise
        self.sock = s
        self._sources: dict[str, IPv6Address] = {}

    def fileno(self) -> int:
        return self.sock.fileno()

    def drain(self, limit: int = 512) -> list[Received]:
        """Every packet queued now, up to `limit`."""
        out: list[Received] = []
        recvmsg = self.sock.recvmsg
        sources = self._sources
        for _ in range(limit):
            try:
                data, anc, _flags, addr = recvmsg(MAX_PACKET, _CMSG_SPACE)
            except (BlockingIOError, InterruptedError):
                break
            dst, ifindex, hops = IPv6Address(0), 0, None
            for level, typ, val in anc:
                if level != socket.IPPROTO_IPV6:
                    continue
                if typ == IPV6_PKTINFO and len(val) >= 20:
                    dst = IPv6Address(val[:16])
                    ifindex = _U32.unpack_from(val, 16)[0]
                elif typ == IPV6_HOPLIMIT and len(val) >= 4:
                    hops = _I32.unpack_from(val)[0]
            # The kernel hands the source as text; parsing it costs more than the rest of this
            # loop, and the same few care-of addresses send nearly everything.
            text = addr[0]
            src = sources.get(text)
            if src is None:
                if len(sources) >= SOURCE_CACHE:
                    sources.clear()
                src = sources[text] = IPv6Address(text.split("%", 1)[0])
            out.append(Received(data, src, dst, ifindex, hops))
        return out

    def join_group(self, group: IPv6Address, ifindex: int) -> None:
        self._opt(socket.IPV6_JOIN_GROUP, group, ifindex, "join multicast group")

    def leave_group(self, group: IPv6Address, ifindex: int) -> None:
        self._opt(socket.IPV6_LEAVE_GROUP, group, ifindex, "leave multicast group")

    def join_anycast(self, address: IPv6Address, ifindex: int) -> None:
        self._opt(IPV6_JOIN_ANYCAST, address, ifindex, "join anycast address")

    def _opt(self, opt: int, address: IPv6Address, ifindex: int, what: str) -> None:
        try:
            self.sock.setsockopt(socket.IPPROTO_IPV6, opt, _mreq(address, ifindex))
        except OSError as exc:
            raise KernelRequestError(
                f"{what} {address} ifindex {ifindex}", exc.strerror or str(exc), exc.errno
            ) from exc

    def close(self) -> None:
        self.sock.close()


class Sender:
    """Sends whole IPv6 packets (IPV6_HDRINCL) out of `dev`, multicast loopback off."""

    def __init__(self, dev: str) -> None:
        self.dev = dev
        s = socket.socket(
            socket.AF_INET6, socket.SOCK_RAW | socket.SOCK_CLOEXEC, socket.IPPROTO_RAW
        )
        try:
            try:
                s.setsockopt(socket.SOL_SOCKET, socket.SO_BINDTODEVICE, dev.encode())
            except OSError as exc:
                raise KernelConfigError("dev", dev, f"cannot bind: {exc.strerror}") from exc
            s.setsockopt(socket.IPPROTO_IPV6, IPV6_HDRINCL, 1)
            s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_MULTICAST_LOOP, 0)
            s.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 4 << 20)
        except BaseException:
            s.close()
            raise
        self.sock = s
        self.errors = 0

    def send(self, packet: bytes, dst: IPv6Address) -> str | None:
        """Send; returns None, or the error (a full queue or an unreachable destination is
        the network's problem, not the HA's: counted and reported, never raised)."""
        try:
            self.sock.sendto(packet, (socket.inet_ntop(socket.AF_INET6, dst.packed), 0))
        except OSError as exc:
            self.errors += 1
            return f"send to {dst} failed: {exc.strerror or exc}"
        return None

    def close(self) -> None:
        self.sock.close()
