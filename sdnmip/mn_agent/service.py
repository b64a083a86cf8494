"""The agent's logic shell around the Home Address Table: requests in, packets and events out.

Owns: one `HomeAddressTable` and everything the agent does with it that needs no asyncio: feeding
it uplink changes, RPC requests, verified signalling and timer ticks; persisting its state before
anything leaves (so a crash never forgets a sequence number it used or a HoA it handed out);
sending the BUs and MPSs it asks for; publishing what changed to the controller; and answering
the RPC with the API's types (core roles and binding states map onto `api.Role`/`BindingState`).
Must not: make decisions the core makes, read a clock other than the injected one, or do I/O
itself (the `Outputs` and the store do, so unit tests drive it on a mock clock).
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Callable
from ipaddress import IPv6Address
from typing import Any, Protocol

from sdnmip.core.binding_messages import (
    BaReceived,
    BeReceived,
    BindingFailed,
    BindingState,
    DuplicateAddress,
)
from sdnmip.core.binding_messages import HaProtocolError as CoreHaProtocolError
from sdnmip.core.hoa_messages import (
    Adopt,
    AllocationFailed,
    BindTo,
    Claim,
    Claimed,
    FromHa,
    HoaChanged,
    HoaFreed,
    HoaTableConfig,
    HoaView,
    PoolChanged,
    PrefixesLearned,
    Refused,
    Release,
    SendBuVia,
    SendMps,
    TableAction,
    TableEvent,
    Tick,
    UplinkChanged,
)
from sdnmip.core.hoa_table import HomeAddressTable
from sdnmip.core.iid import RandomIid
from sdnmip.lograte import LogThrottle
from sdnmip.mn.config import MnConfig
from sdnmip.mn_agent import api
from sdnmip.mn_agent.api import (
    ErrorCode,
    EventKind,
    Hello,
    HoaInfo,
    Op,
    RpcError,
    Snapshot,
    UplinkInfo,
)
from sdnmip.mn_agent.signalling import (
    Accepted,
    Credentials,
    Ignored,
    build_bu,
    build_mps,
    parse_inbound,
)

log = logging.getLogger("sdnmip.mn_agent")

_STATES = {
    BindingState.IDLE: api.BindingState.DEREGISTERED,
    BindingState.REGISTERING: api.BindingState.REGISTERING,
    BindingState.BOUND: api.BindingState.BOUND,
    BindingState.UPDATING: api.BindingState.UPDATING,
    BindingState.SUSPENDED: api.BindingState.SUSPENDED,
    BindingState.DEREGISTERING: api.BindingState.DEREGISTERING,
    BindingState.FAILED: api.BindingState.FAILED,
}


class Clock(Protocol):
    def now(self) -> float: ...


class Store(Protocol):
    def save(self, doc: dict[str, Any]) -> bool: ...


class Outputs(Protocol):
    def send(self, uplink: str, packet: bytes, what: str) -> None:
        """Send a whole IPv6 packet out of `uplink`'s kernel port (from its CoA)."""
        ...

    def publish(self, kind: EventKind, data: dict[str, Any]) -> None:
        """Tell the subscribed controllers."""
        ...


class AgentService:
    def __init__(
        self,
        cfg: MnConfig,
        cred: Credentials,
        *,
        clock: Clock,
        store: Store,
        out: Outputs,
        random_iid: RandomIid,
        random16: Callable[[], int],
        restored: dict[str, Any] | None = None,
    ) -> None:
        self.cfg = cfg
        self.cred = cred
        self.clock = clock
        self.store = store
        self.out = out
        self._random16 = random16
        table_cfg = cfg.table_config()
        now = clock.now()
        self.table = self._restore(restored, table_cfg, random_iid, now)
        self._uplinks: dict[str, UplinkInfo] = {
            u.name: UplinkInfo(u.name, False, None) for u in cfg.uplinks
        }
        self._reported: dict[str, IPv6Address | None] = {}
        self._timestamp_offset = 0.0  # HA clock - our clock, from a 144/145 BA (RFC 4285 §6)
        self._mps_identifier: int | None = None
        # BUs sent by kind, BAs and BEs received by status (the northbound's metrics).
        self.counters: dict[str, Counter[str]] = {
            "bu_sent": Counter(),
            "ba_received": Counter(),
            "be_received": Counter(),
            "ignored": Counter(),  # packets dropped, by Ignored.kind
        }
        # A flood of bad packets is one warning per LogThrottle interval per kind, not a line each.
        self._throttles = {"malformed": LogThrottle(), "unauthenticated": LogThrottle()}
        self.hello = Hello(
            version=api.PROTOCOL_VERSION,
            primary_hoa=cfg.home.primary_hoa,
            home_agent=cfg.home.agent,
            home_prefixes=cfg.home_prefixes,
        )
        self._save()

    def _restore(
        self,
        doc: dict[str, Any] | None,
        table_cfg: HoaTableConfig,
        random_iid: RandomIid,
        now: float,
    ) -> HomeAddressTable:
        if doc is None:
            return HomeAddressTable(table_cfg, random_iid)
        if doc.get("home_agent") != str(self.cred.home_agent) or doc.get("nai") != self.cred.nai:
            log.warning(
                "saved state is for home agent %s / %s, the config names %s / %s: starting "
                "afresh (the old bindings lapse at that HA when their lifetime ends)",
                doc.get("home_agent"),
                doc.get("nai"),
                self.cred.home_agent,
                self.cred.nai,
            )
            return HomeAddressTable(table_cfg, random_iid)
        table = HomeAddressTable.from_dict(doc["table"], table_cfg, random_iid, now)
        log.info("resumed %d HoAs from the saved state", len(table))
        return table

    # --- inputs --------------------------------------------------------------------------------

    def uplinks_changed(self, infos: list[UplinkInfo]) -> None:
        """New link state. The core hears of an uplink the first time and whenever the CoA it
        can bind to changes (a CoA counts only while the carrier is up and a router known)."""
        for info in infos:
            self._uplinks[info.name] = info
            self.out.publish(EventKind.UPLINK, info.to_json())
        for info in infos:
            coa = info.coa if info.usable else None
            if info.name not in self._reported or self._reported[info.name] != coa:
                self._reported[info.name] = coa
                log.info("uplink %s: %s", info.name, f"CoA {coa}" if coa else "unusable")
                self._run(UplinkChanged(info.name, coa))

    def tick(self) -> None:
        self._run(Tick())

    def packet(self, proto: int, data: bytes, src: IPv6Address, dst: IPv6Address) -> None:
        """One packet from a signalling socket."""
        result = parse_inbound(
            proto, data, src, dst, self.cred, mps_identifier=self._mps_identifier
        )
        if isinstance(result, Ignored):
            self.counters["ignored"][result.kind] += 1
            what = (
                f"dropped a {result.kind} packet (next header {proto}) from {src}: {result.reason}"
            )
            throttle = self._throttles.get(result.kind)
            line = None if throttle is None else throttle.note(self.clock.now(), what)
            if line is not None:
                log.warning("%s", line)
            else:
                log.debug("%s", what)
            return
        assert isinstance(result, Accepted)
        if result.ha_time is not None:
            self._timestamp_offset = result.ha_time - self.clock.now()
            log.warning(
                "the HA found our timestamps off; re-synchronised (offset %+.3f s)",
                self._timestamp_offset,
            )
        if isinstance(result.event, FromHa):
            msg = result.event.message
            if isinstance(msg, BaReceived):
                self.counters["ba_received"][str(msg.status)] += 1
            elif isinstance(msg, BeReceived):
                self.counters["be_received"][str(msg.status)] += 1
        if isinstance(result.event, PrefixesLearned):
            self._mps_identifier = None  # answered
            log.info("home prefixes from the HA: %s", ", ".join(map(str, result.event.prefixes)))
        self._run(result.event)

    def request(self, op: str, args: dict[str, Any]) -> dict[str, Any]:
        """One RPC request (all but `subscribe`, which the server handles with `snapshot`)."""
        match op:
            case Op.HELLO:
                return self.hello.to_json()
            case Op.STATUS:
                return self.snapshot().to_json()
            case Op.CLAIM:
                hoa = _opt_hoa(args)
                claimed = self._answer(Claim(hoa))
                assert claimed is not None
                return self._info(claimed.hoa).to_json()
            case Op.ADOPT:
                claimed = self._answer(Adopt(_hoa(args)))
                assert claimed is not None
                return self._info(claimed.hoa).to_json()
            case Op.BIND:
                uplink = args.get("uplink")
                if not isinstance(uplink, str):
                    raise RpcError(ErrorCode.BAD_REQUEST, "args.uplink: expected an uplink name")
                self._answer(BindTo(_hoa(args), uplink))
                return {}
            case Op.RELEASE:
                self._answer(Release(_hoa(args)))
                return {}
        raise RpcError(ErrorCode.BAD_REQUEST, f"op: unknown operation {op!r}")

    # --- views ---------------------------------------------------------------------------------

    @property
    def next_deadline(self) -> float | None:
        return self.table.next_deadline

    def snapshot(self) -> Snapshot:
        now = self.clock.now()
        return Snapshot(
            hello=self.hello,
            uplinks=tuple(self._uplinks.values()),
            hoas=tuple(self._to_info(v, now) for v in self.table.views(now)),
            spares=self.table.spares,
            counters={k: dict(v) for k, v in self.counters.items()},
        )

    def _info(self, hoa: IPv6Address) -> HoaInfo:
        now = self.clock.now()
        view = self.table.view(hoa, now)
        assert view is not None, f"{hoa} answered a request but is not in the table"
        return self._to_info(view, now)

    @staticmethod
    def _to_info(v: HoaView, now: float) -> HoaInfo:
        return HoaInfo(
            hoa=v.hoa,
            role=api.Role(v.role.value),
            state=_STATES[v.state],
            uplink=v.uplink,
            coa=v.coa,
            status=v.status,
            lifetime=int(v.lifetime),
            expires_in=None if v.expires_at is None else round(max(0.0, v.expires_at - now), 3),
        )

    # --- the one path through the core --------------------------------------------------------

    def _answer(self, event: Claim | Adopt | BindTo | Release) -> Claimed | None:
        """Run a request; a refusal becomes an RpcError. Claim and Adopt are answered with
        Claimed; BindTo and Release only with state changes (None)."""
        actions = self._run(event)
        for a in actions:
            if isinstance(a, Refused) and a.request == event:
                raise RpcError(ErrorCode(a.reason.value), a.message)
        claimed = [a for a in actions if isinstance(a, Claimed)]
        assert len(claimed) == (1 if isinstance(event, Claim | Adopt) else 0), actions
        return claimed[0] if claimed else None

    def _run(self, event: TableEvent) -> list[TableAction]:
        now = self.clock.now()
        actions = self.table.handle(event, now)
        # Write-ahead: the sequence numbers about to be used and the HoAs about to be handed
        # out are on disk before any BU leaves or any answer is given.
        self._save()
        for a in actions:
            self._perform(a, now)
        return actions

    def _perform(self, a: TableAction, now: float) -> None:
        match a:
            case SendBuVia(uplink=uplink, bu=bu):
                packet = build_bu(bu, self.cred, now + self._timestamp_offset)
                what = (
                    f"BU {bu.hoa} -> {bu.coa} seq {bu.sequence} lifetime {bu.lifetime:g}"
                    f" (attempt {bu.attempt})"
                )
                log.debug("%s via %s", what, uplink)
                self.out.send(uplink, packet, what)
                kind = (
                    "deregister"
                    if bu.lifetime == 0
                    else "retransmit"
                    if bu.attempt > 1
                    else "register"
                )
                self.counters["bu_sent"][kind] += 1
            case SendMps(uplink=uplink):
                if self._mps_identifier is None:
                    self._mps_identifier = self._random16() & 0xFFFF
                packet = build_mps(a, self.cred, self._mps_identifier)
                self.out.send(uplink, packet, f"MPS id {self._mps_identifier} for {a.hoa}")
            case HoaChanged(view=view):
                info = self._to_info(view, now)
                log.info(
                    "HoA %s: %s, %s via %s (CoA %s)",
                    info.hoa,
                    info.role.value,
                    info.state.value,
                    info.uplink,
                    info.coa,
                )
                self.out.publish(EventKind.BINDING, info.to_json())
            case PoolChanged(spares=spares):
                self.out.publish(EventKind.POOL, {"spares": [str(s) for s in spares]})
            case HoaFreed(hoa=hoa):
                log.info("HoA %s freed", hoa)
                self.out.publish(EventKind.HOA_FREED, {"hoa": str(hoa)})
            case AllocationFailed():
                log.warning("cannot make new HoAs (%s): %s", a.problem.value, a.message)
            case BindingFailed():
                level = logging.WARNING if a.permanent else logging.INFO
                log.log(level, "binding of %s: %s (status %s)", a.hoa, a.reason.value, a.status)
            case DuplicateAddress():
                log.warning("HoA %s is in use on the home link (status 134)", a.hoa)
            case CoreHaProtocolError():
                log.warning("the HA reported Binding Error %d for %s", a.status, a.hoa)
            case Claimed() | Refused():
                pass  # answers: the request path reads them

    def _save(self) -> None:
        self.store.save(
            {
                "home_agent": str(self.cred.home_agent),
                "nai": self.cred.nai,
                "table": self.table.to_dict(),
            }
        )


def _hoa(args: dict[str, Any]) -> IPv6Address:
    value = args.get("hoa")
    if not isinstance(value, str):
        raise RpcError(ErrorCode.BAD_REQUEST, "args.hoa: expected an IPv6 address")
    try:
        return IPv6Address(value)
    except ValueError:
        msg = f"args.hoa: {value!r} is not an IPv6 address"
        raise RpcError(ErrorCode.BAD_REQUEST, msg) from None


def _opt_hoa(args: dict[str, Any]) -> IPv6Address | None:
    return None if args.get("hoa") is None else _hoa(args)
