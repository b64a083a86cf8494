"""A synthetic run of the demo's scenario (on a 5-second timeline), as the sampler would have
recorded it: every flow's packets on the uplink a `plan` says, the BUs and BAs of each handover,
flow tables, interfaces and counters, and iperf3's results. Tests perturb the plan to check that
the analysis notices."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from sdnmip.demo.iperf import IperfResult
from sdnmip.demo.observe import Observations
from sdnmip.demo.pcap import Data, Signal
from sdnmip.demo.record import Event, RunData
from sdnmip.demo.scenario import EXPECTED, FLOWS, Act, Scenario, _steps

T0 = 1_700_000_000.0
CN = {"cn1": "2001:db8:c1::10", "cn2": "2001:db8:c2::10"}
HOA = {"video": "2001:db8:100::a", "bulk": "2001:db8:100::b", "upload": "2001:db8:100::c"}
PORT = {"video": 41000, "bulk": 42000, "upload": 43000}
FLOW_ID = {"video": 1, "bulk": 2, "upload": 3}
COA = {"wlan": "2001:db8:1::2", "lte": "2001:db8:2::2"}
HA = "2001:db8:100::1"
SCENARIO = Scenario(
    "unit", _steps(1.0, 2.0, 3.0, 4.0, restore_settle=0.6), duration=5.0, settle=0.2,
    failback_after=0.3,
)  # fmt: skip
SWITCH_S = 0.05  # a flow's packets move this long after a step (the BA)


def delay(act: Act) -> float:
    """When a step's handovers start: at once, but the failback after the restore waits."""
    return SCENARIO.failback_after if act is Act.RESTORE else 0.0


PERIOD_S = 0.01
SIZE = 1000


def phase_at(t: float) -> str:
    phase = "start"
    for s in SCENARIO.steps:
        if t >= s.at + delay(s.act) + SWITCH_S:
            phase = s.phase
    return phase


def as_planned(key: str, t: float) -> str | None:
    return EXPECTED[phase_at(t)][key]


@dataclass
class Perturb:
    plan: Callable[[str, float], str | None] = as_planned
    no_ba: set[str] = field(default_factory=set)  # flows whose handovers get no BA
    reset_at: float | None = None  # a TCP RST of the bulk flow
    lost: set[int] = field(default_factory=set)  # video datagram counters never received
    not_sent: set[int] = field(default_factory=set)  # video counters never seen on an uplink
    failback_bu_at: float | None = None  # the failback's BUs this long after the restore


def fake_run(p: Perturb | None = None) -> RunData:
    p = p or Perturb()
    obs = Observations(cn_addresses=dict(CN))
    specs = {s.key: s for s in FLOWS}
    seq = 0
    t = 0.05
    while t < SCENARIO.duration:
        ts = T0 + t
        seq += 1
        for key, spec in specs.items():
            up = p.plan(key, t)
            if up is None:
                continue
            counter = seq if key == "video" else None
            if key == "video" and seq in p.not_sent:
                continue
            pkt = Data(
                COA[up],
                spec.proto_number,
                HOA[key],
                PORT[key],
                CN[spec.cn],
                spec.port,
                0x10 if spec.proto == "tcp" else 0,
                True,
                counter,
            )
            obs.add_packet(up, ts, SIZE, pkt)
            if key == "video" and seq not in p.lost:
                obs.add_received(
                    Data(HOA[key], 17, HOA[key], PORT[key], CN["cn1"], spec.port, 0, False, seq)
                )
        t = round(t + PERIOD_S, 6)
    bu_seq = 1
    for s in SCENARIO.steps:
        prev = (
            "start" if s is SCENARIO.steps[0] else SCENARIO.steps[SCENARIO.steps.index(s) - 1].phase
        )
        at = T0 + s.at + delay(s.act)
        if s.act is Act.RESTORE and p.failback_bu_at is not None:
            at = T0 + s.at + p.failback_bu_at
        for key in specs:
            new = EXPECTED[s.phase][key]
            if new == EXPECTED[prev][key]:
                continue
            bu_seq += 1
            obs.signals.append((at + 0.01, new, Signal("BU", COA[new], HA, HOA[key], seq=bu_seq)))
            if key not in p.no_ba:
                obs.signals.append(
                    (
                        at + 0.04,
                        new,
                        Signal("BA", HA, COA[new], HOA[key], seq=bu_seq, status=0),
                    )
                )
    obs.signals.sort(key=lambda x: x[0])
    if p.reset_at is not None:
        rst = Data(COA["wlan"], 6, HOA["bulk"], PORT["bulk"], CN["cn1"], 5202, 0x14, True)
        obs.add_packet("wlan", T0 + p.reset_at, 60, rst)
    t = 0.0
    while t < SCENARIO.duration:
        table = []
        for key, spec in specs.items():
            table.append(
                {
                    "flow_id": FLOW_ID[key],
                    "proto": spec.proto,
                    "remote": CN[spec.cn],
                    "remote_port": spec.port,
                    "local_port": PORT[key],
                    "direction": "outgoing",
                    "hoa": HOA[key],
                    "coa": None,
                    "uplink": p.plan(key, t) or "wlan",
                    "moving_to": None,
                }
            )
        down = SCENARIO.step(Act.CUT).at <= t < SCENARIO.step(Act.RESTORE).at + 0.1
        ifaces = [
            {"name": "wlan", "usable": not down, "coa": COA["wlan"]},
            {"name": "lte", "usable": True, "coa": COA["lte"]},
        ]
        counters = {"wlan": (0, int(t * 1e6)), "lte": (0, int(t * 5e5))}
        obs.flow_tables.append((T0 + t, table))
        obs.interfaces.append((T0 + t, ifaces))
        obs.counters.append((T0 + t, counters))
        t = round(t + 0.1, 6)
    events = []
    for s in SCENARIO.steps:
        detail = {"flow_id": FLOW_ID["bulk"], "hoa": HOA["bulk"]} if s.act is Act.MOVE else {}
        events.append(Event(s, T0 + s.at, T0 + s.at + 0.005, detail))
    iperf = {
        "video": IperfResult(
            None,
            PORT["video"],
            seq * 1200,
            (seq - len(p.lost)) * 1200,
            5.0,
            None,
            seq,
            len(p.lost | p.not_sent),
        ),
        "bulk": IperfResult(
            None if p.reset_at is None else "Connection reset by peer",
            PORT["bulk"],
            10**7,
            10**7,
            5.0,
            3,
            None,
            None,
        ),
        "upload": IperfResult(None, PORT["upload"], 10**7, 10**7, 5.0, 0, None, None),
    }
    return RunData(
        SCENARIO,
        "unit",
        "default",
        T0,
        T0 - 10,
        obs,
        events,
        iperf,
        dict(COA),
        {"signalling.pcap": Path("/nonexistent")},
        capture_drops={"wlan": 0, "lte": 0, "signalling": 0},
    )
