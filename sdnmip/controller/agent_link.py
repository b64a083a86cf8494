"""The controller's side of the agent RPC (sdnmip/mn_agent/api.py, over the agent's Unix socket).

Owns: two connections to the agent, each in its own green thread: a subscriber that turns the
agent's snapshot and events into the logic's events (`AgentTranslator`, pure) and hands them to
the app, and a sender that performs the logic's requests (claim, bind, release) in order from a
queue, so that no OpenFlow handler ever waits on the agent. Reconnects with back-off; after a
reconnect the fresh snapshot brings the logic up to date.
Must not: decide anything (a refused bind is reported to the logic as `BindFailed`, which
decides), touch OpenFlow, or use anything but the stdlib-socket client (sdnmip/mn_agent/client.py),
which eventlet's monkey-patching makes cooperative.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from ipaddress import IPv6Address
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sdnmip.controller.config import (
    AgentEvent,
    AgentHoas,
    AgentRequest,
    BindFailed,
    BindHoas,
    ClaimHoa,
    HoaBound,
    ReleaseHoa,
    SparePool,
    UplinkState,
)
from sdnmip.controller.packet import address
from sdnmip.mn_agent import api

if TYPE_CHECKING:
    from sdnmip.mn_agent.client import AgentClient

log = logging.getLogger("sdnmip.controller.agent")

# Roles in which the agent counts a HoA as the controller's (claimed, not yet released).
CLAIMED_ROLES = frozenset({api.Role.IN_USE, api.Role.FAILED})
RECONNECT_MIN = 0.1  # seconds; doubles up to RECONNECT_MAX while the agent is away
RECONNECT_MAX = 2.0
SEND_ATTEMPTS = 5  # a request is retried across this many reconnects before it is given up


class AgentTranslator:
    """Agent snapshot/events -> the logic's events (pure; remembers where each HoA is bound,
    because the agent's pool event lists spares without their uplinks). A snapshot ends with
    `AgentHoas`, the HoAs the agent counts as claimed, for the logic to reconcile its claims
    with (after a restart of either process). Addresses are handed
    over as packet.address objects (equal to IPv6Address, hashed once: the flow tables hash
    them many times per new flow)."""

    def __init__(self) -> None:
        self.bound_at: dict[IPv6Address, str] = {}
        self.spares: tuple[IPv6Address, ...] = ()

    def snapshot(self, snap: api.Snapshot) -> list[AgentEvent]:
        self.bound_at.clear()
        out: list[AgentEvent] = [_uplink(u) for u in snap.uplinks]
        for h in snap.hoas:
            out += self._binding(h)
        self.spares = tuple(address(h.packed) for h in snap.spares)
        out.append(self._pool())
        claimed = frozenset(address(h.hoa.packed) for h in snap.hoas if h.role in CLAIMED_ROLES)
        out.append(AgentHoas(claimed, tuple(self.bound_at.items())))
        return out

    def event(self, kind: api.EventKind, data: Any) -> list[AgentEvent]:
        """One agent event (kind and typed data, as sdnmip/mn_agent/client.py parses them)."""
        if kind == api.EventKind.SNAPSHOT:
            return self.snapshot(data)
        if kind == api.EventKind.UPLINK:
            return [_uplink(data)]
        if kind == api.EventKind.BINDING:
            out = self._binding(data)
            if data.hoa in self.spares and out:
                out.append(self._pool())  # a spare changed uplink
            return out
        if kind == api.EventKind.POOL:
            self.spares = tuple(address(h.packed) for h in data)
            return [self._pool()]
        if kind == api.EventKind.HOA_FREED:
            self.bound_at.pop(data, None)
            return []
        raise ValueError(f"unknown agent event {kind!r}")

    def _binding(self, h: api.HoaInfo) -> list[AgentEvent]:
        hoa = address(h.hoa.packed)
        if h.state == api.BindingState.BOUND and h.uplink is not None:
            self.bound_at[hoa] = h.uplink
            return [HoaBound(hoa, h.uplink)]
        if h.state == api.BindingState.FAILED and h.uplink is not None:
            self.bound_at.pop(hoa, None)
            return [BindFailed(hoa, h.uplink, f"binding failed (status {h.status})")]
        if h.state == api.BindingState.DEREGISTERED:
            self.bound_at.pop(hoa, None)
        return []

    def _pool(self) -> SparePool:
        return SparePool(tuple((h, self.bound_at.get(h)) for h in self.spares))


def _uplink(u: api.UplinkInfo) -> UplinkState:
    coa = None if u.coa is None else address(u.coa.packed)
    return UplinkState(u.name, u.usable, coa, u.router_mac)


@dataclass(frozen=True, slots=True)
class Call:
    """One RPC the sender performs for a logic request."""

    op: api.Op
    hoa: IPv6Address
    uplink: str | None = None
    reason: str = ""


def calls_for(request: AgentRequest) -> list[Call]:
    if isinstance(request, ClaimHoa):
        return [Call(api.Op.CLAIM, request.hoa)]
    if isinstance(request, BindHoas):
        return [Call(api.Op.BIND, hoa, uplink, request.reason) for hoa, uplink in request.bindings]
    if isinstance(request, ReleaseHoa):
        return [Call(api.Op.RELEASE, request.hoa)]
    raise TypeError(f"not an agent request: {request!r}")


def on_refusal(call: Call, err: api.RpcError) -> tuple[Call | None, AgentEvent | None]:
    """What to do when the agent refuses a call: another call to make, and/or an event for the
    logic. A claim of a spare the agent no longer offers (it raced with the pool) becomes an
    adoption of that address, so the flow keeps the HoA it already uses; a refused bind is
    reported to the logic as BindFailed."""
    if call.op == api.Op.CLAIM and err.code in (api.ErrorCode.NOT_SPARE, api.ErrorCode.UNKNOWN_HOA):
        return Call(api.Op.ADOPT, call.hoa), None
    if call.op == api.Op.BIND and call.uplink is not None:
        return None, BindFailed(call.hoa, call.uplink, f"agent refused: {err.message}")
    return None, None


class AgentLink:
    """The two green threads (subscriber, sender) and the request queue."""

    def __init__(self, socket_path: Path, timeout: float = 5.0) -> None:
        # Both after monkey-patching (the CLI creates the link after it).
        from os_ken.lib import hub

        from sdnmip.mn_agent import client

        self._hub = hub
        self._client = client
        self.path = socket_path
        self.timeout = timeout
        self.connected = False
        self.translator = AgentTranslator()
        self._queue: Any = hub.Queue()
        self._deliver: Callable[[AgentEvent], None] | None = None
        self._threads: list[Any] = []
        self._closing = False

    def start(self, deliver: Callable[[AgentEvent], None]) -> None:
        self._deliver = deliver
        self._threads = [self._hub.spawn(self._subscriber), self._hub.spawn(self._sender)]

    def submit(self, request: AgentRequest) -> None:
        for call in calls_for(request):
            self._queue.put(call)

    def close(self) -> None:
        self._closing = True
        for t in self._threads:
            self._hub.kill(t)

    def status(self) -> api.Snapshot:
        """The agent's current state (a short-lived connection; for the control socket)."""
        with self._client.AgentClient(self.path, self.timeout) as c:
            snap: api.Snapshot = c.status()
            return snap

    # -- threads --------------------------------------------------------------------------------

    def _subscriber(self) -> None:
        backoff = RECONNECT_MIN
        while not self._closing:
            client = self._client.AgentClient(self.path, self.timeout)
            try:
                client.connect()
                snap = client.subscribe()
                self.connected = True
                backoff = RECONNECT_MIN
                log.info("subscribed to the agent at %s", self.path)
                self._give(self.translator.snapshot(snap))
                while True:
                    ev = client.next_event(timeout=3600.0)
                    if ev is not None:
                        self._give(self.translator.event(ev.kind, ev.data))
            except self._client.AgentUnavailable as exc:
                if self.connected:
                    log.warning("lost the agent: %s", exc)
                self.connected = False
            finally:
                client.close()
            self._hub.sleep(backoff)
            backoff = min(RECONNECT_MAX, backoff * 2)

    def _give(self, events: list[AgentEvent]) -> None:
        assert self._deliver is not None
        for ev in events:
            self._deliver(ev)

    def _sender(self) -> None:
        client: AgentClient | None = None
        while not self._closing:
            call: Call | None = self._queue.get()
            backoff = RECONNECT_MIN
            attempts = 0
            while call is not None:
                current = call
                try:
                    if client is None:
                        client = self._client.AgentClient(self.path, self.timeout).connect()
                    call = self._perform(client, current)
                except self._client.AgentUnavailable as exc:
                    if client is not None:
                        client.close()
                        client = None
                    attempts += 1
                    if attempts >= SEND_ATTEMPTS:
                        log.error("giving up %s %s after %d attempts: %s", current.op, current.hoa,
                                  attempts, exc)  # fmt: skip
                        break
                    self._hub.sleep(backoff)
                    backoff = min(RECONNECT_MAX, backoff * 2)

    def _perform(self, client: AgentClient, call: Call) -> Call | None:
        """Make one call; returns a follow-up call (or None)."""
        try:
            if call.op == api.Op.CLAIM:
                client.claim(call.hoa)
            elif call.op == api.Op.ADOPT:
                client.adopt(call.hoa)
            elif call.op == api.Op.BIND:
                assert call.uplink is not None
                client.bind(call.hoa, call.uplink)
            elif call.op == api.Op.RELEASE:
                client.release(call.hoa)
            else:
                raise AssertionError(f"unexpected call {call}")
            log.debug("agent: %s %s %s done", call.op, call.hoa, call.uplink or "")
            return None
        except api.RpcError as err:
            follow, event = on_refusal(call, err)
            log.warning(
                "agent refused %s %s%s: %s%s",
                call.op,
                call.hoa,
                f" via {call.uplink}" if call.uplink else "",
                err,
                f"; trying {follow.op}" if follow else "",
            )
            if event is not None:
                self._give([event])
            return follow
