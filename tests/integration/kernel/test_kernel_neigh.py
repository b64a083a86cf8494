"""Proxy ND, permanent neighbour entries and per-interface sysctls, on a real link.

R "core" r0 2001:db8:100::fffe/64  <->  H "ha" h0 2001:db8:100::1/64 (proxy_ndp, proxy_delay 0)
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from sdnmip.kernel import neigh, sysctl
from sdnmip.kernel.errors import KernelConfigError
from sdnmip.kernel.netlink import AsyncIPRoute
from tests.integration.kernel.kernel_lab import Capture, Lab, Netns, wait_for

NS_TAG = "3"
HOA = "2001:db8:100::2001"
NUD_PERMANENT = 0x80
NUD_FAILED = 0x20
MAX_PROXY_ANSWER = 0.02  # s: with proxy_delay=0 the NA follows the NS at once


@pytest.fixture(scope="module")
def link(lab: Lab) -> tuple[Netns, Netns]:
    r, h = lab.ns("core"), lab.ns("ha")
    lab.veth(r, "r0", h, "h0")
    r.run("ip", "-6", "addr", "add", "2001:db8:100::fffe/64", "dev", "r0")
    h.run("ip", "-6", "addr", "add", "2001:db8:100::1/64", "dev", "h0")

    async def setup() -> None:
        sysctl.set_conf("all", "forwarding", 1)
        sysctl.set_conf("h0", "proxy_ndp", 1)
        sysctl.set_neigh("h0", "proxy_delay", 0)

    h.arun(setup)
    return r, h


def r_neigh(r: Netns) -> tuple[str | None, int] | None:
    async def get() -> tuple[str | None, int] | None:
        async with AsyncIPRoute() as ipr:
            return await neigh.get_neigh(ipr, HOA, "r0")

    return r.arun(get)


def test_proxy_nd_answers_for_a_hoa_at_once(link: tuple[Netns, Netns], tmp_path: Path) -> None:
    r, h = link

    async def add() -> list[str]:
        async with AsyncIPRoute() as ipr:
            await neigh.add_proxy(ipr, HOA, "h0")
            await neigh.add_proxy(ipr, HOA, "h0")  # idempotent
            return [str(a) for a in await neigh.list_proxies(ipr, "h0")]

    assert h.arun(add) == [HOA]
    cap = Capture(r, "r0", str(tmp_path / "r0.pcap"), "icmp6")
    r.run("ping", "-6", "-c", "1", "-W", "1", HOA, check=False)  # only to trigger ND
    lladdr = wait_for(lambda: (e := r_neigh(r)) and e[0], 3, "R to resolve the HoA")
    pkts = cap.stop("frame.time_relative", "icmpv6.type", "eth.src")
    assert lladdr == h.mac("h0")
    ns_t = next(float(p[0]) for p in pkts if p[1] == "135")
    na = next(p for p in pkts if p[1] == "136")
    assert na[2] == h.mac("h0")
    assert float(na[0]) - ns_t < MAX_PROXY_ANSWER


def test_removed_proxy_no_longer_answers(link: tuple[Netns, Netns]) -> None:
    r, h = link

    async def remove() -> tuple[bool, bool, list[object]]:
        async with AsyncIPRoute() as ipr:
            first = await neigh.del_proxy(ipr, HOA, "h0")
            second = await neigh.del_proxy(ipr, HOA, "h0")
            return first, second, list(await neigh.list_proxies(ipr, "h0"))

    assert h.arun(remove) == (True, False, [])
    r.run("ip", "-6", "neigh", "flush", "dev", "r0")
    r.run("ping", "-6", "-c", "1", "-W", "1", HOA, check=False)

    # the kernel keeps trying (INCOMPLETE), then gives up (FAILED); it never learns a MAC
    def failed() -> bool:
        e = r_neigh(r)
        return e is None or bool(e[1] & NUD_FAILED)

    wait_for(failed, 6, "resolution of the HoA to fail")
    entry = r_neigh(r)
    assert entry is None or entry[0] is None


def test_permanent_neighbour_entries(link: tuple[Netns, Netns]) -> None:
    _, h = link

    async def body() -> None:
        async with AsyncIPRoute() as ipr:
            await neigh.set_permanent(ipr, "fe80::5d1f", "02:5D:1F:00:00:01", "h0")
            assert await neigh.get_neigh(ipr, "fe80::5d1f", "h0") == (
                "02:5d:1f:00:00:01",
                NUD_PERMANENT,
            )
            await neigh.set_permanent(ipr, "fe80::5d1f", "02:5d:1f:00:00:02", "h0")
            assert await neigh.get_neigh(ipr, "fe80::5d1f", "h0") == (
                "02:5d:1f:00:00:02",
                NUD_PERMANENT,
            )
            assert await neigh.del_neigh(ipr, "fe80::5d1f", "h0") is True
            assert await neigh.del_neigh(ipr, "fe80::5d1f", "h0") is False
            with pytest.raises(KernelConfigError, match="lladdr='zz'"):
                await neigh.set_permanent(ipr, "fe80::5d1f", "zz", "h0")
            with pytest.raises(KernelConfigError, match="dev='nope0'"):
                await neigh.add_proxy(ipr, HOA, "nope0")

    h.arun(body)


def test_sysctls_are_per_namespace_and_checked(link: tuple[Netns, Netns]) -> None:
    _, h = link
    root_before = Path("/proc/sys/net/ipv6/conf/all/forwarding").read_text()

    async def body() -> None:
        sysctl.set_conf("h0", "accept_ra", 2)
        assert sysctl.get_conf("h0", "accept_ra") == "2"
        assert sysctl.get_conf("all", "forwarding") == "1"
        assert sysctl.get_neigh("h0", "proxy_delay") == "0"
        with pytest.raises(KernelConfigError, match="dev='nope0'"):
            sysctl.set_conf("nope0", "forwarding", 1)
        with pytest.raises(KernelConfigError, match="key='no_such_key'"):
            sysctl.set_conf("h0", "no_such_key", 1)
        with pytest.raises(KernelConfigError, match=re.escape("dev='../x'")):
            sysctl.get_conf("../x", "forwarding")

    h.arun(body)
    assert Path("/proc/sys/net/ipv6/conf/all/forwarding").read_text() == root_before
