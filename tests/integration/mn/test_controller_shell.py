"""The controller process on the testbed's real OVS, with a scripted agent (no HA, no kernel
data path): it takes the bridge over, turns table misses into flows, moves them when the agent
reports the binding, survives its own restart (clean and crash) without touching the rules,
notices a flushed switch, follows carrier loss and ends idle flows.
"""

from __future__ import annotations

import json
import re
import signal
import time
from collections.abc import Iterator

import pytest

from sdnmip.testbed import Testbed
from tests.integration.helpers import poll, saved_flow_ids
from tests.unit.controller.pkt import build, tcp_pkt, udp_pkt

from .shell import PRIMARY, ShellMn

TESTBED_PROFILE = "fast"
CN1 = "2001:db8:c1::10"
CN2 = "2001:db8:c2::10"


@pytest.fixture(scope="module")
def mn(testbed: Testbed) -> Iterator[ShellMn]:
    m = ShellMn(testbed)
    m.start_agent()
    m.start_controller("--stats-interval", "1")
    yield m  # the testbed's `down` kills both processes


def agent_requests(mn: ShellMn) -> list[dict]:
    return [json.loads(line) for line in mn.agent_log.read_text().splitlines()]


def flow_to(mn: ShellMn, cn: str, port: int) -> dict | None:
    for f in mn.call("flows"):
        if f["remote"] == cn and f["remote_port"] == port:
            return f
    return None


def rule_set(mn: ShellMn) -> list[str]:
    """The bridge's rules without their counters and age."""
    return sorted(
        re.sub(r"(duration|n_packets|n_bytes|idle_age)=[^,]*, ", "", r) for r in mn.rules()
    )


def up_rule(mn: ShellMn, local_port: int) -> str | None:
    for r in mn.rules(table=2):
        if f"tp_src={local_port}," in r or f"tcp_src={local_port}," in r:
            return r
    return None


def test_the_controller_owns_every_rule_of_the_bridge(mn: ShellMn) -> None:
    rules = mn.rules()
    assert rules and all("cookie=0x5d1f" in r for r in rules), rules  # plumbing swept
    misses = [r for r in rules if "priority=0 " in r and "CONTROLLER" in r]
    assert {re.search(r"table=(\d)", r)[1] for r in misses} == {"2", "3"}  # type: ignore[index]


def test_a_new_flow_gets_both_rules_and_a_spare_hoa_of_its_own(mn: ShellMn) -> None:
    mn.inject("hoa0", build(tcp_pkt(PRIMARY, CN1, 41000, 5201)))
    flow = poll("the flow", lambda: flow_to(mn, CN1, 5201))
    assert flow["hoa"] != PRIMARY and flow["uplink"] == "wlan"
    rule = poll("its uplink rule", lambda: up_rule(mn, 41000))
    assert f"set_field:{flow['hoa']}->ipv6_src" in rule
    assert rule.endswith(f"output:{mn.ofport('iwlan')}")
    assert {"op": "claim", "args": {"hoa": flow["hoa"]}} in [
        {k: r[k] for k in ("op", "args")} for r in agent_requests(mn)
    ]


def test_moving_a_flow_rewrites_its_rule_once_the_agent_reports_the_binding(mn: ShellMn) -> None:
    mn.inject("hoa0", build(tcp_pkt(PRIMARY, CN1, 41001, 5202)))
    flow = poll("the flow", lambda: flow_to(mn, CN1, 5202))
    mn.call("move", flow_id=flow["flow_id"], uplink="lte")
    lte = f"output:{mn.ofport('ilte')}"
    poll("the rule to output to ilte", lambda: (r := up_rule(mn, 41001)) and r.endswith(lte))
    binds = [r for r in agent_requests(mn) if r["op"] == "bind"]
    assert binds[-1]["args"] == {"hoa": flow["hoa"], "uplink": "lte"}
    other = up_rule(mn, 41000)
    assert other is not None and other.endswith(f"output:{mn.ofport('iwlan')}")  # untouched


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGKILL], ids=["clean", "crash"])
def test_a_restarted_controller_changes_no_rule(mn: ShellMn, sig: int) -> None:
    mn.inject("hoa0", build(tcp_pkt(PRIMARY, CN2, 42000 + sig, 80)))
    poll("the flow", lambda: flow_to(mn, CN2, 80) if up_rule(mn, 42000 + sig) else None)
    flows = {f["flow_id"] for f in mn.call("flows")}
    # The snapshot is written within a second of a change (debounced): wait until it has them.
    poll(
        "the snapshot to hold the flows", lambda: saved_flow_ids(mn.dir / "state") >= flows or None
    )
    before = rule_set(mn)
    assert mn.stop_controller(sig) == (0 if sig == signal.SIGTERM else -signal.SIGKILL)
    time.sleep(1.0)  # a window in which a flushing switch would have flushed (nothing to poll)
    assert rule_set(mn) == before  # fail-secure: nothing flushed while no controller runs
    mn.start_controller("--stats-interval", "1")
    status = mn.call("status")
    assert status["last_reconcile"]["changes"] == 0, status
    assert {f["flow_id"] for f in mn.call("flows")} == flows
    durations = [
        float(m[1]) for r in mn.rules(table=2) if (m := re.search(r"duration=([\d.]+)s", r))
    ]
    assert max(durations) > 2.0  # the rules were not re-installed


def test_a_flushed_switch_is_noticed_by_the_canary_and_reconciled(mn: ShellMn) -> None:
    n = len(mn.rules())
    mn.tb.ofctl("del-flows", mn.tb.topology.mn.bridge)
    poll("the rules to come back", lambda: len(mn.rules()) == n or None, timeout=10)
    assert mn.call("status")["shell"]["canary_lost"] >= 1


def test_carrier_loss_moves_the_uplinks_flows_to_the_other(mn: ShellMn) -> None:
    mn.inject("hoa0", build(tcp_pkt(PRIMARY, CN1, 43000, 5203)))
    flow = poll("the flow", lambda: flow_to(mn, CN1, 5203))
    assert flow["uplink"] == "wlan"
    ar = mn.tb.topology.access_router("wlan")
    mn.tb.run(ar.node, "ip", "link", "set", "dev", ar.iface, "down")
    try:
        lte = f"output:{mn.ofport('ilte')}"
        poll("the flow to move to lte", lambda: (r := up_rule(mn, 43000)) and r.endswith(lte))
        assert all(f["uplink"] == "lte" for f in mn.call("flows"))
    finally:
        mn.tb.run(ar.node, "ip", "link", "set", "dev", ar.iface, "up")
    poll("wlan to come back", lambda: any(u["name"] == "wlan" and u["link_up"]
                                          for u in mn.call("uplinks")) or None)  # fmt: skip


def test_an_idle_flow_ends_and_its_hoa_is_released(mn: ShellMn) -> None:
    mn.inject("hoa0", build(udp_pkt(PRIMARY, CN2, 5353, 9999)))
    flow = poll("the flow", lambda: flow_to(mn, CN2, 9999))
    poll("the flow to end", lambda: flow_to(mn, CN2, 9999) is None or None, timeout=15)
    releases = [r["args"]["hoa"] for r in agent_requests(mn) if r["op"] == "release"]
    assert flow["hoa"] in releases
    assert PRIMARY not in releases
