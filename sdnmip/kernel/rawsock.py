"""Raw IPv6 sockets for Mobile IPv6 signalling: a whole-packet sender and typed receivers.

Owns: `HdrinclSender` (IPV6_HDRINCL, bound to a device and a source address: sends packets the
codec built whole, so the Mobility Header checksum uses the HoA as RFC 6275 §6.1.1 asks) and
`RawReceiver` (a raw socket on one next-header value, with IPV6_RECVPKTINFO and an optional
classic BPF filter), both non-blocking and asyncio-friendly. Must not: parse Mobile IPv6 (the
codec in sdnmip/mipv6 does).

What each receiver gets on this kernel (docs/datapath.md, verified in the spike and in tests):
- next header 60 at the HA: a BU with the Home Address option, from the Destination Options header
  on (the kernel then drops it with a parameter problem, suppressed by nft).
- next header 43 at the MN: a BA with a type 2 routing header, from the routing header on.
- next header 135: Mobility Headers without extension headers (e.g. a BRR to a local address).
- next header 41: tunnelled packets delivered locally, from the inner IPv6 header on; with the
  End.DT6 decap in place only those nft marked for diversion (sdnmip.kernel.nft "mh-divert").
"""

from __future__ import annotations

import asyncio
import ctypes
import socket
import struct
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from ipaddress import IPv6Address
from types import TracebackType

from sdnmip.kernel.addr import AddrLike, v6addr
from sdnmip.kernel.errors import KernelConfigError, KernelRequestError

IPV6_HDRINCL = 36  # linux/in6.h
IPV6_RECVPKTINFO = 49
IPV6_PKTINFO = 50
SO_ATTACH_FILTER = 26  # asm-generic/socket.h
ICMP6_FILTER = 1  # linux/icmpv6.h, level IPPROTO_ICMPV6
IPV6_HEADER_LEN = 40
MAX_PACKET = 65535
_CMSG_SPACE = 256

# classic BPF opcodes (linux/filter.h)
BPF_LD_B_ABS = 0x30
BPF_JEQ_K = 0x15
BPF_RET_K = 0x06

BpfInsn = tuple[int, int, int, int]  # (code, jt, jf, k)


def bpf_byte_equals(offset: int, value: int) -> list[BpfInsn]:
    """Accept a packet iff the byte at `offset` of what the raw socket sees equals `value`.

    For a raw IPv6 socket, offset 0 is the first byte after the IPv6 header.
    """
    return [
        (BPF_LD_B_ABS, 0, 0, offset),
        (BPF_JEQ_K, 0, 1, value),
        (BPF_RET_K, 0, 0, MAX_PACKET),
        (BPF_RET_K, 0, 0, 0),
    ]


def bpf_inner_next_header(nh: int) -> list[BpfInsn]:
    """For a protocol-41 socket: accept only tunnelled packets whose inner next header is `nh`."""
    return bpf_byte_equals(6, nh)


@dataclass(frozen=True, slots=True)
class RawPacket:
    """What a raw socket received: payload after the IPv6 header, and where it came from/to."""

    data: bytes
    src: IPv6Address
    dst: IPv6Address
    ifindex: int


class HdrinclSender:
    """Sends whole IPv6 packets out of `dev`; route lookup as if from `src`.

    The kernel picks the route from the socket's bound address, not from the header's source: the
    socket is bound to `src` so that "from <CoA> lookup <uplink table>" rules apply (without it a
    MN's BU fails with ENETUNREACH). The header's source must therefore equal `src`.
    """

    def __init__(self, dev: str, src: AddrLike | None = None) -> None:
        self.dev = dev
        self.src = v6addr("src", src) if src is not None else None
        s = socket.socket(socket.AF_INET6, socket.SOCK_RAW, socket.IPPROTO_RAW)
        try:
            try:
                s.setsockopt(socket.SOL_SOCKET, socket.SO_BINDTODEVICE, dev.encode())
            except OSError as exc:
                raise KernelConfigError("dev", dev, f"cannot bind to it: {exc.strerror}") from exc
            s.setsockopt(socket.IPPROTO_IPV6, IPV6_HDRINCL, 1)
            if self.src is not None:
                try:
                    s.bind((str(self.src), 0))
                except OSError as exc:
                    raise KernelConfigError(
                        "src", str(self.src), f"not a local address: {exc.strerror}"
                    ) from exc
            s.setblocking(False)
        except BaseException:
            s.close()
            raise
        self._sock = s

    def send(self, packet: bytes) -> None:
        """Send one IPv6 packet as is (the kernel fills nothing in)."""
        if len(packet) < IPV6_HEADER_LEN or packet[0] >> 4 != 6:
            raise KernelConfigError("packet", packet[:8].hex(), "not an IPv6 packet")
        src = IPv6Address(packet[8:24])
        dst = IPv6Address(packet[24:40])
        if self.src is not None and src != self.src:
            raise KernelConfigError("packet.src", str(src), f"socket is bound to {self.src}")
        try:
            sent = self._sock.sendto(packet, (str(dst), 0))
        except OSError as exc:
            raise KernelRequestError(
                f"raw send {src} -> {dst} dev {self.dev} ({len(packet)} bytes)",
                exc.strerror or str(exc),
                exc.errno,
            ) from exc
        if sent != len(packet):
            raise KernelRequestError(
                f"raw send {src} -> {dst} dev {self.dev}", f"short write {sent}/{len(packet)}"
            )

    def close(self) -> None:
        self._sock.close()

    def __enter__(self) -> HdrinclSender:
        return self

    def __exit__(
        self, t: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()


class RawReceiver:
    """A raw IPv6 socket on next header `proto`: `await recv()` returns one `RawPacket`."""

    def __init__(
        self,
        proto: int,
        *,
        bpf: Sequence[BpfInsn] | None = None,
        dev: str | None = None,
        icmp6_types: Iterable[int] | None = None,
    ) -> None:
        """`icmp6_types` (proto 58 only): pass just these ICMPv6 types (kernel ICMP6_FILTER),
        e.g. {4} for parameter problems or the MPS/HAAD types, without the ND chatter."""
        if not 0 <= proto <= 255:
            raise KernelConfigError("proto", proto, "must be 0..255")
        if icmp6_types is not None and proto != socket.IPPROTO_ICMPV6:
            raise KernelConfigError("icmp6_types", icmp6_types, "only for proto 58")
        self.proto = proto
        s = socket.socket(socket.AF_INET6, socket.SOCK_RAW, proto)
        try:
            s.setsockopt(socket.IPPROTO_IPV6, IPV6_RECVPKTINFO, 1)
            if dev is not None:
                try:
                    s.setsockopt(socket.SOL_SOCKET, socket.SO_BINDTODEVICE, dev.encode())
                except OSError as exc:
                    raise KernelConfigError("dev", dev, f"cannot bind: {exc.strerror}") from exc
            if bpf:
                _attach_filter(s, bpf)
            if icmp6_types is not None:
                s.setsockopt(socket.IPPROTO_ICMPV6, ICMP6_FILTER, icmp6_pass_only(icmp6_types))
            s.setblocking(False)
        except BaseException:
            s.close()
            raise
        self._sock = s

    def fileno(self) -> int:
        return self._sock.fileno()

    def recv_nowait(self) -> RawPacket | None:
        """One queued packet, or None if none is waiting."""
        try:
            data, anc, _flags, addr = self._sock.recvmsg(MAX_PACKET, _CMSG_SPACE)
        except (BlockingIOError, InterruptedError):
            return None
        dst, ifindex = IPv6Address(0), 0
        for level, typ, val in anc:
            if level == socket.IPPROTO_IPV6 and typ == IPV6_PKTINFO and len(val) >= 20:
                dst = IPv6Address(val[:16])
                ifindex = struct.unpack("=I", val[16:20])[0]
        src = IPv6Address(addr[0].split("%")[0])
        return RawPacket(data, src, dst, ifindex)

    async def recv(self) -> RawPacket:
        """Wait for the next packet without blocking the event loop."""
        loop = asyncio.get_running_loop()
        while True:
            pkt = self.recv_nowait()
            if pkt is not None:
                return pkt
            ready: asyncio.Future[None] = loop.create_future()

            def wake(fut: asyncio.Future[None] = ready) -> None:
                if not fut.done():
                    fut.set_result(None)

            loop.add_reader(self._sock.fileno(), wake)
            try:
                await ready
            finally:
                loop.remove_reader(self._sock.fileno())

    def close(self) -> None:
        self._sock.close()

    def __enter__(self) -> RawReceiver:
        return self

    def __exit__(
        self, t: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()


def icmp6_pass_only(types: Iterable[int]) -> bytes:
    """struct icmp6_filter: 256 bits, a set bit blocks that type."""
    words = [0xFFFFFFFF] * 8
    for t in types:
        if not 0 <= t <= 255:
            raise KernelConfigError("icmp6_types", t, "must be 0..255")
        words[t >> 5] &= ~(1 << (t & 31))
    return struct.pack("=8I", *words)


def _attach_filter(s: socket.socket, prog: Sequence[BpfInsn]) -> None:
    """SO_ATTACH_FILTER with a classic BPF program (the kernel copies it during the call)."""
    raw = b"".join(struct.pack("=HBBI", *insn) for insn in prog)
    buf = ctypes.create_string_buffer(raw, len(raw))
    fprog = struct.pack("HP", len(prog), ctypes.addressof(buf))  # struct sock_fprog
    try:
        s.setsockopt(socket.SOL_SOCKET, SO_ATTACH_FILTER, fprog)
    except OSError as exc:
        raise KernelRequestError(
            f"SO_ATTACH_FILTER ({len(prog)} insns)", exc.strerror or str(exc), exc.errno
        ) from exc
