"""Stock peers for the MN's end-to-end tests: iperf3 servers and clients, interface counters,
the sockets a correspondent sees (ss). Observations only, no assertions."""

from __future__ import annotations

import json
import subprocess
import time
from dataclasses import dataclass
from typing import Any

from sdnmip.testbed import Testbed
from sdnmip.testbed.testbed import TrackedProcess

CN1, CN2 = "2001:db8:c1::10", "2001:db8:c2::10"


def iperf3_server(tb: Testbed, node: str, port: int) -> TrackedProcess:
    """A stock `iperf3 -s` (tracked: `down` kills it); returns once it listens."""
    proc = tb.spawn(node, ["iperf3", "-s", "-p", str(port)], f"iperf3-{node}-{port}")
    deadline = time.monotonic() + 10
    while not listening(tb, node, port):
        if time.monotonic() > deadline or not proc.alive():
            raise AssertionError(f"iperf3 server on {node}:{port} did not start")
        time.sleep(0.05)
    return proc


def listening(tb: Testbed, node: str, port: int) -> bool:
    out = tb.run(node, "ss", "-Htln", f"sport = :{port}").stdout
    return bool(out.strip())


@dataclass
class Iperf:
    """A running `iperf3 -c ... -J` in some namespace."""

    popen: subprocess.Popen[str]
    started: float

    def result(self, timeout: float = 60) -> dict[str, Any]:
        out, err = self.popen.communicate(timeout=timeout)
        try:
            doc: dict[str, Any] = json.loads(out)
        except json.JSONDecodeError:
            code = self.popen.returncode
            raise AssertionError(f"iperf3 gave no JSON (exit {code}): {out}{err}") from None
        return doc


def iperf3_client(
    tb: Testbed,
    node: str,
    server: str,
    port: int,
    seconds: float,
    *,
    interval: float = 0.1,
    extra: tuple[str, ...] = (),
) -> Iperf:
    argv = ["ip", "netns", "exec", tb.ns(node), "iperf3", "-c", server, "-p", str(port),
            "-t", f"{seconds:g}", "-i", f"{interval:g}", "-J", *extra]  # fmt: skip
    return Iperf(subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                  text=True), time.monotonic())  # fmt: skip


def interval_bytes(doc: dict[str, Any]) -> list[tuple[float, int]]:
    """(end time, bytes) of every interval the client reported."""
    return [(i["sum"]["end"], int(i["sum"]["bytes"])) for i in doc["intervals"]]


def retransmits(doc: dict[str, Any]) -> int:
    return int(doc["end"]["sum_sent"].get("retransmits", 0))


def error(doc: dict[str, Any]) -> str | None:
    e = doc.get("error")
    return None if e is None else str(e)


def bytes_counters(tb: Testbed, dev: str) -> tuple[int, int]:
    """(rx, tx) bytes of the MN's device `dev` as the kernel counts them."""
    out = tb.run(tb.topology.mn_node, "ip", "-s", "-j", "link", "show", "dev", dev).stdout
    stats = json.loads(out)[0]["stats64"]
    return int(stats["rx"]["bytes"]), int(stats["tx"]["bytes"])


def peers(tb: Testbed, node: str, port: int) -> set[str]:
    """Remote addresses of the established TCP connections to local `port` on `node`."""
    out = tb.run(node, "ss", "-Htn", "state", "established", f"( sport = :{port} )").stdout
    got = set()
    for line in out.splitlines():
        remote = line.split()[-1]  # [addr]:port
        got.add(remote.rsplit(":", 1)[0].strip("[]"))
    return got
