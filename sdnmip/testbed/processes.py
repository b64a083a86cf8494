"""Processes of a testbed: finding them by network namespace, and ending them by PID.

Owns: which processes live in a namespace (as `ip netns pids` computes it: the same network
namespace inode), liveness, and SIGTERM-then-SIGKILL with deadlines. A recorded PID is only
signalled if it still lives in one of the testbed's namespaces, so a PID reused by an unrelated
process after a crash is never touched.

Must not: kill anything by name.
"""

from __future__ import annotations

import contextlib
import os
import signal
import time
from collections.abc import Iterable
from pathlib import Path

from sdnmip.testbed.names import NETNS_DIR

NsId = tuple[int, int]  # (st_dev, st_ino) of a network namespace
POLL_S = 0.02


def namespaces(netns_dir: Path = NETNS_DIR) -> list[str]:
    """Named network namespaces (what `ip netns list` shows)."""
    try:
        return sorted(os.listdir(netns_dir))
    except FileNotFoundError:
        return []


def ns_id(path: Path | str) -> NsId | None:
    try:
        st = os.stat(path)
    except OSError:
        return None
    return (st.st_dev, st.st_ino)


def netns_id(ns: str, netns_dir: Path = NETNS_DIR) -> NsId | None:
    return ns_id(netns_dir / ns)


def pid_netns(pid: int) -> NsId | None:
    return ns_id(f"/proc/{pid}/ns/net")


def pids_in(ns_ids: Iterable[NsId]) -> list[int]:
    """Every live process whose network namespace is one of `ns_ids`."""
    wanted = set(ns_ids)
    found = []
    for entry in os.listdir("/proc"):
        if entry.isdigit() and pid_netns(int(entry)) in wanted:
            found.append(int(entry))
    return sorted(found)


def read_pidfile(path: Path) -> int | None:
    try:
        text = path.read_text().strip()
    except OSError:
        return None
    return int(text) if text.isdigit() else None


def alive(pid: int) -> bool:
    """True while the process exists and is not a zombie."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    # The state follows the parenthesised command name, which may itself contain ") ".
    return stat.rsplit(")", 1)[1].split()[0] not in ("Z", "X")


def _signal(pids: Iterable[int], sig: signal.Signals) -> None:
    for pid in pids:
        with contextlib.suppress(ProcessLookupError):  # it exited meanwhile: fine
            os.kill(pid, sig)


def _wait_gone(pids: Iterable[int], deadline: float) -> list[int]:
    left = [p for p in pids if alive(p)]
    while left and time.monotonic() < deadline:
        time.sleep(POLL_S)
        left = [p for p in left if alive(p)]
    return left


def terminate(pids: Iterable[int], grace_s: float = 3.0, kill_wait_s: float = 3.0) -> list[int]:
    """SIGTERM, wait up to `grace_s`, SIGKILL the rest; returns the PIDs that survived even that."""
    targets = sorted(set(pids))
    _signal(targets, signal.SIGTERM)
    left = _wait_gone(targets, time.monotonic() + grace_s)
    if left:
        _signal(left, signal.SIGKILL)
        left = _wait_gone(left, time.monotonic() + kill_wait_s)
    return left
