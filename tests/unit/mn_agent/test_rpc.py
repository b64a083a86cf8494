"""The agent's RPC server (asyncio) against the synchronous client, over a real Unix socket, with
the agent's logic shell behind it on a mock clock."""

from __future__ import annotations

import asyncio
import json
import socket
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

import pytest

from sdnmip.mn_agent import rpc
from sdnmip.mn_agent.api import ErrorCode, EventKind, HoaInfo, RpcError, UplinkInfo
from sdnmip.mn_agent.client import AgentClient, AgentUnavailable
from sdnmip.mn_agent.rpc import RpcServer
from tests.unit.mn_agent.fakes import COA, HA, PRIMARY, Harness

T = TypeVar("T")


class Served:
    """An RpcServer on its own event loop thread, publishing what the Harness's agent says."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()
        self.h = Harness()
        self.server = RpcServer(path, self.h.svc.request, self.h.svc.snapshot)
        self.h.out.publish = self.server.publish  # type: ignore[method-assign]
        self.call(lambda: None)
        asyncio.run_coroutine_threadsafe(self.server.start(), self.loop).result(5)

    def call(self, fn: Callable[[], T]) -> T:
        """Run `fn` on the agent's loop (the agent is single-threaded)."""
        fut: asyncio.Future[T] = asyncio.run_coroutine_threadsafe(_wrap(fn), self.loop)
        return fut.result(5)

    def close(self) -> None:
        asyncio.run_coroutine_threadsafe(self.server.close(), self.loop).result(5)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(5)
        self.loop.close()


async def _wrap(fn: Callable[[], T]) -> T:
    return fn()


@pytest.fixture
def served(tmp_path: Path) -> Iterator[Served]:
    s = Served(tmp_path / "run" / "agent.sock")
    s.call(lambda: (s.h.uplink("wlan"), s.h.uplink("lte"), s.h.exchange()))
    try:
        yield s
    finally:
        s.close()


def test_hello_and_status_are_typed(served: Served):
    with AgentClient(served.path) as c:
        hello = c.hello()
        assert (hello.primary_hoa, hello.home_agent, hello.version) == (PRIMARY, HA, 1)
        snap = c.status()
        assert [u.name for u in snap.uplinks] == ["wlan", "lte"]
        assert snap.uplinks[0].coa == COA["wlan"] and snap.uplinks[0].usable
        assert snap.hoas[0].hoa == PRIMARY and snap.hoas[0].state.value == "bound"
        assert len(snap.spares) == 2
    assert (served.path.stat().st_mode & 0o777) == 0o600


def test_claim_is_answered_from_local_state_in_well_under_a_millisecond_budget(served: Served):
    with AgentClient(served.path) as c:
        spare = c.status().spares[0]
        t = time.perf_counter()
        info = c.claim(spare)
        elapsed = time.perf_counter() - t
    assert isinstance(info, HoaInfo) and info.hoa == spare and info.role.value == "in_use"
    assert elapsed < 0.05, f"claim took {elapsed * 1000:.1f} ms"


def test_subscriber_gets_a_snapshot_then_every_change(served: Served):
    with AgentClient(served.path) as sub, AgentClient(served.path) as req:
        snap = sub.subscribe()
        spare = snap.spares[0]
        req.claim(spare)
        kinds = {}
        while (ev := sub.next_event(timeout=0.3)) is not None:
            kinds.setdefault(ev.kind, []).append(ev.data)
        assert any(isinstance(d, HoaInfo) and d.hoa == spare for d in kinds[EventKind.BINDING])
        assert spare not in kinds[EventKind.POOL][-1]
        served.call(lambda: served.h.uplink("wlan", up=False))
        ev = sub.next_event(timeout=2.0)
        assert ev is not None and ev.kind is EventKind.UPLINK
        assert isinstance(ev.data, UplinkInfo) and not ev.data.usable


def test_events_that_arrive_before_an_answer_are_kept_for_next_event(served: Served):
    with AgentClient(served.path) as c:
        spare = c.subscribe().spares[0]
        c.claim(spare)  # its events are written before its answer on this connection
        ev = c.next_event(timeout=0.0)
        assert ev is not None and ev.kind in (EventKind.BINDING, EventKind.POOL)


def test_refusals_come_back_as_rpc_errors_with_their_code(served: Served):
    with AgentClient(served.path) as c:
        with pytest.raises(RpcError) as e:
            c.release(PRIMARY)
        assert e.value.code is ErrorCode.PRIMARY
        with pytest.raises(RpcError) as e:
            c.bind(PRIMARY, "5g")
        assert e.value.code is ErrorCode.UNKNOWN_UPLINK
        c.bind(PRIMARY, "lte")  # accepted at once; the outcome is an event
        assert c.hello().primary_hoa == PRIMARY  # the connection is still usable


def _raw(path: Path, *lines: bytes) -> list[dict[str, Any]]:
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.settimeout(2)
    s.connect(str(path))
    s.sendall(b"".join(lines))
    buf = b""
    while buf.count(b"\n") < len([ln for ln in lines if ln.strip()]):
        chunk = s.recv(65536)
        if not chunk:
            break
        buf += chunk
    s.close()
    return [json.loads(x) for x in buf.splitlines()]


def test_malformed_requests_get_one_bad_request_each_and_the_connection_survives(served: Served):
    answers = _raw(
        served.path,
        b"this is not json\n",
        b"[1, 2]\n",
        b'{"op": "hello"}\n',
        b'{"id": 1, "op": 7}\n',
        b'{"id": 2, "op": "claim", "args": []}\n',
        b'{"id": 3, "op": "teleport"}\n',
        b"\n",
        b'{"id": "x", "op": "hello"}\n',
    )
    codes = [a.get("error", {}).get("code") for a in answers]
    assert codes == ["bad_request"] * 6 + [None]
    assert answers[-1]["id"] == "x" and answers[-1]["ok"] is True
    messages = [a["error"]["message"] for a in answers[:6]]
    assert messages[0].startswith("not JSON") and messages[3].startswith("op:")
    assert messages[4].startswith("args:") and "teleport" in messages[5]


def test_an_overlong_line_is_refused(served: Served):
    answers = _raw(served.path, b"x" * (rpc.MAX_LINE + 10) + b"\n")
    assert answers[0]["error"]["code"] == "bad_request"


def test_a_subscriber_that_does_not_read_is_dropped(served: Served, monkeypatch):
    monkeypatch.setattr(rpc, "MAX_BACKLOG", 10_000)
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    s.connect(str(served.path))
    s.sendall(b'{"id": 1, "op": "subscribe"}\n')
    deadline = time.monotonic() + 5
    while served.call(lambda: served.server.subscribers) != 1:
        assert time.monotonic() < deadline, "the subscription never registered"
    info = UplinkInfo("wlan", True, COA["wlan"]).to_json()
    for _ in range(2000):
        served.call(lambda: served.server.publish(EventKind.UPLINK, info))
        if served.call(lambda: served.server.subscribers) == 0:
            break
    assert served.call(lambda: served.server.subscribers) == 0
    s.close()


def test_a_second_agent_on_the_same_socket_is_refused_and_a_stale_one_replaced(
    served: Served, tmp_path: Path
):
    other = RpcServer(served.path, served.h.svc.request, served.h.svc.snapshot)
    with pytest.raises(RuntimeError, match="another agent is running"):
        served.call(lambda: None)
        asyncio.run_coroutine_threadsafe(other.start(), served.loop).result(5)
    stale = tmp_path / "stale.sock"
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.bind(str(stale))
    s.close()  # a socket file nobody listens on
    fresh = Served(stale)
    try:
        with AgentClient(stale) as c:
            assert c.hello().primary_hoa == PRIMARY
    finally:
        fresh.close()
    assert not stale.exists()  # removed on close


def test_client_reports_an_absent_or_vanished_agent(tmp_path: Path, served: Served):
    with pytest.raises(AgentUnavailable, match="agent socket"):
        AgentClient(tmp_path / "nobody.sock").connect()
    c = AgentClient(served.path, timeout=1.0).connect()
    c.hello()
    served.close()
    with pytest.raises(AgentUnavailable):
        c.hello()
    c.close()
    served.close = lambda: None  # type: ignore[method-assign]


def test_a_number_too_long_or_nesting_too_deep_is_a_bad_request(served: Served):
    answers = _raw(
        served.path,
        b'{"id": 1' + b"9" * 5000 + b', "op": "hello"}\n',
        b"[" * 3000 + b"]" * 3000 + b"\n",
        b'{"id": "x", "op": "hello"}\n',
    )
    codes = [a.get("error", {}).get("code") for a in answers]
    assert codes == ["bad_request", "bad_request", None]
    assert all(a["error"]["message"].startswith("not JSON") for a in answers[:2])
