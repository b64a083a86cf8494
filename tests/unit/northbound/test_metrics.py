"""`/metrics`: the text format (read back with the official Prometheus client's parser, an
independent reference), the histogram, and what the numbers say about the MN."""

from __future__ import annotations

import math
from typing import ClassVar

import pytest
from prometheus_client.parser import text_string_to_metric_families

from sdnmip.controller.uplinks import PortCounters
from sdnmip.northbound.metrics import Family, Registry, labels, render
from tests.unit.controller.rig import LTE, WLAN

from .nbrig import NbRig


def scrape(nb: NbRig) -> dict[str, dict[tuple[tuple[str, str], ...], float]]:
    """name -> {labels: value} for every sample, parsed by prometheus_client."""
    text = nb.get("/metrics").raw.decode()
    out: dict[str, dict[tuple[tuple[str, str], ...], float]] = {}
    for fam in text_string_to_metric_families(text):
        for s in fam.samples:
            out.setdefault(s.name, {})[tuple(sorted(s.labels.items()))] = s.value
    return out


def test_metrics_reflect_flows_hoas_handovers_and_interfaces():
    nb = NbRig.start()
    a = nb.open_tcp(40000, 80)
    nb.open_tcp(40001, 81)
    nb.open_udp(40002, 53)
    nb.post(f"/v1/flows/{a}/move", {"network": "lte"})
    nb.rig.ack_binds()
    nb.post("/v1/rules/operator", {"id": "dns", "match": {"remote_port": 53}, "uplink": "lte"})
    nb.rig.ack_binds()
    nb.rig.logic.port_stats(nb.rig.now, [PortCounters(WLAN, 1000, 2000), PortCounters(LTE, 5, 7)])
    nb.extra["setup"].observe(0.0004)
    nb.extra["setup"].observe(0.003)
    m = scrape(nb)
    assert m["sdnmip_flows"] == {
        (("mode", "anchored"), ("uplink", "lte")): 2.0,
        (("mode", "anchored"), ("uplink", "wlan")): 1.0,
    }
    assert m["sdnmip_flows_created_total"] == {(): 3.0}
    assert m["sdnmip_hoas"][(("role", "in_use"),)] == 3.0
    assert m["sdnmip_hoas"][(("role", "primary"),)] == 1.0
    assert m["sdnmip_handovers_total"] == {
        (("reason", "move"),): 1.0,
        (("reason", "policy"),): 1.0,
    }
    assert m["sdnmip_interface_bytes_total"] == {
        (("direction", "rx"), ("interface", "wlan")): 1000.0,
        (("direction", "tx"), ("interface", "wlan")): 2000.0,
        (("direction", "rx"), ("interface", "lte")): 5.0,
        (("direction", "tx"), ("interface", "lte")): 7.0,
    }
    assert m["sdnmip_interface_up"] == {(("interface", "wlan"),): 1.0, (("interface", "lte"),): 1.0}
    assert m["sdnmip_flows_resteered_total"] == {(): 1.0}
    assert m["sdnmip_policy_rules"] == {(("source", "operator"),): 1.0}
    assert m["sdnmip_policy_changes_total"][(("kind", "put_rule"),)] == 1.0
    assert m["sdnmip_policy_changes_total"][(("kind", "move"),)] == 1.0
    assert m["sdnmip_flow_setup_seconds_count"] == {(): 2.0}
    assert m["sdnmip_flow_setup_seconds_bucket"][(("le", "0.0005"),)] == 1.0
    assert m["sdnmip_flow_setup_seconds_bucket"][(("le", "+Inf"),)] == 2.0
    assert m["sdnmip_flow_setup_seconds_sum"][()] == pytest.approx(0.0034)
    assert m["sdnmip_switch_connected"] == {(): 1.0}
    assert m["sdnmip_agent_connected"] == {(): 0.0}


def test_ended_flows_and_refused_packet_ins_are_counted():
    nb = NbRig.start()
    f = nb.open_tcp(40000, 80)
    nb.delete(f"/v1/flows/{f}")
    from tests.unit.controller.pkt import ACK, tcp_pkt
    from tests.unit.controller.rig import CN1, HOA0, PRIMARY

    nb.rig.send(HOA0, tcp_pkt(PRIMARY, CN1, 40009, 80, flags=ACK))  # no connection: refused
    m = scrape(nb)
    assert m["sdnmip_flows_ended_total"] == {(("reason", "removed"),): 1.0}
    refused = m["sdnmip_packet_ins_refused_total"]
    assert refused == {(("reason", "TCP segment of no known connection"),): 1.0}


def test_the_agents_bindings_and_signalling_counters():
    class Info:
        def __init__(self, state: str) -> None:
            self.state = state

    class Snap:
        hoas = (Info("bound"), Info("bound"), Info("registering"))
        counters: ClassVar = {
            "bu_sent": {"register": 5, "deregister": 1},
            "ba_received": {"0": 5, "133": 1},
        }

    nb = NbRig.start(agent=Snap)
    m = scrape(nb)
    assert m["sdnmip_bindings"] == {(("state", "bound"),): 2.0, (("state", "registering"),): 1.0}
    assert m["sdnmip_binding_acks_total"][(("status", "133"),)] == 1.0
    assert m["sdnmip_binding_updates_total"][(("kind", "register"),)] == 5.0
    assert m["sdnmip_agent_connected"] == {(): 1.0}


def test_text_format_escapes_and_special_values():
    text = render(
        [
            Family.of(
                "x_total", "counter", "help with \\ and\nnewline", [(labels(a='q"uote\n\\'), 1.5)]
            ),
            Family.of("y", "gauge", "g", [((), math.inf), (labels(b="1"), 3.0)]),
        ]
    )
    fams = {f.name: f for f in text_string_to_metric_families(text)}
    assert fams["x"].documentation == "help with \\ and\nnewline"
    assert fams["x"].samples[0].labels == {"a": 'q"uote\n\\'}
    assert fams["x"].samples[0].value == 1.5
    assert math.isinf(fams["y"].samples[0].value)


def test_registry_refuses_mistakes():
    r = Registry()
    c = r.counter("a_total", "a", ("k",))
    with pytest.raises(ValueError, match="labels"):
        c.inc(x=1)
    with pytest.raises(ValueError, match="only goes up"):
        c.inc(-1, k=1)
    with pytest.raises(ValueError, match="twice"):
        r.counter("a_total", "again")
    with pytest.raises(ValueError, match="bad metric name"):
        r.counter("a-b", "x")
    r.add_collector(lambda: [Family.of("a_total", "counter", "dup", [])])
    with pytest.raises(AssertionError, match="collected twice"):
        r.render()


def test_histogram_buckets_are_cumulative_and_inclusive():
    r = Registry()
    h = r.histogram("t_seconds", "t", buckets=(0.1, 1.0))
    for v in (0.1, 0.5, 2.0):
        h.observe(v)
    fam = next(iter(text_string_to_metric_families(r.render())))
    got = {(s.name, s.labels.get("le")): s.value for s in fam.samples}
    assert got[("t_seconds_bucket", "0.1")] == 1.0
    assert got[("t_seconds_bucket", "1.0")] == 2.0
    assert got[("t_seconds_bucket", "+Inf")] == 3.0
    assert got[("t_seconds_count", None)] == 3.0
