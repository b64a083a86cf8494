"""One log line per interval for a kind of event that may come in a flood (malformed packets).

Owns: deciding, on a clock the caller passes, whether an event is reported now and how many
were held back since the last report. Must not: read clocks or log (the shell logs the line).
"""

from __future__ import annotations

from dataclasses import dataclass

REPORT_INTERVAL = 10.0  # seconds between two reports of the same kind; the first is at once


@dataclass(slots=True)
class LogThrottle:
    """`note(now, what)`: the line to log now (`what`, plus the count held back since the last
    report and how long ago that was), or None while within `interval` of the last report."""

    interval: float = REPORT_INTERVAL
    last: float | None = None
    held: int = 0

    def note(self, now: float, what: str) -> str | None:
        if self.last is not None and now - self.last < self.interval:
            self.held += 1
            return None
        held, since, self.held, self.last = self.held, self.last, 0, now
        if held and since is not None:
            # Held back within `interval` after the last report, which may be long ago.
            ago = now - since
            return f"{what} (and {held} more since the last report {ago:.0f} s ago, not logged)"
        return what
