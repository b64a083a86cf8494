"""Status codes of the Binding Acknowledgement and the Binding Error (named, with their RFCs).

Owns: the numeric codes only. Message fields hold plain ints (any value decodes); these enums
name the values the project sends and checks.
Must not: hold policy about which status to send (the binding cache decides).
"""

from __future__ import annotations

import enum

BA_ACCEPTED_LIMIT = 128  # RFC 6275 §6.1.8: values below 128 mean the BU was accepted


class BindingAckStatus(enum.IntEnum):
    """Binding Acknowledgement Status (RFC 6275 §6.1.8; 144-146 from RFC 4285).

    RFC 4283 (Mobile Node Identifier option) defines no status code of its own: a BU whose NAI
    the HA does not know is refused with MIPV6_AUTH_FAIL or ADMINISTRATIVELY_PROHIBITED.
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
    MIPV6_AUTH_FAIL = 146  # RFC 4285: authentication option missing or wrong


class BindingErrorStatus(enum.IntEnum):
    """Binding Error Status (RFC 6275 §6.1.9)."""

    UNKNOWN_BINDING_FOR_HOME_ADDRESS_OPTION = 1
    UNRECOGNIZED_MH_TYPE = 2
