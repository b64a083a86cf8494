"""Value types shared across the pure core: flows, uplinks and policy decisions.

These are the contracts between the Flow Mapping Table / Figure 6 (flows.py, redirector),
the policy engine (policy.py) and the shells. Plain frozen dataclasses: no I/O, no clocks.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from ipaddress import IPv6Address

IPPROTO_TCP = 6
IPPROTO_UDP = 17
IPPROTO_ICMPV6 = 58


class Direction(enum.Enum):
    """Who opened the flow (patent Figure 4 vs Figure 5)."""

    OUTGOING = "outgoing"  # first packet seen leaving the MN (Figure 4)
    INCOMING = "incoming"  # first packet seen arriving at the MN (Figure 5)


class Mode(enum.Enum):
    """How a flow leaves the MN."""

    ANCHORED = "anchored"  # through the HA with a HoA: survives handover (the default)
    DIRECT = "direct"  # source rewritten to the uplink's CoA, no HA, no continuity


@dataclass(frozen=True, slots=True)
class FlowKey:
    """A transport flow as the MN's applications see it (local side = an address of the MN).

    For TCP/UDP the ports are the transport ports. For ICMPv6 (informational messages only) the
    "ports" are message types: local_port = the type the MN sends, remote_port = the type the
    remote sends (an echo the MN starts is 128/129, one the CN starts is 129/128), so that pings in
    both directions between the same two hosts are two flows. For other protocols they are 0.
    `local` is the address the application uses (normally the Primary HoA), not the flow's HoA.
    """

    proto: int
    local: IPv6Address
    local_port: int
    remote: IPv6Address
    remote_port: int


@dataclass(frozen=True, slots=True)
class FlowDescriptor:
    """Everything a rule may match on when a new flow is classified."""

    key: FlowKey
    direction: Direction
    flow_label: int = 0
    dscp: int = 0
    app_id: str | None = None


@dataclass(frozen=True, slots=True)
class UplinkView:
    """What the core knows of one uplink at decision time."""

    name: str
    up: bool
    coa: IPv6Address | None
    rate_bps: float = 0.0  # measured recent rate, both directions
    rtt_ms: float | None = None
    cost: float = 0.0  # operator-configured cost per byte (relative)

    @property
    def usable(self) -> bool:
        return self.up and self.coa is not None


@dataclass(frozen=True, slots=True)
class Decision:
    """Where a flow goes: the policy engine's answer for one flow."""

    uplink: str
    mode: Mode = Mode.ANCHORED
    dedicated_hoa: IPv6Address | None = None  # pin the flow to this HoA (must be held or spare)
    rule_id: str | None = None  # which rule decided, None for the default
    # The flow must be movable on its own: give it a HoA that no other live flow uses (and that
    # no later flow may join). Costs one spare HoA per flow; see sdnmip/core/redirector.py.
    own_hoa: bool = False
