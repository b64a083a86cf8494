"""End-to-end figures of the whole MN (`sdnmip mn` + `sdnmip ha`) in the namespace testbed.

Each scenario builds a fresh testbed (prefix ctb<pid> or --prefix, profile `fast`: plain veths,
no link emulation, so that the figures are the MN's and not the emulator's), starts the HA and
the MN (sdnmip/testbed/mn_full.py), runs, prints its figures and removes everything.

  latency     extra latency of the first packet of a new flow: UDP echo round trips to CN1,
              the first packet of each new flow (table miss -> controller) against the second
              (installed rule), with Figure 6 reusing HoAs and with every flow taking a spare
              HoA from the pool (hoa_per_flow)
  rate        new flows per second through OVS and the controller: UDP packets with new
              5-tuples written into hoa0 (the applications' side) at a fixed offered rate
  handover    one UDP flow at 1000 packets/s moved to the other uplink and back: time from the
              move request to its first packet on the new uplink, and packets lost
  failover    1, 100, 1000 UDP flows (1000, 100, 10 packets/s each, to as many correspondent
              addresses): carrier of wlan pulled; time until each flow's packets arrive again,
              and the packets lost meanwhile
  throughput  iperf3 TCP through the MIPv6 path (Primary HoA, tunnelled via the HA) against the
              plain OVS path (the uplink's CoA, no tunnel) in the same run

Run from the repository root:  /work/venv/bin/python bench/bench_mn_e2e.py [SCENARIO ...]
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import itertools

from sdnmip.testbed import Testbed, load_topology

ROOT = Path(__file__).resolve().parent.parent
PRIMARY = "2001:db8:100::1000"
PREFIX = f"ctb{os.getpid() % 100000}"  # --prefix
CN1 = "2001:db8:c1::10"


@contextmanager
def mn(profile: str = "fast", **stack_args: Any) -> Iterator[Any]:
    from sdnmip.testbed.mn_full import MnStack

    tb = Testbed(load_topology(profile=profile), PREFIX)
    tb.up()
    try:
        stack = MnStack(tb, **stack_args)
        stack.start()
        yield stack
        stack.stop()
    finally:
        tb.down()


def in_ns(tb: Testbed, node: str, code: str, *args: str, timeout: float = 300) -> Any:
    """Run a Python snippet in a namespace; it prints one JSON document."""
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    argv = ["ip", "netns", "exec", tb.ns(node), sys.executable, "-c", code, *args]
    out = subprocess.run(
        argv, capture_output=True, text=True, timeout=timeout, env=env, check=False
    )
    if out.returncode != 0:
        raise RuntimeError(f"{node}: {out.stderr.strip()[-2000:]}")
    return json.loads(out.stdout)


def spawn_py(tb: Testbed, node: str, code: str, name: str, *args: str) -> Any:
    return tb.spawn(node, [sys.executable, "-c", code, *args], name)


def pct(xs: list[float], q: float) -> float:
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(q * len(xs)))]


# ---------------------------------------------------------------------------- latency

ECHO = """
import socket
s = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM)
s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 22)
s.bind(("::", 7))
while True:
    data, peer = s.recvfrom(2048)
    s.sendto(data, peer)
"""

PROBES = """
import json, socket, sys, time
n, gap, first_port = int(sys.argv[1]), float(sys.argv[2]), int(sys.argv[3])
dsts = sys.argv[4].split(",")
out = []
for i in range(n):
    s = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM)
    s.bind(("2001:db8:100::1000", first_port + i))
    s.settimeout(2.0)
    rtts = []
    for k in (b"first", b"second"):
        t0 = time.perf_counter()
        s.sendto(k + b"%d" % i, (dsts[i % len(dsts)], 7))
        try:
            s.recvfrom(2048)
            rtts.append(time.perf_counter() - t0)
        except TimeoutError:
            rtts.append(None)
        time.sleep(0.002)
    s.close()
    out.append(rtts)
    time.sleep(gap)
print(json.dumps(out))
"""


def add_cn_addresses(tb: Testbed, n: int) -> list[str]:
    """n extra addresses on CN1 (many correspondents; Figure 6 shares HoAs between them)."""
    addrs = [f"2001:db8:c1::{0x1000 + i:x}" for i in range(n)]
    batch = "".join(f"addr add {a}/64 dev eth0 nodad\n" for a in addrs)
    subprocess.run(["ip", "-6", "-n", tb.ns("cn1"), "-batch", "-"], input=batch, text=True,
                   check=True)  # fmt: skip
    return addrs


def latency() -> None:
    for per_flow in (False, True):
        args: dict[str, Any] = {"controller": {"hoa_per_flow": per_flow}}
        n, gap = (500, 0.01) if not per_flow else (150, 0.2)
        args["pool_size"] = 8 if per_flow else 4
        with mn(**args) as st:
            cns = add_cn_addresses(st.tb, 100)
            spawn_py(st.tb, "cn1", ECHO, "udp-echo")
            time.sleep(0.3)
            rtts = in_ns(st.tb, "mn", PROBES, str(n), str(gap), "20000", ",".join(cns))
            claimed = st.control("status")["logic"].get("flows_created", 0)
            hoas = len(st.control("hoas")["held"])
        ok = [(a, b) for a, b in rtts if a is not None and b is not None]
        extra = [(a - b) * 1e3 for a, b in ok]
        steady = [b * 1e3 for _, b in ok]
        label = "every flow takes a pool HoA" if per_flow else "Figure 6 reuse"
        print(f"latency ({label}): {len(ok)}/{n} flows answered; first-packet extra latency "
              f"p50 {pct(extra, 0.5):.2f} ms, p90 {pct(extra, 0.9):.2f} ms, "
              f"p99 {pct(extra, 0.99):.2f} ms, max {max(extra):.2f}"
              f" ms; installed-flow RTT p50 {pct(steady, 0.5):.2f} ms; "
              f"{claimed} flows on {hoas} HoAs")  # fmt: skip


# ---------------------------------------------------------------------------- rate

BLAST = """
import json, socket, struct, sys, time
from ipaddress import IPv6Address
n, rate, dport = int(sys.argv[1]), float(sys.argv[2]), int(sys.argv[3])
src = IPv6Address("2001:db8:100::1000").packed
base = int(IPv6Address("2001:db8:c1::1:0"))
mac = open("/sys/class/net/hoa0/address").read().strip()
eth = bytes.fromhex("025d1f000001" + mac.replace(":", "")) + b"\\x86\\xdd"
payload = b"sdnmip-rate-bench-"
def csum(data):
    if len(data) % 2: data += b"\\0"
    t = sum(struct.unpack("!%dH" % (len(data) // 2), data))
    while t >> 16: t = (t & 0xFFFF) + (t >> 16)
    return ~t & 0xFFFF
frames = []
for i in range(n):
    dst = (base + i % 5000).to_bytes(16, "big")
    ulen = 8 + len(payload)
    udp = struct.pack("!HHHH", 1024 + i // 5000, dport, ulen, 0) + payload
    c = csum(src + dst + struct.pack("!I3xB", ulen, 17) + udp) or 0xFFFF
    frames.append(eth + struct.pack("!IHBB", 6 << 28, ulen, 17, 64) + src + dst
                  + udp[:6] + struct.pack("!H", c) + udp[8:])
s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW)
s.bind(("hoa0", 0))
batch = max(1, int(rate / 1000))
t0 = time.perf_counter()
for i in range(0, n, batch):
    d = t0 + i / rate - time.perf_counter()
    if d > 0:
        time.sleep(d)
    for f in frames[i:i + batch]:
        s.send(f)
print(json.dumps({"seconds": time.perf_counter() - t0}))
"""


def rate() -> None:
    with mn(controller={"hoa_per_flow": False, "udp_idle_timeout": 300}) as st:
        pids = {"ovs-vswitchd": int(st.tb.ovs.pidfile("ovs-vswitchd").read_text())}
        pids["controller"] = st.controller_pid()
        for i, offered in enumerate((1000, 2000, 4000, 8000)):
            n = int(offered * 4)
            before = st.control("status")["logic"].get("flows_created", 0)
            cpu0 = {k: _cpu(p) for k, p in pids.items()}
            sent = in_ns(st.tb, "mn", BLAST, str(n), str(offered), str(30000 + i))
            t_end = time.monotonic()
            last = -1
            while True:  # let the backlog drain (no new flow for 1 s)
                time.sleep(1.0)
                now = st.control("status")["logic"].get("flows_created", 0)
                if now == before + n or (time.monotonic() - t_end > 2 and now == last):
                    break
                last = now
            created = now - before
            cpu = {k: _cpu(p) - cpu0[k] for k, p in pids.items()}
            per_flow = {k: v / max(created, 1) * 1e6 for k, v in cpu.items()}
            print(f"rate: offered {offered}/s for {sent['seconds']:.1f} s: {created}/{n} flows "
                  f"created ({created / sent['seconds']:,.0f}/s); CPU per created flow: "
                  + ", ".join(f"{k} {v:.0f} us" for k, v in per_flow.items()))  # fmt: skip


def _cpu(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


# ---------------------------------------------------------------------------- handover

SINK = """
import json, socket, sys, time
port, seconds = int(sys.argv[1]), float(sys.argv[2])
s = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM)
s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 24)
s.bind(("::", port))
s.settimeout(1.0)
got = []
end = time.time() + seconds
while time.time() < end:
    try:
        data, peer = s.recvfrom(2048)
    except TimeoutError:
        continue
    flow, seq = data.decode().split(":")
    got.append((time.time(), int(flow), int(seq)))
print(json.dumps(got))
"""

MOVER = """
import json, socket, sys, time
sys.path.insert(0, sys.argv[1])
from sdnmip.controller.control import ControlClient
control, pps, seconds = sys.argv[2], float(sys.argv[3]), float(sys.argv[4])
moves = [(float(t), u) for t, u in (m.split("=") for m in sys.argv[5].split(","))]
def tx(dev):
    return int(open(f"/sys/class/net/{dev}/statistics/tx_packets").read())
s = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM)
s.bind(("2001:db8:100::1000", 40999))
dst = ("2001:db8:c1::10", 9000)
flow = None
t0 = time.perf_counter()
results, pending = [], None
n = int(pps * seconds)
for i in range(n):
    d = t0 + i / pps - time.perf_counter()
    if d > 0:
        time.sleep(d)
    s.sendto(b"%04d:%06d" % (0, i), dst)
    now = time.perf_counter() - t0
    if pending is not None:
        t_move, uplink, base = pending
        if tx(uplink) - base >= 3:  # our packets now leave by the new uplink
            results.append({"to": uplink, "ms": (now - t_move) * 1e3})
            pending = None
    if moves and now >= moves[0][0]:
        _, uplink = moves.pop(0)
        with ControlClient(control) as c:
            if flow is None:
                flow = next(f["flow_id"] for f in c.call("flows") if f["remote_port"] == 9000)
            base = tx(uplink)
            t_move = time.perf_counter() - t0
            c.call("move", flow_id=flow, uplink=uplink)
        pending = (t_move, uplink, base)
print(json.dumps({"sent": n, "moves": results}))
"""


def handover() -> None:
    with mn(controller={"hoa_per_flow": True}) as st:
        sink = spawn_py(st.tb, "cn1", SINK, "udp-sink", "9000", "12")
        time.sleep(0.5)
        res = in_ns(st.tb, "mn", MOVER, str(ROOT), str(st.control_path), "1000", "8",
                    "2=lte,5=wlan")  # fmt: skip
        got = _sink_result(sink)
    seqs = sorted({seq for _, _, seq in got})
    lost = res["sent"] - len(seqs)
    reordered = sum(1 for a, b in itertools.pairwise(got) if b[2] < a[2])
    moves = ", ".join(f"to {m['to']} {m['ms']:.1f} ms" for m in res["moves"])
    print(f"handover: 1000 packets/s UDP, two moves ({moves}); {res['sent']} sent, {lost} lost, "
          f"{reordered} reordered")  # fmt: skip


def _sink_result(proc: Any) -> list[Any]:
    proc.popen.wait(timeout=60)
    text = Path(proc.log).read_text().strip().splitlines()[-1]
    return list(json.loads(text))


# ---------------------------------------------------------------------------- failover

FLOWS = """
import json, socket, sys, time
n, pps, seconds = int(sys.argv[1]), float(sys.argv[2]), float(sys.argv[3])
dsts = sys.argv[4].split(",")
socks = []
for i in range(n):
    s = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM)
    s.bind(("2001:db8:100::1000", 41000 + i))
    s.setblocking(False)
    socks.append(s)
t0 = time.perf_counter()
rounds = int(pps * seconds)
for r in range(rounds):
    d = t0 + r / pps - time.perf_counter()
    if d > 0:
        time.sleep(d)
    for i, s in enumerate(socks):
        try:
            s.sendto(b"%04d:%06d" % (i, r), (dsts[i], 9000))
        except BlockingIOError:
            pass
print(json.dumps({"rounds": rounds}))
"""


def failover() -> None:
    for n in (1, 100, 1000):
        pps = min(1000, 10_000 // n)  # per flow; 10,000 packets/s in all at most
        with mn(controller={"hoa_per_flow": False}, pool_size=4) as st:
            cns = add_cn_addresses(st.tb, n)
            sink = spawn_py(st.tb, "cn1", SINK, "udp-sink", "9000", "14")
            time.sleep(0.5)
            env = {**os.environ, "PYTHONPATH": str(ROOT)}
            sender = subprocess.Popen(
                ["ip", "netns", "exec", st.tb.ns("mn"), sys.executable, "-c", FLOWS, str(n),
                 str(pps), "10", ",".join(cns)], stdout=subprocess.PIPE, text=True, env=env,
            )  # fmt: skip
            time.sleep(4.0)
            assert all(f["uplink"] == "wlan" for f in st.control("flows") if f["proto"] == 17)
            hoas = len({f["hoa"] for f in st.control("flows") if f["proto"] == 17})
            ar = st.tb.topology.access_router("wlan")
            t_down = time.time()
            st.tb.run(ar.node, "ip", "link", "set", "dev", ar.iface, "down")
            sent = json.loads(sender.communicate(timeout=60)[0])["rounds"]
            got = _sink_result(sink)
        arrivals: dict[int, list[float]] = {}
        for t, flow, _ in got:
            arrivals.setdefault(flow, []).append(t)
        # A flow's outage: its longest silence around the carrier loss, less its packet spacing.
        outage = []
        for ts in arrivals.values():
            near = [t for t in sorted(ts) if t_down - 1 <= t <= t_down + 3]
            gaps = [b - a for a, b in itertools.pairwise(near)]
            outage.append(max(0.0, max(gaps, default=0.0) - 1 / pps) * 1e3)
        lost = n * sent - len({(f, s) for _, f, s in got})
        print(f"failover of {n} flow(s) on {hoas} HoA(s), {pps} packets/s each: "
              f"{len(arrivals)}/{n} flows delivered after it; outage per flow p50 "
              f"{pct(outage, 0.5):.0f} ms, max {max(outage):.0f} ms; {lost} packets lost "
              f"({lost / n:.1f} per flow)")  # fmt: skip


# ---------------------------------------------------------------------------- throughput


STATIC_COOKIE = "0xbe0c000000000001"  # not sdnmip's: the controller leaves it until a reconcile


def static_tunnel_rules(st: Any, on: bool) -> None:
    """By-hand rules that send the Primary's packets through the same tunnel without the
    controller's pipeline (table 0 straight to iwlan / hoa0): the baseline of the pipeline's
    own cost."""
    tb, bridge = st.tb, st.tb.topology.mn.bridge
    if not on:
        tb.ofctl("del-flows", bridge, f"cookie={STATIC_COOKIE}/-1")
        return

    def mac(dev: str) -> str:
        return tb.run("mn", "cat", f"/sys/class/net/{dev}/address").stdout.strip()

    flows = [
        f"cookie={STATIC_COOKIE},priority=500,ipv6,in_port=hoa0,ipv6_src={PRIMARY},"
        f"ipv6_dst={CN1},actions=set_field:{mac('iwlan')}->eth_dst,output:iwlan",
        f"cookie={STATIC_COOKIE},priority=500,ipv6,in_port=iwlan,ipv6_src={CN1},"
        f"ipv6_dst={PRIMARY},actions=set_field:{mac('hoa0')}->eth_dst,output:hoa0",
    ]
    tb.ofctl("add-flows", bridge, "-", input="\n".join(flows) + "\n")


def throughput() -> None:
    from tests.integration.mn.traffic import iperf3_client, iperf3_server

    # hoa_per_flow off: iperf3 to CN1 then uses the (idle) Primary, bound at wlan, like the
    # static rules; Figure 6 gives its data connection a spare HoA bound at wlan too.
    with mn(controller={"hoa_per_flow": False}) as st:
        iperf3_server(st.tb, "cn1", 5201)
        coa = st.control("uplinks")[0]["coa"]
        kinds = ("plain", "static", "mipv6")
        runs: dict[str, list[float]] = {k: [] for k in kinds}
        for _ in range(3):
            for kind in kinds:
                static_tunnel_rules(st, kind == "static")
                extra = ("-B", coa) if kind == "plain" else ()
                r = iperf3_client(st.tb, "mn", CN1, 5201, 5, interval=1, extra=extra).result()
                runs[kind].append(r["end"]["sum_received"]["bits_per_second"] / 1e6)
                static_tunnel_rules(st, False)
                time.sleep(1.0)
    med = {k: statistics.median(v) for k, v in runs.items()}
    each = {k: [round(x) for x in v] for k, v in runs.items()}
    print(f"throughput (medians of 3 x 5 s iperf3 TCP, MN -> CN1): MIPv6 path "
          f"{med['mipv6']:.0f} Mbit/s; plain OVS path (the CoA, no tunnel) {med['plain']:.0f} "
          f"Mbit/s: ratio {med['mipv6'] / med['plain']:.2f}; same tunnel with two static rules "
          f"instead of the pipeline {med['static']:.0f} Mbit/s: ratio "
          f"{med['mipv6'] / med['static']:.2f} (runs: {each})")  # fmt: skip


SCENARIOS: dict[str, Callable[[], None]] = {
    "latency": latency,
    "rate": rate,
    "handover": handover,
    "failover": failover,
    "throughput": throughput,
}


def main() -> None:
    global PREFIX  # noqa: PLW0603 -- one setting for every scenario's testbed
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("scenarios", nargs="*", help=f"any of {', '.join(SCENARIOS)} (default: all)")
    ap.add_argument("--prefix", default=PREFIX, help="testbed prefix (default ctb<pid>)")
    args = ap.parse_args()
    PREFIX = args.prefix
    unknown = set(args.scenarios) - set(SCENARIOS)
    if unknown:
        ap.error(f"unknown scenario(s) {sorted(unknown)}: choose from {', '.join(SCENARIOS)}")
    # A SIGTERM (timeout, Ctrl-C from a supervisor) still removes the testbed.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    print(f"Python {sys.version.split()[0]}, {os.cpu_count()} CPUs, load {os.getloadavg()[0]:.2f}")
    for name in args.scenarios or SCENARIOS:
        SCENARIOS[name]()


if __name__ == "__main__":
    main()
