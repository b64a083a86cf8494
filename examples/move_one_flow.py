"""A Mininet-style experiment with the sdnmip testbed: one TCP flow is moved from wlan to lte
through the REST API while it runs; how much did it send per second, and on which uplink?

Run as root from the checkout (docs/experiments.md):

    .venv/bin/python examples/move_one_flow.py [--prefix exp] [--lte-delay-ms 40]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from sdnmip.demo import netns
from sdnmip.demo.sampler import Northbound
from sdnmip.testbed import Testbed, load_topology
from sdnmip.testbed.mn_full import MnStack


def wait_listening(tb: Testbed, node: str, port: int) -> None:
    deadline = time.monotonic() + 10
    while not tb.run(node, "ss", "-Htln", f"sport = :{port}").stdout.strip():
        if time.monotonic() > deadline:
            raise SystemExit(f"nothing listens on {node}:{port}")
        time.sleep(0.05)


def tx_bytes(tb: Testbed) -> dict[str, int]:
    """Bytes sent by the MN's two uplinks, from the kernel's counters in its namespace."""
    with netns.entered(tb.ns("mn")):
        counters = netns.interface_counters()
    return {u: counters[u][1] for u in ("wlan", "lte")}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--prefix", default="exp")
    ap.add_argument("--lte-delay-ms", type=float, default=25.0)
    args = ap.parse_args()
    topology = load_topology(
        profile="default", overrides=[f"profiles.default.lte.delay_ms={args.lte_delay_ms:g}"]
    )
    tb = Testbed(topology, args.prefix)
    tb.up()  # removes what it built if anything fails
    try:
        stack = MnStack(tb, pool_size=2)  # the HA and `sdnmip mn`, configured for this testbed
        tb.spawn("cn1", ["iperf3", "-s", "-p", "5201"], "iperf3-server")
        wait_listening(tb, "cn1", 5201)
        stack.start()  # returns when the MN is ready: Primary bound, spare HoAs registered
        nb = Northbound(tb.ns("mn"), "http://127.0.0.1:8181")
        cn1 = tb.addr("cn1", "eth0")
        argv = ["ip", "netns", "exec", tb.ns("mn"), "iperf3", "-c", cn1, "-t", "8", "-J",
                "-C", "cubic"]  # fmt: skip
        client = subprocess.Popen(argv, stdout=subprocess.PIPE, text=True)
        time.sleep(3)
        flows = nb.request("GET", f"/v1/flows?proto=tcp&remote={cn1}")["flows"]
        data = max(flows, key=lambda f: f["flow_id"])  # iperf3's data connection is the newest
        before = tx_bytes(tb)
        answer = nb.request("POST", f"/v1/flows/{data['flow_id']}/move", {"network": "lte"})
        print(f"flow {data['flow_id']} (HoA {data['hoa']}) {data['uplink']} -> lte: {answer}")
        time.sleep(2)
        after = tx_bytes(tb)
        print("sent in the 2 s after the move:",
              {u: f"{(after[u] - before[u]) / 1e6:.1f} MB" for u in after})  # fmt: skip
        result = json.loads(client.communicate(timeout=30)[0])
        per_second = [round(i["sum"]["bits_per_second"] / 1e6, 1) for i in result["intervals"]]
        print("iperf3 Mbit/s per second:", per_second)
        print("retransmits:", result["end"]["sum_sent"]["retransmits"], "error:",
              result.get("error"))  # fmt: skip
        print("HA bindings:", {h: b["careof"] for h, b in stack.ha.bindings().items()})
    finally:
        tb.down()  # every namespace, process and file of the testbed


if __name__ == "__main__":
    main()
