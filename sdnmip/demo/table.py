"""The demo's live view: flows (Home Address, uplink, rate), interfaces and the phase.

On a terminal the table is redrawn in place (ANSI: cursor up, clear to the end); anywhere else
(CI logs, a pipe) the demo prints one plain progress line every few seconds and one line per
event, so the log reads top to bottom.

Owns: turning the latest observations into rows (`view`), formatting them (`render`,
`progress_line`), and the terminal handling (`Display`).
Must not: sample anything itself (it reads `Observations`).
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import TextIO

from sdnmip.demo.observe import Observations, data_flow
from sdnmip.demo.scenario import FlowSpec, Scenario

RATE_WINDOW_S = 1.0
CAPTURE_LAG_S = 0.2  # tcpdump's and the sampler's latency: the newest packets may not be read yet
PROGRESS_EVERY_S = 3.0
UPLINKS = ("wlan", "lte")


@dataclass(frozen=True)
class FlowRow:
    key: str
    title: str
    hoa: str
    uplink: str
    mbit_s: float | None


@dataclass(frozen=True)
class IfaceRow:
    name: str
    state: str
    coa: str
    mbit_s: float | None


@dataclass(frozen=True)
class View:
    elapsed: float
    duration: float
    phase: str
    next_step: str | None  # "wlan cut in 3.2 s"
    flows: list[FlowRow]
    interfaces: list[IfaceRow]
    events: list[str]


def view(
    obs: Observations,
    scenario: Scenario,
    flows: tuple[FlowSpec, ...],
    *,
    t0: float,
    now: float,
    events: list[str],
) -> View:
    """The rows as of `now` (wall clock); `t0` is when the flows started."""
    elapsed = max(0.0, now - t0)
    phase = "start"
    nxt = None
    for s in scenario.steps:
        if elapsed >= s.at:
            phase = s.phase
        elif nxt is None:
            nxt = f"{s.label} in {s.at - elapsed:.0f} s"
    t1 = now - CAPTURE_LAG_S
    with obs.lock:
        table = list(obs.latest_flow_table())
        ifaces = list(obs.latest_interfaces())
        rows = []
        for spec in flows:
            entry = data_flow(table, spec, obs.cn_addresses[spec.cn])
            uplink, hoa = "-", "-"
            if entry is not None:
                hoa = str(entry["hoa"] or entry["coa"] or "-")
                uplink = str(entry["uplink"])
                if entry.get("moving_to"):
                    uplink += f" -> {entry['moving_to']}"
            sent = sum(obs.flow_bytes(spec, u, t1 - RATE_WINDOW_S, t1) for u in UPLINKS)
            rate = 8e-6 * sent / RATE_WINDOW_S if elapsed > RATE_WINDOW_S else None
            rows.append(FlowRow(spec.key, spec.title, hoa, uplink, rate))
        irows = []
        for i in ifaces:
            state = "up" if i.get("usable") else "DOWN"
            r = obs.interface_rate(i["name"], now - RATE_WINDOW_S, now)
            irows.append(
                IfaceRow(i["name"], state, str(i.get("coa") or "-"), None if r is None else r / 1e6)
            )
    return View(elapsed, scenario.duration, phase, nxt, rows, irows, list(events))


def _rate(v: float | None) -> str:
    return "-" if v is None else f"{v:6.1f}"


def render(v: View) -> list[str]:
    head = f"sdnmip demo  {v.elapsed:5.1f} s of {v.duration:g}   phase: {v.phase}"
    if v.next_step:
        head += f"   next: {v.next_step}"
    lines = [head, ""]
    lines.append(f"{'FLOW':<8}{'WHAT':<27}{'HOME ADDRESS':<38}{'UPLINK':<14}{'Mbit/s':>7}")
    for r in v.flows:
        lines.append(f"{r.key:<8}{r.title:<27}{r.hoa:<38}{r.uplink:<14}{_rate(r.mbit_s):>7}")
    lines.append("")
    lines.append(f"{'UPLINK':<8}{'STATE':<7}{'CARE-OF ADDRESS':<58}{'out Mbit/s':>12}")
    for i in v.interfaces:
        lines.append(f"{i.name:<8}{i.state:<7}{i.coa:<58}{_rate(i.mbit_s):>12}")
    lines.append("")
    lines.append("events: " + ("; ".join(v.events) if v.events else "-"))
    return lines


def progress_line(v: View) -> str:
    flows = "  ".join(f"{r.key} {r.uplink} {_rate(r.mbit_s).strip()}" for r in v.flows)
    ifaces = "  ".join(f"{i.name}({i.state}) {_rate(i.mbit_s).strip()}" for i in v.interfaces)
    return f"[{v.elapsed:5.1f} s] {v.phase:<9} flows: {flows} | uplinks Mbit/s: {ifaces}"


class Display:
    """Where the live view goes: redrawn in place on a terminal, progress lines otherwise."""

    def __init__(self, out: TextIO, tty: bool) -> None:
        self.out = out
        self.tty = tty
        self._drawn = 0
        self._last_progress = 0.0

    def message(self, text: str) -> None:
        """A line that stays (above the table on a terminal)."""
        self._clear()
        self.out.write(text + "\n")
        self.out.flush()

    def show(self, v: View) -> None:
        if self.tty:
            self._clear()
            lines = render(v)
            self.out.write("\n".join(lines) + "\n")
            self._drawn = len(lines)
        elif time.monotonic() - self._last_progress >= PROGRESS_EVERY_S:
            self._last_progress = time.monotonic()
            self.out.write(progress_line(v) + "\n")
        self.out.flush()

    def finish(self) -> None:
        """Leave the last table on screen."""
        self._drawn = 0

    def _clear(self) -> None:
        if self.tty and self._drawn:
            self.out.write(f"\x1b[{self._drawn}F\x1b[J")
            self._drawn = 0
