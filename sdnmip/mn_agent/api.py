"""The agent <-> controller contract: typed messages of the agent's Unix-socket RPC.

Transport (see docs/architecture.md): newline-delimited JSON over a Unix stream socket.
- request:  {"id": 7, "op": "bind", "args": {"hoa": "...", "uplink": "lte"}}
- response: {"id": 7, "ok": true, "result": {...}}
            {"id": 7, "ok": false, "error": {"code": "unknown_hoa", "message": "..."}}
- event:    {"event": "binding", "data": {...}}   (only on a connection that sent `subscribe`)

Event payloads: snapshot -> Snapshot, uplink -> UplinkInfo, binding -> HoaInfo,
pool -> {"spares": [hoa, ...]}, hoa_freed -> {"hoa": hoa}.

The agent never blocks a request on the Home Agent: `bind` answers at once ("accepted") and the
outcome arrives later as a `binding` event. Spare Home Addresses are published ahead of time in
`pool` events so that the controller can take one synchronously (`claim`) for a new flow.

This module holds only value types and their JSON forms: no sockets, no asyncio, no eventlet, so
both the asyncio agent and the eventlet controller import it.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from ipaddress import IPv6Address, IPv6Network
from typing import Any

PROTOCOL_VERSION = 1


class Op(enum.StrEnum):
    HELLO = "hello"  # -> Hello
    STATUS = "status"  # -> Snapshot
    SUBSCRIBE = "subscribe"  # -> Snapshot, then events on this connection
    CLAIM = "claim"  # args: hoa (omitted: any spare) -> HoaInfo ; in-use (the pool refills)
    BIND = "bind"  # args: hoa, uplink -> {} ; outcome as a BindingEvent
    RELEASE = "release"  # args: hoa -> {} ; back to the pool or deregistered after hold time
    ADOPT = "adopt"  # args: hoa -> HoaInfo ; register a specific HoA (a policy's dedicated HoA)


class EventKind(enum.StrEnum):
    SNAPSHOT = "snapshot"
    UPLINK = "uplink"
    POOL = "pool"
    BINDING = "binding"
    HOA_FREED = "hoa_freed"


class ErrorCode(enum.StrEnum):
    BAD_REQUEST = "bad_request"  # malformed JSON, unknown op, missing/ill-typed argument
    UNKNOWN_HOA = "unknown_hoa"
    NOT_SPARE = "not_spare"  # claim of a HoA that is no longer a spare (raced)
    UNKNOWN_UPLINK = "unknown_uplink"
    UPLINK_DOWN = "uplink_down"
    PRIMARY = "primary"  # the Primary HoA cannot be released
    EXHAUSTED = "exhausted"  # max HoAs reached
    NO_SPARE = "no_spare"  # below max HoAs, but no registered spare yet (the pool is refilling)
    NOT_HOME_PREFIX = "not_home_prefix"  # adopt: the address is not on a home prefix
    RESERVED_IID = "reserved_iid"  # adopt: RFC 5453 reserved interface id


class BindingState(enum.StrEnum):
    REGISTERING = "registering"  # BU sent, no BA yet
    BOUND = "bound"  # BA status < 128 received, binding live at the HA
    UPDATING = "updating"  # live binding (to its old CoA) and a BU in flight: refresh or move
    SUSPENDED = "suspended"  # a binding is wanted but no uplink has a CoA to send from
    DEREGISTERING = "deregistering"  # lifetime-0 BU in flight
    FAILED = "failed"  # refused or no answer; `status` says why
    DEREGISTERED = "deregistered"  # nothing bound at the HA


class Role(enum.StrEnum):
    PRIMARY = "primary"
    REGISTERING = "registering"  # first registration on its way into the pool (not claimable)
    SPARE = "spare"
    IN_USE = "in_use"
    HELD = "held"  # released, waiting for the hold time before deregistration
    DEREGISTERING = "deregistering"  # being deregistered; `hoa_freed` follows
    FAILED = "failed"  # an in-use HoA the HA refused; stays until released


@dataclass(frozen=True, slots=True)
class UplinkInfo:
    name: str
    carrier: bool
    coa: IPv6Address | None
    router: IPv6Address | None = None  # link-local address of the default router
    router_mac: str | None = None

    @property
    def usable(self) -> bool:
        return self.carrier and self.coa is not None and self.router is not None

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "carrier": self.carrier,
            "coa": _s(self.coa),
            "router": _s(self.router),
            "router_mac": self.router_mac,
            "usable": self.usable,
        }

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> UplinkInfo:
        return cls(
            name=str(d["name"]),
            carrier=bool(d["carrier"]),
            coa=_a(d.get("coa")),
            router=_a(d.get("router")),
            router_mac=d.get("router_mac"),
        )


@dataclass(frozen=True, slots=True)
class HoaInfo:
    hoa: IPv6Address
    role: Role
    state: BindingState
    uplink: str | None  # the uplink whose CoA the HoA is bound (or being bound) to
    coa: IPv6Address | None
    status: int | None = None  # last BA status, None before the first BA
    lifetime: int = 0  # granted lifetime in seconds
    expires_in: float | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "hoa": str(self.hoa),
            "role": self.role.value,
            "state": self.state.value,
            "uplink": self.uplink,
            "coa": _s(self.coa),
            "status": self.status,
            "lifetime": self.lifetime,
            "expires_in": self.expires_in,
        }

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> HoaInfo:
        return cls(
            hoa=IPv6Address(d["hoa"]),
            role=Role(d["role"]),
            state=BindingState(d["state"]),
            uplink=d.get("uplink"),
            coa=_a(d.get("coa")),
            status=d.get("status"),
            lifetime=int(d.get("lifetime", 0)),
            expires_in=d.get("expires_in"),
        )


@dataclass(frozen=True, slots=True)
class Hello:
    version: int
    primary_hoa: IPv6Address
    home_agent: IPv6Address
    home_prefixes: tuple[IPv6Network, ...]

    def to_json(self) -> dict[str, Any]:
        return {
            "version": self.version,
            "primary_hoa": str(self.primary_hoa),
            "home_agent": str(self.home_agent),
            "home_prefixes": [str(p) for p in self.home_prefixes],
        }

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> Hello:
        return cls(
            version=int(d["version"]),
            primary_hoa=IPv6Address(d["primary_hoa"]),
            home_agent=IPv6Address(d["home_agent"]),
            home_prefixes=tuple(IPv6Network(p) for p in d["home_prefixes"]),
        )


@dataclass(frozen=True, slots=True)
class Snapshot:
    hello: Hello
    uplinks: tuple[UplinkInfo, ...]
    hoas: tuple[HoaInfo, ...]
    spares: tuple[IPv6Address, ...] = field(default=())
    # Signalling counters since the agent started, for the northbound's metrics:
    # {"bu_sent": {kind: n}, "ba_received": {status: n}, "be_received": {status: n}}.
    counters: dict[str, dict[str, int]] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return {
            "hello": self.hello.to_json(),
            "uplinks": [u.to_json() for u in self.uplinks],
            "hoas": [h.to_json() for h in self.hoas],
            "spares": [str(s) for s in self.spares],
            "counters": self.counters,
        }

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> Snapshot:
        return cls(
            hello=Hello.from_json(d["hello"]),
            uplinks=tuple(UplinkInfo.from_json(u) for u in d["uplinks"]),
            hoas=tuple(HoaInfo.from_json(h) for h in d["hoas"]),
            spares=tuple(IPv6Address(s) for s in d.get("spares", [])),
            counters={
                str(k): {str(n): int(c) for n, c in v.items()}
                for k, v in (d.get("counters") or {}).items()
            },
        )


class RpcError(Exception):
    """A refused request; `code` is machine-readable, `message` names what was wrong."""

    def __init__(self, code: ErrorCode, message: str) -> None:
        super().__init__(f"{code.value}: {message}")
        self.code = code
        self.message = message

    def to_json(self) -> dict[str, Any]:
        return {"code": self.code.value, "message": self.message}


def _s(a: IPv6Address | None) -> str | None:
    return None if a is None else str(a)


def _a(s: str | None) -> IPv6Address | None:
    return None if s is None else IPv6Address(s)
