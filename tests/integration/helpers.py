"""Observations the integration tests make of a running testbed (no assertions here)."""

from __future__ import annotations

import ipaddress
import itertools
import json
import os
import re
import time
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

from sdnmip.testbed import Testbed
from sdnmip.testbed.names import PREFIX_RE

T = TypeVar("T")
PORT_STATS = re.compile(r"port\s+(\d+): rx pkts=(\d+).*?\n\s+tx pkts=(\d+)")
RTT = re.compile(r"= ([\d.]+)/([\d.]+)/([\d.]+)/([\d.]+) ms")
RECEIVED = re.compile(r"(\d+) packets transmitted, (\d+) received")
_counter = itertools.count()


def _base36(n: int) -> str:
    digits = "0123456789abcdefghijklmnopqrstuvwxyz"
    out = ""
    while True:
        n, r = divmod(n, 36)
        out = digits[r] + out
        if n == 0:
            return out


def unique_prefix() -> str:
    """A testbed prefix no other test process uses: $SDNMIP_TEST_PREFIX (default "tb") + PID +
    a counter, in base 36."""
    base = os.environ.get("SDNMIP_TEST_PREFIX", "tb")
    prefix = f"{base}{_base36(os.getpid())}{_base36(next(_counter))}"
    assert PREFIX_RE.match(prefix), f"SDNMIP_TEST_PREFIX={base!r} makes an invalid prefix {prefix}"
    return prefix


def poll(what: str, probe: Callable[[], T | None], timeout: float = 10.0) -> T:
    """Call `probe` until it returns something other than None, or fail after `timeout`."""
    deadline = time.monotonic() + timeout
    while True:
        value = probe()
        if value is not None:
            return value
        if time.monotonic() >= deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(0.05)


def of_port_counters(tb: Testbed, bridge: str) -> dict[int, tuple[int, int]]:
    """OpenFlow port statistics of the MN bridge: ofport -> (rx packets, tx packets), as OVS
    counts them (an OpenFlow port-stats request answered by the switch)."""
    out = tb.ofctl("dump-ports", bridge).stdout
    return {int(m[1]): (int(m[2]), int(m[3])) for m in PORT_STATS.finditer(out)}


def ping(tb: Testbed, port: str, target: str, count: int = 5) -> tuple[int, int, float]:
    """Ping `target` from the MN out of `port`; returns (sent, received, min RTT in ms)."""
    proc = tb.run(tb.topology.mn_node, "ping", "-n", "-c", str(count), "-i", "0.2", "-W", "2",
                  "-I", port, target, check=False, timeout=10 + count)  # fmt: skip
    counts = RECEIVED.search(proc.stdout)
    rtt = RTT.search(proc.stdout)
    assert counts, proc.stdout + proc.stderr
    return int(counts[1]), int(counts[2]), float(rtt[1]) if rtt else float("nan")


def link_local(tb: Testbed, node: str, dev: str) -> str:
    proc = tb.run(node, "ip", "-6", "-j", "addr", "show", "dev", dev, "scope", "link")
    infos = [i for link in json.loads(proc.stdout) for i in link["addr_info"] if "local" in i]
    return str(infos[0]["local"])


def eui64_address(prefix: str, mac: str) -> str:
    """The SLAAC address RFC 4291 Appendix A / RFC 4862 derive from a MAC address."""
    octets = [int(x, 16) for x in mac.split(":")]
    octets[0] ^= 0x02
    iid = bytes([*octets[:3], 0xFF, 0xFE, *octets[3:]])
    net = ipaddress.IPv6Network(prefix)
    return str(net.network_address + int.from_bytes(iid, "big"))


def root_links() -> set[str]:
    """Interfaces of the root namespace (the testbed must never add any)."""
    import subprocess

    out = subprocess.run(["ip", "-j", "link", "show"], capture_output=True, text=True, check=True)
    return {link["ifname"] for link in json.loads(out.stdout)}


def saved_flow_ids(state_dir: Path) -> set[int]:
    """The flows in the controller's snapshot under `state_dir`, read by the controller's own
    loader (none before the first snapshot)."""
    from sdnmip.controller.persist import SnapshotStore
    from sdnmip.controller.settings import SNAPSHOT_FILE

    logic = SnapshotStore(state_dir / SNAPSHOT_FILE).load()
    return set() if logic is None else {row["flow_id"] for row in logic["flows"]["flows"]}
