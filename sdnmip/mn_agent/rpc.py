"""The agent's side of the controller RPC: newline-delimited JSON over a Unix stream socket.

Owns: the socket (`<run_dir>/agent.sock`, mode 0600, refusing to start when another agent
answers on it), the framing and validation of requests (one `bad_request` naming what was wrong,
never a dropped connection for a malformed line), request/response matching by `id`, and the
event stream of connections that sent `subscribe`. The message types are in `api.py`.
Must not: hold agent logic (the handler does) or wait on the network: every request is answered
from the agent's state at once.

A subscriber gets its snapshot as the answer to `subscribe`; the snapshot is taken and the
connection added to the subscribers in the same step of the event loop, so no event falls in
between. A subscriber that stops reading (more than MAX_BACKLOG bytes queued) is disconnected:
the agent never blocks on a slow controller, and the controller re-subscribes for a fresh
snapshot.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import socket
from collections.abc import Callable
from pathlib import Path
from typing import Any

from sdnmip.mn_agent.api import ErrorCode, EventKind, Op, RpcError, Snapshot

log = logging.getLogger("sdnmip.mn_agent.rpc")

MAX_LINE = 64 * 1024  # a request is a few hundred bytes
MAX_BACKLOG = 1024 * 1024  # bytes queued to one subscriber before it is dropped

Handler = Callable[[str, dict[str, Any]], dict[str, Any]]


class RpcServer:
    def __init__(self, path: Path, handler: Handler, snapshot: Callable[[], Snapshot]) -> None:
        self.path = path
        self._handler = handler
        self._snapshot = snapshot
        self._server: asyncio.AbstractServer | None = None
        self._subscribers: set[asyncio.StreamWriter] = set()
        self._conns: set[asyncio.StreamWriter] = set()

    async def start(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        if self.path.exists() or self.path.is_symlink():
            if _answers(self.path):
                raise RuntimeError(f"{self.path}: another agent is running")
            self.path.unlink()  # left by an agent that died
        self._server = await asyncio.start_unix_server(
            self._serve, path=str(self.path), limit=MAX_LINE
        )
        os.chmod(self.path, 0o600)

    async def close(self) -> None:
        if self._server is not None:
            self._server.close()
            conns = list(self._conns)
            for w in conns:
                w.close()
            for w in conns:
                with contextlib.suppress(ConnectionError):
                    await w.wait_closed()
            await self._server.wait_closed()
            self._server = None
        with contextlib.suppress(FileNotFoundError):
            self.path.unlink()

    @property
    def subscribers(self) -> int:
        return len(self._subscribers)

    def publish(self, kind: EventKind, data: dict[str, Any]) -> None:
        """Queue `{"event": kind, "data": data}` to every subscriber (never blocks)."""
        if not self._subscribers:
            return
        line = _line({"event": kind.value, "data": data})
        for w in list(self._subscribers):
            if w.is_closing():
                self._subscribers.discard(w)
                continue
            if w.transport.get_write_buffer_size() > MAX_BACKLOG:
                log.warning("controller connection not reading its events: disconnected")
                self._subscribers.discard(w)
                w.close()
                continue
            w.write(line)

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._conns.add(writer)
        try:
            while True:
                try:
                    raw = await reader.readline()
                except ValueError:  # longer than MAX_LINE: the stream cannot be re-framed
                    writer.write(_error(None, ErrorCode.BAD_REQUEST, f"line over {MAX_LINE} bytes"))
                    break
                except ConnectionError:
                    break
                if not raw:
                    break
                if raw.strip():
                    writer.write(self._dispatch(raw, writer))
                    await writer.drain()
        except ConnectionError:
            pass
        finally:
            self._subscribers.discard(writer)
            self._conns.discard(writer)
            writer.close()

    def _dispatch(self, raw: bytes, writer: asyncio.StreamWriter) -> bytes:
        try:
            msg = json.loads(raw)
        except (ValueError, RecursionError) as exc:  # also a number too long, nesting too deep
            return _error(None, ErrorCode.BAD_REQUEST, f"not JSON: {exc}")
        if not isinstance(msg, dict):
            return _error(None, ErrorCode.BAD_REQUEST, "a request is a JSON object")
        rid = msg.get("id")
        if isinstance(rid, bool) or not isinstance(rid, int | str):
            return _error(None, ErrorCode.BAD_REQUEST, "id: expected an integer or a string")
        op, args = msg.get("op"), msg.get("args", {})
        if not isinstance(op, str):
            return _error(rid, ErrorCode.BAD_REQUEST, "op: expected a string")
        if not isinstance(args, dict):
            return _error(rid, ErrorCode.BAD_REQUEST, "args: expected an object")
        try:
            if op == Op.SUBSCRIBE:
                result = self._snapshot().to_json()
                self._subscribers.add(writer)
            else:
                result = self._handler(op, args)
        except RpcError as exc:
            return _line({"id": rid, "ok": False, "error": exc.to_json()})
        return _line({"id": rid, "ok": True, "result": result})


def _line(obj: dict[str, Any]) -> bytes:
    return json.dumps(obj, separators=(",", ":")).encode() + b"\n"


def _error(rid: int | str | None, code: ErrorCode, message: str) -> bytes:
    return _line({"id": rid, "ok": False, "error": RpcError(code, message).to_json()})


def _answers(path: Path) -> bool:
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.settimeout(1.0)
    try:
        s.connect(str(path))
    except OSError:
        return False
    finally:
        s.close()
    return True
