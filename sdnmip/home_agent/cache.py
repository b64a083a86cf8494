"""The Home Agent's binding cache: RFC 6275 §9.5.1, §10.3.1, §10.3.2 and RFC 4285, as pure logic.

Owns: one binding per Home Address (CoA, owner NAI, last accepted sequence number and replay
timestamp, granted lifetime, expiry), registrations waiting for Duplicate Address Detection, the
replay "tombstones" of recently removed bindings, and every decision about a received Binding
Update: which status the Binding Acknowledgement carries, which lifetime is granted, when the
binding route, proxy ND and persisted row change. Also the stateless answers that depend on the
bindings: Binding Errors (RFC 6275 §9.2, §9.3.1), Mobile Prefix Advertisements (§10.6.2) and Home
Agent Address Discovery replies (§10.5).

Must not: do I/O, read clocks (every entry point takes `now`, a monotonic time in seconds, and
BUs carry the HA's wall clock for RFC 4285 §6), hold keys (BAs name the NAI whose key signs them),
or know anything of flows. The shell (`daemon.py`) performs the returned actions in order.

Decisions, in the order they are checked for a BU (each refusal changes nothing):
1. RFC 4285 §5: the BU must name a known NAI and carry a valid MN-HA authenticator -> else 146
   (MIPV6-AUTH-FAIL), unsigned (the HA holds no key the sender has proven).
2. RFC 4285 §6: it must carry a replay-protection timestamp -> else 145 (MIPV6-MESG-ID-REQD); the
   timestamp must be within `replay_window` of the HA's clock and newer than the last one
   accepted for this NAI and HoA -> else 144 (MIPV6-ID-MISMATCH) carrying the HA's own time so
   that the MN can resynchronise. From here on every BA is signed with the NAI's key.
3. RFC 6275 §10.3.1: H must be set (this HA accepts no correspondent registrations) -> else 139
   if the HoA holds a home registration, 129 otherwise; the HoA must lie in a served home prefix
   -> else 132, and must not be a reserved anycast address of it (RFC 2526) -> else 129.
4. A HoA bound (or under DAD) for another NAI is refused without change: a registration gets 134
   (the address is in use on the home link: the HA defends it for its owner, exactly as a real
   DAD would find; the MN's reaction, picking another HoA, is the right one), a deregistration
   133 (this HA holds no binding of that MN for the HoA, RFC 6275 §10.3.2).
5. RFC 6275 §9.5.1: with a binding, the sequence number must be greater modulo 2**16 than the last
   accepted one -> else 135, the BA carrying the last accepted number.
6. Deregistration (lifetime 0 or CoA == HoA, §10.3.2) removes the binding (133 if none); a first
   registration runs DAD (§10.3.1) and is answered when it ends (134 on a duplicate); any other
   accepted registration replaces the binding's CoA (one route replacement) or just extends it.
Granted lifetime = min(requested, `max_lifetime`, the home prefix's valid lifetime) (§10.3.1),
with a Binding Refresh Advice (§6.2.4) at `refresh_advice` of it. A BA is sent when A is set or
the BU is refused (§9.5.1, §10.3.1).
"""

from __future__ import annotations

import heapq
from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass, field
from ipaddress import IPv6Address, IPv6Network
from typing import Final

from sdnmip.home_agent.authn import AuthVerdict
from sdnmip.mipv6.auth import ntp_timestamp, unix_time
from sdnmip.mipv6.icmpv6 import (
    HomeAgentAddressDiscoveryReply,
    MobilePrefixAdvertisement,
    PrefixInformation,
)
from sdnmip.mipv6.mh import BindingAcknowledgement, BindingError, BindingUpdate
from sdnmip.mipv6.options import (
    BindingRefreshAdvice,
    MobileNodeIdentifier,
    MobilityMessageReplayProtection,
    MobilityOption,
)
from sdnmip.mipv6.status import BindingAckStatus, BindingErrorStatus

SEQUENCE_MODULUS: Final = 1 << 16  # RFC 6275 §6.1.7: 16-bit Sequence #
_HALF: Final = SEQUENCE_MODULUS // 2
LIFETIME_UNIT: Final = 4  # RFC 6275 §6.1.7 / §6.2.4: lifetimes and refresh intervals in 4 s units
MAX_LIFETIME_UNITS: Final = 0xFFFF
INFINITE_PREFIX_LIFETIME: Final = 0xFFFFFFFF  # RFC 4861 §4.6.2
LINK_LOCAL_PREFIX: Final = IPv6Network("fe80::/64")
# RFC 2526 §2: in a 64-bit-IID prefix the reserved subnet anycast addresses are the IIDs
# fdff:ffff:ffff:ff80 .. fdff:ffff:ffff:ffff (the Home-Agents anycast, ID 0x7e, among them),
# plus the Subnet-Router anycast address (IID 0, RFC 4291 §2.6.1).
_ANYCAST_IID_LOW: Final = 0xFDFF_FFFF_FFFF_FF80
_ANYCAST_IID_HIGH: Final = 0xFDFF_FFFF_FFFF_FFFF
HOME_AGENTS_ANYCAST_ID: Final = 0x7E  # RFC 2526 §3
_IID_MASK: Final = (1 << 64) - 1

Status = BindingAckStatus


def seq_gt(x: int, y: int) -> bool:
    """x is greater than y modulo 2**16 (RFC 6275 §9.5.1)."""
    return 0 < (x - y) % SEQUENCE_MODULUS < _HALF


def home_agents_anycast(prefix: IPv6Network) -> IPv6Address:
    """RFC 2526 §2/§3: the Mobile IPv6 Home-Agents anycast address of a 64-bit-IID prefix."""
    return IPv6Address(int(prefix.network_address) | (_ANYCAST_IID_HIGH & ~0x7F) | 0x7E)


def is_reserved_anycast(address: IPv6Address, prefix: IPv6Network) -> bool:
    """Subnet-Router anycast or an RFC 2526 reserved subnet anycast address of `prefix`."""
    iid = int(address) & _IID_MASK
    if address == prefix.network_address:
        return True
    return prefix.prefixlen <= 64 and _ANYCAST_IID_LOW <= iid <= _ANYCAST_IID_HIGH


def link_local_of(hoa: IPv6Address) -> IPv6Address:
    """fe80::<IID of the HoA>, proxied too when the BU sets L (RFC 6275 §6.1.7, §10.3.1)."""
    return IPv6Address(int(LINK_LOCAL_PREFIX.network_address) | (int(hoa) & _IID_MASK))


# ------------------------------------------------------------------------------ configuration
@dataclass(frozen=True, slots=True)
class ServedPrefix:
    """A home prefix and its valid lifetime in seconds (None: infinite)."""

    prefix: IPv6Network
    valid_lifetime: float | None = None
    preferred_lifetime: float | None = None


@dataclass(frozen=True, slots=True)
class CacheConfig:
    """What the cache needs from ha.yaml."""

    ha_address: IPv6Address
    prefixes: tuple[ServedPrefix, ...]
    max_lifetime: float = 3600.0
    refresh_advice: float | None = 0.8
    replay_window: float = 7.0
    dad: bool = True

    def prefix_of(self, address: IPv6Address) -> ServedPrefix | None:
        for sp in self.prefixes:
            if address in sp.prefix:
                return sp
        return None


# ------------------------------------------------------------------------------ events
@dataclass(frozen=True, slots=True)
class BindingUpdateIn:
    """A received Binding Update with everything the cache needs about it.

    `src`: the IPv6 source; `careof`: the care-of address (the source, or the Alternate Care-of
    Address option); `home_address`: from the Home Address option, or the source when there is
    none (the MN at home); `wall`: the HA's Unix time when it arrived (RFC 4285 §6).
    """

    src: IPv6Address
    careof: IPv6Address
    home_address: IPv6Address
    has_home_address_option: bool
    bu: BindingUpdate
    auth: AuthVerdict
    wall: float


# ------------------------------------------------------------------------------ actions
@dataclass(frozen=True, slots=True)
class SendBindingAck:
    """Send `ba` from the HA to `dst`; with a type 2 routing header holding `home_address` when
    `rh2` (RFC 6275 §9.5.4); signed with the key of `sign_nai` (RFC 4285) unless None."""

    dst: IPv6Address
    home_address: IPv6Address
    rh2: bool
    ba: BindingAcknowledgement
    sign_nai: str | None


@dataclass(frozen=True, slots=True)
class SendBindingError:
    """RFC 6275 §6.1.9 Binding Error to `dst` (rate-limited by the shell, §9.3.3)."""

    dst: IPv6Address
    be: BindingError


@dataclass(frozen=True, slots=True)
class SendIcmp:
    """An ICMPv6 message from the HA to `dst` (with a type 2 routing header when `rh2` is set)."""

    dst: IPv6Address
    message: MobilePrefixAdvertisement | HomeAgentAddressDiscoveryReply
    rh2: IPv6Address | None = None


@dataclass(frozen=True, slots=True)
class StartDad:
    """Run DAD for `targets` on the home link on behalf of `home_address` (RFC 4862 §5.4)."""

    home_address: IPv6Address
    targets: tuple[IPv6Address, ...]


@dataclass(frozen=True, slots=True)
class CancelDad:
    home_address: IPv6Address


@dataclass(frozen=True, slots=True)
class InstallBinding:
    """Route `home_address` into a tunnel to `careof` (replacing the route to `old_careof`).

    `proxied` are the addresses to defend on the home link; when `new` the shell adds the proxy
    ND entries and sends the unsolicited NAs of RFC 6275 §10.4.1.
    """

    home_address: IPv6Address
    careof: IPv6Address
    old_careof: IPv6Address | None
    proxied: tuple[IPv6Address, ...]
    new: bool


@dataclass(frozen=True, slots=True)
class RemoveBinding:
    home_address: IPv6Address
    careof: IPv6Address
    proxied: tuple[IPv6Address, ...]


@dataclass(frozen=True, slots=True)
class BindingRecord:
    """A binding as persisted and as `sdnmip ha status` shows it; `remaining` in seconds."""

    home_address: IPv6Address
    careof: IPv6Address
    nai: str
    sequence: int
    lifetime: int
    remaining: float
    timestamp: int
    link_local: bool


@dataclass(frozen=True, slots=True)
class PersistBinding:
    record: BindingRecord


@dataclass(frozen=True, slots=True)
class ForgetBinding:
    home_address: IPv6Address


@dataclass(frozen=True, slots=True)
class Log:
    level: str
    message: str


Action = (
    SendBindingAck
    | SendBindingError
    | SendIcmp
    | StartDad
    | CancelDad
    | InstallBinding
    | RemoveBinding
    | PersistBinding
    | ForgetBinding
    | Log
)


# ------------------------------------------------------------------------------ state
@dataclass(slots=True)
class Binding:
    home_address: IPv6Address
    careof: IPv6Address
    nai: str
    sequence: int
    lifetime: int  # granted, seconds
    expires: float  # monotonic
    timestamp: int  # last accepted RFC 4285 §6 timestamp
    link_local: bool
    registered: float  # monotonic time of the first registration
    heap_at: float  # the earliest expiry-heap entry for this binding

    @property
    def proxied(self) -> tuple[IPv6Address, ...]:
        if self.link_local:
            return (self.home_address, link_local_of(self.home_address))
        return (self.home_address,)

    def record(self, now: float) -> BindingRecord:
        return BindingRecord(
            self.home_address,
            self.careof,
            self.nai,
            self.sequence,
            self.lifetime,
            max(0.0, self.expires - now),
            self.timestamp,
            self.link_local,
        )


@dataclass(slots=True)
class Pending:
    """A first registration waiting for DAD; `update` is the latest BU for it."""

    update: BindingUpdateIn
    nai: str
    started: float


@dataclass(slots=True)
class Counters:
    """What `sdnmip ha status` reports. `by_status` counts received BUs by the BA status they got
    (or would have got, when A was clear); stale BUs superseded during DAD count separately."""

    by_status: dict[int, int] = field(default_factory=dict)
    ba_sent: int = 0
    be_sent: int = 0
    dad_started: int = 0
    dad_failed: int = 0
    registrations: int = 0
    handovers: int = 0
    refreshes: int = 0
    deregistrations: int = 0
    expired: int = 0
    superseded_during_dad: int = 0
    dropped: int = 0
    aborted: int = 0
    mpa_sent: int = 0
    haad_replies: int = 0

    def as_dict(self) -> dict[str, object]:
        return {
            "bu_by_status": {str(k): v for k, v in sorted(self.by_status.items())},
            "ba_sent": self.ba_sent,
            "be_sent": self.be_sent,
            "dad_started": self.dad_started,
            "dad_failed": self.dad_failed,
            "registrations": self.registrations,
            "handovers": self.handovers,
            "refreshes": self.refreshes,
            "deregistrations": self.deregistrations,
            "expired": self.expired,
            "superseded_during_dad": self.superseded_during_dad,
            "dropped": self.dropped,
            "aborted": self.aborted,
            "mpa_sent": self.mpa_sent,
            "haad_replies": self.haad_replies,
        }


class BindingCache:
    """The binding cache and its RFC 6275 / RFC 4285 decisions (see the module docstring)."""

    def __init__(self, config: CacheConfig) -> None:
        self.config = config
        self.bindings: dict[IPv6Address, Binding] = {}
        self.pending: dict[IPv6Address, Pending] = {}
        self.counters = Counters()
        self._heap: list[tuple[float, int, IPv6Address]] = []
        self._tick = 0
        # (nai, hoa) -> last timestamp of a removed binding, kept for `replay_window` so that a
        # captured BU cannot re-create a binding the MN has just removed (RFC 4285 §6).
        self._tombstones: dict[tuple[str, IPv6Address], int] = {}
        self._tombstone_order: deque[tuple[float, tuple[str, IPv6Address], int]] = deque()

    # -------------------------------------------------------------------------- queries
    def __len__(self) -> int:
        return len(self.bindings)

    def get(self, home_address: IPv6Address) -> Binding | None:
        return self.bindings.get(home_address)

    def records(self, now: float) -> list[BindingRecord]:
        return [b.record(now) for b in self.bindings.values()]

    def next_deadline(self) -> float | None:
        """When `tick` has work: the earliest binding expiry (possibly early, never late)."""
        deadlines = []
        if self._heap:
            deadlines.append(self._heap[0][0])
        if self._tombstone_order:
            deadlines.append(self._tombstone_order[0][0])
        return min(deadlines) if deadlines else None

    # -------------------------------------------------------------------------- helpers
    def _granted(self, requested_units: int, prefix: ServedPrefix) -> int:
        """Lifetime units granted (RFC 6275 §10.3.1): no more than requested, than the
        configured maximum, or than the home prefix's remaining valid lifetime."""
        units = min(requested_units, int(self.config.max_lifetime) // LIFETIME_UNIT)
        if prefix.valid_lifetime is not None:
            units = min(units, int(prefix.valid_lifetime) // LIFETIME_UNIT)
        return max(0, min(units, MAX_LIFETIME_UNITS))

    def _refresh_units(self, lifetime_units: int) -> int | None:
        ratio = self.config.refresh_advice
        if ratio is None or lifetime_units == 0:
            return None
        units = int(lifetime_units * ratio)
        # RFC 6275 §6.2.4: the Refresh Interval MUST be less than the lifetime in the BA.
        return units if 0 < units < lifetime_units else None

    def _ack(
        self,
        update: BindingUpdateIn,
        status: int,
        *,
        sequence: int | None = None,
        lifetime_units: int = 0,
        signed: bool = True,
        ha_timestamp: bool = False,
        out: list[Action],
    ) -> None:
        """Count the BU under `status` and, when A is set or it is refused, send the BA."""
        c = self.counters
        c.by_status[status] = c.by_status.get(status, 0) + 1
        if not (update.bu.ack or status >= Status.REASON_UNSPECIFIED):
            return
        opts: list[MobilityOption] = []
        if status < Status.REASON_UNSPECIFIED:
            refresh = self._refresh_units(lifetime_units)
            if refresh is not None:
                opts.append(BindingRefreshAdvice(refresh))
        nai = update.auth.nai
        if nai is not None:
            opts.append(MobileNodeIdentifier.from_nai(nai))  # RFC 4283: echoed in the BA
        ts = update.auth.timestamp
        if ha_timestamp:
            # RFC 4285 §6: on a mismatch the HA tells the MN its own time.
            opts.append(MobilityMessageReplayProtection(ntp_timestamp(update.wall)))
        elif ts is not None:
            opts.append(MobilityMessageReplayProtection(ts))
        ba = BindingAcknowledgement(
            status=status,
            key_management=False,
            sequence=update.bu.sequence if sequence is None else sequence,
            lifetime=lifetime_units,
            options=tuple(opts),
        )
        # RFC 6275 §9.5.4: to the BU's source, with a type 2 routing header holding the HoA
        # unless the source is the HoA itself (the MN at home).
        rh2 = update.src != update.home_address
        sign = nai if signed and update.auth.ok else None
        out.append(SendBindingAck(update.src, update.home_address, rh2, ba, sign))
        c.ba_sent += 1

    def _last_timestamp(self, nai: str, hoa: IPv6Address) -> int | None:
        b = self.bindings.get(hoa)
        if b is not None and b.nai == nai:
            return b.timestamp
        p = self.pending.get(hoa)
        if p is not None and p.nai == nai and p.update.auth.timestamp is not None:
            return p.update.auth.timestamp
        return self._tombstones.get((nai, hoa))

    def _end(self, now: float, b: Binding) -> list[Action]:
        """A binding ends (deregistered or expired): out of the cache, its timestamp kept for
        the replay window, its data path and persisted record removed."""
        del self.bindings[b.home_address]
        self._bury(now, b)
        return [RemoveBinding(b.home_address, b.careof, b.proxied), ForgetBinding(b.home_address)]

    def _bury(self, now: float, b: Binding) -> None:
        key = (b.nai, b.home_address)
        self._tombstones[key] = b.timestamp
        self._tombstone_order.append((now + self.config.replay_window, key, b.timestamp))

    def _push_expiry(self, b: Binding) -> None:
        self._tick += 1
        heapq.heappush(self._heap, (b.expires, self._tick, b.home_address))
        b.heap_at = b.expires

    # -------------------------------------------------------------------------- BUs
    def on_binding_update(self, now: float, update: BindingUpdateIn) -> list[Action]:
        """Process one BU; returns the actions to perform, in order."""
        out: list[Action] = []
        auth = update.auth
        hoa = update.home_address
        bu = update.bu
        # 1. RFC 4285 §5: authentication.
        if not auth.ok:
            reason = auth.failure.value if auth.failure is not None else "?"
            out.append(Log("warning", f"BU for {hoa} from {update.src} refused: {reason}"))
            self._ack(update, Status.MIPV6_AUTH_FAIL, signed=False, out=out)
            return out
        nai = auth.nai
        assert nai is not None  # an authenticated BU always names its NAI
        # 2. RFC 4285 §6: replay protection.
        if auth.timestamp is None:
            out.append(Log("warning", f"BU for {hoa} from {nai}: no replay protection option"))
            self._ack(update, Status.MIPV6_MESG_ID_REQD, out=out)
            return out
        skew = unix_time(auth.timestamp) - update.wall
        last = self._last_timestamp(nai, hoa)
        if abs(skew) > self.config.replay_window or (last is not None and auth.timestamp <= last):
            why = f"clock skew {skew:+.1f} s" if abs(skew) > self.config.replay_window else "replay"
            out.append(Log("warning", f"BU for {hoa} from {nai} refused: timestamp ({why})"))
            self._ack(update, Status.MIPV6_ID_MISMATCH, ha_timestamp=True, out=out)
            return out
        # 3. RFC 6275 §10.3.1: home registration, home subnet.
        binding = self.bindings.get(hoa)
        if not bu.home_registration:
            status = (
                Status.REGISTRATION_TYPE_CHANGE_DISALLOWED
                if binding is not None
                else Status.ADMINISTRATIVELY_PROHIBITED
            )
            out.append(Log("info", f"BU for {hoa} from {nai} without H flag refused ({status})"))
            self._ack(update, status, out=out)
            return out
        prefix = self.config.prefix_of(hoa)
        if prefix is None:
            self._ack(update, Status.NOT_HOME_SUBNET, out=out)
            return out
        if is_reserved_anycast(hoa, prefix.prefix) or hoa == self.config.ha_address:
            self._ack(update, Status.ADMINISTRATIVELY_PROHIBITED, out=out)
            return out
        careof = update.careof
        dereg = bu.lifetime == 0 or careof == hoa
        if not dereg and not _usable_careof(careof, self.config):
            # RFC 6275 §9.5.1: a care-of address that is not a routable unicast address.
            self.counters.dropped += 1
            out.append(Log("warning", f"BU for {hoa} from {nai}: unusable care-of {careof}"))
            return out
        # 4. Another MN's HoA.
        pending = self.pending.get(hoa)
        owner = binding.nai if binding is not None else pending.nai if pending else None
        if owner is not None and owner != nai:
            status = (
                Status.NOT_HOME_AGENT_FOR_THIS_MOBILE_NODE
                if dereg
                else Status.DUPLICATE_ADDRESS_DETECTION_FAILED
            )
            out.append(
                Log("warning", f"BU from {nai} for {hoa}, bound to another MN, refused ({status})")
            )
            self._ack(update, status, out=out)
            return out
        # 5. RFC 6275 §9.5.1: sequence number window.
        if binding is not None and not seq_gt(bu.sequence, binding.sequence):
            self._ack(
                update, Status.SEQUENCE_NUMBER_OUT_OF_WINDOW, sequence=binding.sequence, out=out
            )
            return out
        # 6. Deregistration, first registration, re-registration.
        if dereg:
            return self._deregister(now, update, binding, pending, out)
        units = self._granted(bu.lifetime, prefix)
        if binding is None:
            if pending is not None:
                return self._supersede(pending, update, out)
            if self.config.dad:
                self.pending[hoa] = Pending(update, nai, now)
                self.counters.dad_started += 1
                targets = (hoa, link_local_of(hoa)) if bu.link_local else (hoa,)
                out.append(StartDad(hoa, targets))
                return out
            return self._register(now, update, nai, units, out)
        return self._reregister(now, update, binding, units, out)

    def _supersede(
        self, pending: Pending, update: BindingUpdateIn, out: list[Action]
    ) -> list[Action]:
        """A BU for a HoA under DAD: no second DAD; the latest BU is answered when DAD ends."""
        old = pending.update.bu.sequence
        if update.bu.sequence == old or seq_gt(update.bu.sequence, old):
            pending.update = update
        self.counters.superseded_during_dad += 1
        return out

    def _deregister(
        self,
        now: float,
        update: BindingUpdateIn,
        binding: Binding | None,
        pending: Pending | None,
        out: list[Action],
    ) -> list[Action]:
        hoa = update.home_address
        if binding is None:
            if pending is not None:
                # The MN gave up the registration before DAD ended: drop it, and say (as RFC
                # 6275 §10.3.2 does for any deregistration without a binding) that none exists.
                del self.pending[hoa]
                out.append(CancelDad(hoa))
            self._ack(update, Status.NOT_HOME_AGENT_FOR_THIS_MOBILE_NODE, out=out)
            return out
        assert update.auth.timestamp is not None
        binding.timestamp = update.auth.timestamp
        self.counters.deregistrations += 1
        out += self._end(now, binding)
        out.append(Log("info", f"{hoa} deregistered by {binding.nai} (was at {binding.careof})"))
        self._ack(update, Status.ACCEPTED, out=out)
        return out

    def _register(
        self, now: float, update: BindingUpdateIn, nai: str, units: int, out: list[Action]
    ) -> list[Action]:
        hoa = update.home_address
        ts = update.auth.timestamp
        assert ts is not None
        b = Binding(
            home_address=hoa,
            careof=update.careof,
            nai=nai,
            sequence=update.bu.sequence,
            lifetime=units * LIFETIME_UNIT,
            expires=now + units * LIFETIME_UNIT,
            timestamp=ts,
            link_local=update.bu.link_local,
            registered=now,
            heap_at=0.0,
        )
        self.bindings[hoa] = b
        self._push_expiry(b)
        self._tombstones.pop((nai, hoa), None)
        self.counters.registrations += 1
        out.append(InstallBinding(hoa, b.careof, None, b.proxied, new=True))
        out.append(PersistBinding(b.record(now)))
        out.append(Log("info", f"{hoa} registered by {nai} at {b.careof} for {b.lifetime} s"))
        self._ack(update, Status.ACCEPTED, lifetime_units=units, out=out)
        return out

    def _reregister(
        self, now: float, update: BindingUpdateIn, b: Binding, units: int, out: list[Action]
    ) -> list[Action]:
        ts = update.auth.timestamp
        assert ts is not None
        old = b.careof
        b.sequence = update.bu.sequence
        b.timestamp = ts
        b.lifetime = units * LIFETIME_UNIT
        b.expires = now + b.lifetime
        if b.expires < b.heap_at:
            self._push_expiry(b)  # a shorter lifetime than before: the heap must know earlier
        if update.careof != old:
            b.careof = update.careof
            self.counters.handovers += 1
            out.append(InstallBinding(b.home_address, b.careof, old, b.proxied, new=False))
        else:
            self.counters.refreshes += 1
        out.append(PersistBinding(b.record(now)))
        self._ack(update, Status.ACCEPTED, lifetime_units=units, out=out)
        return out

    # -------------------------------------------------------------------------- DAD, timers
    def on_dad_result(self, now: float, home_address: IPv6Address, duplicate: bool) -> list[Action]:
        """DAD for `home_address` ended; answer the latest BU waiting for it."""
        out: list[Action] = []
        pending = self.pending.pop(home_address, None)
        if pending is None:
            return out  # cancelled meanwhile
        update = pending.update
        if duplicate:
            self.counters.dad_failed += 1
            out.append(Log("warning", f"DAD for {home_address} failed: in use on the home link"))
            self._ack(update, Status.DUPLICATE_ADDRESS_DETECTION_FAILED, out=out)
            return out
        prefix = self.config.prefix_of(home_address)
        assert prefix is not None  # checked before DAD started
        units = self._granted(update.bu.lifetime, prefix)
        return self._register(now, update, pending.nai, units, out)

    def tick(self, now: float) -> list[Action]:
        """Expire bindings whose lifetime has ended (RFC 6275 §10.3.1) and old tombstones."""
        out: list[Action] = []
        heap = self._heap
        while heap and heap[0][0] <= now:
            _, _, hoa = heapq.heappop(heap)
            b = self.bindings.get(hoa)
            if b is None:
                continue
            if b.expires > now:
                if b.heap_at <= now:
                    self._push_expiry(b)  # refreshed since: look again at its new expiry
                continue
            self.counters.expired += 1
            out += self._end(now, b)
            out.append(Log("info", f"{hoa} expired (was at {b.careof}, owner {b.nai})"))
        order = self._tombstone_order
        while order and order[0][0] <= now:
            _, key, ts = order.popleft()
            if self._tombstones.get(key) == ts:
                del self._tombstones[key]
        return out

    def abort(self, now: float, home_address: IPv6Address, reason: str) -> list[Action]:
        """The data path could not be set up for `home_address`: drop its binding (the shell
        answers the BU with status 130, Insufficient resources) and undo what was installed."""
        b = self.bindings.pop(home_address, None)
        if b is None:
            return []
        self.counters.aborted += 1
        return [
            RemoveBinding(home_address, b.careof, b.proxied),
            ForgetBinding(home_address),
            Log("error", f"binding of {home_address} dropped: {reason}"),
        ]

    def restore(self, now: float, records: Iterable[BindingRecord]) -> list[Action]:
        """Re-create persisted bindings after a restart; expired ones are forgotten."""
        out: list[Action] = []
        for r in records:
            if r.remaining <= 0 or self.config.prefix_of(r.home_address) is None:
                why = "expired" if r.remaining <= 0 else "outside the served home prefixes"
                out.append(ForgetBinding(r.home_address))
                out.append(Log("info", f"persisted binding of {r.home_address} dropped: {why}"))
                continue
            b = Binding(
                home_address=r.home_address,
                careof=r.careof,
                nai=r.nai,
                sequence=r.sequence,
                lifetime=r.lifetime,
                expires=now + r.remaining,
                timestamp=r.timestamp,
                link_local=r.link_local,
                registered=now,
                heap_at=0.0,
            )
            self.bindings[b.home_address] = b
            self._push_expiry(b)
            out.append(InstallBinding(b.home_address, b.careof, None, b.proxied, new=True))
        return out

    # -------------------------------------------------------------------------- other messages
    def on_unknown_mobility_message(
        self, src: IPv6Address, home_address: IPv6Address | None
    ) -> list[Action]:
        """RFC 6275 §9.2: an unrecognised MH Type gets a Binding Error, status 2, to the source."""
        be = BindingError(
            status=BindingErrorStatus.UNRECOGNIZED_MH_TYPE,
            home_address=home_address or IPv6Address(0),
        )
        return [SendBindingError(src, be)]

    def on_unbound_home_address(self, src: IPv6Address, home_address: IPv6Address) -> list[Action]:
        """Traffic using `home_address` (Home Address option, or reverse-tunnelled from `src`)
        for which no binding exists: Binding Error status 1 (RFC 6275 §9.3.1). When the HoA is
        bound (to another care-of address) the packet is silently dropped (§10.4.5)."""
        if home_address in self.bindings:
            self.counters.dropped += 1
            return []
        be = BindingError(
            status=BindingErrorStatus.UNKNOWN_BINDING_FOR_HOME_ADDRESS_OPTION,
            home_address=home_address,
        )
        return [SendBindingError(src, be)]

    def on_mobile_prefix_solicitation(
        self, src: IPv6Address, home_address: IPv6Address, identifier: int
    ) -> list[Action]:
        """RFC 6275 §10.6.2: a Mobile Prefix Advertisement, to a bound MN only.

        The MPS is not authenticated (RFC 4285 has no option for ICMPv6), so the HA answers only
        a HoA it has a binding for, at the care-of address of that binding: a third party can at
        most make the HA send the (public) home prefixes to a registered MN.
        """
        b = self.bindings.get(home_address)
        if b is None:
            return self.on_unbound_home_address(src, home_address)
        if b.careof != src:
            self.counters.dropped += 1
            return [Log("info", f"MPS for {home_address} from {src}, not its care-of address")]
        prefixes = tuple(
            PrefixInformation(
                prefix=sp.prefix.network_address,
                prefix_length=sp.prefix.prefixlen,
                on_link=True,
                autonomous=True,
                router_address=False,
                valid_lifetime=_prefix_lifetime(sp.valid_lifetime),
                preferred_lifetime=_prefix_lifetime(sp.preferred_lifetime),
            )
            for sp in self.config.prefixes
        )
        mpa = MobilePrefixAdvertisement(
            identifier=identifier, managed=False, other=False, prefixes=prefixes
        )
        self.counters.mpa_sent += 1
        return [SendIcmp(src, mpa, rh2=home_address)]

    def on_haad_request(self, src: IPv6Address, identifier: int) -> list[Action]:
        """RFC 6275 §10.5: the HA's address in reply to a request sent to the Home-Agents
        anycast address (this HA knows of no other home agent on the link)."""
        reply = HomeAgentAddressDiscoveryReply(
            identifier=identifier, home_agent_addresses=(self.config.ha_address,)
        )
        self.counters.haad_replies += 1
        return [SendIcmp(src, reply)]


def _prefix_lifetime(seconds: float | None) -> int:
    return INFINITE_PREFIX_LIFETIME if seconds is None else int(seconds)


def _usable_careof(careof: IPv6Address, config: CacheConfig) -> bool:
    """RFC 6275 §9.5.1: a care-of address must be a routable unicast address (and not ours)."""
    return not (
        careof.is_multicast
        or careof.is_unspecified
        or careof.is_loopback
        or careof.is_link_local
        or careof == config.ha_address
    )
