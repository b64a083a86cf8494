"""The demo's scenario as data: the flows it runs, the timed steps it takes, and what each step
must do to each flow.

`FULL` is what `sdnmip demo` runs; `QUICK` (`--quick`, the integration test) takes the same
steps in the same order with shorter phases. Everything that runs the scenario, samples it and
checks it reads these values, so the test exercises the demo's own code path.

Owns: flows, steps, phases, the operator policy the demo applies, and the expected uplink of
every flow in every phase.
Must not: do I/O.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Any


class Act(StrEnum):
    POLICY = "policy"  # POST the operator rules (video -> wlan, bulk -> lte)
    MOVE = "move"  # POST /v1/flows/{bulk}/move {"network": "wlan"}
    CUT = "cut"  # pull the carrier of wlan
    RESTORE = "restore"  # give it back: the flows fail back to wlan after FAILBACK_AFTER


# controller.failback_after of the demo's MN (the MN's default, spelled out).
FAILBACK_AFTER = 3.0


@dataclass(frozen=True)
class FlowSpec:
    """One stock iperf3 test from the MN to a correspondent: `rate_mbit` for a UDP stream."""

    key: str
    title: str
    proto: str  # "tcp" or "udp"
    cn: str  # testbed node
    port: int  # the iperf3 server's port on the correspondent
    rate_mbit: float | None = None

    @property
    def proto_number(self) -> int:
        return 6 if self.proto == "tcp" else 17


@dataclass(frozen=True)
class Step:
    at: float  # seconds after the flows started
    act: Act
    label: str  # for the live table and the plot
    phase: str  # the phase this step begins
    settle: float | None = None  # the phase is judged this long after the step (None: Scenario's)


@dataclass(frozen=True)
class Scenario:
    name: str
    steps: tuple[Step, ...]
    duration: float  # how long the flows run (iperf3 -t: whole seconds, it drops a fraction)
    # After a step, traffic takes this long to settle on its new uplink (a BU/BA round trip over
    # lte, TCP recovering from losses at the cut); phases are judged after it.
    settle: float
    # iperf3 -C for the TCP flows. Linux's default; BBR (some distributions' choice, and this
    # development VM's) keeps the minimum RTT it measured on wlan for 10 s after the flow moves to
    # the slower lte, so a moved flow crawls until it probes again (`--cc bbr` shows it).
    tcp_congestion: str = "cubic"
    # controller.failback_after of the MN in this run: after the restore, wlan must be usable
    # this long before the flows go back to it.
    failback_after: float = FAILBACK_AFTER

    def phases(self) -> list[tuple[str, float, float]]:
        """(phase, start, end) in seconds after the flows started, the first one `start`."""
        bounds = [("start", 0.0)] + [(s.phase, s.at) for s in self.steps]
        out = []
        for i, (name, begin) in enumerate(bounds):
            end = bounds[i + 1][1] if i + 1 < len(bounds) else self.duration
            out.append((name, begin, end))
        return out

    def step(self, act: Act) -> Step:
        return next(s for s in self.steps if s.act is act)

    def settle_of(self, phase: str) -> float:
        """How long after its start the phase is judged (the traffic has settled by then)."""
        for s in self.steps:
            if s.phase == phase and s.settle is not None:
                return s.settle
        return self.settle


VIDEO = FlowSpec("video", "UDP video 8 Mbit/s to CN1", "udp", "cn1", 5201, rate_mbit=8.0)
BULK = FlowSpec("bulk", "TCP bulk to CN1", "tcp", "cn1", 5202)
UPLOAD = FlowSpec("upload", "TCP upload to CN2", "tcp", "cn2", 5203)
FLOWS = (VIDEO, BULK, UPLOAD)
MOVED = BULK  # the flow the demo moves through the northbound
CUT_UPLINK, OTHER_UPLINK = "wlan", "lte"

# What the policy step POSTs to /v1/rules/operator (docs/northbound.md).
POLICY_RULES: tuple[dict[str, Any], ...] = (
    {
        "id": "video-wlan",
        "match": {"proto": "udp", "remote_port": VIDEO.port},
        "uplink": "wlan",
        "description": "the video stream wants the low-delay network",
    },
    {
        "id": "bulk-lte",
        "match": {"proto": "tcp", "remote_port": BULK.port},
        "uplink": "lte",
        "description": "bulk transfers go by lte",
    },
)
# The MN's own default before the policy: every flow by wlan while it is usable, else lte.
DEFAULT_POLICY = "version: 1\nsource: operator\ndefault: {strategy: {prefer: [wlan, lte]}}\n"

# From the restore to every flow back on wlan, beyond the failback delay: wlan usable again
# (carrier, the agent's CoA), the BU/BA over wlan, TCP settling.
FAILBACK_MARGIN_S = 2.5

# Where each flow's data must go in each phase (judged after the step's settle time). At
# `restored` every flow is back on wlan (failback): video and bulk by the operator's policy and
# the user's move (bulk is pinned to wlan), upload by the default's preference for wlan.
EXPECTED: dict[str, dict[str, str]] = {
    "start": {"video": "wlan", "bulk": "wlan", "upload": "wlan"},
    "policy": {"video": "wlan", "bulk": "lte", "upload": "wlan"},
    "moved": {"video": "wlan", "bulk": "wlan", "upload": "wlan"},
    "failover": {"video": "lte", "bulk": "lte", "upload": "lte"},
    "restored": {"video": "wlan", "bulk": "wlan", "upload": "wlan"},
}


def _steps(
    policy: float,
    move: float,
    cut: float,
    restore: float,
    restore_settle: float = FAILBACK_AFTER + FAILBACK_MARGIN_S,
) -> tuple[Step, ...]:
    return (
        Step(policy, Act.POLICY, "policy: video->wlan, bulk->lte", "policy"),
        Step(move, Act.MOVE, "bulk moved to wlan", "moved"),
        Step(cut, Act.CUT, "wlan cut", "failover"),
        Step(restore, Act.RESTORE, "wlan restored", "restored", settle=restore_settle),
    )


# The restored phase is longer than the others: the flows are back on wlan after the failback
# delay and its margin, and the phase is judged over the seconds after that.
FULL = Scenario("full", _steps(7.0, 17.0, 27.0, 37.0), duration=48.0, settle=2.0)
QUICK = Scenario("quick", _steps(4.0, 9.0, 14.0, 19.0), duration=28.0, settle=2.0)
