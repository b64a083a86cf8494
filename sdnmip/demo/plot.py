"""The demo's picture: throughput per uplink and per flow over time, with the steps marked.

Three panels on one time axis (seconds after the flows started):
1. what each uplink sent (the MN's interface counters of `wlan` and `lte`);
2. what each flow sent (its packets in the MN's uplink captures, both uplinks together);
3. which uplink carried each flow, bin by bin (the uplink with most of its bytes).
Dashed lines mark the steps (policy, move, cut, restore); the time wlan had no carrier is
shaded. A box gives the measured handover figures from the summary.

Owns: the figure. Must not: compute figures of its own beyond binning (analysis.py does).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")  # no display: a file only

import matplotlib.pyplot as plt
import numpy as np
from matplotlib.patches import Patch

from sdnmip.demo.analysis import UPLINKS, Run
from sdnmip.demo.record import RunData
from sdnmip.demo.scenario import FLOWS, Act

BIN_S = 0.25
UPLINK_COLOURS = {"wlan": "#1f77b4", "lte": "#ff7f0e"}
FLOW_COLOURS = {"video": "#2ca02c", "bulk": "#9467bd", "upload": "#8c564b"}
STEP_NAMES = {
    Act.POLICY: "policy applied",
    Act.MOVE: "bulk moved\nto wlan (REST)",
    Act.CUT: "wlan cut",
    Act.RESTORE: "wlan restored\n(failback after {failback:g} s)",
}


def _grid(run: RunData) -> np.ndarray:
    end = run.scenario.duration + 1.0
    return np.arange(0.0, end + BIN_S, BIN_S)


def uplink_rates(run: RunData, edges: np.ndarray) -> dict[str, np.ndarray]:
    """Mbit/s sent by each uplink in each bin, from the counters interpolated at the edges."""
    out = {}
    for u in UPLINKS:
        pts = [(t - run.t0, c[u][1]) for t, c in run.obs.counters if u in c]
        if len(pts) < 2:
            out[u] = np.zeros(len(edges) - 1)
            continue
        ts, bs = np.array([p[0] for p in pts]), np.array([p[1] for p in pts], dtype=float)
        at = np.interp(edges, ts, bs)
        out[u] = np.diff(at) * 8 / BIN_S / 1e6
    return out


def flow_rates(r: Run, edges: np.ndarray) -> dict[str, dict[str, np.ndarray]]:
    """Mbit/s of each flow's data connection on each uplink in each bin."""
    out: dict[str, dict[str, np.ndarray]] = {}
    for key in r.ids:
        out[key] = {}
        for u in UPLINKS:
            s = r.series(key, u)
            times = (
                np.frombuffer(s.times, dtype=np.float64) - r.t0 if len(s.times) else np.array([])
            )
            sizes = np.frombuffer(s.sizes, dtype=np.uint32) if len(s.sizes) else np.array([])
            hist, _ = np.histogram(times, bins=edges, weights=sizes)
            out[key][u] = hist * 8 / BIN_S / 1e6
    return out


def draw(run: RunData, summary: dict[str, Any], path: Path) -> None:
    r = Run(run)
    edges = _grid(run)
    mid = (edges[:-1] + edges[1:]) / 2
    ups = uplink_rates(run, edges)
    flows = flow_rates(r, edges)
    fig, (ax1, ax2, ax3) = plt.subplots(
        3, 1, figsize=(12, 9.5), sharex=True, gridspec_kw={"height_ratios": [3, 3, 1.2]}
    )
    fig.suptitle(_title(run), fontsize=12)
    for u in UPLINKS:
        ax1.plot(mid, ups[u], color=UPLINK_COLOURS[u], lw=1.6, label=f"{u} (sent)")
    ax1.set_ylabel("uplink Mbit/s\n(interface counters)")
    ax1.legend(loc="center right", fontsize=9)
    for spec in FLOWS:
        total = _total(flows[spec.key])
        ax2.plot(mid, total, color=FLOW_COLOURS[spec.key], lw=1.6, label=spec.title)
    ax2.set_ylabel("flow Mbit/s\n(packets on the uplinks)")
    ax2.legend(loc="upper right", fontsize=9)
    _strips(ax3, flows, mid)
    for ax in (ax1, ax2):
        ax.set_ylim(bottom=0)
        ax.grid(alpha=0.3)
    top = max([1.0] + [float(v.max()) for v in ups.values()])
    ax1.set_ylim(0, top * 1.35)
    ax2.set_ylim(0, max([1.0] + [float(_total(f).max()) for f in flows.values()]) * 1.2)
    _steps(run, (ax1, ax2, ax3), top * 1.3)
    ax3.set_xlabel("seconds after the flows started")
    ax3.set_xlim(0, run.scenario.duration + 1.0)
    fig.tight_layout(rect=(0, 0.105, 1, 1))
    _figures_footer(fig, summary)
    fig.savefig(path, dpi=110)
    plt.close(fig)


def _total(by_uplink: dict[str, np.ndarray]) -> np.ndarray:
    total: np.ndarray = np.sum(list(by_uplink.values()), axis=0)
    return total


def _title(run: RunData) -> str:
    return (
        f"sdnmip demo: per-flow handover of three iperf3 flows from the mobile node "
        f"(testbed profile '{run.profile}')"
    )


def _strips(ax: Any, flows: dict[str, dict[str, np.ndarray]], mid: np.ndarray) -> None:
    keys = [s.key for s in FLOWS]
    for row, key in enumerate(keys):
        y = len(keys) - 1 - row
        for u in UPLINKS:
            others = [flows[key][o] for o in UPLINKS if o != u]
            mine = flows[key][u]
            on = (mine > 0) & (mine >= np.maximum.reduce(others))
            spans = [(m - BIN_S / 2, BIN_S) for m, b in zip(mid, on, strict=True) if b]
            ax.broken_barh(spans, (y - 0.35, 0.7), facecolors=UPLINK_COLOURS[u], lw=0)
    ax.set_yticks(range(len(keys)))
    ax.set_yticklabels(list(reversed(keys)))
    ax.set_ylim(-0.6, len(keys) - 0.4)
    ax.set_ylabel("uplink\nof each flow")
    ax.legend(
        handles=[Patch(color=UPLINK_COLOURS[u], label=u) for u in UPLINKS],
        loc="lower right",
        bbox_to_anchor=(1.0, 1.0),
        fontsize=8,
        ncol=2,
        frameon=False,
        borderaxespad=0.1,
    )


def _steps(run: RunData, axes: tuple[Any, ...], label_y: float) -> None:
    at = {e.step.act: e.t_call - run.t0 for e in run.events}
    if Act.CUT in at:
        end = at.get(Act.RESTORE, run.scenario.duration)
        for ax in axes:
            ax.axvspan(at[Act.CUT], end, color="grey", alpha=0.12, lw=0)
    for act, t in at.items():
        for ax in axes:
            ax.axvline(t, color="black", ls="--", lw=0.9, alpha=0.7)
        label = STEP_NAMES[act].format(failback=run.scenario.failback_after)
        axes[0].text(t + 0.15, label_y, label, va="top", ha="left", fontsize=9)


def _figures_footer(fig: Any, summary: dict[str, Any]) -> None:
    """The measured figures of the summary, under the plot."""
    lines = []
    for ev in summary["events"]:
        if ev["step"] in ("cut", "restore"):
            continue
        for key, h in ev["handovers"].items():
            stayed = ", ".join(ev["unchanged"])
            lines.append(
                f"{ev['label']}: {key} {h['from']}->{h['to']}: BA after {h['ba_ms']} ms, "
                f"first packet on {h['to']} after {h['first_packet_on_new_ms']} ms; "
                f"{stayed}: untouched"
            )
    fo = summary.get("failover")
    if fo:
        per = ", ".join(f"{k} {v['first_packet_on_new_ms']} ms" for k, v in fo["flows"].items())
        lines.append(f"wlan cut: first packet on lte after {per}")
        video = fo["flows"].get("video", {})
        if "udp_lost_packets" in video:
            where = ""
            b = video.get("udp_loss_breakdown")
            if b:
                k = b["lost_by_cause"]
                where = (
                    f": {k['in_wlan_link_at_cut']} in the wlan link at the cut, "
                    f"{k['in_mn_at_switch']} in the MN at the switch, "
                    f"{k['lte_before_ba']} by lte before the BA"
                )
            lines.append(
                f"video lost {video['udp_lost_packets']} datagrams "
                f"({video['udp_lost_ms_of_stream']} ms of the stream){where}"
            )
    fb = summary.get("failback")
    if fb:
        per = ", ".join(f"{k} {v['first_packet_on_new_ms']} ms" for k, v in fb["flows"].items())
        lines.append(
            f"wlan restored: first packet back on wlan after {per} "
            f"(failback_after {fb['failback_after_s']:g} s)"
        )
    resets = len(summary["resets"])
    lines.append(
        f"TCP connection resets: {resets or 'none'}.  "
        f"{sum(c['ok'] for c in summary['checks'])}/{len(summary['checks'])} checks "
        "passed (summary.md)"
    )
    fig.text(0.01, 0.01, "\n".join(lines), ha="left", va="bottom", fontsize=8.5, family="monospace")
