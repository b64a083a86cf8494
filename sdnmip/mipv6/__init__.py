"""Mobile IPv6 wire codec: typed messages, encode/decode, checksums, RFC 4285 authentication.

See docs/architecture.md for what this package owns. Entry points:
- `packet.decode_from(next_header, data, src, dst)`: bytes from a raw socket (60, 43, 135, 58);
- `packet.decode_ipv6_packet(data)`: a whole IPv6 packet (captures, proto-41 inner packets);
- `packet.build_mh_packet(...)` / `packet.build_icmpv6_packet(...)`: whole packets for
  IPV6_HDRINCL raw sockets;
- every malformed input raises a `DecodeError` subclass naming the field and the offset.
"""

from sdnmip.mipv6.auth import (
    MnHaKey,
    ntp_timestamp,
    replay_protection,
    timestamp_close_enough,
    unix_time,
    verify_mobility_header,
)
from sdnmip.mipv6.errors import DecodeError, EncodeError
from sdnmip.mipv6.icmpv6 import (
    HomeAgentAddressDiscoveryReply,
    HomeAgentAddressDiscoveryRequest,
    MobilePrefixAdvertisement,
    MobilePrefixSolicitation,
    NeighborAdvertisement,
    NeighborSolicitation,
    PrefixInformation,
    UnknownIcmpv6,
    solicited_node_multicast,
)
from sdnmip.mipv6.mh import (
    BindingAcknowledgement,
    BindingError,
    BindingRefreshRequest,
    BindingUpdate,
    CareofTest,
    CareofTestInit,
    HomeTest,
    HomeTestInit,
    UnknownMobilityMessage,
    lifetime_units,
)
from sdnmip.mipv6.options import (
    AlternateCareofAddress,
    BindingAuthorizationData,
    BindingRefreshAdvice,
    MobileNodeIdentifier,
    MobilityMessageAuthentication,
    MobilityMessageReplayProtection,
    NonceIndices,
    Pad1,
    PadN,
    find_option,
)
from sdnmip.mipv6.packet import (
    DecodedPacket,
    build_icmpv6_packet,
    build_mh_packet,
    decode_from,
    decode_ipv6_packet,
)
from sdnmip.mipv6.status import BindingAckStatus, BindingErrorStatus

__all__ = [
    "AlternateCareofAddress",
    "BindingAckStatus",
    "BindingAcknowledgement",
    "BindingAuthorizationData",
    "BindingError",
    "BindingErrorStatus",
    "BindingRefreshAdvice",
    "BindingRefreshRequest",
    "BindingUpdate",
    "CareofTest",
    "CareofTestInit",
    "DecodeError",
    "DecodedPacket",
    "EncodeError",
    "HomeAgentAddressDiscoveryReply",
    "HomeAgentAddressDiscoveryRequest",
    "HomeTest",
    "HomeTestInit",
    "MnHaKey",
    "MobileNodeIdentifier",
    "MobilePrefixAdvertisement",
    "MobilePrefixSolicitation",
    "MobilityMessageAuthentication",
    "MobilityMessageReplayProtection",
    "NeighborAdvertisement",
    "NeighborSolicitation",
    "NonceIndices",
    "Pad1",
    "PadN",
    "PrefixInformation",
    "UnknownIcmpv6",
    "UnknownMobilityMessage",
    "build_icmpv6_packet",
    "build_mh_packet",
    "decode_from",
    "decode_ipv6_packet",
    "find_option",
    "lifetime_units",
    "ntp_timestamp",
    "replay_protection",
    "solicited_node_multicast",
    "timestamp_close_enough",
    "unix_time",
    "verify_mobility_header",
]
