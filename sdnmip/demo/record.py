"""What one run of the demo leaves for its report: the steps as they happened and everything
observed, gathered before the testbed is removed.

Owns: the `Event` and `RunData` records.
Must not: do I/O.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sdnmip.demo.iperf import IperfResult
from sdnmip.demo.observe import Observations
from sdnmip.demo.scenario import Scenario, Step


@dataclass
class Event:
    """A step as it happened: wall-clock times just before and after acting, what it returned."""

    step: Step
    t_call: float
    t_done: float
    detail: dict[str, Any] = field(default_factory=dict)


@dataclass
class RunData:
    scenario: Scenario
    prefix: str
    profile: str
    t0: float  # wall clock when the flows were started
    started: float  # wall clock when the demo started
    obs: Observations
    events: list[Event]
    iperf: dict[str, IperfResult]
    coas: dict[str, str]
    files: dict[str, Path]  # report file name -> where it was captured
    timings: dict[str, float] = field(default_factory=dict)
    capture_drops: dict[str, int | None] = field(default_factory=dict)  # tcpdump's statistics
