"""The agent reports each uplink's default router MAC (`router_mac`, what the controller's direct
flows put in eth_dst), learned from the neighbour entry the router's RAs create, and follows a
change of it. The access routers' MACs are read in their namespaces, from the device that holds
the router's address (the fast profile has no link emulator in between)."""

from __future__ import annotations

import json
import secrets
from collections.abc import Iterator
from ipaddress import IPv6Address

import pytest

from sdnmip.mn_agent.api import EventKind, UplinkInfo
from sdnmip.mn_agent.client import AgentClient
from sdnmip.testbed import Testbed
from sdnmip.testbed.mn_service import MnAgentService
from tests.integration.helpers import poll

TESTBED_PROFILE = "fast"
RA_DEADLINE_S = 10.0  # radvd sends an unsolicited RA every 1-3 s (topology.yaml)


def router_port(tb: Testbed, uplink: str) -> tuple[str, str, IPv6Address]:
    """(device, MAC, link-local) of the access router's device that holds its address on
    `uplink`'s link, as its own namespace shows them."""
    end = tb.topology.access_router(uplink)
    address = end.addresses[0].split("/")[0]
    links = json.loads(tb.run(end.node, "ip", "-j", "addr", "show").stdout)
    [dev] = [d for d in links if any(a.get("local") == address for a in d["addr_info"])]
    [ll] = [a["local"] for a in dev["addr_info"] if a.get("scope") == "link"]
    return dev["ifname"], dev["address"], IPv6Address(ll)


@pytest.fixture(scope="module")
def agent(testbed: Testbed) -> Iterator[MnAgentService]:
    testbed.wait_coas()
    svc = MnAgentService(testbed, name="mn-agent-mac")
    svc.start()
    try:
        yield svc
    finally:
        if svc.alive():
            svc.stop()


def test_router_mac_is_the_access_routers_and_follows_a_change(
    testbed: Testbed, agent: MnAgentService
):
    want = {u: router_port(testbed, u) for u in ("wlan", "lte")}
    snap = agent.wait_status(
        "both routers' MACs", lambda s: all(u.router_mac is not None for u in s.uplinks)
    )
    assert {u.name: (u.router, u.router_mac) for u in snap.uplinks} == {
        u: (ll, mac) for u, (_, mac, ll) in want.items()
    }

    dev, old, ll = want["wlan"]
    new = "02:" + ":".join(f"{b:02x}" for b in secrets.token_bytes(5))
    assert new != old
    with agent.client() as c:
        c.subscribe()
        testbed.run(testbed.topology.access_router("wlan").node,
                    "ip", "link", "set", "dev", dev, "address", new)  # fmt: skip
        assert router_port(testbed, "wlan") == (dev, new, ll)  # the link-local stays
        seen = poll("wlan's new router MAC", lambda: _mac_event(c, "wlan", new), RA_DEADLINE_S)
    assert (seen.router, seen.usable) == (ll, True)
    [lte] = [u for u in agent.status().uplinks if u.name == "lte"]
    assert lte.router_mac == want["lte"][1] != new


def _mac_event(c: AgentClient, name: str, mac: str) -> UplinkInfo | None:
    ev = c.next_event(timeout=0.2)
    if ev is None or ev.kind is not EventKind.UPLINK:
        return None
    info = ev.data
    assert isinstance(info, UplinkInfo)
    return info if info.name == name and info.router_mac == mac else None
