"""What `/metrics` reports: collectors that read the controller and the agent at scrape time.

Families (all prefixed `sdnmip_`):
- `flows{uplink,mode}` live flows; `flows_created_total`; `flows_ended_total{reason}`
- `hoas{role}` Home Addresses in the controller's table (primary, in_use, spare)
- `bindings{state}` the agent's bindings by state; `binding_updates_total{kind}` (register,
  retransmit, deregister), `binding_acks_total{status}` and `binding_errors_total{status}`: the
  agent's signalling counters
- `handovers_total{reason}` HoA re-bindings the controller asked for (move, policy, uplink lost)
- `packet_ins_total`, `packet_ins_refused_total{reason}`
- `flow_setup_seconds` histogram (observed by the app around packet-in -> send)
- `interface_bytes_total{interface,direction}` port counters of each uplink's physical port,
  `interface_up{interface}`, `interface_rate_bps{interface}`
- `switch_connected`, `agent_connected`, `policy_rules{source}`, `policy_reload_ok`
Plus what the service and the REST layer count themselves (policy reloads and changes,
re-steered flows, requests).

Each collector reads the logic once under the app's lock. Must not change anything.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from typing import Any

from sdnmip.northbound.metrics import Family, Histogram, Labels, Registry, labels
from sdnmip.northbound.service import NorthboundService

ENDED_PREFIX = "flows_ended_"
MOVES_PREFIX = "moves_"


def flow_setup_histogram(registry: Registry) -> Histogram:
    """Observed by the app: from a packet-in that starts a flow to its messages being sent."""
    return registry.histogram(
        "sdnmip_flow_setup_seconds",
        "Time from the packet-in of a new flow to its rules and first packet written to the switch",
    )


def register(registry: Registry, service: NorthboundService) -> None:
    registry.add_collector(lambda: controller_families(service))
    registry.add_collector(lambda: agent_families(service))
    registry.add_collector(lambda: policy_families(service))


def controller_families(service: NorthboundService) -> list[Family]:
    app = service.app

    def read() -> dict[str, Any]:
        logic = app.logic
        by_uplink: Counter[tuple[str, str]] = Counter()
        for e in logic.flows:
            by_uplink[(e.uplink, e.mode.value)] += 1
        held = len(logic.hoas)
        interfaces = [
            (
                name,
                u.usable,
                u.rate_bps,
                u.rx_bytes,
                u.tx_bytes,
            )
            for name, u in logic.uplinks.items()
        ]
        return {
            "flows": dict(by_uplink),
            "stats": dict(logic.stats),
            "refused": dict(logic.refused),
            "hoas": {"primary": 1, "in_use": held - 1, "spare": len(logic.hoas.spares())},
            "interfaces": interfaces,
            "shell": dict(app.counters),
            "switch": app.dp is not None,
        }

    d = app.read(read)
    stats: dict[str, int] = d["stats"]
    flows = [(labels(uplink=u, mode=m), float(n)) for (u, m), n in sorted(d["flows"].items())]
    ended = _prefixed(stats, ENDED_PREFIX, "reason")
    moves = _prefixed(stats, MOVES_PREFIX, "reason")
    interfaces = d["interfaces"]
    out = [
        Family.of("sdnmip_flows", "gauge", "Live flows, by uplink and mode", flows),
        Family.of(
            "sdnmip_flows_created_total",
            "counter",
            "Flows the controller placed",
            [((), float(stats.get("flows_created", 0)))],
        ),
        Family.of("sdnmip_flows_ended_total", "counter", "Flows that ended, by reason", ended),
        Family.of(
            "sdnmip_hoas",
            "gauge",
            "Home Addresses in the controller's table, by role",
            [(labels(role=r), float(n)) for r, n in d["hoas"].items()],
        ),
        Family.of(
            "sdnmip_handovers_total",
            "counter",
            "HoA re-bindings (handovers) the controller asked for, by reason",
            moves,
        ),
        Family.of(
            "sdnmip_packet_ins_total",
            "counter",
            "Packet-ins from the switch",
            [((), float(d["shell"].get("packet_ins", 0)))],
        ),
        Family.of(
            "sdnmip_packet_ins_refused_total",
            "counter",
            "Packet-ins that made no flow, by reason",
            [(labels(reason=r), float(n)) for r, n in sorted(d["refused"].items())],
        ),
        Family.of(
            "sdnmip_interface_up",
            "gauge",
            "1 when the uplink can carry new flows",
            [(labels(interface=n), float(up)) for n, up, _, _, _ in interfaces],
        ),
        Family.of(
            "sdnmip_interface_rate_bps",
            "gauge",
            "Measured rate of each uplink (both directions, last stats interval)",
            [(labels(interface=n), float(r)) for n, _, r, _, _ in interfaces],
        ),
        Family.of(
            "sdnmip_interface_bytes_total",
            "counter",
            "Bytes through each uplink's port on the bridge (OpenFlow port statistics)",
            _bytes(interfaces),
        ),
        Family.of(
            "sdnmip_switch_connected",
            "gauge",
            "1 while the bridge is connected",
            [((), float(d["switch"]))],
        ),
    ]
    return out


def _bytes(
    interfaces: Iterable[tuple[str, bool, float, int | None, int | None]],
) -> list[tuple[Labels, float]]:
    out: list[tuple[Labels, float]] = []
    for name, _, _, rx, tx in interfaces:
        if rx is None or tx is None:
            continue  # no port statistics read yet
        out.append((labels(interface=name, direction="rx"), float(rx)))
        out.append((labels(interface=name, direction="tx"), float(tx)))
    return out


def _prefixed(stats: dict[str, int], prefix: str, label: str) -> list[tuple[Labels, float]]:
    return [
        (((label, k[len(prefix) :]),), float(v))
        for k, v in sorted(stats.items())
        if k.startswith(prefix)
    ]


def agent_families(service: NorthboundService) -> list[Family]:
    snap = service.agent() if service.agent is not None else None
    connected = bool(service.agent_connected and service.agent_connected())
    out = [
        Family.of(
            "sdnmip_agent_connected",
            "gauge",
            "1 while the controller is subscribed to the Mobile IPv6 agent",
            [((), float(connected))],
        ),
    ]
    if snap is None:
        return out
    states: Counter[str] = Counter(str(h.state) for h in snap.hoas)
    out.append(
        Family.of(
            "sdnmip_bindings",
            "gauge",
            "The agent's bindings at the Home Agent, by state",
            [(labels(state=s), float(n)) for s, n in sorted(states.items())],
        )
    )
    out += _signalling(snap.counters)
    return out


def _signalling(counters: dict[str, dict[str, int]]) -> list[Family]:
    """The agent's signalling counters (sdnmip/mn_agent/api.py, Snapshot.counters)."""
    out = []
    for key, name, help_, label in (
        ("bu_sent", "sdnmip_binding_updates_total",
         "Binding Updates sent to the Home Agent, by kind", "kind"),
        ("ba_received", "sdnmip_binding_acks_total",
         "Binding Acknowledgements received, by status (RFC 6275 6.1.8)", "status"),
        ("be_received", "sdnmip_binding_errors_total",
         "Binding Errors received, by status (RFC 6275 6.1.9)", "status"),
        ("ignored", "sdnmip_signalling_dropped_total",
         "Packets on the agent's signalling sockets it dropped, by kind "
         "(malformed, unauthenticated, other)", "kind"),
    ):  # fmt: skip
        values = counters.get(key) or {}
        out.append(
            Family.of(
                name,
                "counter",
                help_,
                [(((label, k),), float(n)) for k, n in sorted(values.items())],
            )
        )
    return out


def policy_families(service: NorthboundService) -> list[Family]:
    policy = service.engine.policy
    by_source: Counter[str] = Counter(r.source.value for r in policy.rules)
    return [
        Family.of(
            "sdnmip_policy_rules",
            "gauge",
            "Rules in force, by source",
            [(labels(source=s), float(n)) for s, n in sorted(by_source.items())],
        ),
        Family.of(
            "sdnmip_policy_reload_ok",
            "gauge",
            "1 unless the last policy file reload was refused (the old policy stayed)",
            [((), float(service.last_reload.ok))],
        ),
    ]
