"""An external SDN controller next to sdnmip, on the running MN's bridge (docs/northbound.md):

- it opens a second OpenFlow connection (the bridge's management socket), becomes a slave,
  reads the flow table (sdnmip's rules, all under the 0x5D1F cookie space) and receives
  port-status messages;
- its flow-mods and packet-outs are refused by Open vSwitch with OFPET_BAD_REQUEST /
  OFPBRC_IS_SLAVE, and sdnmip's rules are exactly as they were;
- asking for the master role does not take the bridge from sdnmip (EQUAL) either: sdnmip still
  sets up new flows.

The client is a raw OpenFlow 1.3 speaker (ofclient.py), not sdnmip code.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest

from sdnmip.testbed import Testbed
from tests.integration.helpers import poll

from .ofclient import OpenFlowClient, SwitchError, ofp, parser

TESTBED_PROFILE = "fast"
SDNMIP_PREFIX = 0x5D1F
IS_SLAVE = (ofp.OFPET_BAD_REQUEST, ofp.OFPBRC_IS_SLAVE)
CN2 = "2001:db8:c2::10"


@pytest.fixture(scope="module")
def stack(testbed: Testbed) -> Iterator[Any]:
    from sdnmip.testbed.mn_full import MnStack

    st = MnStack(testbed, pool_size=2, hold_time=1.0)
    st.start()
    try:
        yield st
    finally:
        st.stop()


def rules(c: OpenFlowClient) -> set[tuple[int, int, int, str, str]]:
    """What identifies each rule and what it does (counters left out: traffic changes them)."""
    return {
        (r.table_id, r.priority, r.cookie, str(r.match), str(r.instructions))
        for r in c.flow_stats()
    }


def udp_flow(tb: Testbed, sport: int) -> None:
    script = (
        "import socket; s = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM); "
        f"s.bind(('::', {sport})); [s.sendto(b'x' * 100, ('{CN2}', 9999)) for _ in range(5)]"
    )
    tb.run(tb.topology.mn_node, "python3", "-c", script)


def sdnmip_flow(stack: Any, sport: int) -> dict[str, Any] | None:
    for f in stack.control("flows"):
        if f["local_port"] == sport:
            return dict(f)
    return None


@pytest.fixture
def watcher(stack: Any) -> Iterator[OpenFlowClient]:
    c = OpenFlowClient.unix(str(stack.tb.ovs.dir / "br-mn.mgmt"))
    try:
        c.handshake()
        yield c
    finally:
        c.close()


def test_a_slave_reads_the_table_and_cannot_change_it(stack, watcher):
    reply = watcher.request_role(ofp.OFPCR_ROLE_SLAVE, generation_id=1)
    assert reply.role == ofp.OFPCR_ROLE_SLAVE
    before = rules(watcher)
    assert before, "the slave reads the flow table"
    assert all(cookie >> 48 == SDNMIP_PREFIX for _, _, cookie, _, _ in before), (
        "every rule on the bridge is sdnmip's"
    )
    # Try to write: a flow-mod (add), a delete of everything, and a packet-out.
    attempts = [
        parser.OFPFlowMod(watcher.dp, cookie=0xE47E, table_id=0, command=ofp.OFPFC_ADD,
                          priority=60000, match=parser.OFPMatch(eth_type=0x86DD), instructions=[]),
        parser.OFPFlowMod(watcher.dp, command=ofp.OFPFC_DELETE, table_id=ofp.OFPTT_ALL,
                          out_port=ofp.OFPP_ANY, out_group=ofp.OFPG_ANY),
        parser.OFPPacketOut(watcher.dp, buffer_id=ofp.OFP_NO_BUFFER, in_port=ofp.OFPP_CONTROLLER,
                            actions=[parser.OFPActionOutput(1)], data=b"\x00" * 60),
    ]  # fmt: skip
    xids = [watcher.send(m) for m in attempts]
    watcher.barrier()
    errors = {r.xid: (r.msg.type, r.msg.code) for r in watcher.received
              if isinstance(r.msg, parser.OFPErrorMsg)}  # fmt: skip
    assert [errors.get(x) for x in xids] == [IS_SLAVE] * 3
    assert rules(watcher) == before, "sdnmip's rules changed"
    # sdnmip still works: a new flow gets its rules.
    udp_flow(stack.tb, 46001)
    f = poll("sdnmip to place a new flow", lambda: sdnmip_flow(stack, 46001), 10)
    after = rules(watcher)
    assert any(cookie & ((1 << 40) - 1) == f["flow_id"] for _, _, cookie, _, _ in after)


def test_a_slave_receives_port_status(stack, watcher):
    watcher.request_role(ofp.OFPCR_ROLE_SLAVE, generation_id=2)
    tb = stack.tb
    env_db = f"--db={tb.db_remote}"
    tb.run(tb.topology.mn_node, "ovs-vsctl", env_db, "add-port", "br-mn", "nbw0", "--", "set",
           "interface", "nbw0", "type=internal")  # fmt: skip
    try:
        added = watcher.expect(
            lambda m: isinstance(m, parser.OFPPortStatus) and m.desc.name == b"nbw0",
            "port-status for the new port",
        )
        assert added.reason == ofp.OFPPR_ADD
    finally:
        tb.run(tb.topology.mn_node, "ovs-vsctl", env_db, "--if-exists", "del-port", "br-mn", "nbw0")
    gone = watcher.expect(
        lambda m: isinstance(m, parser.OFPPortStatus) and m.reason == ofp.OFPPR_DELETE,
        "port-status for the removed port",
    )
    assert gone.desc.name == b"nbw0"
    # A port sdnmip does not know changes nothing for it.
    assert stack.control("status")["reconciled"]


def test_a_master_request_does_not_take_the_bridge_from_sdnmip(stack, watcher):
    before = rules(watcher)
    reply = watcher.request_role(ofp.OFPCR_ROLE_MASTER, generation_id=3)
    assert reply.role == ofp.OFPCR_ROLE_MASTER
    # sdnmip's connection is EQUAL, not MASTER: it is not demoted and keeps placing flows.
    udp_flow(stack.tb, 46002)
    f = poll("sdnmip to place a new flow", lambda: sdnmip_flow(stack, 46002), 10)
    assert f["up_installed"]
    static = {r for r in before if (r[2] >> 40) & 0xFF == 0x01}  # the pipeline's own rules
    assert static and static <= rules(watcher)
    # Back to slave before leaving, as a well-behaved watcher does.
    assert watcher.request_role(ofp.OFPCR_ROLE_SLAVE, generation_id=4).role == ofp.OFPCR_ROLE_SLAVE
    with pytest.raises(SwitchError):
        watcher.reply(watcher.send(parser.OFPFlowMod(
            watcher.dp, cookie=1, table_id=0, command=ofp.OFPFC_ADD, priority=1,
            match=parser.OFPMatch(), instructions=[])), "flow-mod answer", timeout=3)  # fmt: skip


def test_the_management_socket_is_for_root_only(stack):
    path = stack.tb.ovs.dir / "br-mn.mgmt"
    mode = path.stat().st_mode & 0o777
    # connect(2) on a Unix socket needs write permission on it.
    assert mode & 0o002 == 0, f"{path} is writable by others (mode {mode:o})"
    # What an external controller's operator sees of the MN meanwhile, over REST:
    out = stack.tb.run(stack.tb.topology.mn_node, "curl", "-sS", "http://127.0.0.1:8181/v1/status")
    assert json.loads(out.stdout)["switch_connected"] is True
