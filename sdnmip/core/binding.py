"""One Binding Update List entry for a home registration, as a pure state machine (RFC 6275 §11).

Owns: the life of one Home Address's binding at the Home Agent: sequence numbers (§9.5.1),
BU retransmission with exponential back-off (§11.8), refresh before the lifetime ends (§11.7.1,
§6.2.4), deregistration with lifetime 0, and the reaction to every Binding Acknowledgement status
(§11.7.3, §6.1.8, RFC 4285), Binding Refresh Request (§11.7.4) and Binding Error (§11.3.6).
Events and actions are in binding_messages.py.
Must not: read a clock, do I/O, or build packets. The shell calls `handle(event, now)` and arms one
timer at `next_deadline`; on that timer it calls `handle(TimerFired(), now)`. Every call first
serves what fell due by `now`, so a late timer changes nothing. Times are seconds on
the caller's clock (monotonic, or wall clock if state is persisted across reboots).

Decisions (RFC 6275 leaves them open):
- A BA matches when its sequence number is that of any transmission of the current request
  (retransmissions carry new numbers, §11.8); a BA for a superseded request is ignored.
- A BU sent because an answer demanded it (135, 144/145, BRR, BE 1, a new bind) starts a fresh
  back-off; a BU sent because no answer came continues it. After the back-off reaches
  MAX_BINDACK_TIMEOUT a registration keeps retrying at that rate indefinitely (§11.8 "MAY continue")
  and reports NO_RESPONSE once; a deregistration gives up when no binding can still be alive.
- Rate limiting (MAX_UPDATE_RATE, §11.8) is per entry, i.e. per Home Address: §11.8 asks for a
  separate back-off per home address, and the HA must be able to take one BU per HoA at once on a
  link loss. The per-correspondent overall limit is left to the owner.
- Status 136-138 (nonces) and 139 are never expected on a home registration; they are treated as
  transient rejections (retry with back-off): 139 clears when the HA's non-home entry expires.
- Binding Error 2 is only reported: BEs are unauthenticated, so one must not kill a binding.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from ipaddress import IPv6Address
from typing import Any, TypeVar

from sdnmip.core.binding_messages import (
    BaReceived,
    BeReceived,
    Bind,
    BindingAction,
    BindingChanged,
    BindingEstablished,
    BindingEvent,
    BindingFailed,
    BindingLost,
    BindingRefreshed,
    BindingRemoved,
    BindingState,
    BindingTimers,
    BrrReceived,
    CoaLost,
    Deregister,
    DuplicateAddress,
    FailureReason,
    HaProtocolError,
    LossReason,
    PrefixDiscoveryNeeded,
    SendBu,
    TimerFired,
    quantise_lifetime,
)
from sdnmip.core.constants import BA_ACCEPTED_BELOW, MAX_LIFETIME, BaStatus, BeStatus
from sdnmip.core.seqno import check, next_seq, seq_gt

_T = TypeVar("_T")

# Rejections after which another BU to this HA for this HoA cannot succeed without a change by
# the owner or the operator (§11.7.3: "record that future Binding Updates SHOULD NOT be sent").
PERMANENT_REJECTIONS = frozenset(
    {
        BaStatus.ADMINISTRATIVELY_PROHIBITED,
        BaStatus.HOME_REGISTRATION_NOT_SUPPORTED,
        BaStatus.NOT_HOME_SUBNET,
        BaStatus.NOT_HOME_AGENT_FOR_THIS_MOBILE_NODE,
        BaStatus.DUPLICATE_ADDRESS_DETECTION_FAILED,
        BaStatus.MIPV6_AUTH_FAIL,
    }
)


# RFC 4285 §6: refusals of the replay-protection timestamp, answered by a BU with a fresh one.
REPLAY_REJECTIONS = frozenset({BaStatus.MIPV6_ID_MISMATCH, BaStatus.MIPV6_MESG_ID_REQD})


class _Want(enum.Enum):
    NONE = "none"
    BOUND = "bound"
    REMOVED = "removed"


@dataclass(slots=True)
class _Request:
    """One BU exchange: its transmissions share content, each has its own sequence number."""

    lifetime: float  # 0 = deregistration
    coa: IPv6Address
    first_registration: bool
    initial_timeout: float
    timeout: float  # wait after the next transmission before retransmitting
    send_at: float  # when the next transmission goes out
    may_be_bound_before: float | None  # the entry's upper bound when this request began
    sent: dict[int, float] = field(default_factory=dict)  # sequence -> time sent
    attempts: int = 0
    transient_reported: bool = False
    no_response_reported: bool = False


class BindingEntry:
    """The Binding Update List entry of one Home Address at the Home Agent."""

    def __init__(
        self,
        hoa: IPv6Address,
        *,
        last_sequence: int,
        timers: BindingTimers | None = None,
        link_local_compat: bool = False,
    ) -> None:
        """`last_sequence`: the last number used for this HoA (restored, or any value for a new
        one: a stale number is corrected by status 135). The first BU uses last_sequence + 1."""
        self.hoa = hoa
        self.timers = timers if timers is not None else BindingTimers()
        self.link_local_compat = link_local_compat
        self._last_seq = check(last_sequence)
        self._want = _Want.NONE
        self._coa: IPv6Address | None = None  # CoA of the wanted binding / deregistration
        self._lifetime = 0.0  # requested lifetime of the wanted binding
        self._bound_coa: IPv6Address | None = None  # CoA of the live binding at the HA
        self._granted = 0.0
        self._expires_at: float | None = None
        self._refresh_at: float | None = None
        self._may_be_bound_until: float | None = None  # upper bound on any binding at the HA
        self._req: _Request | None = None
        self._failure: BindingFailed | None = None
        self._last_sent_at: float | None = None
        self._last_status: int | None = None
        self._resyncs = 0
        self._replays = 0

    # --- views ---------------------------------------------------------------------------------

    @property
    def last_sequence(self) -> int:
        return self._last_seq

    @property
    def coa(self) -> IPv6Address | None:
        """The CoA the entry wants the binding on (or deregisters from)."""
        return self._coa

    @property
    def bound_coa(self) -> IPv6Address | None:
        return self._bound_coa

    @property
    def expires_at(self) -> float | None:
        return self._expires_at

    @property
    def refresh_at(self) -> float | None:
        return self._refresh_at

    @property
    def granted_lifetime(self) -> float:
        return self._granted

    @property
    def requested_lifetime(self) -> float:
        return self._lifetime

    @property
    def last_status(self) -> int | None:
        return self._last_status

    @property
    def failure(self) -> BindingFailed | None:
        return self._failure

    @property
    def outstanding(self) -> bool:
        """A BU exchange is in progress (sent and unanswered, or waiting for the rate limit)."""
        return self._req is not None

    def live(self, now: float) -> bool:
        """As far as the MN knows, the HA holds a binding for this HoA now."""
        return self._expires_at is not None and now < self._expires_at

    def may_be_bound(self, now: float) -> bool:
        """The HA might hold a binding now (a BU with a lifetime may have been accepted)."""
        return self._may_be_bound_until is not None and now < self._may_be_bound_until

    def state(self, now: float) -> BindingState:
        if self._failure is not None:
            return BindingState.FAILED
        if self._want is _Want.REMOVED:
            return BindingState.DEREGISTERING
        if self._want is _Want.NONE:
            return BindingState.IDLE
        if self._coa is None:
            return BindingState.SUSPENDED
        live = self.live(now) and self._bound_coa is not None
        if self._req is None:
            return BindingState.BOUND if live else BindingState.REGISTERING
        return BindingState.UPDATING if live else BindingState.REGISTERING

    @property
    def next_deadline(self) -> float | None:
        deadlines: list[float] = []
        if self._expires_at is not None:
            deadlines.append(self._expires_at)
        if self._req is not None:
            deadlines.append(self._req.send_at)
            if self._want is _Want.REMOVED and self._may_be_bound_until is not None:
                deadlines.append(self._may_be_bound_until)
        elif self._refresh_at is not None and self._can_register():
            deadlines.append(self._refresh_at)
        return min(deadlines) if deadlines else None

    # --- the state machine ---------------------------------------------------------------------

    def handle(self, event: BindingEvent, now: float) -> list[BindingAction]:
        out: list[BindingAction] = []
        # Serve whatever fell due first, so a shell whose timer runs late (or an event that races
        # with it) sees the same behaviour as one whose timer fired on time.
        for _ in range(4):
            deadline = self.next_deadline
            if deadline is None or deadline > now:
                break
            self._on_timer(now, out)
        else:
            raise AssertionError(f"binding timer for {self.hoa} makes no progress at {now}")
        match event:
            case TimerFired():
                pass
            case Bind(coa=coa, lifetime=lifetime):
                self._on_bind(coa, quantise_lifetime(lifetime), now, out)
            case Deregister(coa=coa):
                self._on_deregister(coa, now, out)
            case BaReceived():
                self._on_ba(event, now, out)
            case BrrReceived():
                # §11.7.4: answer with a BU; one already in flight answers it as well.
                if self._can_register() and self._req is None:
                    self._start(self._lifetime, now, out)
            case BeReceived(status=status):
                self._on_be(status, now, out)
            case CoaLost(coa=coa):
                self._on_coa_lost(coa, out)
        return out

    def _can_register(self) -> bool:
        return self._want is _Want.BOUND and self._failure is None and self._coa is not None

    def _on_timer(self, now: float, out: list[BindingAction]) -> None:
        if self._expires_at is not None and self._expires_at <= now:
            lost_coa = self._bound_coa
            self._clear_binding()
            if self._want is _Want.BOUND:
                out.append(BindingLost(self.hoa, lost_coa, LossReason.EXPIRED))
                if self._can_register() and self._req is None:
                    self._start(self._lifetime, now, out)
        req = self._req
        if req is not None and self._want is _Want.REMOVED and not self.may_be_bound(now):
            # No binding can be left at the HA: stop asking it to remove one.
            self._finish_removed(False, out)
            return
        if req is None and self._refresh_at is not None and self._refresh_at <= now:
            self._refresh_at = None
            if self._can_register():
                self._start(self._lifetime, now, out)
        if self._req is not None and self._req.send_at <= now:
            self._transmit(now, out)

    def _on_bind(
        self, coa: IPv6Address, lifetime: float, now: float, out: list[BindingAction]
    ) -> None:
        if self._failure is None and self._want is _Want.BOUND and self._coa == coa:
            same = self._lifetime == lifetime
            req = self._req
            if same and req is not None and req.lifetime > 0 and req.coa == coa:
                return  # that exact BU is already in flight
            if same and req is None and self.live(now) and self._bound_coa == coa:
                return  # already bound there
        self._failure = None
        self._want = _Want.BOUND
        self._coa = coa
        self._lifetime = lifetime
        self._resyncs = self._replays = 0
        self._start(lifetime, now, out)  # supersedes any request in flight

    def _on_deregister(self, coa: IPv6Address | None, now: float, out: list[BindingAction]) -> None:
        self._failure = None
        src = next((c for c in (coa, self._coa, self._bound_coa) if c is not None), None)
        if not self.may_be_bound(now) or src is None:
            # Nothing can be bound, or no address to send from: the HA's entry (if any)
            # lapses by itself at _may_be_bound_until.
            self._finish_removed(False, out)
            return
        req = self._req
        if self._want is _Want.REMOVED and req is not None and req.coa == src:
            return
        self._want = _Want.REMOVED
        self._coa = src
        self._resyncs = self._replays = 0
        self._start(0.0, now, out)

    def _on_coa_lost(self, coa: IPv6Address | None, out: list[BindingAction]) -> None:
        if coa is not None and coa != self._coa:
            return
        if self._want is _Want.REMOVED:
            self._finish_removed(False, out)
            return
        # Keep what is known of the HA's binding: it stays live until it expires.
        self._coa = None
        self._req = None
        self._refresh_at = None

    def _on_be(self, status: int, now: float, out: list[BindingAction]) -> None:
        if status != BeStatus.UNKNOWN_BINDING_FOR_HOME_ADDRESS_OPTION:
            out.append(HaProtocolError(self.hoa, status))
            return
        if self._want is not _Want.BOUND:
            return  # a deregistration's own BA settles it
        if self.live(now):
            lost_coa = self._bound_coa
            self._clear_binding()
            out.append(BindingLost(self.hoa, lost_coa, LossReason.HA_UNKNOWN_BINDING))
        if self._can_register() and self._req is None:
            self._start(self._lifetime, now, out)

    def _on_ba(self, ba: BaReceived, now: float, out: list[BindingAction]) -> None:
        req = self._req
        if req is None:
            return  # §11.7.3: no outstanding BU, discard
        if ba.status == BaStatus.SEQUENCE_NUMBER_OUT_OF_WINDOW:
            self._on_out_of_window(req, ba.sequence, now, out)
            return
        sent_at = req.sent.get(ba.sequence)
        if sent_at is None:
            return  # §11.7.3: does not match the outstanding BU (stale or superseded)
        self._last_status = ba.status
        if ba.status < BA_ACCEPTED_BELOW:
            self._on_accepted(req, ba, sent_at, now, out)
        else:
            self._on_rejected(req, ba.status, now, out)

    def _on_out_of_window(
        self, req: _Request, ha_seq: int, now: float, out: list[BindingAction]
    ) -> None:
        if seq_gt(self._last_seq, ha_seq):
            # The HA's last accepted number is below our newest BU, which it will accept:
            # this 135 answers an older transmission.
            return
        self._last_status = BaStatus.SEQUENCE_NUMBER_OUT_OF_WINDOW
        # §11.7.3: use the HA's number for the next BU (next = ha_seq + 1).
        self._last_seq = check(ha_seq)
        self._resyncs += 1
        if self._resyncs <= self.timers.max_sequence_resyncs:
            self._resend_now(req, now, out)
        elif not req.transient_reported:
            # An HA that keeps answering 135 gets the normal back-off, not a BU storm.
            req.transient_reported = True
            out.append(
                self._failed(
                    FailureReason.REJECTED, BaStatus.SEQUENCE_NUMBER_OUT_OF_WINDOW, permanent=False
                )
            )

    def _on_accepted(
        self, req: _Request, ba: BaReceived, sent_at: float, now: float, out: list[BindingAction]
    ) -> None:
        self._resyncs = self._replays = 0
        if req.lifetime == 0:
            self._finish_removed(True, out)
            return
        # §11.7.3: a shorter grant shortens the lifetime counted from when the BU was sent.
        granted = min(ba.lifetime, req.lifetime)
        expires = sent_at + granted
        if granted <= 0 or expires <= now:
            if not req.transient_reported:
                req.transient_reported = True
                out.append(self._failed(FailureReason.ZERO_LIFETIME, ba.status, permanent=False))
            return  # keep retrying on the back-off schedule
        was_live = self.live(now)
        old_coa = self._bound_coa
        self._bound_coa = req.coa
        self._granted = granted
        self._expires_at = expires
        refresh = sent_at + self.timers.refresh_fraction * granted
        if ba.refresh_interval is not None and ba.refresh_interval > 0:
            # §6.2.4: the HA's advice counts from now; take whichever comes first.
            refresh = min(refresh, now + ba.refresh_interval)
        self._refresh_at = max(now, min(refresh, expires))
        self._req = None
        if not was_live or old_coa is None:
            out.append(BindingEstablished(self.hoa, req.coa, granted, expires))
        elif old_coa != req.coa:
            out.append(BindingChanged(self.hoa, old_coa, req.coa, granted, expires))
        else:
            out.append(BindingRefreshed(self.hoa, req.coa, granted, expires))
        if ba.status == BaStatus.ACCEPTED_PREFIX_DISCOVERY_NECESSARY:
            out.append(PrefixDiscoveryNeeded(self.hoa))

    def _on_rejected(
        self, req: _Request, status: int, now: float, out: list[BindingAction]
    ) -> None:
        if status in REPLAY_REJECTIONS:
            # RFC 4285 §6: the timestamp was missing (145) or not close enough to the HA's clock
            # or not newer than the last one (144, the BA then carries the HA's time); the shell
            # re-synchronises to the HA's time and stamps every BU afresh, so resending is the
            # retry with a fresh timestamp.
            self._replays += 1
            if self._replays <= self.timers.max_replay_retries:
                self._resend_now(req, now, out)
                return
            self._give_up(req, FailureReason.REPLAY_PROTECTION, status, out)
            return
        if status in PERMANENT_REJECTIONS:
            self._give_up(req, FailureReason.REJECTED, status, out)
            return
        # 128, 130, 136-139 and unknown codes: retry on the back-off schedule (§11.7.3, §11.8).
        if not req.transient_reported:
            req.transient_reported = True
            out.append(self._failed(FailureReason.REJECTED, status, permanent=False))

    def _give_up(
        self, req: _Request, reason: FailureReason, status: int, out: list[BindingAction]
    ) -> None:
        if req.lifetime == 0:
            self._finish_removed(False, out)
            return
        self._req = None
        self._refresh_at = None
        if req.first_registration:
            # A permanent refusal answers every transmission of this request alike (for 134,
            # an accepted earlier copy would have made the later ones plain updates), so none
            # of them created a binding: deregistering it later needs no BU.
            self._may_be_bound_until = req.may_be_bound_before
        failure = self._failed(reason, status, permanent=True)
        self._failure = failure
        if status == BaStatus.DUPLICATE_ADDRESS_DETECTION_FAILED:
            out.append(DuplicateAddress(self.hoa))
        out.append(failure)

    def _failed(self, reason: FailureReason, status: int | None, permanent: bool) -> BindingFailed:
        return BindingFailed(self.hoa, reason, status, permanent)

    def _finish_removed(self, acknowledged: bool, out: list[BindingAction]) -> None:
        self._req = None
        self._want = _Want.NONE
        self._coa = None
        self._clear_binding()
        if acknowledged:
            self._may_be_bound_until = None
        out.append(BindingRemoved(self.hoa, acknowledged))

    def _clear_binding(self) -> None:
        self._bound_coa = None
        self._expires_at = None
        self._refresh_at = None
        self._granted = 0.0

    # --- transmissions -------------------------------------------------------------------------

    def _start(self, lifetime: float, now: float, out: list[BindingAction]) -> None:
        """Begin a new BU exchange (superseding any), and send at once if the rate allows."""
        coa = self._coa
        assert coa is not None, "a BU exchange needs a CoA"
        first = lifetime > 0 and not self.live(now)
        initial = (
            self.timers.initial_bindack_timeout_first_reg
            if first
            else self.timers.initial_bindack_timeout
        )
        self._refresh_at = None
        self._req = _Request(
            lifetime=lifetime,
            coa=coa,
            first_registration=first,
            initial_timeout=initial,
            timeout=initial,
            send_at=self._earliest_send(now),
            may_be_bound_before=self._may_be_bound_until,
        )
        if self._req.send_at <= now:
            self._transmit(now, out)

    def _resend_now(self, req: _Request, now: float, out: list[BindingAction]) -> None:
        """Send the same request again after an answer asked for it: fresh back-off."""
        req.timeout = req.initial_timeout
        req.send_at = self._earliest_send(now)
        if req.send_at <= now:
            self._transmit(now, out)

    def _earliest_send(self, now: float) -> float:
        if self._last_sent_at is None:
            return now
        return max(now, self._last_sent_at + 1.0 / self.timers.max_update_rate)

    def _transmit(self, now: float, out: list[BindingAction]) -> None:
        req = self._req
        assert req is not None
        # §11.8: every transmission, retransmissions included, uses a greater sequence number.
        seq = next_seq(self._last_seq)
        self._last_seq = seq
        req.sent[seq] = now
        req.attempts += 1
        self._last_sent_at = now
        if req.lifetime > 0:
            until = now + req.lifetime
            if self._may_be_bound_until is None or until > self._may_be_bound_until:
                self._may_be_bound_until = until
        out.append(
            SendBu(
                hoa=self.hoa,
                coa=req.coa,
                sequence=seq,
                lifetime=req.lifetime,
                link_local_compat=self.link_local_compat,
                first_registration=req.first_registration,
                attempt=req.attempts,
            )
        )
        req.send_at = now + req.timeout
        capped = req.timeout >= self.timers.max_bindack_timeout
        if capped and req.lifetime > 0 and req.attempts > 1 and not req.no_response_reported:
            req.no_response_reported = True
            out.append(self._failed(FailureReason.NO_RESPONSE, None, permanent=False))
        # §11.8: double the timeout on each retransmission, up to MAX_BINDACK_TIMEOUT.
        req.timeout = min(req.timeout * 2, self.timers.max_bindack_timeout)

    # --- persistence ---------------------------------------------------------------------------

    def to_dict(self) -> dict[str, Any]:
        """A JSON-able snapshot. Times are absolute on the caller's clock."""
        failure = self._failure
        return {
            "hoa": str(self.hoa),
            "last_sequence": self._last_seq,
            "want": self._want.value,
            "coa": _s(self._coa),
            "lifetime": self._lifetime,
            "bound_coa": _s(self._bound_coa),
            "granted": self._granted,
            "expires_at": self._expires_at,
            "may_be_bound_until": self._may_be_bound_until,
            "last_status": self._last_status,
            "link_local_compat": self.link_local_compat,
            "failure": None
            if failure is None
            else {"reason": failure.reason.value, "status": failure.status},
        }

    @classmethod
    def from_dict(
        cls, d: dict[str, Any], now: float, timers: BindingTimers | None = None
    ) -> BindingEntry:
        """Rebuild an entry saved by `to_dict`.

        A restored entry sends nothing by itself: nothing is known of the CoAs after a restart.
        What the HA may still hold is kept (expiry, the upper bound used by deregistration) and
        the wanted CoA is dropped, so the entry is SUSPENDED (or DEREGISTERING) until the owner
        calls Bind / Deregister with a current CoA. That Bind always sends a BU at once: a refresh
        with INITIAL_BINDACK_TIMEOUT if the binding may be live, else a first registration.
        Expiry times that lie beyond the longest possible lifetime (a clock that went backwards)
        are clamped.
        """
        entry = cls(
            IPv6Address(_field(d, "hoa", str)),
            last_sequence=_field(d, "last_sequence", int),
            timers=timers,
            link_local_compat=bool(d.get("link_local_compat", False)),
        )
        try:
            entry._want = _Want(_field(d, "want", str))
        except ValueError:
            choices = [w.value for w in _Want]
            raise ValueError(f"binding state field 'want' is not one of {choices}") from None
        entry._lifetime = float(d.get("lifetime", 0.0))
        if entry._want is _Want.BOUND:
            entry._lifetime = quantise_lifetime(entry._lifetime)
        status = d.get("last_status")
        entry._last_status = None if status is None else int(status)
        horizon = now + MAX_LIFETIME
        expires = _opt_time(d, "expires_at")
        bound = d.get("bound_coa")
        if expires is not None and expires > now and bound is not None:
            entry._bound_coa = IPv6Address(bound)
            entry._granted = min(float(d.get("granted", 0.0)), MAX_LIFETIME)
            entry._expires_at = min(expires, now + entry._granted, horizon)
        until = _opt_time(d, "may_be_bound_until")
        if until is not None and until > now:
            entry._may_be_bound_until = min(until, horizon)
        if entry._expires_at is not None:
            mbu = entry._may_be_bound_until
            entry._may_be_bound_until = max(mbu or entry._expires_at, entry._expires_at)
        fail = d.get("failure")
        if fail is not None:
            entry._failure = BindingFailed(
                entry.hoa, FailureReason(fail["reason"]), fail.get("status"), permanent=True
            )
        return entry


def _s(a: IPv6Address | None) -> str | None:
    return None if a is None else str(a)


def _field(d: dict[str, Any], name: str, kind: type[_T]) -> _T:
    value = d.get(name)
    if not isinstance(value, kind) or (isinstance(value, bool) and kind is not bool):
        raise ValueError(f"binding state field {name!r} must be a {kind.__name__}, got {value!r}")
    return value


def _opt_time(d: dict[str, Any], name: str) -> float | None:
    value = d.get(name)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ValueError(f"binding state field {name!r} must be a number or null, got {value!r}")
    return float(value)
