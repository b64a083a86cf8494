"""Waiting for a daemon of the testbed to reach a state: one polling loop for every service.

Owns: polling a probe until it gives a value, a deadline, and an error that says what was
awaited, with the tail of the daemon's log. Must not: know any daemon.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TypeVar

from sdnmip.testbed.errors import TestbedError

T = TypeVar("T")
POLL_S = 0.05


def wait_until(
    what: str,
    probe: Callable[[], T | None],
    timeout: float,
    *,
    tail: Callable[[], str],
    label: str = "",
    gone: Callable[[], str | None] = lambda: None,
) -> T:
    """`probe()` once it is not None. Fails after `timeout` s, or at once when `gone()` says
    the daemon went away (its words, e.g. "sdnmip mn exited"), with `tail()` of its log."""
    deadline = time.monotonic() + timeout
    while True:
        died = gone()
        if died is not None:
            raise TestbedError(f"{label}{died} while waiting for {what}\n{tail()}")
        value = probe()
        if value is not None:
            return value
        if time.monotonic() >= deadline:
            raise TestbedError(f"{label}timed out after {timeout:g}s waiting for {what}\n{tail()}")
        time.sleep(POLL_S)
