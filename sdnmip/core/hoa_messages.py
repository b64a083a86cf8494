"""Configuration, events, actions and views of the Home Address Table (sdnmip/core/hoa_table.py).

Owns: the value types the agent shell exchanges with `HomeAddressTable`. Refusal codes use the
same strings as `sdnmip.mn_agent.api.ErrorCode` where they mean the same thing, so the shell maps
them one to one.
Must not: hold state or logic beyond validation.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from ipaddress import IPv6Address, IPv6Network

from sdnmip.core.binding_messages import (
    BaReceived,
    BeReceived,
    BindingFailed,
    BindingState,
    BindingTimers,
    BrrReceived,
    DuplicateAddress,
    HaProtocolError,
    SendBu,
)
from sdnmip.core.iid import check_prefix


@dataclass(frozen=True, slots=True)
class HoaTableConfig:
    """What the table needs from the MN's validated config. Every bad value names its field."""

    primary: IPv6Address
    home_prefixes: tuple[IPv6Network, ...] = ()  # used until an MPA gives prefixes
    pool_size: int = 2  # spare, registered HoAs kept ready for new flows
    hold_time: float = 10.0  # s a released HoA stays registered before it is deregistered
    max_hoas: int = 16  # all HoAs, Primary included
    default_uplink: str | None = None  # spares are bound to this uplink's CoA when it has one
    uplink_order: tuple[str, ...] = ()  # preference when an uplink is lost (after the default)
    lifetime: float = 600.0  # requested binding lifetime, s
    max_parallel_registrations: int = 2  # first registrations for the pool at once
    max_dad_attempts: int = 3  # new interface ids tried after status 134 before reporting
    refill_backoff: float = 30.0  # s without new pool registrations after one was refused
    solicit_prefixes: bool = True  # send a Mobile Prefix Solicitation when none was learned
    timers: BindingTimers = field(default_factory=BindingTimers)

    def __post_init__(self) -> None:
        for p in self.home_prefixes:
            try:
                check_prefix(p)
            except ValueError as e:
                raise ValueError(f"home_prefixes: {e}") from None
        if self.pool_size < 0:
            raise ValueError("pool_size must be >= 0")
        if self.hold_time < 0:
            raise ValueError("hold_time must be >= 0")
        if self.max_hoas < 1:
            raise ValueError("max_hoas must be >= 1 (the Primary HoA)")
        if self.lifetime < 4:
            raise ValueError("lifetime must be at least 4 s (one Lifetime unit)")
        if self.max_parallel_registrations < 1:
            raise ValueError("max_parallel_registrations must be >= 1")
        if self.max_dad_attempts < 1:
            raise ValueError("max_dad_attempts must be >= 1")
        if self.refill_backoff < 0:
            raise ValueError("refill_backoff must be >= 0")


class HoaRole(enum.StrEnum):
    PRIMARY = "primary"  # first in the table, never released
    REGISTERING = "registering"  # first registration on its way into the pool
    SPARE = "spare"  # registered, published, unclaimed
    IN_USE = "in_use"  # claimed (or adopted) by the controller
    HELD = "held"  # released, registered, waiting for the hold time
    DEREGISTERING = "deregistering"  # lifetime-0 BU in flight; removed from the table after
    FAILED = "failed"  # an in-use HoA the HA refused; stays until released


class Refusal(enum.StrEnum):
    UNKNOWN_HOA = "unknown_hoa"
    NOT_SPARE = "not_spare"  # no longer (or not yet) a registered spare
    UNKNOWN_UPLINK = "unknown_uplink"
    UPLINK_DOWN = "uplink_down"
    PRIMARY = "primary"  # the Primary HoA cannot be released
    EXHAUSTED = "exhausted"  # max_hoas reached and nothing spare or held
    NO_SPARE = "no_spare"  # below max_hoas, but no registered spare yet (the pool is refilling)
    NOT_HOME_PREFIX = "not_home_prefix"  # adopt: the address is not on a home prefix
    RESERVED_IID = "reserved_iid"  # adopt: RFC 5453 reserved interface id


# --- events in ---------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class UplinkChanged:
    """Uplink `uplink` now has CoA `coa`, or none (address gone, carrier down)."""

    uplink: str
    coa: IPv6Address | None


@dataclass(frozen=True, slots=True)
class PrefixesLearned:
    """Home prefixes from a Mobile Prefix Advertisement (§11.4.3); replaces the learned set."""

    prefixes: tuple[IPv6Network, ...]


@dataclass(frozen=True, slots=True)
class Claim:
    """The controller takes `hoa` (a published spare) for a flow; None = any spare."""

    hoa: IPv6Address | None = None


@dataclass(frozen=True, slots=True)
class Adopt:
    """Register this specific HoA for the controller (a policy's dedicated HoA)."""

    hoa: IPv6Address


@dataclass(frozen=True, slots=True)
class BindTo:
    """Bind `hoa` to the CoA of `uplink` (move the flows that use it)."""

    hoa: IPv6Address
    uplink: str


@dataclass(frozen=True, slots=True)
class Release:
    """No flow uses `hoa` any more."""

    hoa: IPv6Address


@dataclass(frozen=True, slots=True)
class FromHa:
    """A verified BA / BE / BRR from the HA about `hoa`."""

    hoa: IPv6Address
    message: BaReceived | BeReceived | BrrReceived


@dataclass(frozen=True, slots=True)
class Tick:
    """`next_deadline` has passed."""


TableEvent = UplinkChanged | PrefixesLearned | Claim | Adopt | BindTo | Release | FromHa | Tick


# --- actions out -------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class SendBuVia:
    """Send `bu` out of `uplink` (whose CoA is `bu.coa`)."""

    uplink: str
    bu: SendBu


@dataclass(frozen=True, slots=True)
class SendMps:
    """Send a Mobile Prefix Solicitation (§11.4.1) for `hoa` from `coa` out of `uplink`."""

    uplink: str
    coa: IPv6Address
    hoa: IPv6Address


@dataclass(frozen=True, slots=True)
class HoaView:
    """What the table holds for one HoA (the RPC's HoaInfo is built from this)."""

    hoa: IPv6Address
    role: HoaRole
    state: BindingState
    uplink: str | None  # the uplink whose CoA the HoA is bound, or being bound, to
    coa: IPv6Address | None  # the CoA it is bound or being bound to
    bound_coa: IPv6Address | None  # the CoA the HA is known to hold now
    status: int | None  # last BA status
    lifetime: float  # granted lifetime, s
    expires_at: float | None


@dataclass(frozen=True, slots=True)
class HoaChanged:
    view: HoaView


@dataclass(frozen=True, slots=True)
class PoolChanged:
    """The registered spares, in the order they should be taken."""

    spares: tuple[IPv6Address, ...]


@dataclass(frozen=True, slots=True)
class HoaFreed:
    """`hoa` left the table (deregistered, or dropped after the HA refused it)."""

    hoa: IPv6Address


@dataclass(frozen=True, slots=True)
class Claimed:
    """Answer to Claim / Adopt: `hoa` is the caller's; it is bound (or binding) via `uplink`."""

    hoa: IPv6Address
    uplink: str | None
    coa: IPv6Address | None


@dataclass(frozen=True, slots=True)
class Refused:
    """A request was refused; nothing changed. The shell answers the RPC with this error."""

    request: Claim | Adopt | BindTo | Release
    reason: Refusal
    message: str


class AllocationProblem(enum.StrEnum):
    DAD = "dad"  # max_dad_attempts interface ids in a row failed DAD at the HA
    REJECTED = "rejected"  # the HA refused a new HoA (status given); refill paused
    NO_IID = "no_iid"  # the random source gave only reserved or taken ids


@dataclass(frozen=True, slots=True)
class AllocationFailed:
    """New HoAs cannot be made now (the pool stays short until refill_backoff has passed)."""

    problem: AllocationProblem
    status: int | None
    message: str


# Binding notifications that need no translation (they name their HoA) are passed through so the
# shell can log them: BindingFailed, DuplicateAddress, HaProtocolError.
TableAction = (
    SendBuVia
    | SendMps
    | HoaChanged
    | PoolChanged
    | HoaFreed
    | Claimed
    | Refused
    | AllocationFailed
    | BindingFailed
    | DuplicateAddress
    | HaProtocolError
)
