"""Conformance against tshark, the independent reference dissector.

Builds every message type the project can emit, writes them into one pcap (LINKTYPE_IPV6 = 229),
and checks tshark's dissection field by field against values written here by hand; asserts no
packet is malformed and tshark reports no expert warning or error. tshark does not verify the
Mobility Header checksum, so this file recomputes it with its own RFC 8200 §8.1 implementation
(home address as source with a Home Address option, the type 2 routing header's address as
destination) and compares it with the checksum on the wire. tshark does verify ICMPv6
checksums (with the same address rules); its verdict is asserted too.

Three tshark 4.0 quirks are accounted for, not hidden: its "Authentication Data" field of the
RFC 4285 option covers Option Length - 7 octets (2 short of the 12-octet authenticator), it
renders the RFC 4285 §6 NTP-format timestamp with a 1970 epoch (both compared as raw bytes), and
it files the Care-of Test's Care-of Keygen Token under its Home Test field name.
"""

from __future__ import annotations

import json
import re
import shutil
import struct
import subprocess
from dataclasses import dataclass, field
from ipaddress import IPv6Address
from pathlib import Path
from typing import Any

import pytest

from sdnmip.mipv6.auth import MnHaKey, ntp_timestamp
from sdnmip.mipv6.icmpv6 import (
    HomeAgentAddressDiscoveryReply,
    HomeAgentAddressDiscoveryRequest,
    MobilePrefixAdvertisement,
    MobilePrefixSolicitation,
    NeighborAdvertisement,
    NeighborSolicitation,
    PrefixInformation,
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
)
from sdnmip.mipv6.options import (
    AlternateCareofAddress,
    BindingAuthorizationData,
    BindingRefreshAdvice,
    MobileNodeIdentifier,
    MobilityMessageReplayProtection,
    NonceIndices,
)
from sdnmip.mipv6.packet import build_icmpv6_packet, build_mh_packet
from sdnmip.mipv6.status import BindingAckStatus, BindingErrorStatus

COA = IPv6Address("2001:db8:1::100")
HA = IPv6Address("2001:db8:100::1")
HA2 = IPv6Address("2001:db8:100::2")
HOA = IPv6Address("2001:db8:100::1000")
CN = IPv6Address("2001:db8:c1::10")
UNSPEC = IPv6Address("::")
ALL_NODES = IPv6Address("ff02::1")
KEY = MnHaKey(spi=4096, key=bytes(range(16)))
NAI = "mn1@sdnmip.example"
NOW = 1_700_000_000.25
TS = ntp_timestamp(NOW)
MAC = bytes.fromhex("020000000001")
LINKTYPE_IPV6 = 229


def ref_checksum(src: IPv6Address, dst: IPv6Address, next_header: int, upper: bytes) -> int:
    """RFC 8200 §8.1 pseudo-header, RFC 1071 sum, 16 bits at a time; checksum field zeroed."""
    data = (
        src.packed
        + dst.packed
        + len(upper).to_bytes(4, "big")
        + bytes([0, 0, 0, next_header])
        + upper
    )
    if len(data) % 2:
        data += b"\x00"
    total = 0
    for i in range(0, len(data), 2):
        total += (data[i] << 8) | data[i + 1]
        total = (total & 0xFFFF) + (total >> 16)
    return ~total & 0xFFFF


@dataclass
class Case:
    name: str
    packet: bytes
    upper_at: int  # offset of the MH / ICMPv6 header in the packet
    pseudo_src: IPv6Address
    pseudo_dst: IPv6Address
    fields: dict[str, str | list[str]] = field(default_factory=dict)


def _hao_fields(src: IPv6Address, dst: IPv6Address, nxt: str) -> dict[str, str | list[str]]:
    return {
        "ipv6.src": str(src),
        "ipv6.dst": str(dst),
        "ipv6.nxt": "60",
        "ipv6.dstopts.nxt": nxt,
        "ipv6.dstopts.len": "2",
        "ipv6.opt.type": ["0x01", "0xc9"],  # PadN to 8n+6, then the Home Address option
        "ipv6.opt.length": ["2", "16"],
        "ipv6.opt.mipv6.home_address": str(HOA),
    }


def _rh2_fields(src: IPv6Address, dst: IPv6Address, nxt: str) -> dict[str, str | list[str]]:
    return {
        "ipv6.src": str(src),
        "ipv6.dst": str(dst),
        "ipv6.nxt": "43",
        "ipv6.routing.nxt": nxt,
        "ipv6.routing.len": "2",
        "ipv6.routing.type": "2",
        "ipv6.routing.segleft": "1",
        "ipv6.routing.mipv6.home_address": str(HOA),
    }


def _cases() -> list[Case]:
    bu = BindingUpdate(
        sequence=42,
        lifetime=150,
        ack=True,
        home_registration=True,
        link_local=False,
        key_management=False,
        options=(
            MobileNodeIdentifier.from_nai(NAI),
            MobilityMessageReplayProtection(timestamp=TS),
        ),
    )
    dereg = BindingUpdate(
        sequence=43,
        lifetime=0,
        ack=True,
        home_registration=True,
        link_local=True,
        key_management=True,
        options=(MobileNodeIdentifier.from_nai(NAI),),
    )
    ba = BindingAcknowledgement(
        status=BindingAckStatus.ACCEPTED,
        key_management=False,
        sequence=42,
        lifetime=150,
        options=(BindingRefreshAdvice(refresh_interval=140),),
    )
    ba_refused = BindingAcknowledgement(
        status=BindingAckStatus.SEQUENCE_NUMBER_OUT_OF_WINDOW,
        key_management=True,
        sequence=7,
        lifetime=0,
    )
    cn_bu = BindingUpdate(
        sequence=9,
        lifetime=60,
        ack=True,
        home_registration=False,
        link_local=False,
        key_management=False,
        options=(
            NonceIndices(home_nonce_index=0x0102, careof_nonce_index=0x0304),
            AlternateCareofAddress(alternate_careof_address=COA),
            BindingAuthorizationData(authenticator=bytes(range(0x41, 0x4D))),
        ),
    )
    prefix = PrefixInformation(
        prefix=IPv6Address("2001:db8:100::"),
        prefix_length=64,
        on_link=True,
        autonomous=True,
        router_address=False,
        valid_lifetime=86400,
        preferred_lifetime=14400,
    )
    ha_prefix = PrefixInformation(
        prefix=HA,
        prefix_length=64,
        on_link=False,
        autonomous=False,
        router_address=True,
        valid_lifetime=7200,
        preferred_lifetime=3600,
    )
    snm = solicited_node_multicast(HOA)
    cookie, token = bytes(range(1, 9)), bytes(range(9, 17))
    return [
        Case(
            "BU home registration",
            build_mh_packet(COA, HA, bu, home_address=HOA, auth=KEY),
            64,
            HOA,
            HA,
            {
                **_hao_fields(COA, HA, "135"),
                "mip6.proto": "59",
                "mip6.mhtype": "5",
                "mip6.bu.seqnr": "42",
                "mip6.bu.a_flag": "1",
                "mip6.bu.h_flag": "1",
                "mip6.bu.l_flag": "0",
                "mip6.bu.k_flag": "0",
                "mip6.bu.lifetime": "150",
                "mip6.mnid.subtype": "1",
                "mip6.mnid.identifier": NAI,
                "mip6.mseg_id.timestamp_raw": TS.to_bytes(8, "big").hex(),
                "mip6.auth.subtype": "1",
                "mip6.auth.mobility_spi": "4096",
            },
        ),
        Case(
            "BU deregistration",
            build_mh_packet(COA, HA, dereg, home_address=HOA, auth=KEY),
            64,
            HOA,
            HA,
            {
                **_hao_fields(COA, HA, "135"),
                "mip6.mhtype": "5",
                "mip6.bu.seqnr": "43",
                "mip6.bu.l_flag": "1",
                "mip6.bu.k_flag": "1",
                "mip6.bu.lifetime": "0",
                "mip6.mnid.identifier": NAI,
            },
        ),
        Case(
            "BA accepted",
            build_mh_packet(HA, COA, ba, rh2_address=HOA, auth=KEY),
            64,
            HA,
            HOA,
            {
                **_rh2_fields(HA, COA, "135"),
                "mip6.mhtype": "6",
                "mip6.ba.status": "0",
                "mip6.ba.k_flag": "0",
                "mip6.ba.seqnr": "42",
                "mip6.ba.lifetime": "150",
                "mip6.bra.interval": "140",
                "mip6.auth.mobility_spi": "4096",
            },
        ),
        Case(
            "BA refused",
            build_mh_packet(HA, COA, ba_refused, rh2_address=HOA),
            64,
            HA,
            HOA,
            {
                **_rh2_fields(HA, COA, "135"),
                "mip6.ba.status": "135",
                "mip6.ba.k_flag": "1",
                "mip6.ba.seqnr": "7",
                "mip6.ba.lifetime": "0",
            },
        ),
        Case(
            "BRR to the HoA",
            build_mh_packet(HA, HOA, BindingRefreshRequest()),
            40,
            HA,
            HOA,
            {"ipv6.nxt": "135", "mip6.mhtype": "0", "mip6.hlen": "0"},
        ),
        Case(
            "BE unknown binding",
            build_mh_packet(
                HA,
                COA,
                BindingError(
                    status=BindingErrorStatus.UNKNOWN_BINDING_FOR_HOME_ADDRESS_OPTION,
                    home_address=HOA,
                ),
            ),
            40,
            HA,
            COA,
            {"mip6.mhtype": "7", "mip6.be.status": "1", "mip6.be.haddr": str(HOA)},
        ),
        Case(
            "BE unrecognized MH type",
            build_mh_packet(
                HA,
                COA,
                BindingError(status=BindingErrorStatus.UNRECOGNIZED_MH_TYPE, home_address=HOA),
            ),
            40,
            HA,
            COA,
            {"mip6.be.status": "2", "mip6.be.haddr": str(HOA)},
        ),
        Case(
            "HoTI",
            build_mh_packet(HOA, CN, HomeTestInit(home_init_cookie=cookie)),
            40,
            HOA,
            CN,
            {"mip6.mhtype": "1", "mip6.hoti.cookie": "0x" + cookie.hex()},
        ),
        Case(
            "CoTI",
            build_mh_packet(COA, CN, CareofTestInit(careof_init_cookie=cookie)),
            40,
            COA,
            CN,
            {"mip6.mhtype": "2", "mip6.coti.cookie": "0x" + cookie.hex()},
        ),
        Case(
            "HoT",
            build_mh_packet(
                CN,
                HOA,
                HomeTest(home_nonce_index=5, home_init_cookie=cookie, home_keygen_token=token),
            ),
            40,
            CN,
            HOA,
            {
                "mip6.mhtype": "3",
                "mip6.hot.nindex": "5",
                "mip6.hot.cookie": "0x" + cookie.hex(),
                "mip6.hot.token": "0x" + token.hex(),
            },
        ),
        Case(
            "CoT",
            build_mh_packet(
                CN,
                COA,
                CareofTest(
                    careof_nonce_index=6, careof_init_cookie=cookie, careof_keygen_token=token
                ),
            ),
            40,
            CN,
            COA,
            {
                "mip6.mhtype": "4",
                "mip6.cot.nindex": "6",
                "mip6.cot.cookie": "0x" + cookie.hex(),
                # tshark 4.0 files the Care-of Keygen Token under its HoT field name
                "mip6.hot.token": "0x" + token.hex(),
            },
        ),
        Case(
            "BU to CN",
            build_mh_packet(COA, CN, cn_bu, home_address=HOA),
            64,
            HOA,
            CN,
            {
                **_hao_fields(COA, CN, "135"),
                "mip6.bu.a_flag": "1",
                "mip6.bu.h_flag": "0",
                "mip6.bu.lifetime": "60",
                "mip6.ni.hni": "258",
                "mip6.ni.cni": "772",
                "mip6.acoa.acoa": str(COA),
                "mip6.bad.auth": "41:42:43:44:45:46:47:48:49:4a:4b:4c",
            },
        ),
        Case(
            "HAAD request",
            build_icmpv6_packet(
                COA,
                IPv6Address("2001:db8:100::fdff:ffff:ffff:fffe"),
                HomeAgentAddressDiscoveryRequest(identifier=0x1234),
                hop_limit=64,
            ),
            40,
            COA,
            IPv6Address("2001:db8:100::fdff:ffff:ffff:fffe"),
            {"icmpv6.type": "144", "icmpv6.code": "0", "icmpv6.mip6.identifier": "4660"},
        ),
        Case(
            "HAAD reply",
            build_icmpv6_packet(
                HA,
                COA,
                HomeAgentAddressDiscoveryReply(identifier=0x1234, home_agent_addresses=(HA, HA2)),
                hop_limit=64,
            ),
            40,
            HA,
            COA,
            {
                "icmpv6.type": "145",
                "icmpv6.mip6.identifier": "4660",
                "icmpv6.mip6.home_agent_address": [str(HA), str(HA2)],
            },
        ),
        Case(
            "MPS",
            build_icmpv6_packet(
                COA, HA, MobilePrefixSolicitation(identifier=77), home_address=HOA, hop_limit=64
            ),
            64,
            HOA,
            HA,
            {**_hao_fields(COA, HA, "58"), "icmpv6.type": "146", "icmpv6.mip6.identifier": "77"},
        ),
        Case(
            "MPA",
            build_icmpv6_packet(
                HA,
                COA,
                MobilePrefixAdvertisement(
                    identifier=77, managed=False, other=True, prefixes=(prefix, ha_prefix)
                ),
                rh2_address=HOA,
                hop_limit=64,
            ),
            64,
            HA,
            HOA,
            {
                **_rh2_fields(HA, COA, "58"),
                "icmpv6.type": "147",
                "icmpv6.mip6.identifier": "77",
                "icmpv6.mip6.flag.m": "0",
                "icmpv6.mip6.flag.o": "1",
                "icmpv6.opt.type": ["3", "3"],
                "icmpv6.opt.prefix": ["2001:db8:100::", str(HA)],
                "icmpv6.opt.prefix.length": ["64", "64"],
                "icmpv6.opt.prefix.flag.l": ["1", "0"],
                "icmpv6.opt.prefix.flag.a": ["1", "0"],
                "icmpv6.opt.prefix.flag.r": ["0", "1"],
                "icmpv6.opt.prefix.valid_lifetime": ["86400", "7200"],
                "icmpv6.opt.prefix.preferred_lifetime": ["14400", "3600"],
            },
        ),
        Case(
            "NS for DAD",
            build_icmpv6_packet(
                UNSPEC,
                snm,
                NeighborSolicitation(target_address=HOA, source_link_layer_address=None),
            ),
            40,
            UNSPEC,
            snm,
            {
                "ipv6.src": "::",
                "ipv6.dst": "ff02::1:ff00:1000",
                "ipv6.hlim": "255",
                "icmpv6.type": "135",
                "icmpv6.nd.ns.target_address": str(HOA),
            },
        ),
        Case(
            "NS with SLLA",
            build_icmpv6_packet(
                HA, snm, NeighborSolicitation(target_address=HOA, source_link_layer_address=MAC)
            ),
            40,
            HA,
            snm,
            {
                "icmpv6.type": "135",
                "icmpv6.nd.ns.target_address": str(HOA),
                "icmpv6.opt.type": "1",
                "icmpv6.opt.linkaddr": "02:00:00:00:00:01",
            },
        ),
        Case(
            "NA unsolicited",
            build_icmpv6_packet(
                HA,
                ALL_NODES,
                NeighborAdvertisement(
                    router=False,
                    solicited=False,
                    override=True,
                    target_address=HOA,
                    target_link_layer_address=MAC,
                ),
            ),
            40,
            HA,
            ALL_NODES,
            {
                "ipv6.hlim": "255",
                "icmpv6.type": "136",
                "icmpv6.nd.na.flag.r": "0",
                "icmpv6.nd.na.flag.s": "0",
                "icmpv6.nd.na.flag.o": "1",
                "icmpv6.nd.na.target_address": str(HOA),
                "icmpv6.opt.type": "2",
                "icmpv6.opt.linkaddr": "02:00:00:00:00:01",
            },
        ),
        Case(
            "NA solicited",
            build_icmpv6_packet(
                HA,
                COA,
                NeighborAdvertisement(
                    router=True,
                    solicited=True,
                    override=False,
                    target_address=HOA,
                    target_link_layer_address=None,
                ),
            ),
            40,
            HA,
            COA,
            {
                "icmpv6.nd.na.flag.r": "1",
                "icmpv6.nd.na.flag.s": "1",
                "icmpv6.nd.na.flag.o": "0",
            },
        ),
    ]


CASES = _cases()


def _flatten(node: Any, out: dict[str, list[str]]) -> None:
    """Collect every field of tshark's JSON tree (duplicate keys kept, in order)."""
    if isinstance(node, list) and all(isinstance(p, tuple) for p in node):
        for key, value in node:
            if isinstance(value, list) and value and all(isinstance(p, tuple) for p in value):
                _flatten(value, out)
            elif key.endswith("_raw") and isinstance(value, list):
                out.setdefault(key, []).append(str(value[0]))
            elif isinstance(value, str):
                out.setdefault(key, []).append(value)
            elif isinstance(value, list):
                for item in value:
                    _flatten(item, out)


@pytest.fixture(scope="module")
def dissection(tmp_path_factory: pytest.TempPathFactory) -> tuple[list[dict[str, list[str]]], str]:
    tshark = shutil.which("tshark")
    if tshark is None:
        pytest.fail("tshark is required for the conformance test (apt-get install tshark)")
    pcap = Path(tmp_path_factory.mktemp("conformance")) / "signalling.pcap"
    with pcap.open("wb") as f:
        f.write(struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 65535, LINKTYPE_IPV6))
        for i, case in enumerate(CASES):
            pkt = case.packet
            f.write(struct.pack("<IIII", i, 0, len(pkt), len(pkt)) + pkt)
    run = subprocess.run(
        [tshark, "-n", "-r", str(pcap), "-T", "json", "-x"],
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )
    frames = json.loads(run.stdout, object_pairs_hook=list)
    flat: list[dict[str, list[str]]] = []
    for frame in frames:
        fields: dict[str, list[str]] = {}
        source = dict(frame)["_source"]
        _flatten(dict(source)["layers"], fields)
        flat.append(fields)
    expert = subprocess.run(
        [tshark, "-n", "-r", str(pcap), "-q", "-z", "expert"],
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    ).stdout
    return flat, expert


def test_every_packet_dissected(dissection) -> None:
    frames, _ = dissection
    assert len(frames) == len(CASES)


def test_no_malformed_packet_and_no_expert_warning_or_error(dissection) -> None:
    frames, expert = dissection
    for case, fields in zip(CASES, frames, strict=True):
        assert not [k for k in fields if k.startswith("_ws.")], case.name
    assert not re.search(r"^(Errors|Warns) \(\d+\)", expert, re.MULTILINE), expert


@pytest.mark.parametrize("index", range(len(CASES)), ids=[c.name for c in CASES])
def test_fields_as_tshark_dissects_them(dissection, index: int) -> None:
    frames, _ = dissection
    case, fields = CASES[index], frames[index]
    for key, want in case.fields.items():
        got = fields.get(key)
        expected = want if isinstance(want, list) else [want]
        assert got == expected, f"{case.name}: {key}"


@pytest.mark.parametrize("index", range(len(CASES)), ids=[c.name for c in CASES])
def test_lengths_and_checksums_by_independent_computation(dissection, index: int) -> None:
    frames, _ = dissection
    case, fields = CASES[index], frames[index]
    pkt = case.packet
    assert fields["ipv6.plen"] == [str(len(pkt) - 40)]
    upper = pkt[case.upper_at :]
    if "mip6.mhtype" in fields:
        assert fields["mip6.proto"] == ["59"]
        assert (int(fields["mip6.hlen"][0]) + 1) * 8 == len(upper)
        zeroed = upper[:4] + b"\x00\x00" + upper[6:]
        want = ref_checksum(case.pseudo_src, case.pseudo_dst, 135, zeroed)
        assert fields["mip6.csum"] == [f"0x{want:04x}"]
    else:
        zeroed = upper[:2] + b"\x00\x00" + upper[4:]
        want = ref_checksum(case.pseudo_src, case.pseudo_dst, 58, zeroed)
        assert fields["icmpv6.checksum"] == [f"0x{want:04x}"]
        assert fields["icmpv6.checksum.status"] == ["1"]  # tshark: "Good"


@pytest.mark.parametrize("index", [0, 1, 2], ids=[c.name for c in CASES[:3]])
def test_rfc4285_option_bytes(dissection, index: int) -> None:
    frames, _ = dissection
    case, fields = CASES[index], frames[index]
    mh = case.packet[case.upper_at :]
    # The option is the last 19 octets: type 9, length 17, subtype 1, SPI, authenticator.
    assert fields["mip6.options.auth_raw"] == [mh[-19:].hex()]
    assert fields["mip6.auth.subtype"] == ["1"]
    # tshark 4.0 shows Option Length - 7 octets of authentication data (its quirk).
    assert fields["mip6.auth.auth_data_raw"] == [mh[-12:-2].hex()]
    assert (len(mh) - 19) % 8 == 5  # 4n+1 alignment, ending on the 8-octet boundary
