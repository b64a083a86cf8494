"""RFC 4285 / RFC 4283 authentication of a received Binding Update: the verdict the cache uses.

Owns: finding the Mobile Node Identifier (NAI), the MN-HA Mobility Message Authentication option
and the Mobility Message Replay Protection option in a decoded BU, looking the NAI up in the
`KeyStore`, checking the SPI and verifying the authenticator (the codec computes it), and
summarising the outcome as an `AuthVerdict`. The timestamp is only extracted here: whether it is
fresh is binding-cache state (`cache.py`), like the sequence number.

Must not: keep state, read clocks, log secrets, or decide the Binding Acknowledgement status
(the cache maps verdicts to statuses).
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass

from sdnmip.mipv6.auth import MnHaKey
from sdnmip.mipv6.options import (
    AUTH_SUBTYPE_MN_HA,
    MobileNodeIdentifier,
    MobilityMessageAuthentication,
    MobilityMessageReplayProtection,
    find_option,
)
from sdnmip.mipv6.packet import DecodedPacket


class AuthFailure(enum.Enum):
    """Why a BU did not authenticate (all answered with MIPV6-AUTH-FAIL, RFC 4285 §5/§9)."""

    NO_MN_IDENTIFIER = "no Mobile Node Identifier (NAI) option"
    NOT_AN_NAI = "Mobile Node Identifier is not an NAI"
    UNKNOWN_NAI = "unknown NAI"
    NO_AUTH_OPTION = "no MN-HA authentication option (or not the last option)"
    SPI_MISMATCH = "mobility SPI does not match the NAI's security association"
    BAD_AUTHENTICATOR = "wrong authenticator"


@dataclass(frozen=True, slots=True)
class AuthVerdict:
    """Outcome of authenticating one BU.

    `nai` is the identifier the BU claimed (echoed in the BA, RFC 4283), present even when the
    check failed; `failure` is None when the authenticator verified with the NAI's key;
    `timestamp` is the RFC 4285 §6 replay-protection timestamp, None when the option is absent.
    """

    nai: str | None
    failure: AuthFailure | None
    timestamp: int | None

    @property
    def ok(self) -> bool:
        return self.failure is None


def authenticate(packet: DecodedPacket, keys: Mapping[str, MnHaKey]) -> AuthVerdict:
    """Authenticate the BU in `packet` (decoded by the codec, checksum verified)."""
    options = getattr(packet.message, "options", ())
    replay = find_option(options, MobilityMessageReplayProtection)
    timestamp = replay.timestamp if replay is not None else None
    mnid = find_option(options, MobileNodeIdentifier)
    if mnid is None:
        return AuthVerdict(None, AuthFailure.NO_MN_IDENTIFIER, timestamp)
    nai = mnid.nai
    if nai is None:
        return AuthVerdict(None, AuthFailure.NOT_AN_NAI, timestamp)
    key = keys.get(nai)
    if key is None:
        return AuthVerdict(nai, AuthFailure.UNKNOWN_NAI, timestamp)
    auth = next(
        (
            o
            for o in options
            if isinstance(o, MobilityMessageAuthentication) and o.subtype == AUTH_SUBTYPE_MN_HA
        ),
        None,
    )
    if auth is None:
        return AuthVerdict(nai, AuthFailure.NO_AUTH_OPTION, timestamp)
    if auth.mobility_spi != key.spi:
        return AuthVerdict(nai, AuthFailure.SPI_MISMATCH, timestamp)
    # verify_mn_ha also rejects an authentication option that is not the last one.
    if not packet.verify_mn_ha(key.key):
        return AuthVerdict(nai, AuthFailure.BAD_AUTHENTICATOR, timestamp)
    return AuthVerdict(nai, None, timestamp)
