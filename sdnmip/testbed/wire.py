"""The link emulator: delay and rate on one MN uplink, in both directions.

Why it exists: this kernel has no `sch_netem` (CONFIG_NET_SCH_NETEM is off), so the delay is done
in user space. The access router's side of a shaped link is split in two: the veth from the MN ends
in `<iface>-w` (IPv6 disabled, the kernel ignores it), and the router's stack sees a TAP device
`<iface>` holding its address. This process moves frames between the two, each direction through a
`Direction` that models a transmitter of the given rate feeding a line of the given one-way delay,
with a bounded queue (drop-tail). Frames are never altered.

Owns: the scheduling model (`Direction`, pure: times are passed in) and the frame pump.
Must not: know anything about the topology beyond the two device names and the shaping.
"""

from __future__ import annotations

import argparse
import collections
import errno
import fcntl
import os
import select
import socket
import struct
import sys
import time
from dataclasses import dataclass, field

ETH_P_ALL = 0x0003
PACKET_OUTGOING = 4  # linux/if_packet.h: a frame this host sent, looped back to packet sockets
SOL_PACKET = 263
PACKET_ADD_MEMBERSHIP = 1
PACKET_MR_PROMISC = 1
TUNSETIFF = 0x400454CA
IFF_TAP = 0x0002
IFF_NO_PI = 0x1000
MAX_FRAME = 65535
BATCH = 256  # frames read per device per wake-up, so one busy direction cannot starve the other
SOCKET_BUFFER = 4 * 1024 * 1024


@dataclass
class Direction:
    """One direction of the emulated link: serialisation at `rate_bps`, then `delay_s` on the line.

    A frame arriving at `now` starts transmitting when the transmitter is free, finishes after
    size/rate, and is delivered `delay_s` later. At most `queue_pkts` frames are held (queued or on
    the line); more are dropped, like netem's `limit`.
    """

    delay_s: float
    rate_bps: float | None
    queue_pkts: int
    tx_free_at: float = 0.0
    frames: collections.deque[tuple[float, bytes]] = field(default_factory=collections.deque)
    dropped: int = 0
    delivered: int = 0

    def offer(self, now: float, frame: bytes) -> float | None:
        """Queue `frame`; returns its delivery time, or None if the queue is full (dropped)."""
        if len(self.frames) >= self.queue_pkts:
            self.dropped += 1
            return None
        start = max(now, self.tx_free_at)
        done = start if self.rate_bps is None else start + len(frame) * 8 / self.rate_bps
        self.tx_free_at = done
        deliver_at = done + self.delay_s
        self.frames.append((deliver_at, frame))
        return deliver_at

    def due(self, now: float) -> list[bytes]:
        """Frames whose delivery time has come, in order (delivery times never decrease)."""
        out = []
        while self.frames and self.frames[0][0] <= now:
            out.append(self.frames.popleft()[1])
        self.delivered += len(out)
        return out

    def next_due(self) -> float | None:
        return self.frames[0][0] if self.frames else None


def open_tap(name: str) -> int:
    """Attach to the (persistent) TAP device `name`; its carrier is up while we hold it."""
    fd = os.open("/dev/net/tun", os.O_RDWR | os.O_NONBLOCK)
    fcntl.ioctl(fd, TUNSETIFF, struct.pack("16sH", name.encode(), IFF_TAP | IFF_NO_PI))
    return fd


def open_packet_socket(name: str) -> socket.socket:
    # Protocol 0 at creation and ETH_P_ALL at bind: nothing from other devices is ever queued.
    sock = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, 0)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, SOCKET_BUFFER)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, SOCKET_BUFFER)
    sock.bind((name, ETH_P_ALL))
    ifindex = socket.if_nametoindex(name)
    mreq = struct.pack("iHH8s", ifindex, PACKET_MR_PROMISC, 0, b"")
    sock.setsockopt(SOL_PACKET, PACKET_ADD_MEMBERSHIP, mreq)
    sock.setblocking(False)
    return sock


def pump(tap_fd: int, sock: socket.socket, up: Direction, down: Direction) -> None:
    """Forever: frames from the veth go `up` to the TAP, frames from the TAP go `down` to the veth.
    Send errors (full buffers, device down) drop the frame, as a real link would."""
    while True:
        dues = [t for t in (up.next_due(), down.next_due()) if t is not None]
        timeout = max(0.0, min(dues) - time.monotonic()) if dues else None
        readable, _, _ = select.select([sock.fileno(), tap_fd], [], [], timeout)
        now = time.monotonic()
        if sock.fileno() in readable:
            for _ in range(BATCH):
                try:
                    frame, addr = sock.recvfrom(MAX_FRAME)
                except BlockingIOError:
                    break
                except OSError as exc:
                    # The veth went down (a pulled carrier): the socket reports it once, and
                    # works again when the device comes back up.
                    if exc.errno != errno.ENETDOWN:
                        raise
                    break
                if addr[2] != PACKET_OUTGOING:
                    up.offer(now, frame)
        if tap_fd in readable:
            for _ in range(BATCH):
                try:
                    frame = os.read(tap_fd, MAX_FRAME)
                except BlockingIOError:
                    break
                down.offer(now, frame)
        now = time.monotonic()
        for frame in up.due(now):
            try:
                os.write(tap_fd, frame)
            except OSError as exc:
                if exc.errno not in (errno.EAGAIN, errno.EIO, errno.EINVAL):
                    raise
                up.dropped += 1
        for frame in down.due(now):
            try:
                sock.send(frame)
            except OSError as exc:
                if exc.errno not in (errno.EAGAIN, errno.ENOBUFS, errno.ENETDOWN, errno.EMSGSIZE):
                    raise
                down.dropped += 1


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(
        prog="sdnmip testbed wire",
        description="(internal) the link emulator `sdnmip testbed up` runs on a shaped uplink",
    )
    parser.add_argument("--tap", required=True, help="TAP device holding the router's address")
    parser.add_argument("--veth", required=True, help="veth end leading to the MN")
    parser.add_argument("--delay-ms", type=float, required=True, help="one-way delay")
    parser.add_argument("--rate-mbit", type=float, default=None, help="rate (default: no limit)")
    parser.add_argument("--queue-pkts", type=int, default=1000, help="frames held per direction")
    args = parser.parse_args(argv)

    def direction() -> Direction:
        rate = None if args.rate_mbit is None else args.rate_mbit * 1e6
        return Direction(delay_s=args.delay_ms / 1000, rate_bps=rate, queue_pkts=args.queue_pkts)

    try:
        tap_fd = open_tap(args.tap)
        sock = open_packet_socket(args.veth)
    except OSError as exc:
        print(f"sdnmip testbed wire: {args.tap}/{args.veth}: {exc.strerror}", file=sys.stderr)
        return 1
    print(
        f"wire {args.veth} <-> {args.tap}: delay {args.delay_ms:g} ms, "
        f"rate {'unlimited' if args.rate_mbit is None else f'{args.rate_mbit:g} Mbit/s'}",
        flush=True,
    )
    pump(tap_fd, sock, direction(), direction())
    return 0
