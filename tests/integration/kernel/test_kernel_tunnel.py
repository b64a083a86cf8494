"""seg6 encap.red / End.DT6 tunnels through the library, with real traffic.

Topology (addresses as the reference testbed, shrunk):
  A "mn"  a0 2001:db8:a::1/64 (CoA1), 2001:db8:a::3/64 (CoA2, deprecated so never a source)
          lo HoA1 2001:db8:100::1, HoA2 2001:db8:100::2
  B "ha"  b0 2001:db8:a::2/64 (HA address)   b1 2001:db8:c::1/64
  C "cn"  c0 2001:db8:c::2/64
A sends everything for 2001:db8:c::/64 tunnelled to the HA; the HA decapsulates (End.DT6, main)
and forwards; the HA's binding routes tunnel HoA1/HoA2 back to a CoA; A decapsulates (End.DT6,
local) and delivers to the HoA on lo.
"""

from __future__ import annotations

import asyncio
import subprocess
import sys
from pathlib import Path

import pytest

from sdnmip.kernel import nft, sysctl
from sdnmip.kernel.constants import DECAP_TABLE, RT_TABLE_LOCAL, RT_TABLE_MAIN
from sdnmip.kernel.errors import KernelConfigError
from sdnmip.kernel.netlink import AsyncIPRoute
from sdnmip.kernel.rules import Rule, ensure_rule, list_rules, remove_rule
from sdnmip.kernel.tunnel import Seg6Tunnel
from tests.integration.kernel.kernel_lab import Capture, Done, Lab, Netns, sh, wait_for

NS_TAG = "2"
COA1, COA2, HA = "2001:db8:a::1", "2001:db8:a::3", "2001:db8:a::2"
HOA1, HOA2, CN = "2001:db8:100::1", "2001:db8:100::2", "2001:db8:c::2"
FLIPS, FLIP_INTERVAL = 40, 0.04


class Topo:
    def __init__(self, a: Netns, b: Netns, c: Netns) -> None:
        self.a, self.b, self.c = a, b, c


@pytest.fixture(scope="module")
def topo(lab: Lab) -> Topo:
    a, b, c = lab.ns("mn"), lab.ns("ha"), lab.ns("cn")
    lab.veth(a, "a0", b, "b0", mtu=1600)
    lab.veth(b, "b1", c, "c0")
    a.run("ip", "-6", "addr", "add", f"{COA1}/64", "dev", "a0")
    a.run("ip", "-6", "addr", "add", f"{COA2}/64", "dev", "a0", "preferred_lft", "0")
    a.run("ip", "-6", "addr", "add", f"{HOA1}/128", "dev", "lo")
    a.run("ip", "-6", "addr", "add", f"{HOA2}/128", "dev", "lo")
    b.run("ip", "-6", "addr", "add", f"{HA}/64", "dev", "b0")
    b.run("ip", "-6", "addr", "add", "2001:db8:c::1/64", "dev", "b1")
    c.run("ip", "-6", "addr", "add", f"{CN}/64", "dev", "c0")
    c.run("ip", "-6", "route", "add", "default", "via", "2001:db8:c::1")

    async def setup_a() -> None:
        async with AsyncIPRoute() as ipr:
            t = Seg6Tunnel(ipr)
            await t.set_encap("2001:db8:c::/64", HA, "a0")
            await t.add_decap(COA1, "a0", RT_TABLE_LOCAL)
            await t.add_decap(COA2, "a0", RT_TABLE_LOCAL)

    async def setup_b() -> None:
        sysctl.set_conf("all", "forwarding", 1)
        async with AsyncIPRoute() as ipr:
            t = Seg6Tunnel(ipr)
            await t.add_decap(HA, "b0", RT_TABLE_MAIN)
            await t.set_encap(HOA1, COA1, "b0")
            await t.set_encap(HOA2, COA1, "b0")

    a.arun(setup_a)
    b.arun(setup_b)
    return Topo(a, b, c)


def words(text: str) -> str:
    return " ".join(text.split())


def ping(ns: Netns, dst: str, count: int = 3, interval: str = "0.05") -> Done:
    return ns.run(
        "ping", "-6", "-n", "-q", "-c", str(count), "-i", interval, "-W", "1", dst, check=False
    )


def test_kernel_holds_encap_red_and_end_dt6(topo: Topo) -> None:
    # read back with iproute2, independently of pyroute2's encoder
    routes = words(topo.b.run("ip", "-6", "route", "show").stdout)
    assert f"{HOA1} encap seg6 mode encap.red segs 1 [ {COA1} ]" in routes
    decap = words(topo.b.run("ip", "-6", "route", "show", "table", str(DECAP_TABLE)).stdout)
    assert f"{HA} encap seg6local action End.DT6 table main dev b0" in decap
    rules = topo.a.run("ip", "-6", "rule").stdout.splitlines()
    assert f"10:\tfrom all to {COA1} ipproto ipv6 lookup {DECAP_TABLE}" in rules
    assert "1000:\tfrom all lookup local" in rules
    assert "0:\tfrom all lookup local" not in rules


def test_ping_crosses_the_tunnel_as_plain_ipv6_in_ipv6(topo: Topo, tmp_path: Path) -> None:
    cap = Capture(topo.b, "b0", str(tmp_path / "b0.pcap"), "ip6")
    res = ping(topo.c, HOA1)
    pkts = cap.stop("ipv6.src", "ipv6.dst", "ipv6.nxt")
    assert res.returncode == 0, res.stdout
    # every packet on the tunnel link is outer(41) + inner ICMPv6: no routing header (encap.red)
    tunnelled = [p for p in pkts if p[2].startswith("41,")]
    assert len(tunnelled) == 6, pkts  # 3 requests down, 3 replies up
    assert {p[2] for p in tunnelled} == {"41,58"}
    assert {(p[0], p[1]) for p in tunnelled} == {
        (f"{HA},{CN}", f"{COA1},{HOA1}"),
        (f"{COA1},{HOA1}", f"{HA},{CN}"),
    }
    # the decap rule only takes protocol 41: the CoA and the HA still answer plain pings
    assert ping(topo.c, COA1.replace("::1", "::2"), 1).returncode == 0
    assert topo.a.run("ping", "-6", "-c", "1", "-W", "1", HA, check=False).returncode == 0


SINK = """
import hashlib, socket, sys
srv = socket.create_server((sys.argv[1], int(sys.argv[2])), family=socket.AF_INET6)
conn, _ = srv.accept()
h, n = hashlib.sha256(), 0
while chunk := conn.recv(65536):
    h.update(chunk); n += len(chunk)
print(n, h.hexdigest())
"""
SOURCE = """
import hashlib, os, socket, sys
data = os.urandom(int(sys.argv[4]))
s = socket.create_connection((sys.argv[1], int(sys.argv[2])), source_address=(sys.argv[3], 0))
s.sendall(data); s.close()
print(len(data), hashlib.sha256(data).hexdigest())
"""


def test_tcp_transfer_through_the_tunnel(topo: Topo) -> None:
    sink = topo.c.popen(sys.executable, "-c", SINK, CN, "5301", stdout=subprocess.PIPE)
    wait_for(lambda: ":5301" in topo.c.run("ss", "-ltnH").stdout, 5, "TCP sink")
    sent = topo.a.run(sys.executable, "-c", SOURCE, CN, "5301", HOA1, str(4 << 20), timeout=30)
    received = sink.communicate(timeout=30)[0].decode()
    assert sent.stdout.split() == received.split()  # same length, same SHA-256
    assert received.split()[0] == str(4 << 20)


def test_replace_moves_one_prefix_and_loses_nothing(topo: Topo, tmp_path: Path) -> None:
    # 1000 pings at 2 ms to each HoA while HoA1's binding flips between the two CoAs
    p1 = topo.c.popen(
        "ping",
        "-6",
        "-n",
        "-q",
        "-i",
        "0.002",
        "-c",
        "1000",
        "-W",
        "1",
        HOA1,
        stdout=subprocess.PIPE,
    )
    p2 = topo.c.popen(
        "ping",
        "-6",
        "-n",
        "-q",
        "-i",
        "0.002",
        "-c",
        "1000",
        "-W",
        "1",
        HOA2,
        stdout=subprocess.PIPE,
    )

    async def flip() -> None:
        async with AsyncIPRoute() as ipr:
            t = Seg6Tunnel(ipr)
            for i in range(FLIPS):
                await t.set_encap(HOA1, COA2 if i % 2 == 0 else COA1, "b0")
                # spread the flips over the 2 s ping run (pacing, not waiting for a condition)
                await asyncio.sleep(FLIP_INTERVAL)
            await t.set_encap(HOA1, COA2, "b0")

    topo.b.arun(flip)
    out1 = p1.communicate(timeout=20)[0].decode()
    out2 = p2.communicate(timeout=20)[0].decode()
    assert " 0% packet loss" in out2, out2
    assert " 0% packet loss" in out1, out1
    # after the last replace HoA1's traffic goes to CoA2, HoA2's still to CoA1
    cap = Capture(topo.a, "a0", str(tmp_path / "a0.pcap"), "ip6 proto 41")
    assert ping(topo.c, HOA1, 2).returncode == 0
    assert ping(topo.c, HOA2, 2).returncode == 0
    pkts = cap.stop("ipv6.dst")
    assert {p[0] for p in pkts} == {f"{COA2},{HOA1}", f"{COA1},{HOA2}", f"{HA},{CN}"}

    async def back() -> None:
        async with AsyncIPRoute() as ipr:
            await Seg6Tunnel(ipr).set_encap(HOA1, COA1, "b0")

    topo.b.arun(back)


def test_helpers_are_idempotent_and_name_bad_input(topo: Topo) -> None:
    async def body() -> None:
        async with AsyncIPRoute() as ipr:
            t = Seg6Tunnel(ipr)
            await t.set_encap("2001:db8:200::/64", COA1, "b0", table=333)
            await t.set_encap("2001:db8:200::/64", COA2, "b0", table=333)
            got = await t.list_encaps(333)
            assert [(str(r.prefix), str(r.endpoint)) for r in got] == [("2001:db8:200::/64", COA2)]
            assert await t.del_encap("2001:db8:200::/64", 333) is True
            assert await t.del_encap("2001:db8:200::/64", 333) is False
            await t.add_decap(HA, "b0", RT_TABLE_MAIN)
            rules = [r for r in await list_rules(ipr) if r.table == DECAP_TABLE]
            assert len(rules) == 1
            rule = Rule.make(3001, 333, src="2001:db8:100::/64", iif="b0")
            assert await ensure_rule(ipr, rule) is True
            assert await ensure_rule(ipr, rule) is False
            assert await remove_rule(ipr, rule) is True
            assert await remove_rule(ipr, rule) is False
            with pytest.raises(KernelConfigError, match="dev='nope0'"):
                await t.set_encap(HOA1, COA1, "nope0")
            with pytest.raises(KernelConfigError, match="endpoint='not-an-address'"):
                await t.set_encap(HOA1, "not-an-address", "b0")
            with pytest.raises(KernelConfigError, match="prefix="):
                await t.set_encap("2001:db8::1/64", COA1, "b0")
            with pytest.raises(KernelConfigError, match="dport"):
                Rule.make(3002, 333, dport=80)
            # decap for an address that is not set up: nothing to remove
            assert await t.del_decap("2001:db8:ffff::1") is False

    topo.b.arun(body)


def test_reverse_tunnel_check_drops_unbound_coa_hoa_pairs(topo: Topo) -> None:
    spec = nft.FilterSpec.for_ha([HA])
    topo.b.arun(lambda: nft.load(spec, bindings=[(COA1, HOA1)]))
    try:
        assert ping(topo.c, HOA1).returncode == 0  # replies come from HoA1 via CoA1: bound
        assert ping(topo.c, HOA2, 2).returncode != 0  # HoA2 is not bound: its replies dropped
        counts = topo.b.arun(lambda: nft.counters(spec.table))
        assert counts["rt-check"] == 2
        topo.b.arun(lambda: nft.set_binding(spec.table, HOA2, COA1))
        assert ping(topo.c, HOA2).returncode == 0
        # a move of HoA2 to CoA2 in the set (old element removed): CoA1 no longer valid
        topo.b.arun(lambda: nft.set_binding(spec.table, HOA2, COA2, old_coa=COA1))
        assert ping(topo.c, HOA2, 1).returncode != 0
        assert topo.b.arun(lambda: nft.counters(spec.table))["rt-check"] == 3
    finally:
        topo.b.arun(lambda: nft.unload(spec.table))
    assert "sdnmip_ha" not in sh("ip", "netns", "exec", topo.b.name, "nft", "list", "tables").stdout
