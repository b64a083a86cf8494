"""What the controller logic knows of each uplink at run time.

Owns: `UplinkRuntime` (link state from OpenFlow port status, CoA and access router from the
agent, measured rate from port counters) and `PortCounters`, the port-stats reading the shell
passes in.
Must not: decide where flows go (the policy engine and sdnmip/controller/logic.py do).
"""

from __future__ import annotations

from dataclasses import dataclass
from ipaddress import IPv6Address

from sdnmip.controller.rules import Egress
from sdnmip.core.types import UplinkView


@dataclass(frozen=True, slots=True)
class PortCounters:
    port_no: int
    rx_bytes: int
    tx_bytes: int


@dataclass(slots=True)
class UplinkRuntime:
    name: str
    link_up: bool = True  # OpenFlow port status of the physical port
    agent_up: bool = False  # the agent's view: unusable until it reports a CoA
    reported: bool = False  # the agent has reported this uplink since the controller started
    coa: IPv6Address | None = None
    router_mac: str | None = None
    rate_bps: float = 0.0  # both directions, over the last port-stats interval
    rx_bytes: int | None = None  # the physical port's counters at the last reading
    tx_bytes: int | None = None
    last_bytes: int = -1
    last_at: float = 0.0

    @property
    def usable(self) -> bool:
        """New flows may be placed here."""
        return self.link_up and self.agent_up and self.coa is not None

    @property
    def dead(self) -> bool:
        """Known to be down: its flows must move. An uplink the agent has not reported yet (just
        after a controller restart) is not usable but not dead: its flows stay put."""
        return not self.link_up or (self.reported and not self.usable)

    def egress(self) -> Egress | None:
        """Where direct-mode packets go: None until both CoA and router are known."""
        if self.coa is None or self.router_mac is None:
            return None
        return Egress(self.coa, self.router_mac)

    def view(self) -> UplinkView:
        return UplinkView(
            name=self.name, up=self.link_up and self.agent_up, coa=self.coa, rate_bps=self.rate_bps
        )

    def count(self, now: float, total_bytes: int) -> bool:
        """A port counter reading; True if the rate changed. A counter reset starts afresh."""
        changed = False
        if self.last_bytes >= 0 and now > self.last_at and total_bytes >= self.last_bytes:
            self.rate_bps = (total_bytes - self.last_bytes) * 8 / (now - self.last_at)
            changed = True
        self.last_bytes, self.last_at = total_bytes, now
        return changed
