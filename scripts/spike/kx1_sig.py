"""Spike (throwaway): can this kernel carry RFC 6275 signalling over raw sockets?

Run each role inside its namespace (ip netns exec kx1-<node> python kx1_sig.py <cmd> ...).
scapy is used here only to build test packets; the project's codec lives in sdnmip/mipv6/.

  send-bu  <dev> <coa> <ha> <hoa>   HDRINCL raw socket bound to <dev>: BU with Home Address opt.
  send-ba  <dev> <ha> <coa> <hoa>   HDRINCL raw socket: BA with a type 2 routing header
  send-brr <ha> <hoa>               HDRINCL: Binding Refresh Request to <hoa> (gets tunnelled)
  recv <proto> <seconds> [bpf135]   raw socket on <proto> with IPV6_RECVPKTINFO, prints what arrives
"""

from __future__ import annotations

import ctypes
import select
import socket
import struct
import sys
import time

from scapy.layers.inet6 import (  # type: ignore[attr-defined]
    HAO,
    MIP6MH_BA,
    MIP6MH_BRR,
    MIP6MH_BU,
    IPv6,
    IPv6ExtHdrDestOpt,
    IPv6ExtHdrRouting,
)

IPV6_RECVPKTINFO = 49
IPV6_PKTINFO = 50
IPV6_HDRINCL = 36
SO_ATTACH_FILTER = 26
_KEEP: list[object] = []


def send_hdrincl(dev: str, pkt: bytes, dst: str, src: str | None = None) -> None:
    s = socket.socket(socket.AF_INET6, socket.SOCK_RAW, socket.IPPROTO_RAW)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_BINDTODEVICE, dev.encode())
    if src:
        # the route lookup uses the socket's bound address, not the header's source:
        # without this, "from <CoA> lookup <uplink table>" rules do not match
        s.bind((src, 0))
    # IPPROTO_RAW implies IPV6_HDRINCL on Linux; set it anyway to be explicit.
    s.setsockopt(socket.IPPROTO_IPV6, IPV6_HDRINCL, 1)
    n = s.sendto(pkt, (dst, 0))
    print(f"sent {n} bytes on {dev}: {pkt.hex()}")


def attach_bpf_inner_nh(s: socket.socket, nh: int) -> None:
    # classic BPF: A = byte at offset 6 of what the raw socket sees (inner IPv6 next header)
    prog = [
        (0x30, 0, 0, 6),  # ldb [6]
        (0x15, 0, 1, nh),  # jeq #nh, accept, drop
        (0x06, 0, 0, 0x40000),  # ret #big
        (0x06, 0, 0, 0),  # ret #0
    ]
    buf = b"".join(struct.pack("HBBI", *i) for i in prog)
    cbuf = ctypes.create_string_buffer(buf)
    fprog = struct.pack("HL", len(prog), ctypes.addressof(cbuf))
    s.setsockopt(socket.SOL_SOCKET, SO_ATTACH_FILTER, fprog)
    _KEEP.append(cbuf)  # the kernel copies the program, but keep it alive until then


def recv(proto: int, seconds: float, bpf: bool) -> None:
    s = socket.socket(socket.AF_INET6, socket.SOCK_RAW, proto)
    s.setsockopt(socket.IPPROTO_IPV6, IPV6_RECVPKTINFO, 1)
    if bpf:
        attach_bpf_inner_nh(s, 135)
    print(f"listening proto {proto} bpf={bpf}", flush=True)
    end = time.monotonic() + seconds
    while (left := end - time.monotonic()) > 0:
        r, _, _ = select.select([s], [], [], left)
        if not r:
            break
        data, anc, _flags, addr = s.recvmsg(65535, 1024)
        dst, ifindex = "?", 0
        for level, typ, val in anc:
            if level == socket.IPPROTO_IPV6 and typ == IPV6_PKTINFO:
                dst = socket.inet_ntop(socket.AF_INET6, val[:16])
                ifindex = struct.unpack("I", val[16:20])[0]
        print(
            f"proto {proto}: {len(data)} bytes from {addr[0]} to {dst} ifindex {ifindex}: "
            f"{data.hex()}",
            flush=True,
        )


def main() -> None:
    cmd, args = sys.argv[1], sys.argv[2:]
    if cmd == "send-bu":
        dev, coa, ha, hoa = args
        p = (
            IPv6(src=coa, dst=ha, hlim=64)
            / IPv6ExtHdrDestOpt(options=[HAO(hoa=hoa)])
            / MIP6MH_BU(seq=7, flags=0b1100, mhtime=100)
        )  # A|H, lifetime 100*4 s
        send_hdrincl(dev, bytes(p), ha, coa)
    elif cmd == "send-ba":
        dev, ha, coa, hoa = args
        p = (
            IPv6(src=ha, dst=coa, hlim=64)
            / IPv6ExtHdrRouting(type=2, addresses=[hoa], segleft=1)
            / MIP6MH_BA(status=0, seq=7, mhtime=100)
        )
        send_hdrincl(dev, bytes(p), coa, ha)
    elif cmd == "send-brr":
        ha, hoa = args
        p = IPv6(src=ha, dst=hoa, hlim=64) / MIP6MH_BRR()
        send_hdrincl("home0", bytes(p), hoa, ha)
    elif cmd == "recv":
        recv(int(args[0]), float(args[1]), len(args) > 2 and args[2] == "bpf135")
    else:
        raise SystemExit(__doc__)


if __name__ == "__main__":
    main()
