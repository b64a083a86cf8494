"""A token bucket, for the rate limit on Binding Errors (RFC 6275 §9.3.3: "the rate at which
Binding Error messages are sent SHOULD be limited"), on a clock the caller passes.

Owns: the token arithmetic. Must not: read clocks or know what it limits.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(slots=True)
class TokenBucket:
    """`rate` tokens per second, at most `burst` saved; `allow(now)` spends one if it can."""

    rate: float
    burst: float
    tokens: float = -1.0
    last: float | None = None
    refused: int = 0

    def allow(self, now: float) -> bool:
        if self.last is None:
            self.tokens = self.burst
        else:
            self.tokens = min(self.burst, self.tokens + (now - self.last) * self.rate)
        self.last = now
        if self.tokens >= 1.0:
            self.tokens -= 1.0
            return True
        self.refused += 1
        return False
