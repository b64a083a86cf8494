"""Test packets as field dicts, built and dissected with os-ken's packet library.

os-ken's library is an implementation independent of sdnmip/controller/packet.py, so the fake
switch and the tests do not check the parser against itself.
"""

from __future__ import annotations

from ipaddress import IPv6Address
from typing import Any

from os_ken.lib.packet import ethernet, icmpv6, ipv6, packet, tcp, udp

Fields = dict[str, Any]

FIN, SYN, RST, ACK = 0x01, 0x02, 0x04, 0x10
APP_MAC = "02:00:00:00:00:01"  # hoa0's MAC (the kernel's source on hoa0)
ROUTER_GW_MAC = "02:00:00:00:00:fe"  # the neighbour hoa0's default route points at


def tcp_pkt(src: str, dst: str, sport: int, dport: int, flags: int = SYN, **kw: Any) -> Fields:
    return _ip(src, dst, 6, tcp_src=sport, tcp_dst=dport, tcp_flags=flags, **kw)


def udp_pkt(src: str, dst: str, sport: int, dport: int, **kw: Any) -> Fields:
    return _ip(src, dst, 17, udp_src=sport, udp_dst=dport, **kw)


def icmp_pkt(src: str, dst: str, icmp_type: int, code: int = 0, **kw: Any) -> Fields:
    return _ip(src, dst, 58, icmpv6_type=icmp_type, icmpv6_code=code, **kw)


def raw_ip(src: str, dst: str, proto: int, **kw: Any) -> Fields:
    return _ip(src, dst, proto, **kw)


def _ip(src: str, dst: str, proto: int, **kw: Any) -> Fields:
    f: Fields = {
        "eth_src": kw.pop("eth_src", APP_MAC),
        "eth_dst": kw.pop("eth_dst", ROUTER_GW_MAC),
        "eth_type": 0x86DD,
        "ipv6_src": IPv6Address(src),
        "ipv6_dst": IPv6Address(dst),
        "ip_proto": proto,
        "ipv6_flabel": kw.pop("flabel", 0),
        "ip_dscp": kw.pop("dscp", 0),
    }
    f.update(kw)
    return f


def build(f: Fields) -> bytes:
    """Serialise a field dict into an Ethernet frame (checksums computed by os-ken)."""
    p = packet.Packet()
    p.add_protocol(ethernet.ethernet(dst=f["eth_dst"], src=f["eth_src"], ethertype=f["eth_type"]))
    proto = f["ip_proto"]
    p.add_protocol(
        ipv6.ipv6(
            traffic_class=f.get("ip_dscp", 0) << 2,
            flow_label=f.get("ipv6_flabel", 0),
            nxt=proto,
            hop_limit=64,
            src=str(f["ipv6_src"]),
            dst=str(f["ipv6_dst"]),
        )
    )
    if proto == 6:
        p.add_protocol(
            tcp.tcp(
                src_port=f["tcp_src"], dst_port=f["tcp_dst"], bits=f.get("tcp_flags", 0), offset=5
            )
        )
        p.add_protocol(f.get("payload", b""))
    elif proto == 17:
        p.add_protocol(udp.udp(src_port=f["udp_src"], dst_port=f["udp_dst"]))
        p.add_protocol(f.get("payload", b"x"))
    elif proto == 58:
        t = f["icmpv6_type"]
        data = icmpv6.echo(id_=1, seq=1, data=b"ping") if t in (128, 129) else b"\x00" * 4
        p.add_protocol(icmpv6.icmpv6(type_=t, code=f.get("icmpv6_code", 0), data=data))
    else:
        p.add_protocol(f.get("payload", b"\x00" * 8))
    p.serialize()
    return bytes(p.data)


def dissect(data: bytes) -> Fields:
    """The fields of an Ethernet frame, as the fake switch matches on them."""
    p = packet.Packet(data)
    eth = p.get_protocol(ethernet.ethernet)
    f: Fields = {"eth_src": eth.src, "eth_dst": eth.dst, "eth_type": eth.ethertype}
    ip = p.get_protocol(ipv6.ipv6)
    if ip is None:
        return f
    f.update(
        ipv6_src=IPv6Address(ip.src),
        ipv6_dst=IPv6Address(ip.dst),
        ip_proto=ip.nxt,
        ipv6_flabel=ip.flow_label,
        ip_dscp=ip.traffic_class >> 2,
    )
    t = p.get_protocol(tcp.tcp)
    if t is not None:
        f.update(tcp_src=t.src_port, tcp_dst=t.dst_port, tcp_flags=t.bits)
    u = p.get_protocol(udp.udp)
    if u is not None:
        f.update(udp_src=u.src_port, udp_dst=u.dst_port)
    i = p.get_protocol(icmpv6.icmpv6)
    if i is not None:
        f.update(icmpv6_type=i.type_, icmpv6_code=i.code)
    return f
