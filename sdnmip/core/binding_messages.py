"""Events, actions and timer settings of the binding state machine (sdnmip/core/binding.py).

Owns: the value types a shell exchanges with a `BindingEntry`: events in (bind, deregister, timer,
BA, BRR, BE, CoA lost), actions out (a BU to send with every field the codec needs, and
notifications for the owner), and `BindingTimers` with the RFC 6275 defaults.
Must not: hold state or logic beyond validation.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from ipaddress import IPv6Address

from sdnmip.core.constants import (
    INITIAL_BINDACK_TIMEOUT,
    INITIAL_BINDACK_TIMEOUT_FIRST_REG,
    LIFETIME_UNIT,
    MAX_BINDACK_TIMEOUT,
    MAX_LIFETIME_UNITS,
    MAX_UPDATE_RATE,
)


def quantise_lifetime(seconds: float) -> float:
    """A requested lifetime as the BU can carry it: whole 4-second units, 1..0xFFFF (§6.1.7)."""
    if seconds <= 0:
        raise ValueError(f"binding lifetime must be positive, got {seconds}")
    units = min(int(seconds // LIFETIME_UNIT), MAX_LIFETIME_UNITS)
    return max(units, 1) * LIFETIME_UNIT


# --- events in ---------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Bind:
    """Bind the HoA to `coa` for `lifetime` seconds (rounded down to 4 s units), or re-bind."""

    coa: IPv6Address
    lifetime: float


@dataclass(frozen=True, slots=True)
class Deregister:
    """Remove the binding (BU with lifetime 0), sent from `coa` or else the current CoA."""

    coa: IPv6Address | None = None


@dataclass(frozen=True, slots=True)
class TimerFired:
    """`next_deadline` has passed."""


@dataclass(frozen=True, slots=True)
class BaReceived:
    """A verified Binding Acknowledgement from the HA for this HoA (§6.1.8).

    `lifetime` and `refresh_interval` are in seconds (the codec multiplies the 4 s units);
    `refresh_interval` is the Binding Refresh Advice option (§6.2.4) when present.
    """

    status: int
    sequence: int
    lifetime: float
    refresh_interval: float | None = None


@dataclass(frozen=True, slots=True)
class BrrReceived:
    """A Binding Refresh Request from the HA for this HoA (§6.1.2, §11.7.4)."""


@dataclass(frozen=True, slots=True)
class BeReceived:
    """A Binding Error from the HA naming this HoA (§6.1.9, §11.3.6)."""

    status: int


@dataclass(frozen=True, slots=True)
class CoaLost:
    """The CoA the binding uses is gone (carrier down, address removed).

    With `coa` set, the event is ignored unless it names the CoA currently in use, so a late
    report about an old CoA cannot stop a newer binding.
    """

    coa: IPv6Address | None = None


BindingEvent = Bind | Deregister | TimerFired | BaReceived | BrrReceived | BeReceived | CoaLost


# --- actions out -------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class SendBu:
    """Send this Binding Update to the HA, from `coa`, with the Home Address option = `hoa`.

    Flags as RFC 6275 §11.7.1 asks for a home registration: A and H set; L only when the HoA's
    interface id equals the MN's link-local one; K clear (no IKE: RFC 4285 authentication).
    The codec must also carry `coa` in an Alternate Care-of Address option (§11.7.1) and the
    MN-HA authentication options. `lifetime` is in seconds, a multiple of 4 (0 = deregister).
    """

    hoa: IPv6Address
    coa: IPv6Address
    sequence: int
    lifetime: float
    ack: bool = True
    home_registration: bool = True
    link_local_compat: bool = False
    key_mgmt_mobility: bool = False
    first_registration: bool = False  # no binding known at the HA: the HA will run DAD
    attempt: int = 1  # 1 for the first transmission of a request, 2.. for retransmissions

    @property
    def lifetime_units(self) -> int:
        return int(self.lifetime // LIFETIME_UNIT)


@dataclass(frozen=True, slots=True)
class BindingEstablished:
    """The HA holds a binding for `hoa` where it held none (as far as the MN knew)."""

    hoa: IPv6Address
    coa: IPv6Address
    lifetime: float
    expires_at: float


@dataclass(frozen=True, slots=True)
class BindingChanged:
    """A live binding now points at another CoA (a handover of the flows on this HoA)."""

    hoa: IPv6Address
    old_coa: IPv6Address
    coa: IPv6Address
    lifetime: float
    expires_at: float


@dataclass(frozen=True, slots=True)
class BindingRefreshed:
    """A live binding was extended, same CoA."""

    hoa: IPv6Address
    coa: IPv6Address
    lifetime: float
    expires_at: float


@dataclass(frozen=True, slots=True)
class PrefixDiscoveryNeeded:
    """BA status 1 (§6.1.8): the owner should send a Mobile Prefix Solicitation (§11.4.1)."""

    hoa: IPv6Address


class FailureReason(enum.Enum):
    REJECTED = "rejected"  # a BA status >= 128, see `status`
    NO_RESPONSE = "no_response"  # back-off reached MAX_BINDACK_TIMEOUT without a BA (still trying)
    REPLAY_PROTECTION = "replay_protection"  # 144/145 repeated after fresh timestamps
    ZERO_LIFETIME = "zero_lifetime"  # accepted with a lifetime already over (still trying)


@dataclass(frozen=True, slots=True)
class BindingFailed:
    """A registration did not succeed. `permanent`: no more BUs until the owner binds again."""

    hoa: IPv6Address
    reason: FailureReason
    status: int | None
    permanent: bool


@dataclass(frozen=True, slots=True)
class DuplicateAddress:
    """BA status 134: the HoA is in use on the home link; the owner must form another one."""

    hoa: IPv6Address


class LossReason(enum.Enum):
    EXPIRED = "expired"  # lifetime ran out before a refresh was acknowledged
    HA_UNKNOWN_BINDING = "ha_unknown_binding"  # Binding Error status 1


@dataclass(frozen=True, slots=True)
class BindingLost:
    """The HA no longer holds the binding. The entry re-registers by itself when it can."""

    hoa: IPv6Address
    coa: IPv6Address | None
    reason: LossReason


@dataclass(frozen=True, slots=True)
class BindingRemoved:
    """Deregistration finished. `acknowledged`: the HA confirmed it; otherwise the binding is
    known to be gone or will lapse at the HA by itself (no CoA left, or no answer until then)."""

    hoa: IPv6Address
    acknowledged: bool


@dataclass(frozen=True, slots=True)
class HaProtocolError:
    """A Binding Error other than status 1 (e.g. 2: unrecognised MH type). Only reported."""

    hoa: IPv6Address
    status: int


BindingAction = (
    SendBu
    | BindingEstablished
    | BindingChanged
    | BindingRefreshed
    | PrefixDiscoveryNeeded
    | BindingFailed
    | DuplicateAddress
    | BindingLost
    | BindingRemoved
    | HaProtocolError
)


# --- configuration -----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class BindingTimers:
    """Timing knobs; defaults are the RFC's. Validated so a bad config names its field."""

    initial_bindack_timeout_first_reg: float = INITIAL_BINDACK_TIMEOUT_FIRST_REG
    initial_bindack_timeout: float = INITIAL_BINDACK_TIMEOUT
    max_bindack_timeout: float = MAX_BINDACK_TIMEOUT
    max_update_rate: float = MAX_UPDATE_RATE
    refresh_fraction: float = 0.75  # refresh at this fraction of the granted lifetime
    max_replay_retries: int = 3  # BUs resent at once after status 144/145 before giving up
    max_sequence_resyncs: int = 3  # consecutive immediate resends after status 135

    def __post_init__(self) -> None:
        for name in (
            "initial_bindack_timeout_first_reg",
            "initial_bindack_timeout",
            "max_bindack_timeout",
            "max_update_rate",
        ):
            if not getattr(self, name) > 0:
                raise ValueError(f"binding timer {name} must be positive")
        if self.max_bindack_timeout < max(
            self.initial_bindack_timeout, self.initial_bindack_timeout_first_reg
        ):
            raise ValueError("binding timer max_bindack_timeout is below an initial timeout")
        if not 0 < self.refresh_fraction < 1:
            raise ValueError("binding timer refresh_fraction must be in (0, 1)")
        if self.max_replay_retries < 0 or self.max_sequence_resyncs < 0:
            raise ValueError("binding retry limits must be >= 0")


class BindingState(enum.Enum):
    IDLE = "idle"  # nothing bound, nothing wanted
    REGISTERING = "registering"  # BU in flight, no live binding known
    BOUND = "bound"  # live binding to the wanted CoA, nothing in flight
    UPDATING = "updating"  # live binding, BU in flight (refresh or new CoA)
    SUSPENDED = "suspended"  # a binding is wanted but there is no CoA to send from
    DEREGISTERING = "deregistering"  # lifetime-0 BU in flight (or waiting for a CoA)
    FAILED = "failed"  # rejected permanently; no BU until the next Bind
