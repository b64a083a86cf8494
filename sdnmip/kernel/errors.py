"""Exceptions of the kernel helpers.

Owns: the two kinds of failure a caller must tell apart. A `KernelConfigError` is the caller's
mistake (a malformed address, a device that does not exist) and names the offending value. A
`KernelRequestError` is the kernel refusing a well-formed request; it carries the request so the
log line alone says what was attempted. Must not: hide errno, or be raised for bugs.
"""

from __future__ import annotations


class KernelConfigError(ValueError):
    """A bad argument from the caller: names the field and the value."""

    def __init__(self, field: str, value: object, reason: str) -> None:
        super().__init__(f"{field}={value!r}: {reason}")
        self.field = field
        self.value = value


class KernelRequestError(RuntimeError):
    """The kernel (netlink, nft, a raw socket, /proc/sys) refused a request."""

    def __init__(self, request: str, reason: str, errno: int | None = None) -> None:
        super().__init__(f"{request}: {reason}")
        self.request = request
        self.errno = errno
