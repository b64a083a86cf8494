"""The MN supervisor: keeps the agent and the controller processes running.

Owns: starting each child (agent first: the controller subscribes to it), restarting a child
that exits on its own after a back-off that doubles from `Backoff.initial` to `Backoff.maximum`
(reset once the child has run for `Backoff.stable_after`), forwarding SIGTERM/SIGINT as one
SIGTERM to every child, waiting `grace` seconds and then SIGKILLing the rest, and routing each
child's output to its own log file. Children get their own session, so a Ctrl-C on the terminal
reaches them once, through us.
Must not: know what the children do, or kill anything but its own children (by their PIDs).
"""

from __future__ import annotations

import logging
import signal
import subprocess
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any, Protocol

log = logging.getLogger("sdnmip.mn")

POLL_S = 0.1


@dataclass(frozen=True)
class Backoff:
    initial: float = 0.5
    maximum: float = 30.0
    stable_after: float = 60.0  # a child that ran this long starts from `initial` again

    def delay(self, failures: int) -> float:
        """Seconds to wait before restart number `failures` (1, 2, ...) in a row."""
        return float(min(self.maximum, self.initial * 2 ** max(0, failures - 1)))


@dataclass(frozen=True)
class ChildSpec:
    name: str
    argv: Sequence[str]
    log_path: Path | None = None  # None: inherit our stderr


class Process(Protocol):
    """What the supervisor needs of a child process (subprocess.Popen in production)."""

    pid: int
    returncode: int | None

    def poll(self) -> int | None: ...

    def wait(self, timeout: float | None = None) -> int: ...

    def send_signal(self, sig: int) -> None: ...

    def kill(self) -> None: ...


def spawn_process(spec: ChildSpec, out: IO[bytes] | None, env: dict[str, str] | None) -> Process:
    return subprocess.Popen(
        list(spec.argv),
        stdin=subprocess.DEVNULL,
        stdout=out,
        stderr=subprocess.STDOUT if out is not None else None,
        env=env,
        start_new_session=True,
    )


@dataclass
class Child:
    spec: ChildSpec
    popen: Process | None = None
    started_at: float = 0.0
    failures: int = 0  # consecutive early exits
    restart_at: float | None = None
    restarts: int = 0
    log_file: IO[bytes] | None = None
    exits: list[int] = field(default_factory=list)

    @property
    def pid(self) -> int | None:
        return None if self.popen is None else self.popen.pid


class Supervisor:
    def __init__(
        self,
        children: Sequence[ChildSpec],
        *,
        backoff: Backoff | None = None,
        grace: float = 10.0,
        env: dict[str, str] | None = None,
        clock: Callable[[], float] = time.monotonic,
        spawn: Callable[
            [ChildSpec, IO[bytes] | None, dict[str, str] | None], Process
        ] = spawn_process,
    ) -> None:
        self.children = [Child(s) for s in children]
        self.backoff = backoff or Backoff()
        self.grace = grace
        self.env = env
        self.clock = clock
        self.spawn = spawn
        self.stopping = threading.Event()

    # -- signals --------------------------------------------------------------------------------

    def install_signal_handlers(self) -> None:
        for sig in (signal.SIGTERM, signal.SIGINT):
            signal.signal(sig, self._on_signal)

    def _on_signal(self, signum: int, frame: Any) -> None:
        log.info("%s: stopping the MN", signal.Signals(signum).name)
        self.stopping.set()

    # -- running --------------------------------------------------------------------------------

    def run(self) -> int:
        """Start the children and keep them running until `stopping` is set; then stop them."""
        try:
            for child in self.children:
                self._start(child)
            while not self.stopping.is_set():
                self.step()
                self.stopping.wait(POLL_S)
        finally:
            self.stop()
        return 0

    def step(self) -> None:
        """Notice exited children and restart those whose back-off has passed."""
        now = self.clock()
        for child in self.children:
            if child.popen is not None:
                code = child.popen.poll()
                if code is None:
                    continue
                child.exits.append(code)
                ran = now - child.started_at
                child.failures = 1 if ran >= self.backoff.stable_after else child.failures + 1
                delay = self.backoff.delay(child.failures)
                child.restart_at = now + delay
                child.popen = None
                self._close_log(child)
                log.warning("%s exited with status %d after %.1f s; restarting in %.1f s",
                            child.spec.name, code, ran, delay)  # fmt: skip
            elif (
                child.restart_at is not None
                and now >= child.restart_at
                and not self.stopping.is_set()
            ):
                child.restarts += 1
                self._start(child)

    def _start(self, child: Child) -> None:
        out: IO[bytes] | None = None
        if child.spec.log_path is not None:
            child.spec.log_path.parent.mkdir(parents=True, exist_ok=True)
            out = child.log_file = open(child.spec.log_path, "ab")  # noqa: SIM115 (kept open)
        child.popen = self.spawn(child.spec, out, self.env)
        child.started_at = self.clock()
        child.restart_at = None
        log.info("started %s (pid %d)", child.spec.name, child.popen.pid)

    def stop(self) -> None:
        """SIGTERM every running child, wait up to `grace`, SIGKILL what is left."""
        running = [c for c in self.children if c.popen is not None and c.popen.poll() is None]
        for c in reversed(running):  # the controller first: it writes its snapshot
            assert c.popen is not None
            c.popen.send_signal(signal.SIGTERM)
        deadline = self.clock() + self.grace
        for c in running:
            assert c.popen is not None
            try:
                c.popen.wait(timeout=max(0.0, deadline - self.clock()))
            except subprocess.TimeoutExpired:
                log.error("%s (pid %d) ignored SIGTERM for %.0f s: killing it", c.spec.name,
                          c.popen.pid, self.grace)  # fmt: skip
                c.popen.kill()
                c.popen.wait()
        for c in self.children:
            if c.popen is not None:
                code = c.popen.poll()
                if code is not None:
                    c.exits.append(code)
                c.popen = None
            self._close_log(c)

    @staticmethod
    def _close_log(child: Child) -> None:
        if child.log_file is not None:
            child.log_file.close()
            child.log_file = None
