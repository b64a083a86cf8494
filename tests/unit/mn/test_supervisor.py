"""The supervisor restarts a crashed child after a growing back-off and stops everything on
request (fake processes on a mock clock)."""

from __future__ import annotations

import signal
import subprocess
from typing import IO

from sdnmip.mn.supervisor import Backoff, ChildSpec, Supervisor


class FakeProcess:
    next_pid = 100

    def __init__(self, name: str, log: list[str]) -> None:
        FakeProcess.next_pid += 1
        self.pid = FakeProcess.next_pid
        self.name = name
        self.returncode: int | None = None
        self.log = log
        self.ignores_term = False

    def poll(self) -> int | None:
        return self.returncode

    def wait(self, timeout: float | None = None) -> int:
        if self.returncode is None:
            raise subprocess.TimeoutExpired(self.name, timeout or 0)
        return self.returncode

    def send_signal(self, sig: int) -> None:
        self.log.append(f"{sig} {self.name}")
        if sig == signal.SIGTERM and not self.ignores_term:
            self.returncode = 0

    def kill(self) -> None:
        self.log.append(f"kill {self.name}")
        self.returncode = -9


class Harness:
    def __init__(self) -> None:
        self.now = 0.0
        self.log: list[str] = []
        self.procs: dict[str, FakeProcess] = {}
        specs = [ChildSpec("agent", ["agent"]), ChildSpec("controller", ["controller"])]
        self.sup = Supervisor(
            specs, backoff=Backoff(0.5, 4.0, 60.0), grace=5.0, clock=lambda: self.now,
            spawn=self.spawn,
        )  # fmt: skip

    def spawn(self, spec: ChildSpec, out: IO[bytes] | None, env: object) -> FakeProcess:
        p = self.procs[spec.name] = FakeProcess(spec.name, self.log)
        self.log.append(f"start {spec.name}")
        return p

    def start(self) -> None:
        for child in self.sup.children:
            self.sup._start(child)

    def at(self, t: float) -> None:
        self.now = t
        self.sup.step()


def test_backoff_doubles_up_to_the_maximum() -> None:
    b = Backoff(0.5, 4.0, 60.0)
    assert [b.delay(n) for n in range(1, 7)] == [0.5, 1.0, 2.0, 4.0, 4.0, 4.0]


def test_a_child_that_keeps_crashing_is_restarted_later_each_time() -> None:
    h = Harness()
    h.start()
    assert h.log == ["start agent", "start controller"]
    for delay in (0.5, 1.0, 2.0, 4.0, 4.0):
        h.procs["controller"].returncode = 1
        h.at(h.now + 0.01)  # noticed: restart scheduled
        noticed = h.now
        crashed = h.procs["controller"]
        h.at(noticed + delay - 0.01)
        assert h.procs["controller"] is crashed, f"restarted before {delay} s"
        h.at(noticed + delay)
        assert h.procs["controller"] is not crashed, f"not restarted after {delay} s"
    assert h.procs["agent"].returncode is None  # the other child is untouched
    assert h.sup.children[1].exits == [1, 1, 1, 1, 1]


def test_a_child_that_ran_long_enough_starts_its_backoff_afresh() -> None:
    h = Harness()
    h.start()
    for _ in range(3):
        h.procs["agent"].returncode = 1
        h.at(h.now + 0.01)
        h.at(h.now + 10)  # restarted
    h.at(h.now + 100)  # stable for 100 s
    h.procs["agent"].returncode = 1
    h.at(h.now + 0.01)
    assert h.sup.children[0].restart_at == h.now + 0.5


def test_stop_terminates_the_controller_first_and_kills_what_ignores_sigterm() -> None:
    h = Harness()
    h.start()
    h.procs["agent"].ignores_term = True
    h.sup.stopping.set()
    h.sup.stop()
    term = int(signal.SIGTERM)
    assert h.log[2:] == [f"{term} controller", f"{term} agent", "kill agent"]
    h.procs["controller"].returncode = None  # nothing restarts once stopping
    h.at(h.now + 100)
    assert h.log.count("start controller") == 1
