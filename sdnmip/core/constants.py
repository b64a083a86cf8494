"""Mobile IPv6 protocol constants and status codes, named as in the RFCs that define them.

Owns: the numbers of RFC 6275 §12 (protocol constants), §13 (configuration-variable defaults),
the names the core uses for the Binding Acknowledgement and Binding Error status codes (defined
in sdnmip/mipv6/status.py, §6.1.8, §6.1.9, RFC 4285), and the time units of the Lifetime and
Refresh Interval fields. Times are in seconds (float).
Must not: hold policy or per-deployment configuration (that comes from validated config).
"""

from __future__ import annotations

from typing import Final

from sdnmip.mipv6.status import BA_ACCEPTED_LIMIT, BindingAckStatus, BindingErrorStatus

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


# The status codes are defined once, with the codec that puts them on the wire; the core uses
# them under these names.
BaStatus = BindingAckStatus  # RFC 6275 §6.1.8
BeStatus = BindingErrorStatus  # RFC 6275 §6.1.9
BA_ACCEPTED_BELOW: Final = BA_ACCEPTED_LIMIT  # RFC 6275 §6.1.8: status < 128 => accepted
