"""`sdnmip demo`, smoke version: the testbed comes up, the MN pings CN1 and CN2 over each uplink
(through its OVS bridge), the round-trip times are printed next to what the link profile predicts,
and the testbed is removed again, also on Ctrl-C or SIGTERM.

The per-flow handover demo replaces this once the MN and the HA exist.
"""

from __future__ import annotations

import argparse
import re
import signal
import sys
import time
from dataclasses import dataclass
from types import FrameType

from sdnmip.testbed import DEFAULT_PREFIX, SpecError, Testbed, TestbedError, load_topology

CORRESPONDENTS = ("cn1", "cn2")
PING_INTERVAL_S = "0.2"
RTT_LINE = re.compile(r"= ([\d.]+)/([\d.]+)/([\d.]+)/([\d.]+) ms")
RECEIVED = re.compile(r"(\d+) packets transmitted, (\d+) received")


@dataclass(frozen=True)
class PingResult:
    sent: int
    received: int
    rtt_min_ms: float | None
    rtt_avg_ms: float | None


def parse_ping(output: str) -> PingResult:
    """The summary lines of iputils ping."""
    counts = RECEIVED.search(output)
    rtt = RTT_LINE.search(output)
    return PingResult(
        sent=int(counts.group(1)) if counts else 0,
        received=int(counts.group(2)) if counts else 0,
        rtt_min_ms=float(rtt.group(1)) if rtt else None,
        rtt_avg_ms=float(rtt.group(2)) if rtt else None,
    )


def _interrupt(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(
        prog="sdnmip demo",
        description="Bring the testbed up, ping both correspondents over each MN uplink, show "
        "the RTTs, remove the testbed.",
    )
    parser.add_argument("--prefix", default=DEFAULT_PREFIX, help="testbed prefix (default smip)")
    parser.add_argument("--profile", help="link profile (default: the topology's)")
    parser.add_argument("--count", type=int, default=5, help="pings per uplink and correspondent")
    args = parser.parse_args(argv)

    signal.signal(signal.SIGTERM, _interrupt)
    try:
        topology = load_topology(profile=args.profile)
        testbed = Testbed(topology, args.prefix)
    except (SpecError, TestbedError) as exc:
        print(f"sdnmip demo: {exc}", file=sys.stderr)
        return 1
    built = False
    try:
        print(f"Building testbed {args.prefix} (profile {topology.profile}) ...", flush=True)
        started = time.monotonic()
        testbed.up()  # removes what it built if it fails or is interrupted
        built = True
        print(f"Testbed up in {time.monotonic() - started:.1f} s.")
        return _pings(testbed, args.count)
    except TestbedError as exc:
        print(f"sdnmip demo: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("\nInterrupted.", file=sys.stderr)
        return 130
    finally:
        if built:
            # A second Ctrl-C must not cut the teardown short.
            signal.signal(signal.SIGINT, signal.SIG_IGN)
            signal.signal(signal.SIGTERM, signal.SIG_IGN)
            testbed.down()
            print(f"Testbed {args.prefix} removed.")


def _pings(testbed: Testbed, count: int) -> int:
    topo = testbed.topology
    failures = 0
    print()
    print(f"{'uplink':<7}{'CoA (from the RA)':<36}{'to':<5}{'received':>9}{'min RTT':>10}"
          f"{'avg RTT':>10}{'expected':>10}")  # fmt: skip
    for uplink, port in topo.mn.uplinks.items():
        coa = testbed.mn_coa(uplink) or "none"
        shaping = topo.shaping(topo.uplink_link(uplink).name)
        expected = f">={2 * shaping.delay_ms:g} ms" if shaping else "<1 ms"
        for cn in CORRESPONDENTS:
            target = testbed.addr(cn, "eth0")
            proc = testbed.run(
                topo.mn_node, "ping", "-n", "-c", str(count), "-i", PING_INTERVAL_S, "-I", port,
                target, check=False, timeout=10 + count,
            )  # fmt: skip
            result = parse_ping(proc.stdout)
            ok = result.received == result.sent and result.sent > 0
            failures += not ok
            rmin = f"{result.rtt_min_ms:.2f} ms" if result.rtt_min_ms is not None else "-"
            ravg = f"{result.rtt_avg_ms:.2f} ms" if result.rtt_avg_ms is not None else "-"
            print(f"{uplink:<7}{coa:<36}{cn:<5}{result.received:>4}/{result.sent:<4}"
                  f"{rmin:>10}{ravg:>10}{expected:>10}")  # fmt: skip
    print()
    if failures:
        print(f"{failures} ping series lost packets.", file=sys.stderr)
        return 1
    print("Every correspondent answered over every uplink, through the MN's OVS bridge.")
    return 0
