"""Creating and removing testbeds: nothing is left after `down` (also after a crash half-way
through `up`), two prefixes coexist, and the root namespace is never touched."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
from pathlib import Path

from sdnmip.testbed import Testbed, load_topology, teardown
from sdnmip.testbed import processes as procs
from sdnmip.testbed.names import state_dir
from tests.integration.helpers import ping, poll, root_links, unique_prefix


def pids_of(prefix: str) -> set[int]:
    ids = {procs.netns_id(ns) for ns in procs.namespaces() if ns.startswith(prefix + "-")}
    return set(procs.pids_in({i for i in ids if i is not None}))


def assert_nothing_left(prefix: str, pids: set[int]) -> None:
    assert [ns for ns in procs.namespaces() if ns.startswith(prefix + "-")] == []
    assert [pid for pid in pids if procs.alive(pid)] == []
    assert not state_dir(prefix).exists()


def cli(*args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "sdnmip", "testbed", *args],
                          capture_output=True, text=True, timeout=timeout, check=False)  # fmt: skip


def test_two_testbeds_coexist_and_down_removes_only_its_own():
    before = root_links()
    a = Testbed(load_topology(profile="fast"), unique_prefix())
    b = Testbed(load_topology(profile="fast"), unique_prefix())
    try:
        a.up()
        b.up()
        for tb in (a, b):
            for port in tb.topology.mn.uplinks.values():
                assert ping(tb, port, tb.addr("cn1", "eth0"), count=2)[1] == 2
        # Same addresses in both, isolated by the namespaces.
        assert a.addr("cn1", "eth0") == b.addr("cn1", "eth0")
        assert root_links() == before  # veths were created inside the namespaces
        pids_a = pids_of(a.prefix)
        assert len(pids_a) >= 4  # ovsdb-server, ovs-vswitchd, two radvd (and radvd helpers)
        a.down()
        assert_nothing_left(a.prefix, pids_a)
        assert b.status().healthy
        assert ping(b, b.topology.mn.uplinks["lte"], b.addr("cn2", "eth0"), count=2)[1] == 2
        pids_b = pids_of(b.prefix)
        b.down()
        assert_nothing_left(b.prefix, pids_b)
        assert root_links() == before
    finally:
        teardown(a.prefix)
        teardown(b.prefix)


def test_down_after_up_was_killed_half_way_leaves_nothing():
    prefix = unique_prefix()
    sdir = state_dir(prefix)
    up = subprocess.Popen([sys.executable, "-m", "sdnmip", "testbed", "up", "--prefix", prefix],
                          stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # fmt: skip
    try:
        # Kill it once the link emulators and OVS are running but before the CoAs are in.
        poll("up to start ovs-vswitchd",
             lambda: True if (sdir / "ovs" / "ovs-vswitchd.pid").exists() else None,
             timeout=30)  # fmt: skip
        up.send_signal(signal.SIGKILL)
        up.wait(timeout=10)
        state = json.loads((sdir / "state.json").read_text())
        assert state["complete"] is False, "up had already finished: not a half-way crash"
        pids = pids_of(prefix)
        assert len(pids) >= 3  # at least the two link emulators and ovsdb-server
        assert procs.namespaces() and any(ns.startswith(prefix + "-") for ns in procs.namespaces())
        down = cli("down", "--prefix", prefix)
        assert down.returncode == 0, down.stderr
        assert f"testbed {prefix}: removed 7 namespaces" in down.stdout
        assert_nothing_left(prefix, pids)
    finally:
        if up.poll() is None:
            up.kill()
            up.wait()
        teardown(prefix)


def test_down_from_nothing_but_the_prefix(tmp_path: Path):
    """A crash even before the state directory existed: namespaces and a process in one of them,
    nothing recorded anywhere. `down` finds the process through the namespace."""
    prefix = unique_prefix()
    stray = None
    try:
        subprocess.run(["ip", "netns", "add", f"{prefix}-mn"], check=True)
        subprocess.run(["ip", "netns", "add", f"{prefix}-core"], check=True)
        stray = subprocess.Popen(["ip", "netns", "exec", f"{prefix}-mn", "sleep", "600"])
        poll("the stray process to enter the namespace",
             lambda: True if stray.pid in pids_of(prefix) else None)  # fmt: skip
        assert not state_dir(prefix).exists()
        report = teardown(prefix)
        assert sorted(report.namespaces) == [f"{prefix}-core", f"{prefix}-mn"]
        assert stray.pid in report.killed
        stray.wait(timeout=5)
        assert_nothing_left(prefix, {stray.pid})
        # And once more: nothing to do, no error.
        again = cli("down", "--prefix", prefix)
        assert again.returncode == 0
        assert again.stdout == f"testbed {prefix}: nothing to remove\n"
    finally:
        if stray is not None and stray.poll() is None:
            stray.kill()
            stray.wait()
        teardown(prefix)


def test_cli_up_status_down_round_trip():
    prefix = unique_prefix()
    try:
        up = cli("up", "--prefix", prefix, "--profile", "fast")
        assert up.returncode == 0, up.stderr
        assert f"testbed {prefix}: up" in up.stdout
        again = cli("up", "--prefix", prefix, "--profile", "fast")
        assert again.returncode == 1
        assert again.stderr.startswith(f"sdnmip testbed: testbed {prefix} already exists")
        assert again.stderr.count("\n") == 1
        status = cli("status", "--prefix", prefix)
        assert status.returncode == 0
        assert "CoA 2001:db8:1:" in status.stdout and "CoA 2001:db8:2:" in status.stdout
        assert "none (plain veth)" in status.stdout
        down = cli("down", "--prefix", prefix)
        assert down.returncode == 0
        status = cli("status", "--prefix", prefix)
        assert status.returncode == 1
        assert status.stdout == f"testbed {prefix}: not up\n"
    finally:
        teardown(prefix)
