"""Behaviour of the controller logic on the fake switch: where packets go, with which addresses."""

from __future__ import annotations

from ipaddress import IPv6Address as A

from sdnmip.controller.config import BindHoas, ClaimHoa, ReleaseHoa
from sdnmip.core.redirector import PrimaryUse
from sdnmip.core.types import Decision, Direction

from .pkt import ACK, FIN, RST, SYN, icmp_pkt, raw_ip, tcp_pkt, udp_pkt
from .rig import (
    CN1,
    CN2,
    HA,
    HOA0,
    HOA0_MAC,
    ILTE,
    IWLAN,
    LTE,
    PRIMARY,
    SPARES,
    TUN_MAC,
    WLAN,
    Rig,
    ScriptedPolicy,
)

BY_PORT = ScriptedPolicy({80: Decision("wlan"), 443: Decision("lte"), 8080: Decision("wlan")})


def test_first_packet_of_a_new_flow_leaves_by_the_tunnel_port_and_is_not_lost():
    rig = Rig.start()
    res = rig.send(HOA0, tcp_pkt(PRIMARY, CN1, 40000, 80))
    assert len(res.packet_ins) == 1  # the miss
    port, f = res.only()  # the packet-out: exactly one copy
    assert port == IWLAN
    assert f["eth_dst"] == TUN_MAC["wlan"]
    # The second packet is switched by the rule alone.
    res = rig.send(HOA0, tcp_pkt(PRIMARY, CN1, 40000, 80, flags=ACK))
    assert res.packet_ins == [] and res.ports() == [IWLAN]


def test_two_flows_to_the_same_cn_leave_by_different_uplinks_with_different_hoas():
    rig = Rig.start(policy=BY_PORT)
    a = rig.send(HOA0, tcp_pkt(PRIMARY, CN1, 40000, 80))
    b = rig.send(HOA0, tcp_pkt(PRIMARY, CN1, 40001, 443))
    (pa, fa), (pb, fb) = a.only(), b.only()
    assert (pa, pb) == (IWLAN, ILTE)
    assert fa["ipv6_src"] != fb["ipv6_src"]
    assert {fa["ipv6_src"], fb["ipv6_src"]} <= {A(PRIMARY), *map(A, SPARES)}
    # Steady state: the rules alone keep them apart.
    again = rig.send(HOA0, tcp_pkt(PRIMARY, CN1, 40000, 80, flags=ACK))
    assert again.packet_ins == [] and again.only()[0] == IWLAN
    assert again.only()[1]["ipv6_src"] == fa["ipv6_src"]
    assert rig.send(HOA0, tcp_pkt(PRIMARY, CN1, 40001, 443, flags=ACK)).ports() == [ILTE]


def test_figure6_new_flow_to_another_cn_reuses_a_hoa_and_a_third_flow_to_one_cn_takes_a_spare():
    rig = Rig.start(policy=BY_PORT)
    f1 = rig.send(HOA0, tcp_pkt(PRIMARY, CN1, 40000, 80)).only()[1]["ipv6_src"]
    f2 = rig.send(HOA0, tcp_pkt(PRIMARY, CN1, 40001, 8080)).only()[1]["ipv6_src"]
    assert f1 != f2  # same CN, same uplink: still two HoAs
    claims = [r for r in rig.take_agent() if isinstance(r, ClaimHoa)]
    assert [c.hoa for c in claims] == [f2] and f2 in map(A, SPARES)
    # A flow to CN2 reuses a HoA: no new claim.
    g = rig.send(HOA0, tcp_pkt(PRIMARY, CN2, 40002, 80)).only()[1]["ipv6_src"]
    assert g in (f1, f2)
    assert not any(isinstance(r, ClaimHoa) for r in rig.take_agent())
    # A third concurrent flow to CN1 takes another spare.
    f3 = rig.send(HOA0, tcp_pkt(PRIMARY, CN1, 40003, 80)).only()[1]["ipv6_src"]
    assert f3 not in (f1, f2)
    assert [r.hoa for r in rig.take_agent() if isinstance(r, ClaimHoa)] == [f3]


def test_return_direction_is_rewritten_to_the_primary_whichever_tunnel_port_it_comes_by():
    rig = Rig.start(policy=BY_PORT)
    rig.send(HOA0, tcp_pkt(PRIMARY, CN1, 40000, 80))
    hoa = rig.send(HOA0, tcp_pkt(PRIMARY, CN1, 40001, 8080)).only()[1]["ipv6_src"]
    assert hoa != A(PRIMARY)
    for tun in (IWLAN, ILTE):  # during a handover it may arrive on either
        res = rig.send(
            tun, tcp_pkt(CN1, str(hoa), 8080, 40001, flags=ACK, eth_dst="ff:ff:00:00:00:01")
        )
        port, f = res.only()
        assert res.packet_ins == []
        assert port == HOA0
        assert f["ipv6_dst"] == A(PRIMARY) and f["eth_dst"] == HOA0_MAC
        assert f["ipv6_src"] == A(CN1) and f["tcp_dst"] == 40001


def test_incoming_flow_to_the_primary_keeps_it_in_both_directions():
    rig = Rig.start()
    res = rig.send(IWLAN, tcp_pkt(CN2, PRIMARY, 5555, 22))
    port, f = res.only()
    assert port == HOA0 and f["ipv6_dst"] == A(PRIMARY) and f["eth_dst"] == HOA0_MAC
    e = rig.flow_for(CN2, 5555)
    assert e.desc.direction is Direction.INCOMING and e.hoa == A(PRIMARY)
    reply = rig.send(HOA0, tcp_pkt(PRIMARY, CN2, 22, 5555, flags=SYN | ACK))
    assert reply.packet_ins == []  # installed with the first packet
    port, f = reply.only()
    assert port == IWLAN and f["ipv6_src"] == A(PRIMARY)
    assert not any(isinstance(r, ClaimHoa) for r in rig.take_agent())


def test_incoming_flow_to_a_dynamic_hoa_keeps_that_hoa():
    rig = Rig.start(policy=BY_PORT)
    rig.send(HOA0, tcp_pkt(PRIMARY, CN1, 40000, 80))
    hoa = rig.send(HOA0, tcp_pkt(PRIMARY, CN1, 40001, 8080)).only()[1]["ipv6_src"]
    res = rig.send(IWLAN, udp_pkt(CN2, str(hoa), 9000, 9001))
    assert res.only()[0] == HOA0 and res.only()[1]["ipv6_dst"] == A(PRIMARY)
    reply = rig.send(HOA0, udp_pkt(PRIMARY, CN2, 9001, 9000))
    assert reply.only()[1]["ipv6_src"] == hoa


def test_packets_to_addresses_the_mn_does_not_hold_are_refused():
    rig = Rig.start()
    res = rig.send(IWLAN, udp_pkt(CN1, "2001:db8:100::dead", 1, 2))
    assert res.outputs == []
    assert rig.logic.refused["to an address the MN does not hold"] == 1


def test_fin_in_both_directions_ends_the_flow_after_the_linger_and_releases_its_hoa():
    rig = Rig.start(policy=BY_PORT)
    rig.send(HOA0, tcp_pkt(PRIMARY, CN1, 40000, 80))  # on the Primary
    hoa = rig.send(HOA0, tcp_pkt(PRIMARY, CN1, 40001, 8080)).only()[1]["ipv6_src"]
    rig.take_agent()
    fin = rig.send(HOA0, tcp_pkt(PRIMARY, CN1, 40001, 8080, flags=FIN | ACK))
    assert fin.ports() == [IWLAN] and len(fin.packet_ins) == 1  # forwarded, and copied to us
    assert rig.logic.next_deadline() is None  # one FIN is not an end
    rig.send(IWLAN, tcp_pkt(CN1, str(hoa), 8080, 40001, flags=FIN | ACK))
    assert rig.logic.next_deadline() == rig.now + 2.0  # the linger
    rig.advance(1.0)
    # Within the linger the last ACK still passes.
    last = rig.send(HOA0, tcp_pkt(PRIMARY, CN1, 40001, 8080, flags=ACK))
    assert last.ports() == [IWLAN] and last.packet_ins == []
    rig.advance(1.5)
    assert len(rig.logic.flows) == 1
    assert rig.take_agent() == [ReleaseHoa(hoa)]
    # Its rules are gone; a stray segment is not taken for a new flow.
    stray = rig.send(HOA0, tcp_pkt(PRIMARY, CN1, 40001, 8080, flags=ACK))
    assert stray.outputs == []


def test_rst_ends_the_flow_but_the_primary_is_never_released():
    rig = Rig.start()
    rig.send(HOA0, tcp_pkt(PRIMARY, CN1, 40000, 80))
    assert rig.flow_for(CN1, 80).hoa == A(PRIMARY)
    rig.send(IWLAN, tcp_pkt(CN1, PRIMARY, 80, 40000, flags=RST))
    rig.advance(3.0)
    assert len(rig.logic.flows) == 0
    assert not any(isinstance(r, ReleaseHoa) for r in rig.take_agent())
    assert rig.switch.signature() == Rig.start().switch.signature()  # back to the bare pipeline


def test_idle_timeout_of_both_directions_ends_the_flow_and_releases_the_hoa():
    rig = Rig.start(policy=BY_PORT, idle_timeouts={17: 30})
    rig.send(HOA0, udp_pkt(PRIMARY, CN1, 5000, 80))
    hoa = rig.send(HOA0, udp_pkt(PRIMARY, CN1, 5001, 8080)).only()[1]["ipv6_src"]
    rig.take_agent()
    rig.advance(31)
    assert len(rig.logic.flows) == 0
    assert rig.take_agent() == [ReleaseHoa(hoa)]


def test_one_expired_direction_is_reinstalled_not_taken_for_a_new_flow():
    rig = Rig.start(policy=BY_PORT, idle_timeouts={17: 30})
    rig.send(HOA0, udp_pkt(PRIMARY, CN1, 5000, 80))
    hoa = rig.send(HOA0, udp_pkt(PRIMARY, CN1, 5001, 8080)).only()[1]["ipv6_src"]
    flow = rig.flow_for(CN1, 8080)
    rig.take_agent()
    for _ in range(4):  # the uplink stays busy, nothing comes back for 40 s
        rig.advance(10)
        rig.send(HOA0, udp_pkt(PRIMARY, CN1, 5001, 8080))
    assert not flow.down.installed and flow.flow_id in rig.logic.flows
    res = rig.send(IWLAN, udp_pkt(CN1, str(hoa), 8080, 5001))
    assert len(res.packet_ins) == 1 and res.only()[0] == HOA0
    assert rig.flow_for(CN1, 8080).flow_id == flow.flow_id and flow.down.installed
    assert rig.take_agent() == []  # no claim, no bind: the same flow
    assert rig.send(IWLAN, udp_pkt(CN1, str(hoa), 8080, 5001)).packet_ins == []


def test_explicit_removal_ends_the_flow():
    rig = Rig.start(policy=BY_PORT)
    rig.send(HOA0, tcp_pkt(PRIMARY, CN1, 40000, 80))
    hoa = rig.send(HOA0, tcp_pkt(PRIMARY, CN1, 40001, 8080)).only()[1]["ipv6_src"]
    rig.take_agent()
    fid = rig.flow_for(CN1, 8080).flow_id
    rig.run(rig.logic.remove_flow(rig.now, fid))
    assert rig.take_agent() == [ReleaseHoa(hoa)]
    assert rig.send(HOA0, tcp_pkt(PRIMARY, CN1, 40001, 8080, flags=ACK)).outputs == []


def test_mobility_header_to_a_hoa_is_dropped_and_kernel_traffic_to_the_ha_goes_out():
    rig = Rig.start()
    assert rig.send(IWLAN, raw_ip(CN1, PRIMARY, 135)).outputs == []
    assert rig.send(IWLAN, raw_ip(CN1, PRIMARY, 135)).packet_ins == []
    # The reverse tunnel and Binding Updates to the HA leave by the physical port.
    assert rig.send(IWLAN, raw_ip(COA := "2001:db8:1::2", HA, 41)).ports() == [WLAN]
    assert rig.send(ILTE, raw_ip("2001:db8:2::2", HA, 135)).ports() == [LTE]
    # Everything from the access network goes to the kernel that owns the CoA.
    assert rig.send(WLAN, raw_ip(HA, COA, 41)).ports() == [IWLAN]
    # Anything else the kernel sends on i<U> (ND, RS) goes to U.
    assert rig.send(IWLAN, icmp_pkt("fe80::1", "ff02::2", 133)).ports() == [WLAN]


def test_multicast_and_link_local_from_hoa0_go_nowhere():
    rig = Rig.start()
    for dst in ("ff02::1:ff00:1", "fe80::1"):
        res = rig.send(HOA0, icmp_pkt(PRIMARY, dst, 135))
        assert res.outputs == [] and res.packet_ins == []


def test_pings_in_both_directions_between_the_same_hosts_are_two_flows():
    rig = Rig.start(policy=BY_PORT)
    rig.send(HOA0, tcp_pkt(PRIMARY, CN1, 40000, 80))  # CN1 now uses the Primary
    out = rig.send(HOA0, icmp_pkt(PRIMARY, CN1, 128)).only()[1]
    assert out["ipv6_src"] != A(PRIMARY)  # a second flow to CN1: a dynamic HoA
    back = rig.send(IWLAN, icmp_pkt(CN1, str(out["ipv6_src"]), 129))
    assert back.only()[1]["ipv6_dst"] == A(PRIMARY)
    incoming = rig.send(IWLAN, icmp_pkt(CN1, PRIMARY, 128)).only()
    assert incoming[0] == HOA0
    reply = rig.send(HOA0, icmp_pkt(PRIMARY, CN1, 129)).only()[1]
    assert reply["ipv6_src"] == A(PRIMARY)  # answered from the address CN1 pinged
    assert len(rig.logic.flows) == 3


def test_direct_mode_leaves_with_the_coa_and_bypasses_the_tunnel_port():
    policy = ScriptedPolicy({53: Decision("lte", mode=__import__("sdnmip").core.types.Mode.DIRECT)})
    rig = Rig.start(policy=policy)
    port, f = rig.send(HOA0, udp_pkt(PRIMARY, CN1, 5353, 53)).only()
    assert port == LTE
    assert f["ipv6_src"] == A("2001:db8:2::2") and f["eth_dst"] == "02:aa:00:00:00:02"
    assert f["eth_src"] == TUN_MAC["lte"]
    assert not any(isinstance(r, ClaimHoa | BindHoas) for r in rig.take_agent())
    back = rig.send(LTE, udp_pkt(CN1, "2001:db8:2::2", 53, 5353))
    port, f = back.only()
    assert port == HOA0 and f["ipv6_dst"] == A(PRIMARY) and back.packet_ins == []
    # Other traffic to the CoA still reaches the kernel.
    assert rig.send(LTE, udp_pkt(CN1, "2001:db8:2::2", 53, 9999)).ports() == [ILTE]


def test_strict_mode_never_uses_the_primary_for_outgoing_flows():
    rig = Rig.start(primary_use=PrimaryUse.STRICT)
    f = rig.send(HOA0, tcp_pkt(PRIMARY, CN1, 40000, 80)).only()[1]
    assert f["ipv6_src"] != A(PRIMARY)


def test_pool_exhausted_falls_back_to_a_shared_hoa_and_never_blocks():
    rig = Rig.start(spares=SPARES[:1])
    hoas = {
        rig.send(HOA0, tcp_pkt(PRIMARY, CN1, 40000 + i, 80)).only()[1]["ipv6_src"] for i in range(3)
    }
    assert len(hoas) == 2  # Primary + the one spare; the third flow shares
    shared = [e for e in rig.logic.flows if e.shared]
    assert len(shared) == 1
    assert rig.logic.refused == {}


def test_source_other_than_the_primary_is_refused():
    rig = Rig.start()
    assert rig.send(HOA0, udp_pkt("2001:db8:100::77", CN1, 1, 2)).outputs == []
    assert rig.logic.refused["source is not the Primary HoA"] == 1


def test_no_usable_uplink_drops_without_a_rule():
    rig = Rig.start()
    rig.run(rig.logic.port_status(0, WLAN, False))
    rig.run(rig.logic.port_status(0, LTE, False))
    assert rig.send(HOA0, udp_pkt(PRIMARY, CN1, 1, 2)).outputs == []
    assert len(rig.logic.flows) == 0


def test_a_rule_lost_without_notice_is_reinstalled_on_the_next_miss():
    rig = Rig.start()
    rig.send(HOA0, udp_pkt(PRIMARY, CN1, 5000, 53))
    fid = rig.flow_for(CN1, 53).flow_id
    from sdnmip.controller import ofmsg
    from sdnmip.controller import pipeline as pl

    rig.switch.apply(ofmsg.delete_by_cookie(pl.cookie(pl.CookieKind.FLOW_UP, fid), pl.ALL_ONES_64))
    rig.switch.removed.clear()  # the notice got lost
    res = rig.send(HOA0, udp_pkt(PRIMARY, CN1, 5000, 53))
    assert len(res.packet_ins) == 1 and res.ports() == [IWLAN]
    assert rig.send(HOA0, udp_pkt(PRIMARY, CN1, 5000, 53)).packet_ins == []
    assert rig.flow_for(CN1, 53).flow_id == fid


def test_direct_flows_follow_a_new_access_router():
    from sdnmip.controller.config import UplinkState
    from sdnmip.core.types import Mode

    rig = Rig.start(policy=ScriptedPolicy({53: Decision("lte", mode=Mode.DIRECT)}))
    rig.send(HOA0, udp_pkt(PRIMARY, CN1, 5353, 53))
    rig.event(UplinkState("lte", True, A("2001:db8:2::2"), "02:aa:00:00:00:99"))
    port, f = rig.send(HOA0, udp_pkt(PRIMARY, CN1, 5353, 53)).only()
    assert port == LTE and f["eth_dst"] == "02:aa:00:00:00:99"


def test_incoming_packet_with_the_5_tuple_of_a_flow_on_another_hoa_is_refused():
    rig = Rig.start(policy=BY_PORT)
    rig.send(HOA0, tcp_pkt(PRIMARY, CN1, 40000, 80))
    rig.send(HOA0, tcp_pkt(PRIMARY, CN1, 40001, 8080))  # on a dynamic HoA
    rig.take_agent()
    res = rig.send(IWLAN, tcp_pkt(CN1, PRIMARY, 8080, 40001))  # to the Primary instead
    assert res.outputs == [] and rig.take_agent() == []
    assert rig.logic.refused["incoming 5-tuple of a live flow on another HoA"] == 1


def test_on_connect_the_logic_asks_for_the_switchs_rules():
    from os_ken.ofproto import ofproto_v1_3_parser as parser

    (req,) = Rig.start().logic.datapath_up(0.0)
    assert isinstance(req, parser.OFPFlowStatsRequest) and req.table_id == 0xFF
