"""Running one thread inside a testbed namespace (the demo's sampler, integration tests).

The northbound listens on loopback inside the MN's namespace, and the MN's interface counters
are only visible from there. Linux switches network namespaces per thread (setns(2) with
CLONE_NEWNET), so a thread can enter the MN's namespace, open sockets there (they stay in it)
and come back, while the rest of the process stays where it is.

Owns: entering and leaving a named network namespace for the calling thread, and reading the
calling thread's interface counters.
Must not: be used by the daemons; leave a thread in a namespace after its block ends.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
from collections.abc import Iterator
from pathlib import Path

from sdnmip.testbed.names import NETNS_DIR

CLONE_NEWNET = 0x40000000  # linux/sched.h
_libc = ctypes.CDLL(None, use_errno=True)


def _setns(fd: int) -> None:
    if _libc.setns(fd, CLONE_NEWNET) != 0:
        err = ctypes.get_errno()
        raise OSError(err, f"setns: {os.strerror(err)}")


@contextlib.contextmanager
def entered(name: str) -> Iterator[None]:
    """Run the block with the calling thread in network namespace `name` (as `ip netns exec`
    would), then return it to the namespace it was in."""
    own = os.open("/proc/thread-self/ns/net", os.O_RDONLY)
    try:
        target = os.open(NETNS_DIR / name, os.O_RDONLY)
        try:
            _setns(target)
        finally:
            os.close(target)
        try:
            yield
        finally:
            _setns(own)
    finally:
        os.close(own)


def interface_counters() -> dict[str, tuple[int, int]]:
    """(rx bytes, tx bytes) of every interface of the calling thread's namespace, as the kernel
    counts them (/proc/thread-self/net/dev follows the thread's namespace, /proc/net the
    process's)."""
    return parse_net_dev(Path("/proc/thread-self/net/dev").read_text())


def parse_net_dev(text: str) -> dict[str, tuple[int, int]]:
    """The /proc/net/dev format: two header lines, then `name: rx_bytes rx_packets ... (8 rx
    fields) tx_bytes ...`."""
    out: dict[str, tuple[int, int]] = {}
    for line in text.splitlines()[2:]:
        name, sep, rest = line.partition(":")
        if not sep:
            continue
        fields = rest.split()
        out[name.strip()] = (int(fields[0]), int(fields[8]))
    return out
