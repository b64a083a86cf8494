"""The demo's traffic: stock iperf3 servers on the correspondents, clients on the MN.

Clients run `iperf3 -J` (iperf3 3.12 has no --json-stream) and write their JSON to a file when
the test ends: the sender's retransmissions, the receiver's view (bytes, UDP datagrams lost:
the server reports them back at the end), the local port of the data connection, and `error`
when a connection failed or was reset. All of them are started through `Testbed.spawn`, so
`down` kills them.

Owns: the iperf3 command lines and reading their JSON.
Must not: judge the results (analysis.py does).
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sdnmip.demo.scenario import FlowSpec
from sdnmip.testbed.errors import TestbedError
from sdnmip.testbed.testbed import Testbed, TrackedProcess

INTERVAL_S = 0.5
START_TIMEOUT_S = 10.0
END_GRACE_S = 15.0  # after -t: the results exchange, and TCP draining its queues at a cut
POLL_S = 0.05


def start_server(tb: Testbed, spec: FlowSpec) -> TrackedProcess:
    """`iperf3 -s` on the flow's correspondent; returns once it listens."""
    proc = tb.spawn(spec.cn, ["iperf3", "-s", "-p", str(spec.port)], f"iperf3-s-{spec.key}")
    deadline = time.monotonic() + START_TIMEOUT_S
    while not tb.run(spec.cn, "ss", "-Htln", f"sport = :{spec.port}").stdout.strip():
        if not proc.alive() or time.monotonic() > deadline:
            raise TestbedError(
                f"iperf3 server for {spec.key} on {spec.cn}:{spec.port} did not start"
            )
        time.sleep(POLL_S)
    return proc


@dataclass
class Client:
    spec: FlowSpec
    proc: TrackedProcess
    json_path: Path
    started: float  # time.time() when it was started


def start_client(
    tb: Testbed, spec: FlowSpec, duration: float, out_dir: Path, tcp_congestion: str
) -> Client:
    out_dir.mkdir(parents=True, exist_ok=True)
    json_path = out_dir / f"iperf3-{spec.key}.json"
    argv = [
        "iperf3",
        "-c",
        tb.addr(spec.cn, "eth0"),
        "-p",
        str(spec.port),
        "-t",
        f"{duration:g}",
        "-i",
        f"{INTERVAL_S:g}",
        "-J",
        "--logfile",
        str(json_path),
    ]
    if spec.proto == "udp":
        argv += ["-u", "-b", f"{spec.rate_mbit:g}M"]
    else:
        argv += ["-C", tcp_congestion]
    started = time.time()
    proc = tb.spawn(tb.topology.mn_node, argv, f"iperf3-c-{spec.key}")
    return Client(spec, proc, json_path, started)


@dataclass(frozen=True)
class IperfResult:
    """One iperf3 test as its JSON reports it (sender = the MN, receiver = the correspondent)."""

    error: str | None
    local_port: int | None  # the data connection's (TCP) or socket's (UDP) port on the MN
    sent_bytes: int
    received_bytes: int
    seconds: float
    retransmits: int | None  # TCP
    packets: int | None  # UDP: datagrams sent
    lost_packets: int | None  # UDP: datagrams the receiver did not get

    @property
    def received_mbit_s(self) -> float:
        return 8e-6 * self.received_bytes / self.seconds if self.seconds else 0.0

    def to_dict(self) -> dict[str, Any]:
        return {
            "error": self.error,
            "local_port": self.local_port,
            "sent_bytes": self.sent_bytes,
            "received_bytes": self.received_bytes,
            "seconds": round(self.seconds, 3),
            "received_mbit_s": round(self.received_mbit_s, 2),
            "retransmits": self.retransmits,
            "packets": self.packets,
            "lost_packets": self.lost_packets,
        }


def read_result(path: Path) -> IperfResult:
    try:
        doc = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as exc:
        return IperfResult(
            f"no iperf3 result in {path.name}: {exc}", None, 0, 0, 0.0, None, None, None
        )
    return parse_result(doc)


def parse_result(doc: dict[str, Any]) -> IperfResult:
    """The figures of an `iperf3 -c -J` document (iperf3 3.12: `end.sum_sent` is the MN's side,
    `end.sum_received` the correspondent's, for TCP and UDP alike)."""
    error = doc.get("error")
    connected = doc.get("start", {}).get("connected") or [{}]
    end = doc.get("end", {})
    sent, received = end.get("sum_sent", {}), end.get("sum_received", {})
    udp = doc.get("start", {}).get("test_start", {}).get("protocol") == "UDP"
    return IperfResult(
        error=None if error is None else str(error),
        local_port=connected[0].get("local_port"),
        sent_bytes=int(sent.get("bytes", 0)),
        received_bytes=int(received.get("bytes", 0)),
        seconds=float(received.get("seconds") or sent.get("seconds") or 0.0),
        retransmits=None if udp or "retransmits" not in sent else int(sent["retransmits"]),
        packets=int(received["packets"]) if udp and "packets" in received else None,
        lost_packets=int(received["lost_packets"]) if udp and "lost_packets" in received else None,
    )
