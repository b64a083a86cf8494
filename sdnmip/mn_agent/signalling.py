"""The agent's Mobile IPv6 messages: Binding Updates and Mobile Prefix Solicitations built whole,
and what arrives from the Home Agent checked and turned into Home Address Table events.

Owns: the fields of every BU the MN sends (RFC 6275 §11.7.1 flags, Alternate Care-of Address,
RFC 4283 NAI, RFC 4285 §6 timestamp, RFC 4285 §5 MN-HA authenticator), and the checks on what
is received: from the HA's address, about one of our HoAs, and for a BA a valid authenticator.
Must not: open sockets, read clocks (the caller passes the time to stamp) or keep binding state
(sdnmip/core does). Pure functions over bytes and values.

What the raw sockets deliver (sdnmip/kernel/rawsock.py): next header 43 gives a BA (or an MPA)
from its type 2 routing header on; 135 gives Mobility Headers without extension headers (a BE to
the CoA); 41 gives a tunnelled packet from its inner IPv6 header on (a BRR the HA tunnelled to a
HoA).

Decisions:
- An unauthenticated BA is ignored, whatever its status: otherwise anyone who sees a sequence
  number could stop a registration with a forged rejection. BRRs and BEs carry no authenticator
  (RFC 4285 covers BU/BA only); they are taken from the HA's address only, and can do no more
  than make the MN send a BU (a BE status 1 also ends a binding the HA says it lacks, which the
  next BU restores).
- BA replay protection is the sequence number match of the core (a BA answers only a BU still
  outstanding) plus the authenticator. The BA's timestamp is read for one purpose: after status
  144 or 145 (RFC 4285 §6, the timestamp was not close enough) it is the HA's clock, and the
  caller re-synchronises the timestamps of its next BUs to it.
- A Mobile Prefix Advertisement is accepted only from the HA and only as the answer to the last
  solicitation (its Identifier): without IPsec an unsolicited one cannot be authenticated
  (RFC 6275 §11.4.3).
"""

from __future__ import annotations

from dataclasses import dataclass
from ipaddress import IPv6Address, IPv6Network

from sdnmip.core.binding_messages import BaReceived, BeReceived, BrrReceived, SendBu
from sdnmip.core.constants import BaStatus
from sdnmip.core.hoa_messages import FromHa, PrefixesLearned, SendMps
from sdnmip.mipv6 import (
    AlternateCareofAddress,
    BindingAcknowledgement,
    BindingError,
    BindingRefreshAdvice,
    BindingRefreshRequest,
    BindingUpdate,
    DecodeError,
    MnHaKey,
    MobileNodeIdentifier,
    MobilePrefixAdvertisement,
    MobilePrefixSolicitation,
    MobilityMessageReplayProtection,
    build_icmpv6_packet,
    build_mh_packet,
    decode_from,
    decode_ipv6_packet,
    find_option,
    replay_protection,
    unix_time,
)

NH_ROUTING = 43
NH_MH = 135
NH_IPV6 = 41
MPS_HOP_LIMIT = 64  # an MPS crosses routers to the HA (not neighbour discovery)
# RFC 4285 §6: statuses whose BA carries the HA's own time in the replay-protection option.
TIMESTAMP_STATUSES = frozenset({BaStatus.MIPV6_ID_MISMATCH, BaStatus.MIPV6_MESG_ID_REQD})


@dataclass(frozen=True, slots=True)
class Credentials:
    """What the MN needs to talk to its HA (from the validated config and key file)."""

    home_agent: IPv6Address
    nai: str
    key: MnHaKey


@dataclass(frozen=True, slots=True)
class Accepted:
    """A received message for the Home Address Table; `ha_time` is the HA's clock (Unix s) when
    a BA asked the MN to re-synchronise its timestamps."""

    event: FromHa | PrefixesLearned
    ha_time: float | None = None


@dataclass(frozen=True, slots=True)
class Ignored:
    """A received packet the agent drops; `reason` is for the log, `kind` for the counters:
    "malformed" (the codec refused it), "unauthenticated" (a BA whose MN-HA authenticator is
    missing or wrong) or "other" (not from the HA, not for the agent)."""

    reason: str
    kind: str = "other"


Inbound = Accepted | Ignored


def build_bu(bu: SendBu, cred: Credentials, unix_now: float) -> bytes:
    """The whole IPv6 packet of `bu`: from its CoA to the HA, with the Home Address option."""
    message = BindingUpdate(
        sequence=bu.sequence,
        lifetime=bu.lifetime_units,
        ack=bu.ack,
        home_registration=bu.home_registration,
        link_local=bu.link_local_compat,
        key_management=bu.key_mgmt_mobility,
        options=(
            # RFC 6275 §11.7.1: the CoA also in an Alternate Care-of Address option, so the
            # authenticator covers it.
            AlternateCareofAddress(bu.coa),
            MobileNodeIdentifier.from_nai(cred.nai),  # RFC 4283 §3
            replay_protection(unix_now),  # RFC 4285 §6
        ),
    )
    return build_mh_packet(bu.coa, cred.home_agent, message, home_address=bu.hoa, auth=cred.key)


def build_mps(mps: SendMps, cred: Credentials, identifier: int) -> bytes:
    """A Mobile Prefix Solicitation (RFC 6275 §11.4.1) from the CoA with the Home Address option."""
    return build_icmpv6_packet(
        mps.coa,
        cred.home_agent,
        MobilePrefixSolicitation(identifier=identifier),
        home_address=mps.hoa,
        hop_limit=MPS_HOP_LIMIT,
    )


def parse_inbound(
    proto: int,
    data: bytes,
    src: IPv6Address,
    dst: IPv6Address,
    cred: Credentials,
    *,
    mps_identifier: int | None = None,
) -> Inbound:
    """Check one packet from a raw socket on next header `proto` (see the module docstring)."""
    if src != cred.home_agent:
        return Ignored(f"from {src}, not the home agent")
    try:
        if proto == NH_IPV6:
            decoded = decode_ipv6_packet(data)
            if decoded.src != cred.home_agent:
                return Ignored(f"tunnelled packet from {decoded.src}, not the home agent")
        else:
            decoded = decode_from(proto, data, src, dst)
    except DecodeError as exc:
        return Ignored(f"undecodable ({exc})", "malformed")
    msg = decoded.message
    if isinstance(msg, BindingAcknowledgement):
        if proto != NH_ROUTING or decoded.rh2_address is None:
            return Ignored(
                "BA without a type 2 routing header (the MN is never at home)", "malformed"
            )
        if not decoded.verify_mn_ha(cred.key.key):
            return Ignored(
                f"BA status {msg.status} seq {msg.sequence} for {decoded.rh2_address}: "
                "MN-HA authenticator missing or wrong (check identity.key_file and spi)",
                "unauthenticated",
            )
        advice = find_option(msg.options, BindingRefreshAdvice)
        ha_time = None
        if msg.status in TIMESTAMP_STATUSES:
            stamp = find_option(msg.options, MobilityMessageReplayProtection)
            ha_time = None if stamp is None else unix_time(stamp.timestamp)
        ba = BaReceived(
            status=msg.status,
            sequence=msg.sequence,
            lifetime=float(msg.lifetime_seconds),
            refresh_interval=None if advice is None else float(advice.refresh_interval_seconds),
        )
        return Accepted(FromHa(decoded.rh2_address, ba), ha_time)
    if isinstance(msg, BindingError):
        return Accepted(FromHa(msg.home_address, BeReceived(msg.status)))
    if isinstance(msg, BindingRefreshRequest):
        # Tunnelled to the HoA (inner destination), or sent to it directly.
        return Accepted(FromHa(decoded.upper_dst, BrrReceived()))
    if isinstance(msg, MobilePrefixAdvertisement):
        if mps_identifier is None or msg.identifier != mps_identifier:
            return Ignored(f"MPA identifier {msg.identifier} answers no pending solicitation")
        prefixes = tuple(
            IPv6Network((p.prefix, p.prefix_length), strict=False)
            for p in msg.prefixes
            if p.valid_lifetime > 0
        )
        if not prefixes:
            return Ignored("MPA without a valid prefix")
        return Accepted(PrefixesLearned(prefixes))
    return Ignored(f"{type(msg).__name__} is not for the mobile node's agent")
