"""A small synchronous client of the agent's RPC (for the controller and for tests).

Owns: connecting to `<run_dir>/agent.sock`, sending requests, matching answers by `id`, and
buffering the events that arrive in between (on a subscribed connection events and answers
interleave), with typed results (`api.py`). Uses only the stdlib `socket` module, so that under
eventlet's monkey-patching (the os-ken controller) it cooperates with green threads unchanged.
Must not: retry or reconnect behind the caller's back (the caller decides; after a reconnect it
subscribes again for a fresh snapshot), or import asyncio/eventlet.

One client is one connection and is not thread-safe: use one per green thread, e.g. one for
requests and one that subscribes and reads events.
"""

from __future__ import annotations

import collections
import json
import socket
import time
from dataclasses import dataclass
from ipaddress import IPv6Address
from pathlib import Path
from types import TracebackType
from typing import Any

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

DEFAULT_TIMEOUT = 5.0
_READ = 65536


class AgentUnavailable(ConnectionError):
    """The agent is not there, went away, or did not answer in time."""


EventData = Snapshot | UplinkInfo | HoaInfo | tuple[IPv6Address, ...] | IPv6Address


@dataclass(frozen=True, slots=True)
class AgentEvent:
    """One event: `uplink` -> UplinkInfo, `binding` -> HoaInfo, `pool` -> the spares in the
    order to take them, `hoa_freed` -> the HoA, `snapshot` -> Snapshot."""

    kind: EventKind
    data: EventData


def parse_event(msg: dict[str, Any]) -> AgentEvent:
    kind = EventKind(msg["event"])
    d = msg["data"]
    data: EventData
    match kind:
        case EventKind.UPLINK:
            data = UplinkInfo.from_json(d)
        case EventKind.BINDING:
            data = HoaInfo.from_json(d)
        case EventKind.POOL:
            data = tuple(IPv6Address(s) for s in d["spares"])
        case EventKind.HOA_FREED:
            data = IPv6Address(d["hoa"])
        case EventKind.SNAPSHOT:
            data = Snapshot.from_json(d)
    return AgentEvent(kind, data)


class AgentClient:
    def __init__(self, path: Path | str, timeout: float = DEFAULT_TIMEOUT) -> None:
        self.path = str(path)
        self.timeout = timeout
        self._sock: socket.socket | None = None
        self._buf = b""
        self._events: collections.deque[AgentEvent] = collections.deque()
        self._next_id = 1

    # --- connection ----------------------------------------------------------------------------

    def connect(self) -> AgentClient:
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.settimeout(self.timeout)
        try:
            s.connect(self.path)
        except OSError as exc:
            s.close()
            raise AgentUnavailable(f"agent socket {self.path}: {exc.strerror or exc}") from None
        self._sock = s
        return self

    def close(self) -> None:
        if self._sock is not None:
            self._sock.close()
            self._sock = None

    def __enter__(self) -> AgentClient:
        return self.connect() if self._sock is None else self

    def __exit__(
        self, t: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    def fileno(self) -> int:
        """For select/poll: readable when an event (or answer) has arrived."""
        return self._connected().fileno()

    # --- requests ------------------------------------------------------------------------------

    def call(self, op: Op | str, **args: Any) -> dict[str, Any]:
        """Send one request and return its `result`; a refusal raises RpcError."""
        sock = self._connected()
        rid = self._next_id
        self._next_id += 1
        line = json.dumps({"id": rid, "op": str(op), "args": args}, separators=(",", ":"))
        try:
            sock.sendall(line.encode() + b"\n")
        except OSError as exc:
            raise AgentUnavailable(f"agent socket {self.path}: {exc.strerror or exc}") from None
        deadline = time.monotonic() + self.timeout
        while True:
            msg = self._read_message(deadline)
            if msg is None:
                raise AgentUnavailable(f"agent did not answer {op} within {self.timeout:g} s")
            if "event" in msg:
                self._events.append(parse_event(msg))
                continue
            if msg.get("id") != rid:
                raise AgentUnavailable(f"agent answered id {msg.get('id')!r}, expected {rid}")
            if msg.get("ok"):
                result: dict[str, Any] = msg.get("result") or {}
                return result
            err = msg.get("error") or {}
            raise RpcError(ErrorCode(err.get("code", "bad_request")), str(err.get("message")))

    def hello(self) -> Hello:
        return Hello.from_json(self.call(Op.HELLO))

    def status(self) -> Snapshot:
        return Snapshot.from_json(self.call(Op.STATUS))

    def subscribe(self) -> Snapshot:
        """The current state; every change after it arrives as an event on this connection."""
        return Snapshot.from_json(self.call(Op.SUBSCRIBE))

    def claim(self, hoa: IPv6Address | None = None) -> HoaInfo:
        """Take `hoa` (a published spare), or any spare when None, for a new flow."""
        args = {} if hoa is None else {"hoa": str(hoa)}
        return HoaInfo.from_json(self.call(Op.CLAIM, **args))

    def bind(self, hoa: IPv6Address, uplink: str) -> None:
        """Ask for `hoa` to be bound via `uplink`; the outcome comes as a `binding` event."""
        self.call(Op.BIND, hoa=str(hoa), uplink=uplink)

    def release(self, hoa: IPv6Address) -> None:
        self.call(Op.RELEASE, hoa=str(hoa))

    def adopt(self, hoa: IPv6Address) -> HoaInfo:
        return HoaInfo.from_json(self.call(Op.ADOPT, hoa=str(hoa)))

    # --- events --------------------------------------------------------------------------------

    def next_event(self, timeout: float | None = None) -> AgentEvent | None:
        """The next event, waiting up to `timeout` seconds (None: the client's timeout);
        None when none came. Raises AgentUnavailable when the agent closed the connection."""
        if self._events:
            return self._events.popleft()
        wait = self.timeout if timeout is None else timeout
        msg = self._read_message(time.monotonic() + wait)
        if msg is None:
            return None
        if "event" not in msg:
            raise AgentUnavailable(f"unexpected answer without a request: {msg}")
        return parse_event(msg)

    # --- framing -------------------------------------------------------------------------------

    def _connected(self) -> socket.socket:
        if self._sock is None:
            raise AgentUnavailable("not connected (call connect() first)")
        return self._sock

    def _read_message(self, deadline: float) -> dict[str, Any] | None:
        sock = self._connected()
        while b"\n" not in self._buf:
            left = deadline - time.monotonic()
            if left <= 0:
                return None
            sock.settimeout(left)
            try:
                chunk = sock.recv(_READ)
            except TimeoutError:
                return None
            except OSError as exc:
                raise AgentUnavailable(f"agent socket {self.path}: {exc.strerror or exc}") from None
            finally:
                sock.settimeout(self.timeout)
            if not chunk:
                raise AgentUnavailable("the agent closed the connection")
            self._buf += chunk
        line, _, self._buf = self._buf.partition(b"\n")
        msg = json.loads(line)
        if not isinstance(msg, dict):
            raise AgentUnavailable(f"agent sent a non-object line: {line[:80]!r}")
        return msg
