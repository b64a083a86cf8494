"""Judging one run of the demo: which uplink each flow used in each phase, how long each
handover took, what was lost, and whether that is what the scenario says.

Sources, all recorded while the demo ran (observe.py): the packets the MN sent on each uplink
(its own tcpdump captures: exact times, per 5-tuple), the signalling in the same captures (BU,
BA), the northbound's flow table and interfaces (sampled every 0.5 s), the MN's interface
counters, and iperf3's results (retransmissions, UDP datagrams lost, connection errors).
Times in the summary are milliseconds after the step's call (for a step) or seconds after the
flows started.

Owns: the figures of summary.json and the checks against the scenario (`EXPECTED`).
Must not: do I/O.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from typing import Any

from sdnmip.demo.observe import FlowKey, Series, data_flow
from sdnmip.demo.record import Event, RunData
from sdnmip.demo.scenario import EXPECTED, FAILBACK_MARGIN_S, FLOWS, MOVED, Act, FlowSpec

UPLINKS = ("wlan", "lte")
SHARE = 0.9  # a flow used an uplink in a phase when that uplink carried >= 90 % of its bytes
UDP_LOSS_MAX_S = 0.5  # the video may lose at most this much of its stream (at the cut)
FAILOVER_MAX_S = 3.0  # every flow must be back on the other uplink within this
# After the restore every flow must be back on wlan within the failback delay plus this (wlan
# usable again, BU/BA, TCP), and no BU for it may leave before the delay (no early failback).
FAILBACK_LATE_S = FAILBACK_MARGIN_S + 0.5
GAP_WINDOW_S = (1.0, 3.0)  # longest silence of a flow looked for in [cut - 1 s, cut + 3 s]
AT_CUT_S = 1.0  # a lost datagram that left by wlan up to this long before the cut died with it
EMPTY = Series()


@dataclass(frozen=True)
class FlowIds:
    spec: FlowSpec
    key: FlowKey | None  # the data connection's 5-tuple, as it appears in the captures
    hoa: str | None
    flow_id: int | None  # in the northbound's flow table


def _ms(t: float | None, since: float) -> float | None:
    return None if t is None else round(1000.0 * (t - since), 1)


def identify(run: RunData, spec: FlowSpec) -> FlowIds:
    """The flow's data connection: its local port from iperf3 (or the flow table), then the
    5-tuple of the captures with that port."""
    obs = run.obs
    cn = obs.cn_addresses[spec.cn]
    entry = None
    for _, table in reversed(obs.flow_tables):
        entry = data_flow(table, spec, cn)
        if entry is not None:
            break
    port = run.iperf[spec.key].local_port if spec.key in run.iperf else None
    if port is None and entry is not None:
        port = int(entry["local_port"])
    key = None
    for _, k in obs.packets:
        if k[0] == spec.proto_number and k[2] == port and k[3] == cn and k[4] == spec.port:
            key = k
            break
    hoa = key[1] if key is not None else (entry or {}).get("hoa")
    flow_id = None
    for _, table in obs.flow_tables:  # the flow id of that port (it never changes)
        for f in table:
            if f["local_port"] == port and f["remote"] == cn and f["remote_port"] == spec.port:
                flow_id = int(f["flow_id"])
    return FlowIds(spec, key, hoa, flow_id)


class Run:
    """Look-ups over one run's observations."""

    def __init__(self, run: RunData) -> None:
        self.run = run
        self.t0 = run.t0
        self.ids = {spec.key: identify(run, spec) for spec in FLOWS}
        self.hoa_owner = {i.hoa: k for k, i in self.ids.items() if i.hoa is not None}

    def series(self, key: str, uplink: str) -> Series:
        fk = self.ids[key].key
        return EMPTY if fk is None else self.run.obs.packets.get((uplink, fk), EMPTY)

    def first_signal(
        self, kind: str, hoa: str | None, after: float, before: float
    ) -> tuple[float, Any] | None:
        for ts, _, s in self.run.obs.signals:
            if after <= ts < before and s.kind == kind and s.hoa == hoa:
                return ts, s
        return None

    def bu_owners(self, t0: float, t1: float) -> list[str]:
        """Whose HoAs the MN sent BUs for between t0 and t1 (a demo flow, or `other`)."""
        out = []
        for ts, _, s in self.run.obs.signals:
            if t0 <= ts < t1 and s.kind == "BU":
                out.append(self.hoa_owner.get(s.hoa or "", "other"))
        return out

    def uplink_bytes(self, key: str, t0: float, t1: float) -> dict[str, int]:
        return {u: self.series(key, u).bytes_between(t0, t1) for u in UPLINKS}

    def table_uplinks(self, key: str, t0: float, t1: float) -> list[str]:
        """The uplinks the northbound reported for the flow between t0 and t1."""
        flow_id = self.ids[key].flow_id
        seen: list[str] = []
        for ts, table in self.run.obs.flow_tables:
            if t0 <= ts <= t1:
                for f in table:
                    if f["flow_id"] == flow_id and f["uplink"] not in seen:
                        seen.append(str(f["uplink"]))
        return seen


def used_uplink(by_uplink: dict[str, int]) -> str:
    total = sum(by_uplink.values())
    if total == 0:
        return "none"
    best = max(by_uplink, key=lambda u: by_uplink[u])
    return best if by_uplink[best] >= SHARE * total else "both"


def longest_gap(times: list[float], t0: float, t1: float) -> float | None:
    inside = sorted(t for t in times if t0 <= t <= t1)
    if len(inside) < 2:
        return None
    return max(b - a for a, b in itertools.pairwise(inside))


def analyse(run: RunData) -> dict[str, Any]:
    r = Run(run)
    sc, t0 = run.scenario, run.t0
    events = {e.step.act: e for e in run.events}
    ends = _step_ends(run)
    summary: dict[str, Any] = {
        "scenario": sc.name,
        "profile": run.profile,
        "duration_s": sc.duration,
        "events": [_event_summary(r, e, ends[e.step.act]) for e in run.events],
        "flows": {},
        "phases": [],
    }
    for key, ids in r.ids.items():
        res = run.iperf.get(key)
        summary["flows"][key] = {
            "title": ids.spec.title,
            "hoa": ids.hoa,
            "flow_id": ids.flow_id,
            "local_port": None if ids.key is None else ids.key[2],
            "iperf3": None if res is None else res.to_dict(),
        }
    for phase, begin, end in sc.phases():
        settle = sc.settle_of(phase)  # after a step; for `start`, after the connections came up
        w0, w1 = t0 + begin + settle, t0 + end
        row: dict[str, Any] = {"phase": phase, "from_s": begin + settle, "to_s": end, "flows": {}}
        for key in r.ids:
            by = r.uplink_bytes(key, w0, w1)
            row["flows"][key] = {
                "uplink": used_uplink(by),
                "expected": EXPECTED[phase][key],
                "bytes": by,
                "northbound": r.table_uplinks(key, w0, w1),
            }
        summary["phases"].append(row)
    if Act.CUT in events:
        summary["failover"] = _failover(r, events[Act.CUT], ends[Act.CUT])
    if Act.RESTORE in events:
        summary["restore"] = _restore(r, events[Act.RESTORE])
        summary["failback"] = _failback(r, events[Act.RESTORE], ends[Act.RESTORE])
    summary["signalling"] = _signalling(r)
    summary["resets"] = [
        {
            "t_s": round(ts - t0, 3),
            "uplink": up,
            "src": d.src,
            "sport": d.sport,
            "dst": d.dst,
            "dport": d.dport,
        }
        for ts, up, d in run.obs.resets
        if ts - t0 < sc.duration
    ]
    summary["capture_drops"] = dict(run.capture_drops)
    summary["checks"] = check(summary, r)
    summary["ok"] = all(c["ok"] for c in summary["checks"])
    return summary


def _step_ends(run: RunData) -> dict[Act, float]:
    """Each step's window ends at the next step (or at the end of the flows)."""
    out = {}
    steps = list(run.scenario.steps)
    for i, s in enumerate(steps):
        nxt = steps[i + 1].at if i + 1 < len(steps) else run.scenario.duration
        out[s.act] = run.t0 + nxt
    return out


def _event_summary(r: Run, e: Event, until: float) -> dict[str, Any]:
    """What a step did: when, which flows changed uplink (handover timings for each) and which
    kept theirs (bytes on the other uplink, BUs for their HoAs: both must be none)."""
    phase_before = _phase_before(r, e)
    out: dict[str, Any] = {
        "step": e.step.act.value,
        "label": e.step.label,
        "at_s": round(e.t_call - r.t0, 3),
        "call_ms": round(1000 * (e.t_done - e.t_call), 1),
        "bus_for": sorted(
            set(r.bu_owners(e.t_call, e.t_call + r.run.scenario.settle_of(e.step.phase)))
        ),
        "handovers": {},
        "unchanged": {},
    }
    if e.step.act is Act.MOVE:
        out["moved_flow_id"] = e.detail.get("flow_id")
        out["answer"] = e.detail.get("answer")
    if e.step.act is Act.POLICY:
        out["resteered"] = e.detail.get("resteered")
    for key in r.ids:
        before, after = EXPECTED[phase_before][key], EXPECTED[e.step.phase][key]
        if before != after:
            out["handovers"][key] = _handover(r, key, e.t_call, before, after, until=until)
        else:
            other = next(u for u in UPLINKS if u != after)
            out["unchanged"][key] = {
                "uplink": after,
                "bytes_on_other_uplink": r.series(key, other).bytes_between(e.t_call, until),
            }
    return out


def _phase_before(r: Run, e: Event) -> str:
    phase = "start"
    for s in r.run.scenario.steps:
        if s.act is e.step.act:
            return phase
        phase = s.phase
    return phase


def _handover(
    r: Run, key: str, t_call: float, old: str, new: str, *, until: float
) -> dict[str, Any]:
    # Only what happened before the next step counts: a later step's BU, BA or packets on `new`
    # (the failback, say) must not pass for this handover.
    hoa = r.ids[key].hoa
    bu = r.first_signal("BU", hoa, t_call, until)
    ba = r.first_signal("BA", hoa, t_call, until)
    first_new = r.series(key, new).first_after(t_call)
    if first_new is not None and first_new >= until:
        first_new = None
    last_old = r.series(key, old).last_before(until)
    return {
        "from": old,
        "to": new,
        "hoa": hoa,
        "bu_ms": None if bu is None else _ms(bu[0], t_call),
        "ba_ms": None if ba is None else _ms(ba[0], t_call),
        "ba_status": None if ba is None else ba[1].status,
        "first_packet_on_new_ms": _ms(first_new, t_call),
        "last_packet_on_old_ms": _ms(last_old, t_call) if last_old and last_old >= t_call else None,
    }


def _failover(r: Run, e: Event, until: float) -> dict[str, Any]:
    out: dict[str, Any] = {"flows": {}}
    for key in r.ids:
        times = [t for u in UPLINKS for t in r.series(key, u).times]
        gap = longest_gap(times, e.t_call - GAP_WINDOW_S[0], e.t_call + GAP_WINDOW_S[1])
        h = _handover(r, key, e.t_call, "wlan", "lte", until=until)
        h["longest_silence_ms"] = None if gap is None else round(1000 * gap, 1)
        res = r.run.iperf.get(key)
        if res is not None and res.lost_packets is not None and res.packets:
            per_s = res.packets / res.seconds if res.seconds else 0.0
            h["udp_lost_packets"] = res.lost_packets
            h["udp_lost_ms_of_stream"] = (
                round(1000 * res.lost_packets / per_s, 1) if per_s else None
            )
            ba = None if h["ba_ms"] is None else e.t_call + h["ba_ms"] / 1000
            h["udp_loss_breakdown"] = udp_loss(r, key, e, ba)
        if res is not None and res.retransmits is not None:
            h["tcp_retransmits_whole_test"] = res.retransmits
        out["flows"][key] = h
    return out


def udp_loss(r: Run, key: str, cut: Event, t_ba: float | None) -> dict[str, Any]:
    """Where the stream's lost datagrams were lost, from their iperf3 counters: every counter up
    to the highest one the correspondent received (iperf3's own rule: the last datagrams may
    still be in flight when the test ends) that its capture never saw, by where and when the MN
    sent it (its uplink captures):
    - `in_wlan_link_at_cut`: sent on wlan in the second before the carrier went (or while it
      went): queued in, or on its way through, the wlan link, which lost them with its carrier;
    - `wlan_congestion`: sent on wlan earlier: the link's queue overflowed (TCP fills it);
    - `in_mn_at_switch`: never seen on an uplink: sent to wlan's port after it lost its
      carrier, before the controller rewrote the flow's rule;
    - `lte_before_ba`: sent by lte before the BA: they reached the HA before it had bound the
      new CoA (RFC 6275 §10.4.5: a HA accepts reverse-tunnelled packets from the bound CoA);
    - `lte_after_ba`: sent by lte later (congestion on lte)."""
    sent: dict[int, tuple[str, float]] = {}
    for u in UPLINKS:
        s = r.series(key, u)
        for t, q in zip(s.times, s.seqs, strict=False):
            sent[q] = (u, t)
    fk = r.ids[key].key
    got = r.run.obs.received.get(fk, set()) if fk is not None else set()
    top = max(got, default=0)
    kinds = dict.fromkeys(
        (
            "in_wlan_link_at_cut",
            "wlan_congestion",
            "in_mn_at_switch",
            "lte_before_ba",
            "lte_after_ba",
        ),
        0,
    )
    oldest_at_cut = None
    for q in range(1, top + 1):
        if q in got:
            continue
        if q not in sent:
            kinds["in_mn_at_switch"] += 1
            continue
        u, t = sent[q]
        # Sent on wlan after the cut's window: back on wlan after the restore (failback).
        if u == "wlan" and cut.t_call - AT_CUT_S <= t <= cut.t_call + AT_CUT_S:
            kinds["in_wlan_link_at_cut"] += 1
            oldest_at_cut = t if oldest_at_cut is None else min(oldest_at_cut, t)
        elif u == "wlan":
            kinds["wlan_congestion"] += 1
        else:
            kinds["lte_before_ba" if t_ba is not None and t < t_ba else "lte_after_ba"] += 1
    return {
        "counted_up_to": top,
        "received": len(got),
        "lost": sum(kinds.values()),
        "lost_by_cause": kinds,
        "oldest_lost_at_cut_ms_before_cut": (
            None if oldest_at_cut is None else _ms(cut.t_call, oldest_at_cut)
        ),
    }


def _restore(r: Run, e: Event) -> dict[str, Any]:
    usable_at = None
    for ts, ifaces in r.run.obs.interfaces:
        if ts >= e.t_done and any(i["name"] == "wlan" and i.get("usable") for i in ifaces):
            usable_at = ts
            break
    return {"wlan_usable_after_ms": _ms(usable_at, e.t_call), "sampled_every_ms": 500}


def _failback(r: Run, e: Event, until: float) -> dict[str, Any]:
    """From the restore (carrier back) to each flow back on wlan: the failback's BU and BA for
    its HoA and its first packet on wlan, in ms after the restore. The controller waits
    `failback_after` from the moment wlan is usable again, so the BU cannot come sooner."""
    out: dict[str, Any] = {"failback_after_s": r.run.scenario.failback_after, "flows": {}}
    for key in r.ids:
        out["flows"][key] = _handover(r, key, e.t_call, "lte", "wlan", until=until)
    return out


def _signalling(r: Run) -> dict[str, Any]:
    counts: dict[str, int] = {}
    bus: list[tuple[str | None, int | None]] = []
    bas: set[tuple[str | None, int | None]] = set()
    statuses: dict[str, int] = {}
    for _, _, s in r.run.obs.signals:
        counts[s.kind] = counts.get(s.kind, 0) + 1
        if s.kind == "BU":
            bus.append((s.hoa, s.seq))
        elif s.kind == "BA":
            bas.add((s.hoa, s.seq))
            statuses[str(s.status)] = statuses.get(str(s.status), 0) + 1
    unanswered = [f"{h} seq {q}" for h, q in bus if (h, q) not in bas]
    return {"counts": counts, "ba_status": statuses, "unanswered_bus": unanswered}


def check(summary: dict[str, Any], r: Run) -> list[dict[str, Any]]:
    """The scenario's claims, each with what was measured."""
    out: list[dict[str, Any]] = []

    def add(name: str, ok: bool, detail: str) -> None:
        out.append({"check": name, "ok": bool(ok), "detail": detail})

    for key, f in summary["flows"].items():
        res = f["iperf3"]
        err = None if res is None else res["error"]
        got = 0 if res is None else res["received_bytes"]
        add(
            f"{key}: ran to the end",
            err is None and got > 0,
            f"error: {err or 'none'}; {got} bytes received by the correspondent",
        )
    for row in summary["phases"]:
        wrong = {k: v["uplink"] for k, v in row["flows"].items() if v["uplink"] != v["expected"]}
        used = ", ".join(f"{k} on {v['uplink']}" for k, v in row["flows"].items())
        add(
            f"phase {row['phase']}: every flow on its expected uplink",
            not wrong,
            f"{used} ({row['from_s']:g}-{row['to_s']:g} s)"
            + (f"; wrong: {wrong}" if wrong else ""),
        )
    for ev in summary["events"]:
        for key, h in ev["handovers"].items():
            ok = h["ba_status"] == 0 and h["first_packet_on_new_ms"] is not None
            add(
                f"{ev['step']}: {key} changed uplink {h['from']} -> {h['to']}",
                ok,
                f"BU after {h['bu_ms']} ms, BA (status {h['ba_status']}) after {h['ba_ms']} ms, "
                f"first packet on {h['to']} after {h['first_packet_on_new_ms']} ms",
            )
        if ev["step"] in (Act.POLICY.value, Act.MOVE.value):
            stayed = ev["unchanged"]
            leaked = {
                k: v["bytes_on_other_uplink"]
                for k, v in stayed.items()
                if v["bytes_on_other_uplink"]
            }
            rebound = [k for k in ev["bus_for"] if k in stayed]
            add(
                f"{ev['step']}: the other flows kept their uplink",
                not leaked and not rebound,
                f"{', '.join(stayed)}: bytes on the other uplink {leaked or 0}, "
                f"BUs for their HoAs: {rebound or 'none'}",
            )
    moved = summary["flows"][MOVED.key]["flow_id"]
    move = next((e for e in summary["events"] if e["step"] == Act.MOVE.value), None)
    if move is not None:
        add(
            "move: the flow moved over REST is the bulk transfer's data connection",
            move.get("moved_flow_id") == moved and moved is not None,
            f"moved flow {move.get('moved_flow_id')}, bulk data flow {moved}",
        )
    fo = summary.get("failover")
    if fo is not None:
        late = {
            k: v["first_packet_on_new_ms"]
            for k, v in fo["flows"].items()
            if v["first_packet_on_new_ms"] is None
            or v["first_packet_on_new_ms"] > 1000 * FAILOVER_MAX_S
        }
        times = ", ".join(f"{k} {v['first_packet_on_new_ms']} ms" for k, v in fo["flows"].items())
        add("failover: every flow carried on by lte", not late, f"first packet on lte: {times}")
        for key, v in fo["flows"].items():
            if r.ids[key].spec.proto != "udp":
                continue
            # Checked for every UDP flow: an iperf3 result without datagram counts fails it
            # rather than dropping the check.
            lost_ms = v.get("udp_lost_ms_of_stream")
            add(
                f"{key}: UDP loss bounded (<= {UDP_LOSS_MAX_S * 1000:g} ms of the stream)",
                lost_ms is not None and lost_ms <= 1000 * UDP_LOSS_MAX_S,
                f"{v.get('udp_lost_packets', 'no count of')} datagrams lost "
                f"({lost_ms} ms of the stream)",
            )
    fb = summary.get("failback")
    if fb is not None:
        latest_s = fb["failback_after_s"] + FAILBACK_LATE_S
        early = {
            k: v["bu_ms"]
            for k, v in fb["flows"].items()
            if v["bu_ms"] is not None and v["bu_ms"] < 1000 * fb["failback_after_s"]
        }
        late = {
            k: v["first_packet_on_new_ms"]
            for k, v in fb["flows"].items()
            if v["first_packet_on_new_ms"] is None or v["first_packet_on_new_ms"] > 1000 * latest_s
        }
        times = ", ".join(
            f"{k} {v['first_packet_on_new_ms']} ms (BU {v['bu_ms']} ms)"
            for k, v in fb["flows"].items()
        )
        add(
            f"failback: every flow back on wlan, not before failback_after "
            f"({fb['failback_after_s']:g} s) and within {latest_s:g} s",
            not early and not late,
            f"first packet on wlan after the restore: {times}"
            + (f"; BU too early: {early}" if early else "")
            + (f"; late or never: {late}" if late else ""),
        )
    tcp = [k for k, f in summary["flows"].items() if r.ids[k].spec.proto == "tcp"]
    resets = summary["resets"]
    errors = {
        k: summary["flows"][k]["iperf3"]["error"]
        for k in tcp
        if summary["flows"][k]["iperf3"] and summary["flows"][k]["iperf3"]["error"]
    }
    add(
        "no TCP connection reset",
        not resets and not errors,
        f"RST segments seen: {len(resets)}; iperf3 errors: {errors or 'none'}",
    )
    drops = summary["capture_drops"]
    add(
        "the captures are complete (tcpdump lost nothing: the figures above stand)",
        all(v == 0 for v in drops.values()),
        f"packets dropped by the kernel before tcpdump read them: {drops}",
    )
    sig = summary["signalling"]
    add(
        "signalling: every BU answered by a BA with status 0",
        not sig["unanswered_bus"] and set(sig["ba_status"]) <= {"0"},
        f"{sig['counts']}; BA status {sig['ba_status']}; unanswered {sig['unanswered_bus']}",
    )
    return out
