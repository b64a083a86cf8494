"""Test doubles for the agent shell: a mock clock, an in-memory store, outputs that capture what
the agent sends and publishes, and a home agent in miniature that speaks real packets (it decodes
the agent's BUs with the project's codec, checks their RFC 4285 authenticator and answers with
signed BAs laid out as the MN's raw socket on next header 43 receives them)."""

from __future__ import annotations

import copy
import itertools
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from ipaddress import IPv6Address, IPv6Network
from typing import Any

from sdnmip.core.seqno import seq_gt
from sdnmip.mipv6 import (
    AlternateCareofAddress,
    BindingAcknowledgement,
    BindingUpdate,
    MnHaKey,
    MobileNodeIdentifier,
    MobilityMessageReplayProtection,
    build_mh_packet,
    decode_ipv6_packet,
    find_option,
    replay_protection,
    unix_time,
)
from sdnmip.mn.config import MnConfig, parse_config
from sdnmip.mn_agent.api import EventKind
from sdnmip.mn_agent.service import AgentService
from sdnmip.mn_agent.signalling import Credentials

HA = IPv6Address("2001:db8:100::1")
PRIMARY = IPv6Address("2001:db8:100::1000")
HOME = IPv6Network("2001:db8:100::/64")
KEY = MnHaKey(spi=0x5D1F, key=bytes(range(16)))
NAI = "mn1@sdnmip.test"
COA = {"wlan": IPv6Address("2001:db8:1::aa"), "lte": IPv6Address("2001:db8:2::aa")}
ROUTER = {"wlan": IPv6Address("fe80::1"), "lte": IPv6Address("fe80::2")}
CRED = Credentials(HA, NAI, KEY)
T0 = 1_800_000_000.0


def config(**over: Any) -> MnConfig:
    doc: dict[str, Any] = {
        "version": 1,
        "identity": {"nai": NAI, "spi": KEY.spi, "key_file": "/nonexistent/key"},
        "home": {"agent": str(HA), "primary_hoa": str(PRIMARY), "prefixes": [str(HOME)]},
        "pool": {"size": 2, "hold_time": 5, "max_hoas": 6},
        "binding": {"lifetime": 40},
    }
    for k, v in over.items():
        doc[k] = v
    return parse_config(doc)


class FakeClock:
    def __init__(self, t: float = T0) -> None:
        self.t = t

    def now(self) -> float:
        return self.t


class MemoryStore:
    def __init__(self) -> None:
        self.doc: dict[str, Any] | None = None
        self.writes = 0

    def save(self, doc: dict[str, Any]) -> bool:
        if doc == self.doc:
            return False
        self.doc = json.loads(json.dumps(doc))  # what a JSON file would give back
        self.writes += 1
        return True


@dataclass
class Sent:
    uplink: str
    packet: bytes
    what: str


@dataclass
class Capture:
    sent: list[Sent] = field(default_factory=list)
    events: list[tuple[EventKind, dict[str, Any]]] = field(default_factory=list)
    store: MemoryStore | None = None
    saved_before_send: list[bool] = field(default_factory=list)

    def send(self, uplink: str, packet: bytes, what: str) -> None:
        if self.store is not None and self.store.doc is not None and what.startswith("BU"):
            # Write-ahead: the sequence number of this BU must already be on disk.
            d = decode_ipv6_packet(packet)
            assert isinstance(d.message, BindingUpdate)
            saved = {
                h["hoa"]: h["binding"]["last_sequence"] for h in self.store.doc["table"]["hoas"]
            }
            self.saved_before_send.append(saved.get(str(d.home_address)) == d.message.sequence)
        self.sent.append(Sent(uplink, packet, what))

    def publish(self, kind: EventKind, data: dict[str, Any]) -> None:
        self.events.append((kind, copy.deepcopy(data)))

    def take(self) -> list[Sent]:
        out, self.sent = self.sent, []
        return out

    def kinds(self, kind: EventKind) -> list[dict[str, Any]]:
        return [d for k, d in self.events if k is kind]


@dataclass
class Bu:
    """A BU as the HA decoded it from the wire."""

    src: IPv6Address
    hoa: IPv6Address
    coa: IPv6Address
    sequence: int
    lifetime: int  # seconds
    nai: str | None
    timestamp: float
    authentic: bool
    uplink: str


@dataclass
class PacketHa:
    """RFC 6275 home registrations in miniature, over real packets."""

    key: MnHaKey = KEY
    cache: dict[IPv6Address, IPv6Address] = field(default_factory=dict)  # HoA -> CoA
    last_seq: dict[IPv6Address, int] = field(default_factory=dict)
    duplicates: set[IPv6Address] = field(default_factory=set)
    received: list[Bu] = field(default_factory=list)
    silent: bool = False

    def decode(self, sent: Sent) -> Bu:
        d = decode_ipv6_packet(sent.packet)
        bu = d.message
        assert isinstance(bu, BindingUpdate), bu
        assert d.home_address is not None, "a BU from a CoA carries the Home Address option"
        mnid = find_option(bu.options, MobileNodeIdentifier)
        ts = find_option(bu.options, MobilityMessageReplayProtection)
        acoa = find_option(bu.options, AlternateCareofAddress)
        assert ts is not None and acoa is not None
        assert acoa.alternate_careof_address == d.src
        return Bu(
            src=d.src,
            hoa=d.home_address,
            coa=acoa.alternate_careof_address,
            sequence=bu.sequence,
            lifetime=bu.lifetime_seconds,
            nai=None if mnid is None else mnid.nai,
            timestamp=unix_time(ts.timestamp),
            authentic=d.verify_mn_ha(self.key.key),
            uplink=sent.uplink,
        )

    def answer(self, sent: Sent, status: int | None = None) -> tuple[bytes, IPv6Address] | None:
        """The BA for one sent BU: (bytes from the routing header on, destination CoA)."""
        bu = self.decode(sent)
        self.received.append(bu)
        if self.silent:
            return None
        assert bu.authentic and bu.nai == NAI
        last = self.last_seq.get(bu.hoa)
        seq, lifetime = bu.sequence, bu.lifetime
        if status is None:
            if last is not None and not seq_gt(bu.sequence, last):
                status, seq, lifetime = 135, last, 0
            elif bu.lifetime and bu.hoa not in self.cache and bu.hoa in self.duplicates:
                status, lifetime = 134, 0
            else:
                status = 0
                self.last_seq[bu.hoa] = bu.sequence
                if bu.lifetime:
                    self.cache[bu.hoa] = bu.coa
                else:
                    self.cache.pop(bu.hoa, None)
                    self.last_seq.pop(bu.hoa, None)
        return self.ba(bu, status, seq, lifetime), bu.src

    def ba(self, bu: Bu, status: int, seq: int, lifetime: int, key: MnHaKey | None = None) -> bytes:
        msg = BindingAcknowledgement(
            status=status,
            key_management=False,
            sequence=seq,
            lifetime=lifetime // 4,
            options=(replay_protection(bu.timestamp),),
        )
        pkt = build_mh_packet(HA, bu.src, msg, rh2_address=bu.hoa, auth=key or self.key)
        return pkt[40:]


class Harness:
    """An AgentService on a mock clock, wired to a PacketHa."""

    def __init__(
        self,
        cfg: MnConfig | None = None,
        *,
        restored: dict[str, Any] | None = None,
        ha: PacketHa | None = None,
        clock: FakeClock | None = None,
        store: MemoryStore | None = None,
        iids: Callable[[], int] | None = None,
    ) -> None:
        self.cfg = cfg or config()
        self.clock = clock or FakeClock()
        self.store = store or MemoryStore()
        self.out = Capture(store=self.store)
        self.ha = ha or PacketHa()
        counter = itertools.count(0xA000)
        self.svc = AgentService(
            self.cfg,
            CRED,
            clock=self.clock,
            store=self.store,
            out=self.out,
            random_iid=iids or (lambda: next(counter)),
            random16=lambda: 0x1234,
            restored=restored,
        )

    def uplink(self, name: str, up: bool = True, coa: IPv6Address | None = None) -> None:
        from sdnmip.mn_agent.api import UplinkInfo

        c = (coa or COA[name]) if up else None
        self.svc.uplinks_changed([UplinkInfo(name, up, c, ROUTER[name] if up else None)])

    def exchange(self, rounds: int = 20, step: float = 0.05) -> list[Bu]:
        """Deliver every BU to the HA and its BA back, advancing the clock `step` per round,
        until nothing is in flight. Returns the BUs the HA saw."""
        seen: list[Bu] = []
        for _ in range(rounds):
            sent = [s for s in self.out.take() if s.what.startswith("BU")]
            if not sent:
                break
            self.clock.t += step
            for s in sent:
                ans = self.ha.answer(s)
                seen.append(self.ha.received[-1])
                if ans is not None:
                    data, coa = ans
                    self.svc.packet(43, data, HA, coa)
            self.svc.tick()
        return seen

    def advance(self, seconds: float, step: float = 0.5) -> list[Bu]:
        """Let time pass, firing the agent's timers and answering its BUs."""
        seen: list[Bu] = []
        end = self.clock.t + seconds
        while self.clock.t < end:
            d = self.svc.next_deadline
            self.clock.t = min(end, max(self.clock.t + 0.001, d if d is not None else end))
            if d is not None and d > end:
                self.clock.t = end
            self.svc.tick()
            seen += self.exchange(step=0.0)
        return seen

    def deliver(self, sent: list[Sent]) -> None:
        """Hand `sent` to the HA and its answers back to the agent."""
        for s in sent:
            ans = self.ha.answer(s)
            if ans is not None:
                self.svc.packet(43, ans[0], HA, ans[1])

    def sends(self, within: float = 0.4) -> list[Sent]:
        """What the agent sends within `within` seconds (its timers fire; nothing is answered):
        BUs wait up to 1/MAX_UPDATE_RATE after the previous BU for the same HoA (§11.8)."""
        end = self.clock.t + within
        while True:
            d = self.svc.next_deadline
            if d is None or d > end:
                break
            self.clock.t = max(self.clock.t, d)
            self.svc.tick()
        self.clock.t = end
        return self.out.take()

    def state(self) -> dict[str, Any]:
        return self.svc.snapshot().to_json()

    def hoas(self) -> dict[str, dict[str, Any]]:
        return {h["hoa"]: h for h in self.state()["hoas"]}
