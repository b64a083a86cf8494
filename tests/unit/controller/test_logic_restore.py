"""Rules of live flows deleted behind the controller's back are put back, not taken as ends."""

from __future__ import annotations

from os_ken.ofproto import ofproto_v1_3_parser as parser

from sdnmip.controller import ofmsg
from sdnmip.controller.config import ReleaseHoa

from .pkt import ACK, tcp_pkt
from .rig import CN1, HOA0, IWLAN, PRIMARY, Rig


def flush(rig: Rig) -> None:
    """An operator's `ovs-ofctl del-flows`: every rule of every table goes."""
    rig.switch.apply(
        ofmsg.flow_mod(
            command=ofmsg.OFPFC_DELETE, table_id=ofmsg.OFPTT_ALL, priority=0, cookie=0,
            match_=parser.OFPMatch(),
        )
    )  # fmt: skip


def test_a_flushed_switch_keeps_its_flows_alive_and_forwarding_after_reconciliation() -> None:
    rig = Rig.start(hoa_per_flow=True)
    first = rig.send(HOA0, tcp_pkt(PRIMARY, CN1, 40000, 80)).only()
    flow = rig.flow_for(CN1, 80)
    rig.take_agent()
    flush(rig)
    rig.advance(0.1)  # the flow-removed messages (reason DELETE) reach the logic
    assert flow.flow_id in rig.logic.flows
    assert rig.take_agent() == []  # no release: the flow did not end
    assert rig.logic.stats["rules_restored"] == 2
    rig.run(rig.logic.reconcile(rig.now, rig.switch.dump()))  # the canary's reconciliation
    res = rig.send(HOA0, tcp_pkt(PRIMARY, CN1, 40000, 80, flags=ACK))
    assert res.packet_ins == [] and res.only()[0] == first[0] == IWLAN
    back = rig.send(IWLAN, tcp_pkt(CN1, str(flow.hoa), 80, 40000, flags=ACK))
    assert back.packet_ins == [] and back.only()[0] == HOA0


def test_rules_the_controller_deletes_itself_still_end_the_flow() -> None:
    rig = Rig.start(hoa_per_flow=True)
    rig.send(HOA0, tcp_pkt(PRIMARY, CN1, 40000, 80))
    flow = rig.flow_for(CN1, 80)
    rig.take_agent()
    rig.run(rig.logic.remove_flow(rig.now, flow.flow_id))
    rig.advance(0.1)  # its own deletes come back as flow-removed: nothing is re-added
    assert flow.flow_id not in rig.logic.flows
    assert rig.take_agent() == [ReleaseHoa(flow.hoa)]
    assert rig.logic.stats["rules_restored"] == 0
