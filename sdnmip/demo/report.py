"""The demo's report folder: summary.json, summary.md, throughput.png, signalling.pcap and the
iperf3 results, plus the short verdict printed at the end of a run.

Owns: the folder's content and the wording of the summary.
Must not: measure anything (analysis.py) or draw (plot.py).
"""

from __future__ import annotations

import json
import os
import platform
import subprocess
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sdnmip.demo import analysis, plot
from sdnmip.demo.record import RunData
from sdnmip.demo.scenario import FLOWS

PLOT = "throughput.png"


def write(run: RunData, folder: Path) -> dict[str, Any]:
    """Analyse the run and write the report into `folder` (which holds the copied captures and
    iperf3 results already). Returns the summary."""
    summary = analysis.analyse(run)
    summary["machine"] = machine()
    summary["started"] = datetime.fromtimestamp(run.started, UTC).isoformat(timespec="seconds")
    summary["timings_s"] = {k: round(v, 1) for k, v in run.timings.items()}
    summary["coas"] = run.coas
    summary["tcp_congestion_control"] = run.scenario.tcp_congestion
    summary["files"] = sorted([*run.files, PLOT, "summary.json", "summary.md"])
    plot.draw(run, summary, folder / PLOT)
    (folder / "summary.json").write_text(json.dumps(summary, indent=1) + "\n")
    (folder / "summary.md").write_text(markdown(summary))
    return summary


def machine() -> dict[str, Any]:
    def version(argv: list[str]) -> str | None:
        try:
            out = subprocess.run(argv, capture_output=True, text=True, timeout=10, check=False)
        except (OSError, subprocess.TimeoutExpired):
            return None
        lines = (out.stdout or out.stderr).strip().splitlines()
        return lines[0] if lines else None

    cpu = None
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "kernel": platform.release(),
        "python": platform.python_version(),
        "openvswitch": version(["ovs-vswitchd", "--version"]),
        "iperf3": version(["iperf3", "--version"]),
        "load_average": [round(x, 2) for x in os.getloadavg()],
    }


def _v(x: Any, unit: str = " ms") -> str:
    return "-" if x is None else f"{x:g}{unit}"


def verdict_text(s: dict[str, Any]) -> str:
    checks = s["checks"]
    passed = sum(c["ok"] for c in checks)
    lines = [f"Result: {passed}/{len(checks)} checks passed."]
    for ev in s["events"]:
        for key, h in ev["handovers"].items():
            if ev["step"] not in ("cut", "restore"):
                stayed = ", ".join(ev["unchanged"]) or "none"
                lines.append(
                    f"  {ev['label']}: {key} {h['from']}->{h['to']}, BA after "
                    f"{_v(h['ba_ms'])}, traffic on {h['to']} after "
                    f"{_v(h['first_packet_on_new_ms'])}; untouched: {stayed}"
                )
    fo = s.get("failover")
    if fo:
        per = ", ".join(f"{k} {_v(v['first_packet_on_new_ms'])}" for k, v in fo["flows"].items())
        lines.append(f"  wlan cut: traffic on lte after {per}")
        for key, v in fo["flows"].items():
            if "udp_loss_breakdown" in v:
                lines.append(
                    "  " + loss_sentence(key, v["udp_loss_breakdown"], v["udp_lost_packets"])
                )
            elif "udp_lost_packets" in v:
                lines.append(
                    f"  {key} lost {v['udp_lost_packets']} datagrams "
                    f"({_v(v['udp_lost_ms_of_stream'])} of the stream)"
                )
    fb = s.get("failback")
    if fb:
        per = ", ".join(f"{k} {_v(v['first_packet_on_new_ms'])}" for k, v in fb["flows"].items())
        lines.append(
            f"  wlan restored: traffic back on wlan after {per} "
            f"(failback_after {fb['failback_after_s']:g} s)"
        )
    lines.append(f"  TCP resets: {len(s['resets']) or 'none'}")
    for c in checks:
        if not c["ok"]:
            lines.append(f"  FAILED: {c['check']}: {c['detail']}")
    return "\n".join(lines)


def markdown(s: dict[str, Any]) -> str:
    m = s["machine"]
    checks = s["checks"]
    passed = sum(c["ok"] for c in checks)
    out = [
        "# sdnmip demo report",
        "",
        f"Run {s['started']}, scenario `{s['scenario']}` ({s['duration_s']:g} s of traffic), "
        f"testbed profile `{s['profile']}`, "
        f"TCP congestion control `{s['tcp_congestion_control']}`.",
        f"Machine: {m['cpu']}, {m['cores']} cores, Linux {m['kernel']}, Python {m['python']}, "
        f"{m['openvswitch']}, {m['iperf3']}; load average at the end {m['load_average']}.",
        "",
        f"**{passed} of {len(checks)} checks passed.**",
        "",
        f"![throughput]({PLOT})",
        "",
        "## Steps",
        "",
        "Times in ms after the step's call (REST request sent, or carrier pulled). BU/BA: the "
        "first Binding Update for the flow's Home Address and its Binding Acknowledgement on the "
        "MN's uplink; first packet: the flow's first data packet on the new uplink.",
        "",
        "| at | step | flow | from -> to | BU | BA | first packet | flows untouched |",
        "|---:|---|---|---|---:|---:|---:|---|",
    ]
    for ev in s["events"]:
        stayed = (
            ", ".join(
                f"{k} ({v['bytes_on_other_uplink']} B on the other uplink)"
                for k, v in ev["unchanged"].items()
            )
            or "-"
        )
        if not ev["handovers"]:
            out.append(f"| {ev['at_s']:.1f} s | {ev['label']} | - | - | - | - | - | {stayed} |")
        for key, h in ev["handovers"].items():
            out.append(
                f"| {ev['at_s']:.1f} s | {ev['label']} | {key} | {h['from']} -> {h['to']} "
                f"| {_v(h['bu_ms'])} | {_v(h['ba_ms'])} "
                f"| {_v(h['first_packet_on_new_ms'])} | {stayed} |"
            )
    out += [
        "",
        "## Uplink of each flow in each phase",
        "",
        "The uplink that carried at least 90 % of the flow's bytes (MN uplink captures), judged "
        "from a moment after each step (traffic settling) to the next step; the northbound's "
        "flow table agrees in brackets.",
        "",
        "| phase | window | " + " | ".join(f.key for f in FLOWS) + " |",
        "|---|---|" + "---|" * len(FLOWS),
    ]
    for row in s["phases"]:
        cells = []
        for f in FLOWS:
            v = row["flows"][f.key]
            mark = "ok" if v["uplink"] == v["expected"] else f"EXPECTED {v['expected']}"
            cells.append(f"{v['uplink']} ({'/'.join(v['northbound']) or '-'}) {mark}")
        out.append(
            f"| {row['phase']} | {row['from_s']:g}-{row['to_s']:g} s | " + " | ".join(cells) + " |"
        )
    fo = s.get("failover")
    if fo:
        out += [
            "",
            "## Failover (wlan carrier pulled)",
            "",
            "| flow | first packet on lte | BU | BA | longest silence | UDP lost "
            "| TCP retransmits (whole test) |",
            "|---|---:|---:|---:|---:|---:|---:|",
        ]
        for key, v in fo["flows"].items():
            lost = (
                f"{v['udp_lost_packets']} ({_v(v['udp_lost_ms_of_stream'])})"
                if "udp_lost_packets" in v
                else "-"
            )
            out.append(
                f"| {key} | {_v(v['first_packet_on_new_ms'])} | {_v(v['bu_ms'])} "
                f"| {_v(v['ba_ms'])} | {_v(v['longest_silence_ms'])} | {lost} "
                f"| {v.get('tcp_retransmits_whole_test', '-')} |"
            )
        for key, v in fo["flows"].items():
            if "udp_loss_breakdown" in v:
                out += ["", loss_sentence(key, v["udp_loss_breakdown"], v["udp_lost_packets"])]
    fb = s.get("failback")
    if fb:
        rs = s.get("restore", {})
        out += [
            "",
            "## Failback (wlan restored)",
            "",
            f"The northbound reported wlan usable again {_v(rs.get('wlan_usable_after_ms'))} "
            f"after the restore (sampled every 0.5 s). The controller waits "
            f"`failback_after` ({fb['failback_after_s']:g} s) from then, and moves each flow "
            "back make-before-break: BU, BA, then its rules switch. Times in ms after the "
            "restore.",
            "",
            "| flow | BU | BA | first packet on wlan | last packet on lte |",
            "|---|---:|---:|---:|---:|",
        ]
        for key, v in fb["flows"].items():
            out.append(
                f"| {key} | {_v(v['bu_ms'])} | {_v(v['ba_ms'])} "
                f"| {_v(v['first_packet_on_new_ms'])} | {_v(v['last_packet_on_old_ms'])} |"
            )
    out += [
        "",
        "## Flows (iperf3)",
        "",
        "| flow | Home Address | local port | received | Mbit/s | TCP retransmits | UDP lost "
        "| error |",
        "|---|---|---:|---:|---:|---:|---:|---|",
    ]
    for key, f in s["flows"].items():
        r = f["iperf3"] or {}
        out.append(
            f"| {key}: {f['title']} | {f['hoa']} | {f['local_port']} "
            f"| {r.get('received_bytes', 0) / 1e6:.1f} MB | {r.get('received_mbit_s', 0)} "
            f"| {_dash(r.get('retransmits'))} | {_dash(r.get('lost_packets'))} "
            f"| {_dash(r.get('error'))} |"
        )
    sig = s["signalling"]
    out += [
        "",
        "## Signalling",
        "",
        f"On the MN's uplinks: {', '.join(f'{n} {k}' for k, n in sig['counts'].items())}; "
        f"BA status {sig['ba_status']}; BUs without a BA: {len(sig['unanswered_bus'])}. "
        "`signalling.pcap` holds the same exchange as the HA's home link saw it, whole packets "
        "(Wireshark, or `tshark -r signalling.pcap -Y mipv6`).",
        "",
        "## Checks",
        "",
    ]
    out += [f"- [{'x' if c['ok'] else ' '}] {c['check']}: {c['detail']}" for c in checks]
    out += ["", "## Files", ""] + [f"- `{name}`" for name in s["files"]]
    return "\n".join(out) + "\n"


def loss_sentence(key: str, b: dict[str, Any], iperf_lost: int) -> str:
    """Where the datagrams of a UDP flow were lost (analysis.udp_loss), in words."""
    k = b["lost_by_cause"]
    return (
        f"{key}: {b['lost']} datagrams lost by the captures ({iperf_lost} by iperf3): "
        f"{k['in_wlan_link_at_cut']} were in the wlan link when its carrier went"
        f"{_oldest_at_cut(b['oldest_lost_at_cut_ms_before_cut'])}, "
        f"{k['in_mn_at_switch']} never appeared on an uplink (sent while the flow's rule still "
        f"pointed at the dead wlan port), {k['lte_before_ba']} left by lte before the BA (the HA "
        f"had not bound the new CoA yet), {k['wlan_congestion']} + {k['lte_after_ba']} were "
        "congestion losses in the emulated links' queues (wlan, lte) at other times."
    )


def _oldest_at_cut(ms_before: float | None) -> str:
    """When the oldest datagram lost in the wlan link at the cut was sent, relative to the cut
    (the window around the cut includes the moments just after it)."""
    if ms_before is None:
        return ""
    if ms_before >= 0:
        return f" (the oldest sent {ms_before:g} ms before the cut)"
    return f" (the oldest sent {-ms_before:g} ms after the cut)"


def _dash(x: Any) -> str:
    return "-" if x is None else str(x)
