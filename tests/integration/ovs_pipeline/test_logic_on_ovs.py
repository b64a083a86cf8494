"""The controller's rules on real Open vSwitch: accepted, dumped back in the form reconciliation
expects, and switching packets exactly as the fake switch of the unit tests says.

Needs root and the Open vSwitch binaries (ovsdb-server, ovs-vswitchd, ovs-vsctl, ovs-appctl);
uses a private instance with dummy ports (no namespaces, no kernel devices).
"""

from __future__ import annotations

import pytest
from os_ken.ofproto import ofproto_v1_3_parser as parser

from sdnmip.controller import ofmsg
from sdnmip.controller import pipeline as pl
from sdnmip.controller.config import ReleaseHoa
from sdnmip.core.types import Decision, Mode
from tests.unit.controller.pkt import ACK, FIN, Fields, build, icmp_pkt, raw_ip, tcp_pkt, udp_pkt
from tests.unit.controller.rig import (
    CN1,
    CN2,
    COA,
    HA,
    HOA0,
    ILTE,
    IWLAN,
    LTE,
    PRIMARY,
    WLAN,
    Rig,
    ScriptedPolicy,
)

from .ovs import OFClient, PrivateOVS

PORTS = {"hoa0": HOA0, "wlan": WLAN, "iwlan": IWLAN, "lte": LTE, "ilte": ILTE}
POLICY = ScriptedPolicy({443: Decision("lte"), 53: Decision("lte", mode=Mode.DIRECT)})


@pytest.fixture
def ovs():
    sw = PrivateOVS()
    try:  # cleanup registered before anything is created
        sw.start(PORTS)
        yield sw
    finally:
        sw.stop()


class Mirror:
    """The rig (logic + fake switch) with every OpenFlow message also sent to real OVS."""

    def __init__(self, ovs: PrivateOVS, **cfg) -> None:
        self.of = OFClient(ovs.dir / "br0.mgmt")
        self.rig = Rig.start(policy=POLICY, **cfg)
        self.errors: list[object] = []
        dump = self.dump()
        assert dump == []
        self.push(self.rig.logic.reconcile(0.0, dump))
        run = self.rig.run

        def mirrored(actions):
            self.push(actions)
            return run(actions)

        self.rig.run = mirrored

    def push(self, actions) -> None:
        for a in actions:
            if isinstance(a, parser.OFPFlowMod | parser.OFPPacketOut):
                self.of.send(a)
        self.errors += [m for m in self.of.sync() if isinstance(m, parser.OFPErrorMsg)]

    def dump(self) -> list[ofmsg.FlowStat]:
        replies = self.of.request(ofmsg.flow_stats_request())
        return [ofmsg.flow_stat(s) for r in replies for s in r.body]


def _flow(in_port: int, f: Fields) -> str:
    kind = {6: "tcp6", 17: "udp6", 58: "icmp6"}.get(f["ip_proto"], f"ipv6,nw_proto={f['ip_proto']}")
    s = (
        f"in_port={in_port},dl_src={f['eth_src']},dl_dst={f['eth_dst']},{kind},"
        f"ipv6_src={f['ipv6_src']},ipv6_dst={f['ipv6_dst']}"
    )
    if "tcp_src" in f:
        s += f",tcp_src={f['tcp_src']},tcp_dst={f['tcp_dst']},tcp_flags={f['tcp_flags']:#x}"
    if "udp_src" in f:
        s += f",udp_src={f['udp_src']},udp_dst={f['udp_dst']}"
    if "icmpv6_type" in f:
        s += f",icmpv6_type={f['icmpv6_type']},icmpv6_code=0"
    return s


def _expected(result) -> tuple[list[int], bool]:
    return [p for p, _ in result.outputs], bool(result.packet_ins)


def test_rules_are_accepted_dumped_back_identically_and_switch_like_the_fake(ovs):
    m = Mirror(ovs)
    rig = m.rig
    rig.send(HOA0, tcp_pkt(PRIMARY, CN1, 40000, 80))
    rig.send(HOA0, tcp_pkt(PRIMARY, CN1, 40001, 80))
    rig.send(HOA0, tcp_pkt(PRIMARY, CN1, 40002, 443))
    rig.send(HOA0, udp_pkt(PRIMARY, CN2, 5353, 53))
    rig.send(IWLAN, tcp_pkt(CN2, PRIMARY, 6000, 22))
    rig.send(HOA0, icmp_pkt(PRIMARY, CN2, 128))
    moved = next(e for e in rig.logic.flows if e.key.local_port == 40001)
    rig.run(rig.logic.move_flow(rig.now, moved.flow_id, "lte"))
    rig.ack_binds()
    assert m.errors == []

    dump = m.dump()
    assert len(dump) == len(rig.switch.all_rules())
    assert rig.logic.reconcile(rig.now, dump) == []  # OVS's spelling reconciles to nothing

    ping_hoa = str(rig.flow_for(CN2, 129).hoa)
    cases = [
        (HOA0, tcp_pkt(PRIMARY, CN1, 40000, 80, flags=ACK)),
        (HOA0, tcp_pkt(PRIMARY, CN1, 40001, 80, flags=ACK)),
        (HOA0, tcp_pkt(PRIMARY, CN1, 40002, 443, flags=FIN | ACK)),
        (HOA0, udp_pkt(PRIMARY, CN2, 5353, 53)),
        (HOA0, tcp_pkt(PRIMARY, CN1, 49999, 80)),
        (IWLAN, tcp_pkt(CN1, str(moved.hoa), 80, 40001, flags=ACK)),
        (ILTE, tcp_pkt(CN2, PRIMARY, 6000, 22, flags=ACK)),
        (LTE, udp_pkt(CN2, COA["lte"], 53, 5353)),
        (LTE, raw_ip(HA, COA["lte"], 41)),
        (IWLAN, raw_ip(COA["wlan"], HA, 135)),
        (IWLAN, raw_ip(COA["wlan"], HA, 41)),
        (IWLAN, raw_ip(CN1, PRIMARY, 135)),
        (HOA0, icmp_pkt(PRIMARY, "ff02::1:ff00:1", 135)),
        (IWLAN, icmp_pkt(CN2, ping_hoa, 129)),
        (IWLAN, udp_pkt(CN1, "2001:db8:100::dead", 1, 2)),
    ]
    for port, pkt in cases:
        assert ovs.trace(_flow(port, pkt)) == _expected(rig.switch.process(port, pkt)), (
            port,
            pkt,
        )


def test_first_packet_leaves_by_packet_out_on_real_ovs(ovs):
    m = Mirror(ovs)
    before = _tx(m, IWLAN)
    m.push(m.rig.logic.packet_in(0.0, HOA0, pl.TableId.UPLINK, build(tcp_pkt(PRIMARY, CN1, 1, 80))))
    assert m.errors == []
    assert _tx(m, IWLAN) == before + 1


def test_idle_expiry_on_real_ovs_ends_the_flow_and_releases_its_hoa(ovs):
    m = Mirror(ovs, idle_timeouts={17: 1})
    rig = m.rig
    rig.send(HOA0, udp_pkt(PRIMARY, CN1, 5000, 80))
    hoa = rig.send(HOA0, udp_pkt(PRIMARY, CN1, 5001, 81)).only()[1]["ipv6_src"]
    rig.take_agent()
    removed = []
    while len(removed) < 4:  # both rules of both flows
        removed += m.of.wait_async(parser.OFPFlowRemoved, timeout=15)
    actions = []
    for fr in removed:
        actions += rig.logic.flow_removed(5.0, fr.cookie, fr.reason, fr.packet_count, fr.byte_count)
    assert ReleaseHoa(hoa) in actions
    assert len(rig.logic.flows) == 0
    m.push(actions)
    assert rig.logic.reconcile(6.0, m.dump()) == []


def _tx(m: Mirror, port: int) -> int:
    replies = m.of.request(ofmsg.port_stats_request())
    return next(s.tx_packets for r in replies for s in r.body if s.port_no == port)
