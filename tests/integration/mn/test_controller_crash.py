"""A controller killed before its debounced snapshot holds its newest flows: the whole MN
(`sdnmip mn`, supervised) and `sdnmip ha` in the testbed, stock iperf3 to CN1.

The controller writes its snapshot at most once a second, so a flow it created a tenth of a
second before a SIGKILL is not in it. The restarted controller must adopt that flow from the
switch (its rules stay unchanged, the connection goes on without a reset), and whatever HoAs
the dead controller had claimed must not stay claimed at the agent (nor bound at the HA) once
their flows are gone, also when the flow ended while no controller was running.

What the agent holds comes from its RPC status, what the HA holds from its control socket (what
`sdnmip ha status` prints), the rules from `ovs-ofctl dump-flows`, the snapshot from the
controller's state file.
"""

from __future__ import annotations

import os
import re
import signal
import time
from collections import Counter
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from sdnmip.controller import pipeline as pl
from sdnmip.mn_agent import api
from sdnmip.testbed import Testbed
from tests.integration.helpers import poll, saved_flow_ids

from .traffic import CN1, Iperf, error, interval_bytes, iperf3_client, iperf3_server

TESTBED_PROFILE = "fast"
POOL = 4
PORT = 5201
# TCP idle timeout (s): longer than an iperf3 test, whose control connection is idle while the
# data flows, and short enough to wait for the rules of a finished test to idle out.
IDLE = 12
TEST_S = 6
ATTEMPTS = 3  # a snapshot written just between a flow's start and the kill: try again
UNSETTLED = {api.Role.IN_USE, api.Role.HELD, api.Role.DEREGISTERING, api.Role.REGISTERING,
             api.Role.FAILED}  # fmt: skip
COUNTERS = re.compile(r"(duration|n_packets|n_bytes|idle_age)=[^,]*, ")


@pytest.fixture(scope="module")
def stack(testbed: Testbed) -> Iterator[Any]:
    from sdnmip.testbed.mn_full import MnStack

    st = MnStack(
        testbed,
        pool_size=POOL,
        hold_time=1.0,
        controller={"hoa_per_flow": True, "tcp_linger": 1.0, "tcp_idle_timeout": IDLE},
    )
    iperf3_server(testbed, "cn1", PORT)
    st.start()
    try:
        yield st
    finally:
        st.stop()  # the testbed's `down` kills whatever is left


def books(stack: Any) -> tuple[Counter[str], set[str], set[str]]:
    """(the agent's HoAs by role, the HoAs it has registered, the HoAs bound at the HA)."""
    snap = stack.agent_status()
    roles = Counter(h.role.value for h in snap.hoas)
    registered = {str(h.hoa) for h in snap.hoas if h.role in (api.Role.PRIMARY, api.Role.SPARE)}
    return roles, registered, set(stack.ha.bindings())


def settled(stack: Any) -> tuple[Counter[str], set[str], set[str]] | None:
    """The books once no TCP flow is live and every HoA is the Primary or a bound spare (no
    claim, hold or (de)registration under way) and the HA binds exactly those."""
    flows = stack.control_or_none("flows")  # None while a controller restarts
    if flows is None or any(f["proto"] == 6 for f in flows):
        return None
    snap = stack.agent_status()
    if any(h.role in UNSETTLED for h in snap.hoas) or len(snap.spares) < POOL:
        return None
    roles, registered, bound = books(stack)
    return (roles, registered, bound) if bound == registered else None


@pytest.fixture(autouse=True)
def quiet(stack: Any) -> None:
    poll("no TCP flow, a full pool and nothing else held", lambda: settled(stack), timeout=40)


def tcp_flows(stack: Any) -> list[dict[str, Any]]:
    return [f for f in stack.control("flows") if f["proto"] == 6 and f["remote_port"] == PORT]


def fast_poll(what: str, probe: Callable[[], Any], timeout: float = 10.0) -> Any:
    """`poll` without its 50 ms pause: the kill must come within a fraction of a second."""
    deadline = time.monotonic() + timeout
    while (value := probe()) is None:
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
    return value


def started(stack: Any) -> list[dict[str, Any]] | None:
    """Both connections of an iperf3 test (control and data) once the controller has them."""
    flows = tcp_flows(stack)
    return flows if len(flows) == 2 else None


def halted(pid: int) -> bool | None:
    """True once every thread of `pid` is stopped (SIGSTOP) or the process is gone."""
    try:
        tasks = os.listdir(f"/proc/{pid}/task")
        states = set()
        for tid in tasks:
            with open(f"/proc/{pid}/task/{tid}/stat") as f:
                states.add(f.read().rsplit(")", 1)[1].split()[0])
    except FileNotFoundError:
        return True  # reaped
    return states <= {"T", "t", "Z", "X"} or None


def flow_rules(stack: Any, flow_ids: set[int]) -> set[str]:
    """The rules of these flows on the bridge, without counters and age."""
    cookies = {
        f"cookie={pl.cookie(kind, fid):#x},"
        for fid in flow_ids
        for kind in (pl.CookieKind.FLOW_UP, pl.CookieKind.FLOW_DOWN)
    }
    out = stack.tb.ofctl("dump-flows", stack.tb.topology.mn.bridge).stdout
    return {
        COUNTERS.sub("", line.strip())
        for line in out.splitlines()
        if any(c in line for c in cookies)
    }


def restarted(stack: Any, old_pid: int) -> dict[str, Any]:
    """The status of the controller the supervisor started after `old_pid` died, once it has
    reconciled with the switch and subscribed to the agent."""

    def back() -> dict[str, Any] | None:
        st = stack.control_or_none("status")
        if st is None or st["pid"] == old_pid or not (st["reconciled"] and st["agent_connected"]):
            return None
        return st  # type: ignore[no-any-return]

    return stack.wait("a new controller to reconcile", back, 40.0)  # type: ignore[no-any-return]


def gaps(doc: dict[str, Any], after: float = 0.3) -> list[float]:
    return [t for t, n in interval_bytes(doc) if t > after and n == 0]


def no_leak(stack: Any, before: tuple[Counter[str], set[str], set[str]]) -> None:
    after = poll("every HoA released and the pool full again", lambda: settled(stack), 40)
    roles, registered, bound = after
    assert roles == before[0], f"agent HoAs by role: {dict(roles)}, before {dict(before[0])}"
    assert bound == registered  # the HA binds the Primary and the spares, nothing else
    assert len(bound) == len(before[2])


def _crash_after_new_flow(
    stack: Any, seconds: float, sig: int
) -> tuple[Iperf, int, list[dict[str, Any]]] | None:
    """Start iperf3, send `sig` to the controller as soon as it has both connections' flows.
    Returns (the iperf3 client, the controller's pid, the flows), or None when the snapshot
    caught the flows anyway (written in the instant between their start and the signal); the
    controller then runs on, and the caller tries again once the test is over."""
    pid = stack.controller_pid()
    client = iperf3_client(stack.tb, "mn", CN1, PORT, seconds)
    flows = fast_poll("both iperf3 connections' flows", lambda: started(stack))
    ids = {f["flow_id"] for f in flows}
    # The flows' flow-mods leave the controller just after the flows enter its table.
    fast_poll("their rules on the switch", lambda: len(flow_rules(stack, ids)) == 4 or None)
    os.kill(pid, sig)
    t_signal = time.monotonic() - client.started
    # A snapshot write in a system call when the signal came still ends: look afterwards.
    poll("the controller to stop", lambda: halted(pid), timeout=5)
    if ids & saved_flow_ids(stack.config_writer.state_dir):
        if sig == signal.SIGSTOP:
            os.kill(pid, signal.SIGCONT)
        client.result()
        poll("the MN to settle", lambda: settled(stack), timeout=40)
        return None
    assert t_signal < 1.0, f"the signal came {t_signal:.2f} s after iperf3 started"
    return client, pid, flows


def test_a_flow_the_killed_controller_never_saved_is_adopted_and_runs_on(stack: Any) -> None:
    before = books(stack)
    for _ in range(ATTEMPTS):
        crashed = _crash_after_new_flow(stack, TEST_S, signal.SIGKILL)
        if crashed is not None:
            break
    else:
        pytest.fail(f"every one of {ATTEMPTS} snapshots caught the new flows")
    client, old_pid, flows = crashed
    ids = {f["flow_id"] for f in flows}
    rules = flow_rules(stack, ids)  # as the dead controller left them
    assert len(rules) == 4, rules
    st = restarted(stack, old_pid)
    assert st["last_reconcile"]["adopted"] == 2, st["last_reconcile"]
    assert st["logic"].get("adoptions_refused", 0) == 0
    assert {f["flow_id"] for f in tcp_flows(stack)} == ids  # the same flows, by id
    assert flow_rules(stack, ids) == rules  # not one rule touched
    r = client.result()
    assert error(r) is None  # no reset: the test completed
    assert gaps(r) == [], f"traffic stopped while the controller was away: {gaps(r)}"
    no_leak(stack, before)


def test_a_flow_that_ended_while_its_controller_was_down_leaks_no_hoa(stack: Any) -> None:
    before = books(stack)
    # SIGSTOP first: the process keeps its place (the supervisor does not restart it) while
    # the flow ends and its rules idle out; then SIGKILL.
    for _ in range(ATTEMPTS):
        crashed = _crash_after_new_flow(stack, 1, signal.SIGSTOP)
        if crashed is not None:
            break
    else:
        pytest.fail(f"every one of {ATTEMPTS} snapshots caught the new flows")
    client, old_pid, flows = crashed
    ids, hoas = {f["flow_id"] for f in flows}, {f["hoa"] for f in flows}
    try:
        assert error(client.result()) is None
        poll("the ended flows' rules to idle out", lambda: not flow_rules(stack, ids) or None,
             timeout=IDLE + 15)  # fmt: skip
        claimed = {str(h.hoa) for h in stack.agent_status().hoas if h.role == api.Role.IN_USE}
        # The dead controller's claims (one may not have left its queue before the signal).
        assert claimed and claimed <= hoas, (claimed, hoas)
    finally:
        os.kill(old_pid, signal.SIGKILL)
    st = restarted(stack, old_pid)
    assert st["last_reconcile"]["adopted"] == 0 and st["flows"] == 0, stack.control("flows")
    no_leak(stack, before)
