"""The controller logic's settings and its messages to and from the MN agent.

Owns: `LogicConfig` (validated, immutable: addresses, bridge ports, timeouts, Figure 6 options),
the requests the logic emits for the agent (`ClaimHoa`, `BindHoas`, `ReleaseHoa`) and the events
it accepts from the agent (`SparePool`, `HoaBound`, `BindFailed`, `UplinkState`, `AgentHoas`).
Must not: read files or OVSDB (the shell resolves port names to ofports and MACs and builds
this), or know the RPC encoding (sdnmip/mn_agent/api.py; the shell translates).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from ipaddress import IPv6Address, IPv6Network

from sdnmip.core.redirector import PrimaryUse
from sdnmip.core.types import IPPROTO_TCP, IPPROTO_UDP

DEFAULT_IDLE_TIMEOUTS: Mapping[int, int] = {IPPROTO_TCP: 300, IPPROTO_UDP: 60}
DEFAULT_OTHER_IDLE_TIMEOUT = 30
DEFAULT_FIN_LINGER = 2.0  # seconds a TCP flow's rules stay after FIN both ways or RST
# Seconds an uplink that was lost must stay usable before flows go back to it: long enough
# that a link bouncing at the edge of coverage does not drag flows back and forth.
DEFAULT_FAILBACK_AFTER = 3.0


class ConfigError(ValueError):
    """A setting is wrong; the message names it."""


@dataclass(frozen=True, slots=True)
class UplinkPorts:
    """One uplink on the bridge: its physical port and the kernel-side internal port i<U>."""

    name: str
    phys_port: int  # ofport of the physical interface (veth/wlan towards the access router)
    tun_port: int  # ofport of i<U>, the internal port that holds U's CoA
    tun_mac: str  # MAC of i<U> (the kernel accepts frames addressed to it)


@dataclass(frozen=True, slots=True)
class LogicConfig:
    primary_hoa: IPv6Address
    home_prefixes: tuple[IPv6Network, ...]
    ha_addresses: tuple[IPv6Address, ...]
    hoa0_port: int
    hoa0_mac: str
    uplinks: tuple[UplinkPorts, ...]
    idle_timeouts: Mapping[int, int] = field(default_factory=lambda: dict(DEFAULT_IDLE_TIMEOUTS))
    other_idle_timeout: int = DEFAULT_OTHER_IDLE_TIMEOUT
    fin_linger: float = DEFAULT_FIN_LINGER
    primary_use: PrimaryUse = PrimaryUse.AVOID
    hoa_per_flow: bool = False
    failback_after: float | None = DEFAULT_FAILBACK_AFTER  # None: flows never go back

    def __post_init__(self) -> None:
        if not self.home_prefixes:
            raise ConfigError("home_prefixes: at least one home prefix is needed")
        if not any(self.primary_hoa in p for p in self.home_prefixes):
            raise ConfigError(f"primary_hoa: {self.primary_hoa} is in no home prefix")
        if not self.uplinks:
            raise ConfigError("uplinks: at least one uplink is needed")
        names = [u.name for u in self.uplinks]
        if len(set(names)) != len(names):
            raise ConfigError(f"uplinks: duplicate names in {names}")
        ports = [self.hoa0_port] + [p for u in self.uplinks for p in (u.phys_port, u.tun_port)]
        if len(set(ports)) != len(ports) or min(ports) < 1 or max(ports) > 0xFFFFFF00:
            raise ConfigError(f"ofports: must be distinct physical port numbers, got {ports}")
        for proto, seconds in self.idle_timeouts.items():
            if not 1 <= seconds <= 0xFFFF:
                raise ConfigError(f"idle_timeouts[{proto}]: {seconds} is not 1..65535 s")
        if not 1 <= self.other_idle_timeout <= 0xFFFF:
            raise ConfigError(f"other_idle_timeout: {self.other_idle_timeout} is not 1..65535 s")
        if not 0 <= self.fin_linger <= 60:
            raise ConfigError(f"fin_linger: {self.fin_linger} is not 0..60 s")
        fb = self.failback_after
        if fb is not None and not (isinstance(fb, int | float) and 0 <= fb <= 86_400):
            raise ConfigError(f"failback_after: {fb!r} is not 0..86400 s or null")

    def idle_timeout(self, proto: int) -> int:
        return self.idle_timeouts.get(proto, self.other_idle_timeout)

    def in_home(self, addr: IPv6Address) -> bool:
        return any(addr in p for p in self.home_prefixes)


# -- logic -> agent -----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ClaimHoa:
    """The logic took this spare from the published pool for a new flow."""

    hoa: IPv6Address


@dataclass(frozen=True, slots=True)
class BindHoas:
    """Bind each HoA to the CoA of the named uplink (one Binding Update each, sent together)."""

    bindings: tuple[tuple[IPv6Address, str], ...]
    reason: str


@dataclass(frozen=True, slots=True)
class ReleaseHoa:
    """No live flow uses this dynamic HoA any more: deregister it (BU with lifetime 0)."""

    hoa: IPv6Address


AgentRequest = ClaimHoa | BindHoas | ReleaseHoa

# -- agent -> logic -----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class SparePool:
    """Spare HoAs already registered at the HA, each with the uplink it is bound at."""

    spares: tuple[tuple[IPv6Address, str | None], ...]


@dataclass(frozen=True, slots=True)
class HoaBound:
    """A Binding Acknowledgement accepted: `hoa` is now bound at `uplink`'s CoA."""

    hoa: IPv6Address
    uplink: str


@dataclass(frozen=True, slots=True)
class BindFailed:
    """The agent gave up binding `hoa` at `uplink` (BA refused or timed out)."""

    hoa: IPv6Address
    uplink: str
    reason: str


@dataclass(frozen=True, slots=True)
class UplinkState:
    """What the agent knows of an uplink: link, CoA, and the access router's MAC."""

    name: str
    up: bool
    coa: IPv6Address | None
    router_mac: str | None = None


@dataclass(frozen=True, slots=True)
class AgentHoas:
    """The agent's Home Address Table as of its snapshot (on every (re)subscription): the HoAs
    it counts as claimed by the controller (in use, including those the HA refused) and the
    uplink each bound HoA is bound at. The logic reconciles its claims against it."""

    claimed: frozenset[IPv6Address]
    bound: tuple[tuple[IPv6Address, str], ...] = ()


AgentEvent = SparePool | HoaBound | BindFailed | UplinkState | AgentHoas
