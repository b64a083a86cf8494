"""The controller's local control socket: the facade over newline-delimited JSON (Unix socket).

Owns: the server (a green thread accepting connections on `<run_dir>/controller.sock`, one
green thread per connection) and `ControlClient`, a stdlib-socket client for tests, benchmarks
and the command line. Requests and answers have the agent RPC's shape:
  {"id": 1, "op": "move", "args": {"flow_id": 7, "uplink": "wlan"}}
  {"id": 1, "ok": true, "result": {...}}  or  {"id": 1, "ok": false, "error": {"code", "message"}}
Ops: status, flows, flow (flow_id), hoas, uplinks, move (flow_id, uplink), remove (flow_id),
refresh (read the switch's counters now).
Must not: hold logic (the facade does), or listen anywhere but a Unix socket the owner can
reach (mode 0600). The REST northbound (next issue) serves the same facade over HTTP.
"""

from __future__ import annotations

import json
import logging
import os
import socket
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from sdnmip.controller.facade import ControllerFacade, FlowError, SwitchRequestFailed

log = logging.getLogger("sdnmip.controller.control")
MAX_LINE = 1 << 16


class ControlError(RuntimeError):
    """The controller refused a request (code, message) or could not be reached."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message


def _int(args: dict[str, Any], name: str) -> int:
    v = args.get(name)
    if isinstance(v, bool) or not isinstance(v, int):
        raise ControlError("bad_request", f"args.{name}: expected an integer")
    return v


def _str(args: dict[str, Any], name: str) -> str:
    v = args.get(name)
    if not isinstance(v, str):
        raise ControlError("bad_request", f"args.{name}: expected a string")
    return v


def handle(facade: ControllerFacade, op: str, args: dict[str, Any]) -> Any:
    """One request -> its result; ControlError for a refusal."""
    ops: dict[str, Callable[[], Any]] = {
        "status": facade.status,
        "flows": facade.flows,
        "hoas": facade.hoas,
        "uplinks": facade.uplinks,
        "flow": lambda: facade.flow(_int(args, "flow_id")),
        "move": lambda: facade.move_flow(_int(args, "flow_id"), _str(args, "uplink")),
        "remove": lambda: facade.remove_flow(_int(args, "flow_id")),
        "refresh": facade.refresh,
    }
    fn = ops.get(op)
    if fn is None:
        raise ControlError("bad_request", f"op: unknown operation {op!r} (known: {sorted(ops)})")
    try:
        result = fn()
    except FlowError as exc:
        raise ControlError("refused", str(exc)) from None
    except SwitchRequestFailed as exc:
        raise ControlError("switch", str(exc)) from None
    return {} if result is None else result


def answer(facade: ControllerFacade, line: bytes) -> bytes:
    try:
        req = json.loads(line)
    except (ValueError, RecursionError) as exc:  # also a number too long, nesting too deep
        return _encode(
            {"id": None, "ok": False, "error": {"code": "bad_request", "message": str(exc)}}
        )
    rid = req.get("id") if isinstance(req, dict) else None
    try:
        if not isinstance(req, dict) or not isinstance(req.get("op"), str):
            raise ControlError("bad_request", "expected an object with a string 'op'")
        args = req.get("args") or {}
        if not isinstance(args, dict):
            raise ControlError("bad_request", "args: expected an object")
        result = handle(facade, req["op"], args)
    except ControlError as exc:
        return _encode(
            {"id": rid, "ok": False, "error": {"code": exc.code, "message": exc.message}}
        )
    return _encode({"id": rid, "ok": True, "result": result})


def _encode(doc: dict[str, Any]) -> bytes:
    return json.dumps(doc, separators=(",", ":")).encode() + b"\n"


def serve(facade: ControllerFacade, path: Path, spawn: Callable[..., Any]) -> Any:
    """Listen on `path` and answer in green threads (`spawn` is os-ken's hub.spawn)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.exists() or path.is_symlink():
        path.unlink()
    srv = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    old = os.umask(0o177)
    try:
        srv.bind(str(path))
    finally:
        os.umask(old)
    srv.listen(16)

    def connection(conn: socket.socket) -> None:
        buf = b""
        with conn:
            while True:
                chunk = conn.recv(MAX_LINE)
                if not chunk:
                    return
                buf += chunk
                while b"\n" in buf:
                    line, _, buf = buf.partition(b"\n")
                    conn.sendall(answer(facade, line))
                if len(buf) > MAX_LINE:
                    return

    def accept_loop() -> None:
        while True:
            conn, _ = srv.accept()
            spawn(connection, conn)

    return spawn(accept_loop)


class ControlClient:
    """A blocking client (stdlib socket) of the control socket."""

    def __init__(self, path: Path | str, timeout: float = 10.0) -> None:
        self.path = str(path)
        self.timeout = timeout
        self._sock: socket.socket | None = None
        self._buf = b""
        self._id = 0

    def __enter__(self) -> ControlClient:
        self.connect()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def connect(self) -> ControlClient:
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.settimeout(self.timeout)
        try:
            s.connect(self.path)
        except OSError as exc:
            s.close()
            raise ControlError("unavailable", f"{self.path}: {exc.strerror or exc}") from None
        self._sock = s
        return self

    def close(self) -> None:
        if self._sock is not None:
            self._sock.close()
            self._sock = None

    def call(self, op: str, **args: Any) -> Any:
        if self._sock is None:
            self.connect()
        assert self._sock is not None
        self._id += 1
        deadline = time.monotonic() + self.timeout
        try:
            self._sock.sendall(_encode({"id": self._id, "op": op, "args": args}))
            while b"\n" not in self._buf:
                if time.monotonic() > deadline:
                    raise ControlError("unavailable", f"no answer to {op} within {self.timeout} s")
                chunk = self._sock.recv(MAX_LINE)
                if not chunk:
                    raise ControlError("unavailable", "the controller closed the connection")
                self._buf += chunk
        except OSError as exc:  # the controller went away mid-request
            self.close()
            raise ControlError("unavailable", f"{self.path}: {exc.strerror or exc}") from None
        line, _, self._buf = self._buf.partition(b"\n")
        msg = json.loads(line)
        if not msg.get("ok"):
            err = msg.get("error") or {}
            raise ControlError(str(err.get("code")), str(err.get("message")))
        return msg.get("result")


def wait_for(
    path: Path | str, what: str, probe: Callable[[ControlClient], Any], timeout: float
) -> Any:
    """Poll the controller until `probe(client)` returns something other than None/False."""
    deadline = time.monotonic() + timeout
    last: Exception | None = None
    while time.monotonic() < deadline:
        try:
            with ControlClient(path, timeout=2.0) as c:
                value = probe(c)
            if value:
                return value
        except ControlError as exc:
            last = exc
        time.sleep(0.05)
    raise TimeoutError(f"timed out after {timeout:g} s waiting for {what} (last error: {last})")
