"""New-flow decisions per second in the controller's pure logic (no switch, no sockets).

Measures `MnLogic.packet_in` for a table-miss packet, from raw frame to the list of actions
(two checked flow-mods, a packet-out, agent requests), in four workloads:
  many-cns      outgoing TCP flows to 5,000 correspondents (Figure 6 reuses a few HoAs)
  one-cn        outgoing TCP flows to one correspondent: the first 64 claim spares, then the pool
                is exhausted and every flow takes the shared fallback
  hoa-per-flow  outgoing flows with `hoa_per_flow` (every flow claims a spare HoA; the pool is
                made as large as the run, which no real HA refills that fast)
  incoming      incoming UDP flows to the Primary HoA (Figure 5)
and the flow-end path (idle flow-removed of both rules, HoA release).

Run from the repository root:  /work/venv/bin/python bench/bench_flow_setup.py [--flows N]
The target for the whole system is >= 10,000 new flows/s; the logic's share must stay well
under 100 us per flow.
"""

from __future__ import annotations

import argparse
import statistics
import struct
import sys
import time
from collections.abc import Callable
from ipaddress import IPv6Address, IPv6Network
from pathlib import Path

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from sdnmip.controller import ofmsg
from sdnmip.controller import pipeline as pl
from sdnmip.controller.config import HoaBound, LogicConfig, SparePool, UplinkPorts, UplinkState
from sdnmip.controller.logic import MnLogic
from sdnmip.core.policy_api import PreferredUplinkPolicy

PRIMARY = IPv6Address("2001:db8:100::1000")
HOME = IPv6Network("2001:db8:100::/64")
HOA0, WLAN, IWLAN, LTE, ILTE = 1, 2, 3, 4, 5
IPV6 = struct.Struct("!IHBB16s16s")


def frame(src: IPv6Address, dst: IPv6Address, proto: int, sport: int, dport: int) -> bytes:
    if proto == 6:
        l4 = struct.pack("!HHIIBBHHH", sport, dport, 0, 0, 5 << 4, 0x02, 65535, 0, 0)
    else:
        l4 = struct.pack("!HHHH", sport, dport, 8, 0)
    ip = IPV6.pack(6 << 28, len(l4), proto, 64, src.packed, dst.packed)
    return b"\x02" * 6 + b"\x04" * 6 + b"\x86\xdd" + ip + l4


def make_logic(n_spares: int, hoa_per_flow: bool = False) -> MnLogic:
    cfg = LogicConfig(
        primary_hoa=PRIMARY,
        home_prefixes=(HOME,),
        ha_addresses=(IPv6Address("2001:db8:100::1"),),
        hoa0_port=HOA0,
        hoa0_mac="02:00:00:00:00:01",
        uplinks=(
            UplinkPorts("wlan", WLAN, IWLAN, "02:00:00:00:01:03"),
            UplinkPorts("lte", LTE, ILTE, "02:00:00:00:02:05"),
        ),
        hoa_per_flow=hoa_per_flow,
    )
    logic = MnLogic(cfg, PreferredUplinkPolicy(["wlan", "lte"]))
    logic.agent_event(0, UplinkState("wlan", True, IPv6Address("2001:db8:1::2"), "02:aa::1"))
    logic.agent_event(0, UplinkState("lte", True, IPv6Address("2001:db8:2::2"), "02:aa::2"))
    logic.agent_event(0, HoaBound(PRIMARY, "wlan"))
    base = int(IPv6Address("2001:db8:100::1:0"))
    logic.agent_event(0, SparePool(tuple((IPv6Address(base + i), "wlan") for i in range(n_spares))))
    logic.reconcile(0, [])
    return logic


def run(name: str, logic: MnLogic, calls: list[Callable[[], list[object]]]) -> None:
    lat = []
    t0 = time.perf_counter()
    for call in calls:
        t = time.perf_counter()
        actions = call()
        lat.append(time.perf_counter() - t)
        assert actions, f"{name}: no actions ({logic.refused})"
    total = time.perf_counter() - t0
    lat.sort()
    mean, p50, p99 = (
        x * 1e6 for x in (statistics.fmean(lat), lat[len(lat) // 2], lat[-len(lat) // 100])
    )
    print(
        f"{name:14s} {len(calls) / total:10,.0f} flows/s   mean {mean:6.1f} us   p50 {p50:6.1f} us"
        f"   p99 {p99:6.1f} us   ({len(logic.flows)} flows, {len(logic.hoas)} HoAs held)"
    )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--flows", type=int, default=20000)
    n = ap.parse_args().flows
    up = int(pl.TableId.UPLINK)
    down = int(pl.TableId.DOWNLINK)
    print(f"{n} new flows per workload, Python {sys.version.split()[0]}")

    logic = make_logic(64)
    cns = [IPv6Address(int(IPv6Address("2001:db8:c1::")) + 1 + i % 5000) for i in range(n)]
    frames = [frame(PRIMARY, cns[i], 6, 1024 + i // 5000, 443) for i in range(n)]
    run("many-cns", logic, [lambda f=f: logic.packet_in(1.0, HOA0, up, f) for f in frames])

    logic = make_logic(64)
    cn = IPv6Address("2001:db8:c1::10")
    frames = [frame(PRIMARY, cn, 6, 1024 + i, 443) for i in range(n)]
    run("one-cn", logic, [lambda f=f: logic.packet_in(1.0, HOA0, up, f) for f in frames])

    logic = make_logic(n, hoa_per_flow=True)
    frames = [frame(PRIMARY, cns[i], 6, 1024 + i // 5000, 443) for i in range(n)]
    run("hoa-per-flow", logic, [lambda f=f: logic.packet_in(1.0, HOA0, up, f) for f in frames])

    logic = make_logic(64)
    frames = [frame(cns[i], PRIMARY, 17, 1024 + i // 5000, 5060) for i in range(n)]
    run("incoming", logic, [lambda f=f: logic.packet_in(1.0, IWLAN, down, f) for f in frames])

    # Flow end: both rules idle out; the HoA is released when its last flow goes.
    logic = make_logic(n, hoa_per_flow=True)
    for f in (frame(PRIMARY, cns[i], 6, 1024 + i // 5000, 443) for i in range(n)):
        logic.packet_in(1.0, HOA0, up, f)
    ids = [e.flow_id for e in logic.flows]
    up_c = [pl.cookie(pl.CookieKind.FLOW_UP, i) for i in ids]
    down_c = [pl.cookie(pl.CookieKind.FLOW_DOWN, i) for i in ids]
    idle = ofmsg.OFPRR_IDLE_TIMEOUT
    for c in up_c:
        logic.flow_removed(2.0, c, idle, 1, 100)
    run("flow-end", logic, [lambda c=c: logic.flow_removed(3.0, c, idle, 1, 100) for c in down_c])


if __name__ == "__main__":
    main()
