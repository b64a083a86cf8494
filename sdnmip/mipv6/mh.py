"""Mobility Header messages (IPv6 next header 135, RFC 6275 §6.1) and their encoding.

Owns: one frozen dataclass per MH type (BRR, HoTI, CoTI, HoT, CoT, BU, BA, BE), the encoding of
a Mobility Header, the decoding of one (with or without its checksum), and the RFC 6275 §9.2
checks: Payload Proto must be IPPROTO_NONE, Header Len must cover the type's fixed fields, the
checksum must verify. An MH Type the codec does not know decodes to `UnknownMobilityMessage` so
the receiver can answer with a Binding Error, status 2 (RFC 6275 §9.2).
Must not: choose pseudo-header addresses (`packet.py` does) or compute RFC 4285 authenticators
(`auth.py` does).
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, field
from ipaddress import IPv6Address
from typing import ClassVar

from sdnmip.mipv6.checksum import upper_layer_checksum, verify_upper_layer_checksum
from sdnmip.mipv6.errors import (
    ChecksumError,
    EncodeError,
    FieldValueError,
    LengthError,
    TruncatedError,
)
from sdnmip.mipv6.options import (
    LIFETIME_UNIT_SECONDS,
    MobilityOption,
    decode_options,
    encode_options,
)
from sdnmip.mipv6.status import BA_ACCEPTED_LIMIT

IPPROTO_MH = 135  # RFC 6275 §6.1.1: Mobility Header next header value
IPPROTO_NONE = 59  # RFC 6275 §6.1.1: Payload Proto must be IPPROTO_NONE
MH_MAX_LEN = 2048  # (255 + 1) * 8: the largest Header Len can express
MAX_LIFETIME_UNITS = 0xFFFF

MH_BRR = 0  # RFC 6275 §6.1.2 Binding Refresh Request
MH_HOTI = 1  # §6.1.3 Home Test Init
MH_COTI = 2  # §6.1.4 Care-of Test Init
MH_HOT = 3  # §6.1.5 Home Test
MH_COT = 4  # §6.1.6 Care-of Test
MH_BU = 5  # §6.1.7 Binding Update
MH_BA = 6  # §6.1.8 Binding Acknowledgement
MH_BE = 7  # §6.1.9 Binding Error

_BU_A = 0x8000  # RFC 6275 §6.1.7 flags
_BU_H = 0x4000
_BU_L = 0x2000
_BU_K = 0x1000
_BA_K = 0x80  # RFC 6275 §6.1.8

_HEAD = struct.Struct("!BBBBH")  # Payload Proto, Header Len, MH Type, Reserved, Checksum
_BU = struct.Struct("!HHH")  # Sequence #, A|H|L|K|Reserved, Lifetime
_BA = struct.Struct("!BBHH")  # Status, K|Reserved, Sequence #, Lifetime
_BE = struct.Struct("!BB16s")  # Status, Reserved, Home Address
_TI = struct.Struct("!H8s")  # Reserved, Init Cookie
_TEST = struct.Struct("!H8s8s")  # Nonce Index, Init Cookie, Keygen Token
_U16 = struct.Struct("!H")


def lifetime_units(seconds: float) -> int:
    """Seconds to RFC 6275 lifetime units (4 s), rounded down, capped at 0xFFFF (§6.1.7)."""
    if seconds <= 0:
        return 0
    return min(int(seconds) // LIFETIME_UNIT_SECONDS, MAX_LIFETIME_UNITS)


def _cookie(name: str, value: bytes) -> bytes:
    if len(value) != 8:
        raise EncodeError(f"{name} must be 8 octets, got {len(value)}")
    return value


@dataclass(frozen=True, slots=True, kw_only=True)
class BindingRefreshRequest:
    """RFC 6275 §6.1.2 (MH Type 0)."""

    options: tuple[MobilityOption, ...] = ()
    MH_TYPE: ClassVar[int] = MH_BRR
    FIXED_LEN: ClassVar[int] = 8

    def fixed_fields(self) -> bytes:
        return b"\x00\x00"


@dataclass(frozen=True, slots=True, kw_only=True)
class HomeTestInit:
    """RFC 6275 §6.1.3 (MH Type 1). The cookie is 8 opaque octets."""

    home_init_cookie: bytes
    options: tuple[MobilityOption, ...] = ()
    MH_TYPE: ClassVar[int] = MH_HOTI
    FIXED_LEN: ClassVar[int] = 16

    def fixed_fields(self) -> bytes:
        return _TI.pack(0, _cookie("home_init_cookie", self.home_init_cookie))


@dataclass(frozen=True, slots=True, kw_only=True)
class CareofTestInit:
    """RFC 6275 §6.1.4 (MH Type 2)."""

    careof_init_cookie: bytes
    options: tuple[MobilityOption, ...] = ()
    MH_TYPE: ClassVar[int] = MH_COTI
    FIXED_LEN: ClassVar[int] = 16

    def fixed_fields(self) -> bytes:
        return _TI.pack(0, _cookie("careof_init_cookie", self.careof_init_cookie))


@dataclass(frozen=True, slots=True, kw_only=True)
class HomeTest:
    """RFC 6275 §6.1.5 (MH Type 3)."""

    home_nonce_index: int
    home_init_cookie: bytes
    home_keygen_token: bytes
    options: tuple[MobilityOption, ...] = ()
    MH_TYPE: ClassVar[int] = MH_HOT
    FIXED_LEN: ClassVar[int] = 24

    def fixed_fields(self) -> bytes:
        return _TEST.pack(
            self.home_nonce_index,
            _cookie("home_init_cookie", self.home_init_cookie),
            _cookie("home_keygen_token", self.home_keygen_token),
        )


@dataclass(frozen=True, slots=True, kw_only=True)
class CareofTest:
    """RFC 6275 §6.1.6 (MH Type 4)."""

    careof_nonce_index: int
    careof_init_cookie: bytes
    careof_keygen_token: bytes
    options: tuple[MobilityOption, ...] = ()
    MH_TYPE: ClassVar[int] = MH_COT
    FIXED_LEN: ClassVar[int] = 24

    def fixed_fields(self) -> bytes:
        return _TEST.pack(
            self.careof_nonce_index,
            _cookie("careof_init_cookie", self.careof_init_cookie),
            _cookie("careof_keygen_token", self.careof_keygen_token),
        )


@dataclass(frozen=True, slots=True, kw_only=True)
class BindingUpdate:
    """RFC 6275 §6.1.7 (MH Type 5). `lifetime` is in units of 4 seconds.

    Flags: `ack` (A), `home_registration` (H), `link_local` (L, link-local address
    compatibility), `key_management` (K, key management mobility capability). Every flag must be
    given: there are no silent defaults.
    """

    sequence: int
    lifetime: int
    ack: bool
    home_registration: bool
    link_local: bool
    key_management: bool
    options: tuple[MobilityOption, ...] = ()
    MH_TYPE: ClassVar[int] = MH_BU
    FIXED_LEN: ClassVar[int] = 12

    @property
    def lifetime_seconds(self) -> int:
        return self.lifetime * LIFETIME_UNIT_SECONDS

    def fixed_fields(self) -> bytes:
        flags = (
            (_BU_A if self.ack else 0)
            | (_BU_H if self.home_registration else 0)
            | (_BU_L if self.link_local else 0)
            | (_BU_K if self.key_management else 0)
        )
        return _BU.pack(self.sequence, flags, self.lifetime)


@dataclass(frozen=True, slots=True, kw_only=True)
class BindingAcknowledgement:
    """RFC 6275 §6.1.8 (MH Type 6). `lifetime` is in units of 4 seconds; see `status.py`."""

    status: int
    key_management: bool
    sequence: int
    lifetime: int
    options: tuple[MobilityOption, ...] = ()
    MH_TYPE: ClassVar[int] = MH_BA
    FIXED_LEN: ClassVar[int] = 12

    @property
    def lifetime_seconds(self) -> int:
        return self.lifetime * LIFETIME_UNIT_SECONDS

    @property
    def accepted(self) -> bool:
        return self.status < BA_ACCEPTED_LIMIT

    def fixed_fields(self) -> bytes:
        return _BA.pack(
            self.status, _BA_K if self.key_management else 0, self.sequence, self.lifetime
        )


@dataclass(frozen=True, slots=True, kw_only=True)
class BindingError:
    """RFC 6275 §6.1.9 (MH Type 7); see `status.BindingErrorStatus`."""

    status: int
    home_address: IPv6Address
    options: tuple[MobilityOption, ...] = ()
    MH_TYPE: ClassVar[int] = MH_BE
    FIXED_LEN: ClassVar[int] = 24

    def fixed_fields(self) -> bytes:
        return _BE.pack(self.status, 0, self.home_address.packed)


@dataclass(frozen=True, slots=True, kw_only=True)
class UnknownMobilityMessage:
    """An MH Type this codec does not implement, reported so that the receiver can send a
    Binding Error with status 2 (RFC 6275 §9.2). `message_data` is everything after the checksum.
    """

    mh_type: int
    message_data: bytes = field(default=b"")


MobilityMessage = (
    BindingRefreshRequest
    | HomeTestInit
    | CareofTestInit
    | HomeTest
    | CareofTest
    | BindingUpdate
    | BindingAcknowledgement
    | BindingError
)
AnyMobilityMessage = MobilityMessage | UnknownMobilityMessage

FIXED_LEN_BY_TYPE: dict[int, int] = {
    cls.MH_TYPE: cls.FIXED_LEN
    for cls in (
        BindingRefreshRequest,
        HomeTestInit,
        CareofTestInit,
        HomeTest,
        CareofTest,
        BindingUpdate,
        BindingAcknowledgement,
        BindingError,
    )
}


def encode_mh_unchecked(
    message: AnyMobilityMessage, extra_options: tuple[MobilityOption, ...] = ()
) -> bytearray:
    """The Mobility Header with a zero checksum (for `auth.py` to sign before checksumming).

    `extra_options` are appended after the message's own options (used for the RFC 4285
    authentication option, which must come last).
    """
    if isinstance(message, UnknownMobilityMessage):
        body = message.message_data
        if (6 + len(body)) % 8:
            raise EncodeError("UnknownMobilityMessage: 6 + len(message_data) must be 8n")
        mh_type = message.mh_type
    else:
        try:
            fixed = message.fixed_fields()
        except struct.error as exc:
            raise EncodeError(f"{type(message).__name__}: {exc}") from exc
        opts = message.options + extra_options if extra_options else message.options
        body = fixed + encode_options(opts, message.FIXED_LEN)
        mh_type = message.MH_TYPE
    total = 6 + len(body)
    if total > MH_MAX_LEN:
        raise EncodeError(f"Mobility Header of {total} octets exceeds {MH_MAX_LEN}")
    out = bytearray(_HEAD.pack(IPPROTO_NONE, total // 8 - 1, mh_type, 0, 0))
    out += body
    return out


def set_mh_checksum(mh: bytearray, src: IPv6Address, dst: IPv6Address) -> bytearray:
    """Store the checksum over the pseudo-header (`src`, `dst`, length, 135) in `mh`."""
    mh[4:6] = b"\x00\x00"
    csum = upper_layer_checksum(src.packed, dst.packed, IPPROTO_MH, mh)
    mh[4:6] = _U16.pack(csum)
    return mh


def encode_mobility_header(
    message: AnyMobilityMessage, src: IPv6Address, dst: IPv6Address
) -> bytes:
    """The Mobility Header of `message` with its checksum over (`src`, `dst`).

    `src` must be the home address when the packet carries a Home Address option, and `dst` the
    final destination (the type 2 routing header's address) when it carries one: see
    `packet.build_mh_packet`, which picks them.
    """
    return bytes(set_mh_checksum(encode_mh_unchecked(message), src, dst))


def mh_extent(data: bytes, start: int, end: int) -> int:
    """Check the MH framing at `data[start:end]` and return its length in octets.

    The Mobility Header is the last header (Payload Proto is IPPROTO_NONE), so its Header Len
    must account for exactly the bytes that follow.
    """
    avail = end - start
    if avail < 8:
        raise TruncatedError("Mobility Header", start, f"{avail} octets, at least 8 needed")
    total = (data[start + 1] + 1) * 8
    if total > avail:
        raise TruncatedError("Header Len", start + 1, f"says {total} octets, {avail} follow")
    if total < avail:
        raise LengthError("Header Len", start + 1, f"says {total} octets but {avail} follow")
    return total


def decode_mh_body(data: bytes, start: int = 0, end: int | None = None) -> AnyMobilityMessage:
    """Decode the Mobility Header at `data[start:end]` WITHOUT verifying its checksum.

    For captures and fuzzing; daemons use `decode_mobility_header` or `packet.decode_from`.
    """
    if end is None:
        end = len(data)
    total = mh_extent(data, start, end)
    return _decode_fields(data, start, start + total)


def decode_mobility_header(
    data: bytes, src: IPv6Address, dst: IPv6Address, start: int = 0, end: int | None = None
) -> AnyMobilityMessage:
    """Decode the Mobility Header at `data[start:end]`, verifying its checksum over (src, dst)."""
    if end is None:
        end = len(data)
    total = mh_extent(data, start, end)
    view = memoryview(data)[start : start + total]
    if not verify_upper_layer_checksum(src.packed, dst.packed, IPPROTO_MH, view):
        raise ChecksumError("Checksum", start + 4, f"does not verify over {src} -> {dst}")
    return _decode_fields(data, start, start + total)


def _decode_fields(data: bytes, start: int, stop: int) -> AnyMobilityMessage:
    if data[start] != IPPROTO_NONE:
        raise FieldValueError(
            "Payload Proto", start, f"is {data[start]}, must be {IPPROTO_NONE} (RFC 6275 §9.2)"
        )
    mh_type = data[start + 2]
    fixed = FIXED_LEN_BY_TYPE.get(mh_type)
    if fixed is None:
        return UnknownMobilityMessage(mh_type=mh_type, message_data=bytes(data[start + 6 : stop]))
    if stop - start < fixed:
        raise LengthError(
            "Header Len", start + 1, f"{stop - start} octets too short for MH Type {mh_type}"
        )
    opts = decode_options(data, start + fixed, stop)
    at = start + 6
    if mh_type == MH_BU:
        seq, flags, lifetime = _BU.unpack_from(data, at)
        return BindingUpdate(
            sequence=seq,
            lifetime=lifetime,
            ack=bool(flags & _BU_A),
            home_registration=bool(flags & _BU_H),
            link_local=bool(flags & _BU_L),
            key_management=bool(flags & _BU_K),
            options=opts,
        )
    if mh_type == MH_BA:
        status, kbyte, seq, lifetime = _BA.unpack_from(data, at)
        return BindingAcknowledgement(
            status=status,
            key_management=bool(kbyte & _BA_K),
            sequence=seq,
            lifetime=lifetime,
            options=opts,
        )
    if mh_type == MH_BRR:
        return BindingRefreshRequest(options=opts)
    if mh_type == MH_BE:
        status, _, hoa = _BE.unpack_from(data, at)
        return BindingError(status=status, home_address=IPv6Address(hoa), options=opts)
    if mh_type == MH_HOTI:
        return HomeTestInit(home_init_cookie=_TI.unpack_from(data, at)[1], options=opts)
    if mh_type == MH_COTI:
        return CareofTestInit(careof_init_cookie=_TI.unpack_from(data, at)[1], options=opts)
    index, cookie, token = _TEST.unpack_from(data, at)
    if mh_type == MH_HOT:
        return HomeTest(
            home_nonce_index=index, home_init_cookie=cookie, home_keygen_token=token, options=opts
        )
    return CareofTest(
        careof_nonce_index=index, careof_init_cookie=cookie, careof_keygen_token=token, options=opts
    )
