"""Mobility options carried in the Mobility Header (RFC 6275 §6.2, RFC 4283, RFC 4285).

Owns: one frozen dataclass per option, its encoding, its alignment requirement, and the decoding
of an option area. Encoding inserts Pad1/PadN so that each option meets its alignment (xn+y,
counted from the start of the Mobility Header, RFC 6275 §6.2) and pads the Mobility Header to a
multiple of 8 octets. Decoding drops padding and skips options of unknown type (RFC 6275 §6.2.1:
"the receiver MUST quietly ignore and skip over the option").
Must not: know about message types or addresses (see `mh.py`), or compute authenticators
(see `auth.py`).
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from ipaddress import IPv6Address
from typing import ClassVar, TypeVar

from sdnmip.mipv6.errors import EncodeError, FieldValueError, LengthError, TruncatedError

# Option types (IANA "Mobility Options" registry).
OPT_PAD1 = 0  # RFC 6275 §6.2.2
OPT_PADN = 1  # RFC 6275 §6.2.3
OPT_BINDING_REFRESH_ADVICE = 2  # RFC 6275 §6.2.4
OPT_ALTERNATE_COA = 3  # RFC 6275 §6.2.5
OPT_NONCE_INDICES = 4  # RFC 6275 §6.2.6
OPT_BINDING_AUTHORIZATION_DATA = 5  # RFC 6275 §6.2.7
OPT_MOBILE_NODE_IDENTIFIER = 8  # RFC 4283 §3
OPT_MESSAGE_AUTHENTICATION = 9  # RFC 4285 §5
OPT_REPLAY_PROTECTION = 10  # RFC 4285 §6

MNID_SUBTYPE_NAI = 1  # RFC 4283 §3: the identifier is a Network Access Identifier (RFC 4282)
AUTH_SUBTYPE_MN_HA = 1  # RFC 4285 §5.1
AUTH_SUBTYPE_MN_AAA = 2  # RFC 4285 §5.2
MN_HA_AUTHENTICATOR_LEN = 12  # RFC 4285 §5.1: First(96, HMAC_SHA1(...))

LIFETIME_UNIT_SECONDS = 4  # RFC 6275 §6.1.7/§6.2.4: lifetimes and refresh intervals in 4 s units

_BRA = struct.Struct("!BBH")
_NI = struct.Struct("!BBHH")
_AUTH_HEAD = struct.Struct("!BBBI")
_REPLAY = struct.Struct("!BBQ")
_U16 = struct.Struct("!H")
_U32 = struct.Struct("!I")
_U64 = struct.Struct("!Q")


@dataclass(frozen=True, slots=True)
class Pad1:
    """One octet of padding (RFC 6275 §6.2.2). Dropped by the message decoder."""

    ALIGN: ClassVar[tuple[int, int]] = (1, 0)

    def encode(self) -> bytes:
        return b"\x00"


@dataclass(frozen=True, slots=True)
class PadN:
    """`option_length` + 2 octets of padding (RFC 6275 §6.2.3). Dropped by the message decoder."""

    option_length: int
    ALIGN: ClassVar[tuple[int, int]] = (1, 0)

    def encode(self) -> bytes:
        return bytes((OPT_PADN, self.option_length)) + bytes(self.option_length)


@dataclass(frozen=True, slots=True)
class BindingRefreshAdvice:
    """RFC 6275 §6.2.4, alignment 2n. `refresh_interval` is in units of 4 seconds."""

    refresh_interval: int
    ALIGN: ClassVar[tuple[int, int]] = (2, 0)

    @property
    def refresh_interval_seconds(self) -> int:
        return self.refresh_interval * LIFETIME_UNIT_SECONDS

    def encode(self) -> bytes:
        return _BRA.pack(OPT_BINDING_REFRESH_ADVICE, 2, self.refresh_interval)


@dataclass(frozen=True, slots=True)
class AlternateCareofAddress:
    """RFC 6275 §6.2.5, alignment 8n+6 (the address lands on an 8-octet boundary)."""

    alternate_careof_address: IPv6Address
    ALIGN: ClassVar[tuple[int, int]] = (8, 6)

    def encode(self) -> bytes:
        return bytes((OPT_ALTERNATE_COA, 16)) + self.alternate_careof_address.packed


@dataclass(frozen=True, slots=True)
class NonceIndices:
    """RFC 6275 §6.2.6, alignment 2n."""

    home_nonce_index: int
    careof_nonce_index: int
    ALIGN: ClassVar[tuple[int, int]] = (2, 0)

    def encode(self) -> bytes:
        return _NI.pack(OPT_NONCE_INDICES, 4, self.home_nonce_index, self.careof_nonce_index)


@dataclass(frozen=True, slots=True)
class BindingAuthorizationData:
    """RFC 6275 §6.2.7, alignment 8n+2 (return-routability authenticator, 96 bits)."""

    authenticator: bytes
    ALIGN: ClassVar[tuple[int, int]] = (8, 2)

    def encode(self) -> bytes:
        return bytes((OPT_BINDING_AUTHORIZATION_DATA, len(self.authenticator))) + self.authenticator


@dataclass(frozen=True, slots=True)
class MobileNodeIdentifier:
    """RFC 4283 §3: Mobile Node Identifier option. Subtype 1 carries an NAI (UTF-8, RFC 4282).

    RFC 4283 states no alignment requirement.
    """

    subtype: int
    identifier: bytes
    ALIGN: ClassVar[tuple[int, int]] = (1, 0)

    @classmethod
    def from_nai(cls, nai: str) -> MobileNodeIdentifier:
        return cls(MNID_SUBTYPE_NAI, nai.encode("utf-8"))

    @property
    def nai(self) -> str | None:
        """The NAI as text (the decoder has checked it is UTF-8), None for other subtypes."""
        if self.subtype != MNID_SUBTYPE_NAI:
            return None
        return self.identifier.decode("utf-8")

    def encode(self) -> bytes:
        return bytes((OPT_MOBILE_NODE_IDENTIFIER, 1 + len(self.identifier), self.subtype)) + (
            self.identifier
        )


@dataclass(frozen=True, slots=True)
class MobilityMessageAuthentication:
    """RFC 4285 §5: Mobility Message Authentication option (subtype 1 MN-HA, 2 MN-AAA).

    Alignment 4n+1, so the Mobility SPI is 32-bit aligned (RFC 4285 §5, Figure 2). It MUST be the
    last option; the encoder places it at 8n+5 so that, with a 12-octet authenticator, it ends
    exactly on the 8-octet boundary and no padding follows it. `auth.py` fills the authenticator.
    """

    subtype: int
    mobility_spi: int
    authentication_data: bytes
    ALIGN: ClassVar[tuple[int, int]] = (8, 5)

    def encode(self) -> bytes:
        return (
            _AUTH_HEAD.pack(
                OPT_MESSAGE_AUTHENTICATION,
                5 + len(self.authentication_data),
                self.subtype,
                self.mobility_spi,
            )
            + self.authentication_data
        )


@dataclass(frozen=True, slots=True)
class MobilityMessageReplayProtection:
    """RFC 4285 §6: Mobility Message Replay Protection option, alignment 8n+2.

    `timestamp` is the 64-bit NTP-format timestamp (seconds since 1900 in the high 32 bits,
    fraction in the low 32 bits); see `auth.ntp_timestamp` / `auth.unix_time`.
    """

    timestamp: int
    ALIGN: ClassVar[tuple[int, int]] = (8, 2)

    def encode(self) -> bytes:
        return _REPLAY.pack(OPT_REPLAY_PROTECTION, 8, self.timestamp)


MobilityOption = (
    Pad1
    | PadN
    | BindingRefreshAdvice
    | AlternateCareofAddress
    | NonceIndices
    | BindingAuthorizationData
    | MobileNodeIdentifier
    | MobilityMessageAuthentication
    | MobilityMessageReplayProtection
)


OptionT = TypeVar("OptionT", bound=MobilityOption)


def find_option(options: tuple[MobilityOption, ...], kind: type[OptionT]) -> OptionT | None:
    """The first option of class `kind` (e.g. the MN-ID or the authentication option to pick
    the MN's key), or None."""
    for opt in options:
        if isinstance(opt, kind):
            return opt
    return None


def padding(count: int) -> bytes:
    """`count` octets of mobility-option padding: nothing, Pad1, or one PadN."""
    if count == 0:
        return b""
    if count == 1:
        return b"\x00"
    return bytes((OPT_PADN, count - 2)) + bytes(count - 2)


def encode_options(options: tuple[MobilityOption, ...], offset: int) -> bytes:
    """Encode `options` starting at `offset` octets from the start of the Mobility Header.

    Inserts padding before each option for its alignment and after the last one so that the
    Mobility Header ends on an 8-octet boundary (RFC 6275 §6.1.1 Header Len).
    """
    out = bytearray()
    pos = offset
    for opt in options:
        x, y = opt.ALIGN
        pad = (y - pos) % x
        if pad:
            out += padding(pad)
            pos += pad
        try:
            raw = opt.encode()
        except (struct.error, ValueError, OverflowError) as exc:
            raise EncodeError(f"{type(opt).__name__}: {exc}") from exc
        if len(raw) - 2 > 255:
            raise EncodeError(f"{type(opt).__name__}: option data longer than 255 octets")
        out += raw
        pos += len(raw)
    tail = (-pos) % 8
    if tail:
        out += padding(tail)
    return bytes(out)


def decode_options(
    data: bytes, start: int, end: int, *, keep_padding: bool = False
) -> tuple[MobilityOption, ...]:
    """Decode the option area `data[start:end]`; offsets in errors are indices into `data`.

    Unknown option types are skipped (RFC 6275 §6.2.1). A known option whose length is wrong for
    its type is malformed and raises `LengthError`.
    """
    found: list[MobilityOption] = []
    pos = start
    while pos < end:
        otype = data[pos]
        if otype == OPT_PAD1:
            if keep_padding:
                found.append(Pad1())
            pos += 1
            continue
        if pos + 2 > end:
            raise TruncatedError("mobility option length", pos + 1, "option area ends")
        olen = data[pos + 1]
        body = pos + 2
        nxt = body + olen
        if nxt > end:
            raise TruncatedError(
                "mobility option length", pos + 1, f"option {otype} of {olen} octets overruns"
            )
        opt = _decode_one(data, otype, olen, pos, body, keep_padding=keep_padding)
        if opt is not None:
            found.append(opt)
        pos = nxt
    return tuple(found)


def _need(otype_name: str, olen: int, expected: int, pos: int) -> None:
    if olen != expected:
        raise LengthError(f"{otype_name} option length", pos + 1, f"is {olen}, must be {expected}")


def _decode_one(
    data: bytes, otype: int, olen: int, pos: int, body: int, *, keep_padding: bool
) -> MobilityOption | None:
    if otype == OPT_PADN:
        return PadN(olen) if keep_padding else None
    if otype == OPT_BINDING_REFRESH_ADVICE:
        _need("binding refresh advice", olen, 2, pos)
        return BindingRefreshAdvice(_U16.unpack_from(data, body)[0])
    if otype == OPT_ALTERNATE_COA:
        _need("alternate care-of address", olen, 16, pos)
        return AlternateCareofAddress(IPv6Address(bytes(data[body : body + 16])))
    if otype == OPT_NONCE_INDICES:
        _need("nonce indices", olen, 4, pos)
        return NonceIndices(_U16.unpack_from(data, body)[0], _U16.unpack_from(data, body + 2)[0])
    if otype == OPT_BINDING_AUTHORIZATION_DATA:
        return BindingAuthorizationData(bytes(data[body : body + olen]))
    if otype == OPT_MOBILE_NODE_IDENTIFIER:
        if olen < 2:
            raise LengthError(
                "mobile node identifier option length", pos + 1, f"is {olen}, must be >= 2"
            )
        subtype = data[body]
        ident = bytes(data[body + 1 : body + olen])
        if subtype == MNID_SUBTYPE_NAI:
            try:
                ident.decode("utf-8")
            except UnicodeDecodeError as exc:
                raise FieldValueError(
                    "mobile node identifier NAI", body + 1 + exc.start, "is not UTF-8"
                ) from None
        return MobileNodeIdentifier(subtype, ident)
    if otype == OPT_MESSAGE_AUTHENTICATION:
        if olen < 5:
            raise LengthError(
                "mobility message authentication option length", pos + 1, f"is {olen}, must be >= 5"
            )
        return MobilityMessageAuthentication(
            data[body],
            _U32.unpack_from(data, body + 1)[0],
            bytes(data[body + 5 : body + olen]),
        )
    if otype == OPT_REPLAY_PROTECTION:
        _need("replay protection", olen, 8, pos)
        return MobilityMessageReplayProtection(_U64.unpack_from(data, body)[0])
    return None  # unknown option type: skipped (RFC 6275 §6.2.1)
