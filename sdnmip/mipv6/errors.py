"""The one exception family of the Mobile IPv6 codec.

Owns: `DecodeError` (and its subclasses), raised for every malformed input, and `EncodeError`,
raised when a message cannot be put on the wire (a field out of range). Every `DecodeError` names
the field and the byte offset (from the start of the buffer the caller passed), so a daemon can log
it and, where RFC 6275 §9.2 asks for it, point an ICMPv6 Parameter Problem at that byte.
Must not: import anything else from the package (every module imports this one).
"""

from __future__ import annotations


class DecodeError(ValueError):
    """Malformed input: `field` is the field at fault, `offset` its first byte in the buffer."""

    def __init__(self, field: str, offset: int, reason: str) -> None:
        super().__init__(f"{field} at offset {offset}: {reason}")
        self.field = field
        self.offset = offset
        self.reason = reason


class TruncatedError(DecodeError):
    """The buffer ends before a field or a declared length does."""


class LengthError(DecodeError):
    """A length field is inconsistent with the message type or with the bytes that follow."""


class ChecksumError(DecodeError):
    """The MH or ICMPv6 checksum does not verify against the pseudo-header (RFC 8200 §8.1)."""


class FieldValueError(DecodeError):
    """A field holds a value the protocol forbids (wrong version, code, payload proto, ...)."""


class UnsupportedHeaderError(DecodeError):
    """A header the codec does not handle: not malformed, just not Mobile IPv6 signalling.

    Examples: a TCP segment on a raw proto-41 socket, a fragment header, a routing header of a
    type other than 2 with segments left. Daemons drop these silently.
    """


class UnrecognizedOptionError(DecodeError):
    """A destination option whose type says "discard the packet" when unknown (RFC 8200 §4.2).

    The offset points at the option type byte (ICMPv6 Parameter Problem code 2 pointer).
    """


class EncodeError(ValueError):
    """A message cannot be encoded: a field is out of range or the options do not fit."""
