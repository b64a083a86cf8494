"""Mobile IPv6 protocol constants and status codes, named as in the RFCs that define them.

Owns: the numbers of RFC 6275 §12 (protocol constants), §13 (configuration-variable defaults),
the Binding Acknowledgement and Binding Error status codes (§6.1.8, §6.1.9, RFC 4285 §9), and the
time units of the Lifetime and Refresh Interval fields. Times are in seconds (float).
Must not: hold policy or per-deployment configuration (that comes from validated config).
"""

from __future__ import annotations

import enum
from typing import Final

# --- RFC 6275 §12 Protocol Constants -----------------------------------------------------------
INITIAL_BINDACK_TIMEOUT: Final = 1.0  # RFC 6275 §12: first retransmission of a BU (not first reg)
MAX_BINDACK_TIMEOUT: Final = 32.0  # RFC 6275 §12: cap of the exponential back-off (§11.8)
MAX_UPDATE_RATE: Final = 3  # RFC 6275 §12: at most this many BUs per second (§11.8)
INITIAL_SOLICIT_TIMER: Final = 3.0  # RFC 6275 §12: first retransmission of a Mobile Prefix Sol.
MAX_RR_BINDING_LIFETIME: Final = 420.0  # RFC 6275 §12: longest correspondent (non-home) binding

# --- RFC 6275 §13 Protocol Configuration Variables (defaults) ----------------------------------
# §11.8: used instead of INITIAL_BINDACK_TIMEOUT when the MN has no binding at the HA, so that
# the HA has time for Duplicate Address Detection before the first retransmission.
INITIAL_BINDACK_TIMEOUT_FIRST_REG: Final = 1.5  # RFC 6275 §13 InitialBindackTimeoutFirstReg

# --- Field units -------------------------------------------------------------------------------
LIFETIME_UNIT: Final = 4.0  # RFC 6275 §6.1.7/§6.1.8: Lifetime is in units of 4 seconds
REFRESH_INTERVAL_UNIT: Final = 4.0  # RFC 6275 §6.2.4: Binding Refresh Advice, units of 4 seconds
MAX_LIFETIME_UNITS: Final = 0xFFFF  # RFC 6275 §6.1.7: 16-bit field
MAX_LIFETIME: Final = MAX_LIFETIME_UNITS * LIFETIME_UNIT  # 262140 s

# --- Sequence numbers --------------------------------------------------------------------------
SEQUENCE_MODULUS: Final = 1 << 16  # RFC 6275 §6.1.7: 16-bit Sequence #, compared mod 2**16 (§9.5.1)


class BaStatus(enum.IntEnum):
    """Binding Acknowledgement Status values (RFC 6275 §6.1.8; RFC 4285 §9 for 144-146).

    Values below 128 mean the Binding Update was accepted; 128 and above, rejected.
    """

    ACCEPTED = 0
    ACCEPTED_PREFIX_DISCOVERY_NECESSARY = 1
    REASON_UNSPECIFIED = 128
    ADMINISTRATIVELY_PROHIBITED = 129
    INSUFFICIENT_RESOURCES = 130
    HOME_REGISTRATION_NOT_SUPPORTED = 131
    NOT_HOME_SUBNET = 132
    NOT_HOME_AGENT_FOR_THIS_MOBILE_NODE = 133
    DUPLICATE_ADDRESS_DETECTION_FAILED = 134
    SEQUENCE_NUMBER_OUT_OF_WINDOW = 135
    EXPIRED_HOME_NONCE_INDEX = 136
    EXPIRED_CARE_OF_NONCE_INDEX = 137
    EXPIRED_NONCES = 138
    REGISTRATION_TYPE_CHANGE_DISALLOWED = 139
    MIPV6_ID_MISMATCH = 144  # RFC 4285 §6: timestamp not close enough/not newer (HA's time in BA)
    MIPV6_MESG_ID_REQD = 145  # RFC 4285 §6: replay-protection (timestamp) option missing
    MIPV6_AUTH_FAIL = 146  # RFC 4285: MN-HA authenticator did not verify


BA_ACCEPTED_BELOW: Final = 128  # RFC 6275 §6.1.8: status < 128 => accepted


class BeStatus(enum.IntEnum):
    """Binding Error Status values (RFC 6275 §6.1.9)."""

    UNKNOWN_BINDING_FOR_HOME_ADDRESS_OPTION = 1
    UNRECOGNIZED_MH_TYPE = 2
