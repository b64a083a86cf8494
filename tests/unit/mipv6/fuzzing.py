"""Fuzz targets, seed packets and the mutator shared by `test_fuzz.py` (hypothesis, in CI) and
`bench/fuzz_codec.py` (the long seeded run).

A target is a decoder taking bytes; the property is that it returns or raises `DecodeError`,
nothing else, and returns promptly. Seeds are valid packets built by the codec; the mutator
truncates, flips bits, overwrites (length fields included), inserts and deletes, and half of
the time repairs the checksum and the IPv6 Payload Length so the mutation reaches the decoder's
deeper checks instead of dying at the checksum.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass
from ipaddress import IPv6Address

from sdnmip.mipv6.auth import MnHaKey, replay_protection, verify_mobility_header
from sdnmip.mipv6.checksum import upper_layer_checksum
from sdnmip.mipv6.errors import DecodeError
from sdnmip.mipv6.ext_headers import decode_options_header, decode_routing_header
from sdnmip.mipv6.icmpv6 import (
    HomeAgentAddressDiscoveryReply,
    HomeAgentAddressDiscoveryRequest,
    MobilePrefixAdvertisement,
    MobilePrefixSolicitation,
    NeighborAdvertisement,
    NeighborSolicitation,
    PrefixInformation,
    decode_icmpv6_body,
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
    decode_mh_body,
)
from sdnmip.mipv6.options import (
    AlternateCareofAddress,
    BindingAuthorizationData,
    BindingRefreshAdvice,
    MobileNodeIdentifier,
    NonceIndices,
    decode_options,
)
from sdnmip.mipv6.packet import (
    build_icmpv6_packet,
    build_mh_packet,
    decode_from,
    decode_ipv6_packet,
)

COA = IPv6Address("2001:db8:1::100")
HA = IPv6Address("2001:db8:100::1")
HOA = IPv6Address("2001:db8:100::1000")
CN = IPv6Address("2001:db8:c1::10")
UNSPEC = IPv6Address("::")
KEY = MnHaKey(spi=0x1000, key=bytes(range(16)))


@dataclass(frozen=True)
class Seed:
    """A valid packet split at the upper layer, with what is needed to repair its checksum."""

    head: bytes  # IPv6 header and/or extension headers before the MH / ICMPv6 (may be empty)
    upper: bytes  # the Mobility Header or ICMPv6 message
    upper_nh: int  # 135 or 58
    pseudo_src: IPv6Address
    pseudo_dst: IPv6Address
    has_ipv6_header: bool
    src: IPv6Address  # the outer addresses a raw socket reports (recvfrom, IPV6_PKTINFO)
    dst: IPv6Address


def _whole_packets() -> list[tuple[bytes, int, IPv6Address, IPv6Address]]:
    """(packet, offset of the upper layer, pseudo src, pseudo dst) for every message kind."""
    bu = BindingUpdate(
        sequence=42,
        lifetime=150,
        ack=True,
        home_registration=True,
        link_local=False,
        key_management=False,
        options=(MobileNodeIdentifier.from_nai("mn1@example.org"), replay_protection(1.7e9)),
    )
    ba = BindingAcknowledgement(
        status=0,
        key_management=False,
        sequence=42,
        lifetime=150,
        options=(BindingRefreshAdvice(refresh_interval=100), replay_protection(1.7e9)),
    )
    cn_bu = BindingUpdate(
        sequence=7,
        lifetime=100,
        ack=True,
        home_registration=False,
        link_local=False,
        key_management=False,
        options=(
            NonceIndices(home_nonce_index=1, careof_nonce_index=2),
            AlternateCareofAddress(alternate_careof_address=COA),
            BindingAuthorizationData(authenticator=bytes(12)),
        ),
    )
    prefix = PrefixInformation(
        prefix=HA,
        prefix_length=64,
        on_link=True,
        autonomous=True,
        router_address=True,
        valid_lifetime=7200,
        preferred_lifetime=3600,
    )
    return [
        (build_mh_packet(COA, HA, bu, home_address=HOA, auth=KEY), 64, HOA, HA),
        (build_mh_packet(HA, COA, ba, rh2_address=HOA, auth=KEY), 64, HA, HOA),
        (build_mh_packet(COA, CN, cn_bu, home_address=HOA), 64, HOA, CN),
        (build_mh_packet(HA, HOA, BindingRefreshRequest()), 40, HA, HOA),
        (build_mh_packet(HOA, CN, HomeTestInit(home_init_cookie=bytes(8))), 40, HOA, CN),
        (build_mh_packet(COA, CN, CareofTestInit(careof_init_cookie=bytes(8))), 40, COA, CN),
        (
            build_mh_packet(
                CN,
                HOA,
                HomeTest(home_nonce_index=1, home_init_cookie=bytes(8), home_keygen_token=bytes(8)),
            ),
            40,
            CN,
            HOA,
        ),
        (
            build_mh_packet(
                CN,
                COA,
                CareofTest(
                    careof_nonce_index=1, careof_init_cookie=bytes(8), careof_keygen_token=bytes(8)
                ),
            ),
            40,
            CN,
            COA,
        ),
        (build_mh_packet(HA, COA, BindingError(status=2, home_address=HOA)), 40, HA, COA),
        (
            build_icmpv6_packet(COA, HA, MobilePrefixSolicitation(identifier=1), home_address=HOA),
            64,
            HOA,
            HA,
        ),
        (
            build_icmpv6_packet(
                HA,
                COA,
                MobilePrefixAdvertisement(
                    identifier=1, managed=False, other=True, prefixes=(prefix, prefix)
                ),
                rh2_address=HOA,
            ),
            64,
            HA,
            HOA,
        ),
        (build_icmpv6_packet(COA, HA, HomeAgentAddressDiscoveryRequest(identifier=5)), 40, COA, HA),
        (
            build_icmpv6_packet(
                HA, COA, HomeAgentAddressDiscoveryReply(identifier=5, home_agent_addresses=(HA, CN))
            ),
            40,
            HA,
            COA,
        ),
        (
            build_icmpv6_packet(
                UNSPEC,
                solicited_node_multicast(HOA),
                NeighborSolicitation(target_address=HOA, source_link_layer_address=None),
            ),
            40,
            UNSPEC,
            solicited_node_multicast(HOA),
        ),
        (
            build_icmpv6_packet(
                HA,
                IPv6Address("ff02::1"),
                NeighborAdvertisement(
                    router=False,
                    solicited=False,
                    override=True,
                    target_address=HOA,
                    target_link_layer_address=bytes.fromhex("020000000001"),
                ),
            ),
            40,
            HA,
            IPv6Address("ff02::1"),
        ),
    ]


def seeds_for(target: str) -> list[Seed]:
    """Seeds shaped as the target expects its input."""
    out: list[Seed] = []
    for pkt, at, psrc, pdst in _whole_packets():
        nh = 135 if (pkt[6] == 135 or (at == 64 and pkt[40] == 135)) else 58
        head, upper = pkt[:at], pkt[at:]
        first_nh = pkt[6]
        src, dst = IPv6Address(pkt[8:24]), IPv6Address(pkt[24:40])
        if target == "ipv6_packet":
            out.append(Seed(head, upper, nh, psrc, pdst, True, src, dst))
        elif target.startswith("from_") and TARGET_NH[target] == first_nh:
            out.append(Seed(head[40:], upper, nh, psrc, pdst, False, src, dst))
        elif (target in ("mh_body", "verify_mn_ha") and nh == 135) or (
            target == "icmpv6_body" and nh == 58
        ):
            out.append(Seed(b"", upper, nh, psrc, pdst, False, src, dst))
        elif target == "mobility_options" and nh == 135 and len(upper) > 12:
            out.append(Seed(b"", upper[12:], 0, psrc, pdst, False, src, dst))
        elif target in ("dest_options_header", "routing_header") and first_nh == (
            60 if target == "dest_options_header" else 43
        ):
            out.append(Seed(b"", head[40:], 0, psrc, pdst, False, src, dst))
    return out


def _fix(seed: Seed, head: bytes, upper: bytes) -> bytes:
    """Repair the upper-layer checksum (and the IPv6 Payload Length) after a mutation."""
    at = 4 if seed.upper_nh == 135 else 2
    if seed.upper_nh and len(upper) >= at + 2:
        zeroed = upper[:at] + b"\x00\x00" + upper[at + 2 :]
        csum = upper_layer_checksum(
            seed.pseudo_src.packed, seed.pseudo_dst.packed, seed.upper_nh, zeroed
        )
        upper = zeroed[:at] + csum.to_bytes(2, "big") + zeroed[at + 2 :]
    if seed.has_ipv6_header and len(head) >= 40:
        plen = (len(head) - 40 + len(upper)) & 0xFFFF
        head = head[:4] + plen.to_bytes(2, "big") + head[6:]
    return head + upper


def _mutate_bytes(rng: random.Random, data: bytes) -> bytes:
    buf = bytearray(data)
    for _ in range(rng.randint(1, 4)):
        op = rng.randrange(7)
        if op == 0 and buf:  # bit flip
            i = rng.randrange(len(buf))
            buf[i] ^= 1 << rng.randrange(8)
        elif op == 1 and buf:  # overwrite a byte (length fields, types) with an edge value
            buf[rng.randrange(len(buf))] = rng.choice(
                (0, 1, 2, 0x7F, 0x80, 0xFE, 0xFF, rng.randrange(256))
            )
        elif op == 2:  # truncate
            del buf[rng.randrange(len(buf) + 1) :]
        elif op == 3:  # insert random bytes
            i = rng.randrange(len(buf) + 1)
            buf[i:i] = rng.randbytes(rng.randint(1, 16))
        elif op == 4 and buf:  # delete a range
            i = rng.randrange(len(buf))
            del buf[i : i + rng.randint(1, 16)]
        elif op == 5 and buf:  # duplicate a slice
            i = rng.randrange(len(buf))
            buf[i:i] = buf[i : i + rng.randint(1, 24)]
        elif op == 6 and len(buf) > 1:  # grow or shrink a one-byte length by a small step
            i = rng.randrange(len(buf))
            buf[i] = (buf[i] + rng.choice((-2, -1, 1, 2, 8))) & 0xFF
    return bytes(buf)


def mutate(rng: random.Random, seed: Seed) -> bytes:
    """One mutated input from `seed`."""
    head, upper = seed.head, seed.upper
    if head and rng.random() < 0.3:
        head = _mutate_bytes(rng, head)
    else:
        upper = _mutate_bytes(rng, upper)
    if rng.random() < 0.5:
        return _fix(seed, head, upper)
    return head + upper


TARGET_NH = {
    "from_dstopts_60": 60,
    "from_routing_43": 43,
    "from_mh_135": 135,
    "from_icmpv6_58": 58,
}

# Every target takes (data, outer src, outer dst); targets that need no addresses ignore them.
Target = Callable[[bytes, IPv6Address, IPv6Address], object]
TARGETS: dict[str, Target] = {
    "ipv6_packet": lambda b, s, d: decode_ipv6_packet(b),
    "from_dstopts_60": lambda b, s, d: decode_from(60, b, s, d),
    "from_routing_43": lambda b, s, d: decode_from(43, b, s, d),
    "from_mh_135": lambda b, s, d: decode_from(135, b, s, d),
    "from_icmpv6_58": lambda b, s, d: decode_from(58, b, s, d),
    "mh_body": lambda b, s, d: decode_mh_body(b),
    "icmpv6_body": lambda b, s, d: decode_icmpv6_body(b),
    "mobility_options": lambda b, s, d: decode_options(b, 0, len(b), keep_padding=True),
    "dest_options_header": lambda b, s, d: decode_options_header(b, 0, len(b), destination=True),
    "routing_header": lambda b, s, d: decode_routing_header(b, 0, len(b)),
    "verify_mn_ha": lambda b, s, d: verify_mobility_header(b, KEY.key, COA, HOA),
}


def run_one(target: Target, data: bytes, src: IPv6Address = COA, dst: IPv6Address = HA) -> bool:
    """True when the target decoded `data`, False when it raised DecodeError. Anything else
    propagates (that is the bug the fuzzer looks for)."""
    try:
        target(data, src, dst)
    except DecodeError:
        return False
    return True
