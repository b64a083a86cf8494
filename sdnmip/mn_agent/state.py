"""What survives an agent restart: the clock the core runs on and the state file.

Owns: `AgentClock`, the one place where the agent reads time, and `StateStore`, which writes the
agent's state atomically (temporary file, fsync, rename, fsync of the directory) and only when it
changed, and reads it back; plus the lock that keeps two agents off one state directory.
Must not: interpret the state (the Home Address Table's `to_dict`/`from_dict` do).

Why the clock is anchored: the core's times are persisted (binding expiry, hold deadlines) and
must mean the same thing after a restart or a reboot, which a monotonic clock does not; yet
timers inside a run must not jump when NTP steps the wall clock. `AgentClock.now()` is the
monotonic clock shifted once, at start, onto the wall clock: saved times are wall-clock times
(to within the drift since the agent started) and a run never sees the clock go backwards.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

STATE_FILE = "agent-state.json"
LOCK_FILE = "agent.lock"
STATE_VERSION = 1


class StateError(RuntimeError):
    """The state file cannot be used; the message names the file and what to do."""


class AgentClock:
    def __init__(
        self,
        wall: Callable[[], float] = time.time,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self._monotonic = monotonic
        self._mono0 = monotonic()
        self._wall0 = wall()

    def now(self) -> float:
        """Seconds since the Unix epoch, advancing monotonically."""
        return self._wall0 + (self._monotonic() - self._mono0)

    def to_monotonic(self, t: float) -> float:
        """`t` (on this clock) on the scale of time.monotonic(), i.e. of asyncio's loop.time()."""
        return t - self._wall0 + self._mono0


class StateStore:
    """The agent's state file in `state_dir`, written atomically when its content changes."""

    def __init__(self, state_dir: Path) -> None:
        self.dir = state_dir
        self.path = state_dir / STATE_FILE
        self._last: str | None = None
        self._lock_fd: int | None = None

    def lock(self) -> None:
        """Take the directory's lock, or fail naming the other agent's lock file."""
        self.dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        fd = os.open(self.dir / LOCK_FILE, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            raise StateError(
                f"{self.dir / LOCK_FILE}: another agent uses this state directory"
            ) from None
        os.ftruncate(fd, 0)
        os.write(fd, f"{os.getpid()}\n".encode())
        self._lock_fd = fd

    def unlock(self) -> None:
        if self._lock_fd is not None:
            os.close(self._lock_fd)  # closing releases the flock
            self._lock_fd = None

    def load(self) -> dict[str, Any] | None:
        """The saved state, None when there is none. A damaged file is an error, not a fresh
        start: starting afresh would forget HoAs still registered at the HA."""
        try:
            text = self.path.read_text(encoding="utf-8")
        except FileNotFoundError:
            return None
        except OSError as exc:
            raise StateError(f"{self.path}: cannot read: {exc.strerror}") from None
        try:
            doc = json.loads(text)
        except (ValueError, RecursionError) as exc:
            raise StateError(f"{self.path}: not valid JSON ({exc}); {_AFRESH}") from None
        if not isinstance(doc, dict) or doc.get("version") != STATE_VERSION:
            raise StateError(f"{self.path}: not agent state version {STATE_VERSION}; {_AFRESH}")
        self._last = text
        return doc

    def save(self, doc: dict[str, Any]) -> bool:
        """Write `doc` unless the file already holds it; True when written."""
        # Compact: only then does json use its C encoder (a claim waits for this write).
        text = json.dumps({**doc, "version": STATE_VERSION}, sort_keys=True, separators=(",", ":"))
        if text == self._last:
            return False
        self.dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        tmp = self.path.with_suffix(".tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        try:
            os.write(fd, text.encode("utf-8"))
            os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(tmp, self.path)
        dfd = os.open(self.dir, os.O_RDONLY | os.O_DIRECTORY)
        try:
            os.fsync(dfd)  # the rename itself must survive a crash
        finally:
            os.close(dfd)
        self._last = text
        return True

    def discard(self) -> None:
        with contextlib.suppress(FileNotFoundError):
            self.path.unlink()
        self._last = None


_AFRESH = (
    "move it away to start afresh (HoAs the previous run registered then lapse at the HA "
    "when their lifetime ends)"
)
