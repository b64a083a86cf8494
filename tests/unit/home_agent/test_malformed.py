"""The HA shell and malformed packets: the real codec refuses them, the shell counts each one
(status counters: decode_errors), logs a flood as one warning per interval naming the sender and
what was wrong, and goes on. No socket: the receive handler is fed `Received` packets directly."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from ipaddress import IPv6Address
from typing import Any

import yaml

from sdnmip.home_agent.config import parse_config
from sdnmip.home_agent.daemon import HomeAgent
from sdnmip.home_agent.keys import KeyStore
from sdnmip.home_agent.sockets import Received
from sdnmip.lograte import REPORT_INTERVAL

HA_YAML = """
home_link: home0
address: "2001:db8:100::1"
home_prefixes: [{prefix: "2001:db8:100::/64"}]
keys_file: /nonexistent/ha-keys.yaml
database: /nonexistent/ha.sqlite
control_socket: /nonexistent/ha.sock
"""
MN = IPv6Address("2001:db8:2::10")


class StubLoop:
    """The two things the receive path asks of the event loop: the time, and a later call."""

    def __init__(self) -> None:
        self.t = 100.0
        self.soon: list[Any] = []

    def time(self) -> float:
        return self.t

    def call_soon(self, fn: Any) -> object:
        self.soon.append(fn)
        return object()


@dataclass
class FakeReceiver:
    proto: int
    queued: list[Received] = field(default_factory=list)

    def drain(self) -> list[Received]:
        out, self.queued = self.queued, []
        return out


def test_a_flood_of_malformed_mobility_headers_is_counted_logged_sparingly_and_survived(caplog):
    ha = HomeAgent(parse_config(yaml.safe_load(HA_YAML)), KeyStore({}))
    loop = StubLoop()
    ha._loop = loop  # type: ignore[assignment]
    bad = bytes([59, 1, 5, 0, 0, 0, 0])  # a BU's Mobility Header: 16 bytes said, 7 there
    sock = FakeReceiver(135)
    packet = Received(bad, MN, ha.ha, 2, 64)
    with caplog.at_level(logging.DEBUG, "sdnmip.home_agent"):
        sock.queued = [packet] * 500
        ha._on_mobility(sock)  # type: ignore[arg-type]
        loop.t += REPORT_INTERVAL + 1
        sock.queued = [packet]
        ha._on_mobility(sock)  # type: ignore[arg-type]
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 2, warnings
    assert "malformed" in warnings[0] and str(MN) in warnings[0]
    assert "next header 135" in warnings[0]
    assert "499 more" in warnings[1]
    assert ha.counters.decode_errors == 501
