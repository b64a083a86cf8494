"""`sdnmip demo`: per-flow handover end to end, in the testbed, in under two minutes.

It builds the testbed, starts the Home Agent and the whole Mobile Node (agent, OpenFlow
controller, northbound), runs three stock iperf3 flows from the MN (a UDP "video" stream and a
TCP bulk transfer to CN1, a TCP upload to CN2) and takes the scenario's steps (scenario.py):
operator policy over REST (video on wlan, bulk on lte), the bulk flow moved to wlan over REST,
the wlan carrier cut (everything fails over to lte), wlan restored. Meanwhile it shows a live
table; at the end it removes the testbed and writes a report folder (report.py): a plot of the
run, the signalling capture, and a summary of what happened with the measured figures, checked
against the scenario. Ctrl-C or SIGTERM at any point removes everything and writes no report.

Owns: the order of the run, acting on the steps, the report folder's life, and teardown.
Must not: judge the run (analysis.py) or draw it (plot.py).
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import shutil
import signal
import sys
import time
from datetime import datetime
from ipaddress import IPv6Network
from pathlib import Path
from types import FrameType
from typing import Any

from sdnmip.demo import table
from sdnmip.demo.capture import SNAP_LEN, Capture, signalling_filter, uplink_filter
from sdnmip.demo.iperf import END_GRACE_S, Client, read_result, start_client, start_server
from sdnmip.demo.observe import Observations, data_flow
from sdnmip.demo.record import Event, RunData
from sdnmip.demo.sampler import Northbound, Sampler
from sdnmip.demo.scenario import (
    CUT_UPLINK,
    DEFAULT_POLICY,
    FLOWS,
    FULL,
    MOVED,
    POLICY_RULES,
    QUICK,
    VIDEO,
    Act,
    Scenario,
    Step,
)
from sdnmip.testbed import SpecError, Testbed, TestbedError, load_topology

DEFAULT_PREFIX = "demo"  # not the testbed's `smip`: a testbed of one's own can stay up meanwhile
NORTHBOUND_URL = "http://127.0.0.1:8181"
POOL = 6  # spare HoAs registered ahead: each of the six connections takes one at once
TICK_S = 0.25  # live view refresh


def _interrupt(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="sdnmip demo",
        description="Per-flow handover end to end in the namespace testbed: three iperf3 flows, "
        "an operator policy, one flow moved over REST, wlan cut and restored; live table, then a "
        "report folder (plot, signalling pcap, summary). Needs root.",
    )
    parser.add_argument(
        "--prefix", default=DEFAULT_PREFIX, help=f"testbed prefix (default {DEFAULT_PREFIX})"
    )
    parser.add_argument(
        "--profile",
        default="default",
        help="link profile of the testbed (default: default, wlan 5 ms / 100 "
        "Mbit/s, lte 25 ms / 50 Mbit/s one way)",
    )
    parser.add_argument(
        "--quick",
        action="store_true",
        help="the same steps with shorter phases (about 25 s of traffic)",
    )
    parser.add_argument(
        "--out", type=Path, help="report folder (default ./demo-report-YYYYmmdd-HHMMSS)"
    )
    parser.add_argument(
        "--cc",
        default="cubic",
        metavar="ALGORITHM",
        help="TCP congestion control of the TCP flows (iperf3 -C; default cubic)",
    )
    parser.add_argument(
        "--plain",
        action="store_true",
        help="progress lines instead of the live table, even on a terminal",
    )
    return parser.parse_args(argv)


def main(argv: list[str]) -> int:
    args = parse_args(argv)
    scenario = dataclasses.replace(QUICK if args.quick else FULL, tcp_congestion=args.cc)
    started = time.time()
    out = args.out or Path(f"demo-report-{datetime.now():%Y%m%d-%H%M%S}")
    # The report is built in `staging`, which a failed run removes: it must not be anyone's.
    staging = out.with_name(out.name + ".partial")
    for path in (out, staging):
        if path.exists():
            print(f"sdnmip demo: {path} already exists: choose another --out", file=sys.stderr)
            return 2
    if os.geteuid() != 0:
        print("sdnmip demo: needs root (network namespaces, Open vSwitch)", file=sys.stderr)
        return 1
    signal.signal(signal.SIGTERM, _interrupt)
    try:
        topology = load_topology(profile=args.profile)
        tb = Testbed(topology, args.prefix)
    except (SpecError, TestbedError) as exc:
        print(f"sdnmip demo: {exc}", file=sys.stderr)
        return 1
    display = table.Display(sys.stdout, tty=sys.stdout.isatty() and not args.plain)
    built = False
    run: RunData | None = None
    try:
        display.message(f"Building testbed {args.prefix} (profile {topology.profile}) ...")
        tb.up()  # removes what it built if it fails or is interrupted
        built = True
        run = Demo(tb, scenario, display, staging, started).run()
    except TestbedError as exc:
        print(f"sdnmip demo: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        display.message("\nInterrupted: removing everything, no report.")
        return 130
    finally:
        # A second Ctrl-C must not cut the teardown short.
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        if built:
            t = time.monotonic()
            tb.down()
            display.message(f"Testbed {args.prefix} removed ({time.monotonic() - t:.1f} s).")
        if run is None:
            shutil.rmtree(staging, ignore_errors=True)
    return _report(run, staging, out, display)


def _report(run: RunData, staging: Path, out: Path, display: table.Display) -> int:
    from sdnmip.demo import report  # matplotlib is imported only now

    try:
        summary = report.write(run, staging)
        staging.rename(out)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    display.message("")
    display.message(report.verdict_text(summary))
    display.message(f"\nReport: {out.resolve()}/ (summary.md, throughput.png, signalling.pcap)")
    display.message(f"Total {time.time() - run.started:.0f} s.")
    return 0 if summary["ok"] else 1


class Demo:
    def __init__(
        self, tb: Testbed, scenario: Scenario, display: table.Display, staging: Path, started: float
    ) -> None:
        self.tb = tb
        self.scenario = scenario
        self.display = display
        self.staging = staging
        self.started = started
        self.work = tb.state_dir / "demo"  # goes with the testbed
        cns = {spec.cn: tb.addr(spec.cn, "eth0") for spec in FLOWS}
        self.obs = Observations(cn_addresses=cns)
        self.nb = Northbound(tb.ns(tb.topology.mn_node), NORTHBOUND_URL)
        self.events: list[Event] = []
        self.event_lines: list[str] = []
        self.timings: dict[str, float] = {}
        self.t0 = 0.0
        self.capture_drops: dict[str, int | None] = {}

    def run(self) -> RunData:
        from sdnmip.testbed.mn_full import MnStack

        tb, sc = self.tb, self.scenario
        mark = time.monotonic()
        policy_dir = self.work / "policy"
        policy_dir.mkdir(parents=True)
        (policy_dir / "00-defaults.yaml").write_text(DEFAULT_POLICY)
        stack = MnStack(
            tb,
            pool_size=POOL,
            hold_time=1.0,
            controller={"failback_after": sc.failback_after},
            overrides={"policy": {"dir": str(policy_dir)}},
        )
        for spec in FLOWS:
            start_server(tb, spec)
        coas = tb.wait_coas()
        captures = self._start_captures(coas)
        self.display.message(
            "Starting the Home Agent and the Mobile Node (agent, controller, northbound) ..."
        )
        stack.start()
        self.timings["setup_s"] = time.monotonic() - mark
        sampler = Sampler(
            tb.ns(tb.topology.mn_node),
            self.obs,
            uplinks={up: c.path for up, c in captures.items() if up in coas},
            receivers={VIDEO.cn: captures[VIDEO.cn].path},
            northbound_url=NORTHBOUND_URL,
        )
        sampler.start()
        try:
            self.display.message(
                f"MN ready in {self.timings['setup_s']:.1f} s. Flows: "
                + "; ".join(s.title for s in FLOWS)
            )
            t0 = self.t0 = time.time()
            clients = [
                start_client(tb, spec, sc.duration, self.work, sc.tcp_congestion) for spec in FLOWS
            ]
            for step in sc.steps:
                self._wait_until(t0, step.at, sampler)
                self._act(step)
            self._wait_until(t0, sc.duration, sampler)
            deadline = time.monotonic() + END_GRACE_S
            for c in clients:
                self._wait_client(c, deadline, sampler, t0)
            self.display.finish()
        finally:
            try:
                for name, cap in captures.items():
                    self.capture_drops[name] = cap.stop()
            finally:
                sampler.stop()  # also when a capture would not stop
        if sampler.error is not None:
            raise TestbedError(f"the sampler failed: {sampler.error!r}")
        self.staging.mkdir(parents=True)
        files = {"signalling.pcap": captures["signalling"].path}
        for c in clients:
            files[f"iperf3-{c.spec.key}.json"] = c.json_path
        for name, path in files.items():
            shutil.copyfile(path, self.staging / name)
        iperf = {c.spec.key: read_result(c.json_path) for c in clients}
        return RunData(
            scenario=sc,
            prefix=tb.prefix,
            profile=tb.topology.profile,
            t0=t0,
            started=self.started,
            obs=self.obs,
            events=self.events,
            iperf=iperf,
            coas=coas,
            files=files,
            timings=self.timings,
            capture_drops=self.capture_drops,
        )

    def _start_captures(self, coas: dict[str, str]) -> dict[str, Capture]:
        tb = self.tb
        caps = {
            "signalling": Capture.start(
                tb,
                node="ha",
                iface="home0",
                path=self.work / "signalling.pcap",
                bpf=signalling_filter(),
                name="tcpdump-signalling",
            )
        }
        for uplink, coa in coas.items():
            # On the uplink itself (the OVS port towards the access router), where packets leave.
            prefix = IPv6Network(f"{coa}/64", strict=False)
            caps[uplink] = Capture.start(
                tb,
                node=tb.topology.mn_node,
                iface=uplink,
                path=self.work / f"uplink-{uplink}.pcap",
                bpf=uplink_filter(prefix),
                snap_len=SNAP_LEN,
            )
        # What of the video reaches CN1: which datagrams were lost, and where (analysis.py).
        caps[VIDEO.cn] = Capture.start(
            tb,
            node=VIDEO.cn,
            iface="eth0",
            path=self.work / "video-at-cn.pcap",
            bpf=f"udp and dst port {VIDEO.port}",
            snap_len=SNAP_LEN,
            name="tcpdump-video-at-cn",
        )
        return caps

    def _wait_until(self, t0: float, at: float, sampler: Sampler) -> None:
        while (left := t0 + at - time.time()) > 0:
            self._refresh(t0, sampler)
            time.sleep(min(TICK_S, left))

    def _wait_client(self, c: Client, deadline: float, sampler: Sampler, t0: float) -> None:
        assert c.proc.popen is not None
        while c.proc.popen.poll() is None:
            if time.monotonic() > deadline:
                raise TestbedError(f"iperf3 for {c.spec.key} did not end")
            self._refresh(t0, sampler)
            time.sleep(TICK_S)

    def _refresh(self, t0: float, sampler: Sampler) -> None:
        if sampler.error is not None:
            raise TestbedError(f"the sampler failed: {sampler.error!r}")
        v = table.view(
            self.obs, self.scenario, FLOWS, t0=t0, now=time.time(), events=self.event_lines
        )
        self.display.show(v)

    def _act(self, step: Step) -> None:
        t_call = time.time()
        detail: dict[str, Any] = {}
        if step.act is Act.POLICY:
            answers = [self.nb.request("POST", "/v1/rules/operator", r) for r in POLICY_RULES]
            detail["resteered"] = [m for a in answers for m in a["resteered"]]
        elif step.act is Act.MOVE:
            flows = self.nb.request("GET", "/v1/flows")["flows"]
            entry = data_flow(flows, MOVED, self.obs.cn_addresses[MOVED.cn])
            if entry is None:
                raise TestbedError(f"no {MOVED.key} flow to move: {flows}")
            t_call = time.time()
            answer = self.nb.request(
                "POST", f"/v1/flows/{entry['flow_id']}/move", {"network": "wlan"}
            )
            detail = {
                "flow_id": entry["flow_id"],
                "hoa": entry["hoa"],
                "from": entry["uplink"],
                "answer": answer,
            }
        elif step.act in (Act.CUT, Act.RESTORE):
            self.tb.set_carrier(CUT_UPLINK, step.act is Act.RESTORE)
        t_done = time.time()
        self.events.append(Event(step, t_call, t_done, detail))
        elapsed = t_call - self.t0
        line = f"{elapsed:.1f} s {step.label}"
        self.event_lines.append(line)
        self.display.message(f"-> {line}")
