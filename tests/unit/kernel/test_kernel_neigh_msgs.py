"""Neighbour messages (RTM_NEWNEIGH/RTM_DELNEIGH) into typed monitor events, from wire bytes.

The messages are packed here by hand (linux/neighbour.h layout) and decoded by pyroute2's
marshal, as the monitor's socket does; no root, no namespace.
"""

from __future__ import annotations

import socket
import struct
from ipaddress import IPv6Address
from typing import Any

import pytest
from pyroute2.netlink.rtnl.marshal import MarshalRtnl

from sdnmip.kernel import links
from sdnmip.kernel.links import Neigh
from sdnmip.kernel.monitor import NeighEvent, event_from_msg

RTM_NEWNEIGH, RTM_DELNEIGH = 28, 29  # linux/rtnetlink.h
NDA_DST, NDA_LLADDR = 1, 2
AF_BRIDGE = 7
ROUTER_LL = IPv6Address("fe80::1")


def _attr(kind: int, value: bytes) -> bytes:
    raw = struct.pack("=HH", 4 + len(value), kind) + value
    return raw + b"\0" * (-len(raw) % 4)


def neigh_msg(
    msg_type: int,
    *,
    family: int = socket.AF_INET6,
    ifindex: int = 5,
    state: int = links.NUD_STALE,
    flags: int = 0,
    dst: bytes = ROUTER_LL.packed,
    lladdr: bytes | None = bytes.fromhex("02aabbccddee"),
) -> Any:
    """One rtnetlink message as the kernel sends it, decoded by pyroute2."""
    body = struct.pack("=B3xiHBB", family, ifindex, state, flags, 1)  # struct ndmsg, RTN_UNICAST
    body += _attr(NDA_DST, dst)
    if lladdr is not None:
        body += _attr(NDA_LLADDR, lladdr)
    data = struct.pack("=IHHII", 16 + len(body), msg_type, 0, 0, 0) + body
    [msg] = list(MarshalRtnl().parse(data))
    return msg


def test_a_router_entry_from_an_ra_becomes_a_typed_event() -> None:
    ev = event_from_msg(neigh_msg(RTM_NEWNEIGH, flags=links.NTF_ROUTER))
    assert ev == NeighEvent(
        "new", Neigh(5, ROUTER_LL, "02:aa:bb:cc:dd:ee", links.NUD_STALE, links.NTF_ROUTER)
    )
    assert isinstance(ev, NeighEvent) and ev.neigh.resolved and ev.neigh.router


def test_a_removed_entry_is_a_del_event() -> None:
    ev = event_from_msg(neigh_msg(RTM_DELNEIGH, state=links.NUD_FAILED, lladdr=None))
    assert isinstance(ev, NeighEvent) and ev.kind == "del"
    assert ev.neigh.lladdr is None and not ev.neigh.resolved


@pytest.mark.parametrize(
    ("state", "resolved"),
    [
        (links.NUD_REACHABLE, True),
        (links.NUD_STALE, True),
        (links.NUD_DELAY, True),
        (links.NUD_PROBE, True),
        (links.NUD_PERMANENT, True),
        (links.NUD_INCOMPLETE, False),
        (links.NUD_FAILED, False),
        (links.NUD_NOARP, False),
        (links.NUD_NONE, False),
    ],
)
def test_only_states_that_hold_a_learned_lladdr_count_as_resolved(
    state: int, resolved: bool
) -> None:
    ev = event_from_msg(neigh_msg(RTM_NEWNEIGH, state=state))
    assert isinstance(ev, NeighEvent) and ev.neigh.lladdr == "02:aa:bb:cc:dd:ee"
    assert ev.neigh.resolved is resolved


def test_an_entry_without_lladdr_is_unresolved_whatever_its_state() -> None:
    ev = event_from_msg(neigh_msg(RTM_NEWNEIGH, state=links.NUD_REACHABLE, lladdr=None))
    assert isinstance(ev, NeighEvent) and not ev.neigh.resolved


@pytest.mark.parametrize(
    "msg",
    [
        pytest.param({"family": socket.AF_INET, "dst": bytes([192, 0, 2, 1])}, id="ipv4"),
        pytest.param({"family": AF_BRIDGE, "dst": bytes(6)}, id="bridge-fdb"),
        pytest.param({"flags": links.NTF_PROXY, "lladdr": None}, id="proxy"),
    ],
)
def test_other_families_and_proxy_entries_are_ignored(msg: dict[str, Any]) -> None:
    assert event_from_msg(neigh_msg(RTM_NEWNEIGH, **msg)) is None
