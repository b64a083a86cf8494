"""Codec throughput on one core: messages decoded and built per second.

Run from the repository root:  python bench/bench_codec.py [--seconds S]
The headline figure is the home agent's per-BU codec work: decode an authenticated BU (raw
proto-60 socket bytes: Destination Options with the Home Address option + MH, checksum
verified), verify its RFC 4285 authenticator, and build the whole authenticated BA packet (type 2
routing header, checksum). Target (issue 3): >= 20,000 BU decode + BA encode per second.
Results go in docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import sys
import time
from collections.abc import Callable
from ipaddress import IPv6Address
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from sdnmip.mipv6.auth import MnHaKey, replay_protection
from sdnmip.mipv6.icmpv6 import (
    MobilePrefixAdvertisement,
    NeighborSolicitation,
    PrefixInformation,
    solicited_node_multicast,
)
from sdnmip.mipv6.mh import BindingAcknowledgement, BindingUpdate
from sdnmip.mipv6.options import MobileNodeIdentifier
from sdnmip.mipv6.packet import (
    build_icmpv6_packet,
    build_mh_packet,
    decode_from,
    decode_ipv6_packet,
)

COA = IPv6Address("2001:db8:1::100")
HA = IPv6Address("2001:db8:100::1")
HOA = IPv6Address("2001:db8:100::1000")
KEY = MnHaKey(spi=4096, key=bytes(range(16)))
NOW = 1_700_000_000.0

BU = BindingUpdate(
    sequence=42,
    lifetime=150,
    ack=True,
    home_registration=True,
    link_local=False,
    key_management=False,
    options=(MobileNodeIdentifier.from_nai("mn1@sdnmip.example"), replay_protection(NOW)),
)
BU_PACKET = build_mh_packet(COA, HA, BU, home_address=HOA, auth=KEY)
BU_RAW60 = BU_PACKET[40:]  # what the HA's raw socket on next header 60 delivers
BA = BindingAcknowledgement(
    status=0, key_management=False, sequence=42, lifetime=150, options=(replay_protection(NOW),)
)
BA_PACKET = build_mh_packet(HA, COA, BA, rh2_address=HOA, auth=KEY)
BA_RAW43 = BA_PACKET[40:]
NS = NeighborSolicitation(target_address=HOA, source_link_layer_address=None)
SNM = solicited_node_multicast(HOA)
MPA = MobilePrefixAdvertisement(
    identifier=1,
    managed=False,
    other=False,
    prefixes=(
        PrefixInformation(
            prefix=IPv6Address("2001:db8:100::"),
            prefix_length=64,
            on_link=True,
            autonomous=True,
            router_address=False,
            valid_lifetime=86400,
            preferred_lifetime=14400,
        ),
    ),
)


def ha_bu_to_ba() -> None:
    """The home agent's codec work for one BU: decode, authenticate, build the BA."""
    got = decode_from(60, BU_RAW60, COA, HA)
    if not got.verify_mn_ha(KEY.key):
        raise AssertionError("benchmark BU does not verify")
    bu = got.message
    assert isinstance(bu, BindingUpdate)
    ba = BindingAcknowledgement(
        status=0,
        key_management=False,
        sequence=bu.sequence,
        lifetime=bu.lifetime,
        options=(replay_protection(NOW),),
    )
    build_mh_packet(HA, got.src, ba, rh2_address=got.home_address, auth=KEY)


CASES: dict[str, Callable[[], object]] = {
    "HA: BU decode + verify + BA encode (headline)": ha_bu_to_ba,
    "BU decode (proto 60 bytes, checksum)": lambda: decode_from(60, BU_RAW60, COA, HA),
    "BU decode + RFC 4285 verify": lambda: decode_from(60, BU_RAW60, COA, HA).verify_mn_ha(KEY.key),
    "BA encode (RH2 + RFC 4285 sign + checksum)": lambda: build_mh_packet(
        HA, COA, BA, rh2_address=HOA, auth=KEY
    ),
    "BU encode (HAO + RFC 4285 sign + checksum)": lambda: build_mh_packet(
        COA, HA, BU, home_address=HOA, auth=KEY
    ),
    "BA decode (proto 43 bytes)": lambda: decode_from(43, BA_RAW43, HA, COA),
    "BA decode, whole IPv6 packet": lambda: decode_ipv6_packet(BA_PACKET),
    "NS (DAD) encode": lambda: build_icmpv6_packet(IPv6Address("::"), SNM, NS),
    "MPA encode (RH2)": lambda: build_icmpv6_packet(HA, COA, MPA, rh2_address=HOA),
}


def measure(fn: Callable[[], object], seconds: float, rounds: int) -> tuple[float, float]:
    """(median, best) operations per second over `rounds` timed rounds of ~`seconds` each."""
    n = 1000
    while True:  # calibrate the batch size to about seconds/rounds... per round
        t0 = time.perf_counter()
        for _ in range(n):
            fn()
        dt = time.perf_counter() - t0
        if dt > 0.2:
            break
        n *= 2
    per_round = max(1, int(n * (seconds / rounds) / dt))
    rates = []
    for _ in range(rounds):
        t0 = time.perf_counter()
        for _ in range(per_round):
            fn()
        rates.append(per_round / (time.perf_counter() - t0))
    return statistics.median(rates), max(rates)


def machine() -> str:
    model = "unknown CPU"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return f"{model}; {platform.system()} {platform.release()}; Python {platform.python_version()}"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=5.0, help="measured time per case")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--cpu", type=int, default=0, help="core to pin to (one core)")
    args = parser.parse_args()
    if hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {args.cpu})
    print(f"machine: {machine()}; pinned to CPU {args.cpu}")
    print(f"{'case':<48} {'median/s':>10} {'best/s':>10}")
    for name, fn in CASES.items():
        median, best = measure(fn, args.seconds, args.rounds)
        print(f"{name:<48} {median:>10,.0f} {best:>10,.0f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
