"""RFC 4285 MN-HA authentication of Binding Updates and Acknowledgements, and the RFC 4285 §6
replay-protection timestamp.

Owns: the authenticator (RFC 4285 §5.1)

    Authenticator = First(96, HMAC_SHA1(MN-HA Shared key, Mobility Data))
    Mobility Data = care-of address | home address | MH Data

where "MH Data is the content of the Mobility Header up to and including the mobility SPI field
of this option" and "the Checksum field in the Mobility Header MUST be set to 0 to calculate the
Mobility Data". The Header Len in MH Data is the final one (the option is already in place).
The option MUST be the last option of the message (RFC 4285 §5.1); `options.py` places it at
8n+5 (its 4n+1 alignment) so that it ends on the Mobility Header's 8-octet boundary.
Care-of and home address are the mobile node's, in that order, for a BU (source address and
Home Address option) and for a BA alike (destination address and type 2 routing header address).
Must not: hold keys or decide policy (the home agent's binding cache and the MN agent do); know
about sockets.
"""

from __future__ import annotations

import hashlib
import hmac
import struct
from dataclasses import dataclass, field
from ipaddress import IPv6Address

from sdnmip.mipv6.mh import FIXED_LEN_BY_TYPE
from sdnmip.mipv6.options import (
    AUTH_SUBTYPE_MN_HA,
    MN_HA_AUTHENTICATOR_LEN,
    OPT_MESSAGE_AUTHENTICATION,
    OPT_PAD1,
    OPT_PADN,
    MobilityMessageAuthentication,
    MobilityMessageReplayProtection,
)

MOBILITY_SPI_RESERVED_MAX = 255  # RFC 4285 §5.1: SPIs 0-255 are reserved
MN_HA_KEY_LEN = 16  # RFC 4285 §5.1: the MN-HA shared key is 16 octets
REPLAY_CLOSE_ENOUGH_DEFAULT = 7.0  # RFC 4285 §5.1: default "close enough" for timestamps, seconds
NTP_UNIX_OFFSET = 2_208_988_800  # seconds from 1900-01-01 (NTP era 0) to 1970-01-01

_U32 = struct.Struct("!I")
_SPI_AND_DATA = 4 + MN_HA_AUTHENTICATOR_LEN
_MN_HA_OPTION_HEAD = bytes((OPT_MESSAGE_AUTHENTICATION, 1 + _SPI_AND_DATA, AUTH_SUBTYPE_MN_HA))


@dataclass(frozen=True, slots=True)
class MnHaKey:
    """One MN-HA mobility security association: SPI and shared key (never printed)."""

    spi: int
    key: bytes = field(repr=False)


def placeholder_option(spi: int) -> MobilityMessageAuthentication:
    """The MN-HA option with a zero authenticator, filled in by `sign_mobility_header`."""
    return MobilityMessageAuthentication(
        subtype=AUTH_SUBTYPE_MN_HA,
        mobility_spi=spi,
        authentication_data=bytes(MN_HA_AUTHENTICATOR_LEN),
    )


def compute_authenticator(
    key: bytes, careof: IPv6Address, home: IPv6Address, mh_data: bytes | bytearray | memoryview
) -> bytes:
    """First(96, HMAC_SHA1(key, careof | home | mh_data)); `mh_data` has a zero checksum and
    ends with the mobility SPI (RFC 4285 §5.1)."""
    mobility_data = careof.packed + home.packed + bytes(mh_data)
    return hmac.digest(key, mobility_data, hashlib.sha1)[:MN_HA_AUTHENTICATOR_LEN]


def sign_mobility_header(
    mh: bytearray, key: bytes, careof: IPv6Address, home: IPv6Address
) -> bytearray:
    """Fill the authenticator of the MN-HA option that ends `mh` (built with a placeholder).

    Zeroes the checksum (the caller computes it afterwards, over the signed bytes).
    """
    # The option is the last 19 octets: type 9, length 17, subtype 1 (MN-HA), SPI, data.
    tail = len(mh) - _SPI_AND_DATA - 3
    if tail < 8 or bytes(mh[tail : tail + 3]) != _MN_HA_OPTION_HEAD:
        raise ValueError("the Mobility Header does not end with an MN-HA authentication option")
    mh[4:6] = b"\x00\x00"
    at = len(mh) - MN_HA_AUTHENTICATOR_LEN
    mh[at:] = compute_authenticator(key, careof, home, memoryview(mh)[:at])
    return mh


def locate_mn_ha_option(mh: bytes) -> tuple[int, int] | None:
    """(mobility SPI, offset of the authentication data) of the MN-HA option of the Mobility
    Header `mh`, or None when it has none, it is not the last option (only padding may follow),
    or its authenticator is not 96 bits. Never raises on malformed input."""
    if len(mh) < 8:
        return None
    fixed = FIXED_LEN_BY_TYPE.get(mh[2])
    end = min(len(mh), (mh[1] + 1) * 8)
    if fixed is None or fixed > end:
        return None
    pos = fixed
    found: tuple[int, int] | None = None
    while pos < end:
        otype = mh[pos]
        if otype == OPT_PAD1:
            pos += 1
            continue
        if pos + 2 > end or pos + 2 + mh[pos + 1] > end:
            return None
        olen = mh[pos + 1]
        if found is not None and otype != OPT_PADN:
            return None  # an option after the authentication option: not the last
        if (
            found is None
            and otype == OPT_MESSAGE_AUTHENTICATION
            and olen >= 5
            and mh[pos + 2] == AUTH_SUBTYPE_MN_HA
        ):
            if olen != 5 + MN_HA_AUTHENTICATOR_LEN:
                return None
            found = (_U32.unpack_from(mh, pos + 3)[0], pos + 7)
        pos += 2 + olen
    return found


def verify_mobility_header(mh: bytes, key: bytes, careof: IPv6Address, home: IPv6Address) -> bool:
    """True when `mh` ends with an MN-HA option whose authenticator is right (constant-time
    comparison). False when the option is missing, misplaced or wrong."""
    located = locate_mn_ha_option(mh)
    if located is None:
        return False
    at = located[1]
    data = bytearray(mh[:at])
    data[4:6] = b"\x00\x00"
    expected = compute_authenticator(key, careof, home, data)
    return hmac.compare_digest(expected, mh[at : at + MN_HA_AUTHENTICATOR_LEN])


def ntp_timestamp(unix_time: float) -> int:
    """64-bit NTP timestamp (RFC 4285 §6 / RFC 1305 format) of a Unix time."""
    seconds = int(unix_time // 1)
    fraction = int((unix_time - seconds) * (1 << 32)) & 0xFFFFFFFF
    return (((seconds + NTP_UNIX_OFFSET) & 0xFFFFFFFF) << 32) | fraction


def unix_time(timestamp: int) -> float:
    """Unix time of a 64-bit NTP timestamp (era 0)."""
    return (timestamp >> 32) - NTP_UNIX_OFFSET + (timestamp & 0xFFFFFFFF) / (1 << 32)


def replay_protection(unix_now: float) -> MobilityMessageReplayProtection:
    """The RFC 4285 §6 replay protection option stamped with `unix_now` (passed in: no clock)."""
    return MobilityMessageReplayProtection(timestamp=ntp_timestamp(unix_now))


def timestamp_close_enough(
    timestamp: int, unix_now: float, window: float = REPLAY_CLOSE_ENOUGH_DEFAULT
) -> bool:
    """RFC 4285 §5.1/§6: the timestamp is within `window` seconds of the receiver's clock."""
    return abs(unix_time(timestamp) - unix_now) <= window
