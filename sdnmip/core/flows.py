"""Flow Mapping Table (patent Figure 3, table 13): the MN's live flows and their indexes.

Owns: one `FlowEntry` per live flow (flow id, correspondent, flow information, HoA, uplink/CoA,
counters, last-seen time, TCP end state) and the indexes that keep every question the
controller asks O(1): by flow id, by the application's 5-tuple, by the on-the-wire key of the
return direction, per HoA (multiset of correspondents), per correspondent (multiset of HoAs,
which is what Figure 6 asks), per uplink (link loss), and the HoAs reserved by `own_hoa` flows.
Also the ICMPv6 "ports" convention (see `FlowKey`) and persistence as plain dicts.

Must not: choose HoAs or uplinks (sdnmip/core/redirector.py), build OpenFlow messages, do I/O
or read clocks. Indexes are changed only through this class, so they cannot drift from entries.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from functools import lru_cache
from ipaddress import IPv6Address
from typing import Any

from sdnmip.core.types import (
    Direction,
    FlowDescriptor,
    FlowKey,
    Mode,
)

# (proto, the MN's address on the wire, MN port, remote address, remote port): the key a packet
# arriving at the MN carries once its outer header is gone. The MN's address is the flow's HoA
# (anchored) or the uplink's CoA (direct).
WireKey = tuple[int, IPv6Address, int, IPv6Address, int]

# ICMPv6 informational request/response pairs (RFC 4443 §4 echo, RFC 4620 §4 node information).
_ICMPV6_PAIRS = {128: 129, 129: 128, 139: 140, 140: 139}


def icmpv6_peer_type(icmp_type: int) -> int:
    """The ICMPv6 type the other side sends back in the same exchange (itself if unpaired)."""
    return _ICMPV6_PAIRS.get(icmp_type, icmp_type)


@dataclass(slots=True)
class RuleState:
    """One direction's OpenFlow rule: whether it is believed installed, and its counters.

    Counters of a rule restart at zero when it is re-installed; `base_*` carries the totals of
    the rule instances already gone, `cur_*` the last reading of the current instance.
    """

    installed: bool = False
    base_packets: int = 0
    base_bytes: int = 0
    cur_packets: int = 0
    cur_bytes: int = 0

    @property
    def packets(self) -> int:
        return self.base_packets + self.cur_packets

    @property
    def bytes(self) -> int:
        return self.base_bytes + self.cur_bytes

    def gone(self, final_packets: int, final_bytes: int) -> None:
        """The switch removed the rule and reported its final counters."""
        self.base_packets += max(final_packets, self.cur_packets)
        self.base_bytes += max(final_bytes, self.cur_bytes)
        self.cur_packets = self.cur_bytes = 0
        self.installed = False

    def reading(self, packets: int, bytes_: int) -> bool:
        """A flow-stats reading of the current instance; True if it saw new packets."""
        grew = packets > self.cur_packets
        self.cur_packets, self.cur_bytes = packets, bytes_
        return grew


@dataclass(slots=True)
class FlowEntry:
    """One row of the Flow Mapping Table."""

    flow_id: int
    desc: FlowDescriptor
    hoa: IPv6Address | None  # None for direct-mode flows
    uplink: str  # the uplink the uplink rule outputs to now
    mode: Mode = Mode.ANCHORED
    coa: IPv6Address | None = None  # direct mode: the CoA written into the packets
    rule_id: str | None = None
    shared: bool = False  # placed by the pool-exhausted fallback (see redirector.py)
    own_hoa: bool = False  # reserves its HoA: no other flow may join it
    # The uplink a user moved it to (move_flow): resteer leaves it alone, and failback takes it
    # back there when that uplink returns after a loss moved it away.
    pinned: str | None = None
    created: float = 0.0
    last_seen: float = 0.0
    up: RuleState = field(default_factory=RuleState)
    down: RuleState = field(default_factory=RuleState)
    fin_out: bool = False
    fin_in: bool = False
    end_at: float | None = None  # TCP end: delete after the linger

    @property
    def key(self) -> FlowKey:
        return self.desc.key

    @property
    def cn(self) -> IPv6Address:
        return self.desc.key.remote

    @property
    def wire_addr(self) -> IPv6Address:
        addr = self.hoa if self.mode is Mode.ANCHORED else self.coa
        if addr is None:
            raise ValueError(f"flow {self.flow_id} has no address on the wire")
        return addr

    @property
    def wire_key(self) -> WireKey:
        k = self.desc.key
        return (k.proto, self.wire_addr, k.local_port, k.remote, k.remote_port)

    def to_dict(self) -> dict[str, Any]:
        k = self.desc.key
        return {
            "flow_id": self.flow_id,
            "proto": k.proto,
            "local": _text(k.local),
            "local_port": k.local_port,
            "remote": _text(k.remote),
            "remote_port": k.remote_port,
            "direction": self.desc.direction.value,
            "flow_label": self.desc.flow_label,
            "dscp": self.desc.dscp,
            "app_id": self.desc.app_id,
            "hoa": None if self.hoa is None else _text(self.hoa),
            "uplink": self.uplink,
            "mode": self.mode.value,
            "coa": None if self.coa is None else _text(self.coa),
            "rule_id": self.rule_id,
            "shared": self.shared,
            "own_hoa": self.own_hoa,
            "pinned": self.pinned,
            "created": self.created,
            "last_seen": self.last_seen,
            "packets_up": self.up.packets,
            "bytes_up": self.up.bytes,
            "packets_down": self.down.packets,
            "bytes_down": self.down.bytes,
            "fin_out": self.fin_out,
            "fin_in": self.fin_in,
            "end_at": self.end_at,
        }

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> FlowEntry:
        key = FlowKey(
            proto=int(d["proto"]),
            local=IPv6Address(d["local"]),
            local_port=int(d["local_port"]),
            remote=IPv6Address(d["remote"]),
            remote_port=int(d["remote_port"]),
        )
        desc = FlowDescriptor(
            key=key,
            direction=Direction(d["direction"]),
            flow_label=int(d["flow_label"]),
            dscp=int(d["dscp"]),
            app_id=d["app_id"],
        )
        # Counters persisted as totals: the rules that carried them are gone or will be
        # re-read, so they become the base of the next instance.
        return cls(
            flow_id=int(d["flow_id"]),
            desc=desc,
            hoa=None if d["hoa"] is None else IPv6Address(d["hoa"]),
            uplink=str(d["uplink"]),
            mode=Mode(d["mode"]),
            coa=None if d["coa"] is None else IPv6Address(d["coa"]),
            rule_id=d["rule_id"],
            shared=bool(d["shared"]),
            own_hoa=bool(d["own_hoa"]),
            pinned=_pin(d["pinned"], str(d["uplink"])),
            created=float(d["created"]),
            last_seen=float(d["last_seen"]),
            up=RuleState(base_packets=int(d["packets_up"]), base_bytes=int(d["bytes_up"])),
            down=RuleState(base_packets=int(d["packets_down"]), base_bytes=int(d["bytes_down"])),
            fin_out=bool(d["fin_out"]),
            fin_in=bool(d["fin_in"]),
            end_at=None if d["end_at"] is None else float(d["end_at"]),
        )


class FlowTableError(ValueError):
    """A flow cannot be added because it collides with a live one."""


class FlowTable:
    """The live flows with their indexes. Flow ids are never reused (they name OpenFlow cookies)."""

    def __init__(self, next_id: int = 1) -> None:
        if next_id < 1:
            raise ValueError("flow ids start at 1 (0 names the pipeline's static rules)")
        self._next_id = next_id
        self._by_id: dict[int, FlowEntry] = {}
        self._by_key: dict[FlowKey, int] = {}
        self._by_wire: dict[WireKey, int] = {}
        self._hoa_flows: dict[IPv6Address, set[int]] = {}
        self._hoa_cns: dict[IPv6Address, Counter[IPv6Address]] = {}
        self._cn_hoas: dict[IPv6Address, Counter[IPv6Address]] = {}
        self._uplink_flows: dict[str, set[int]] = {}
        self._own_hoas: Counter[IPv6Address] = Counter()

    # -- identity -------------------------------------------------------------------------------

    def new_id(self) -> int:
        fid = self._next_id
        self._next_id += 1
        return fid

    @property
    def next_id(self) -> int:
        return self._next_id

    # -- queries --------------------------------------------------------------------------------

    def __len__(self) -> int:
        return len(self._by_id)

    def __iter__(self) -> Iterator[FlowEntry]:
        return iter(self._by_id.values())

    def __contains__(self, flow_id: object) -> bool:
        return flow_id in self._by_id

    def get(self, flow_id: int) -> FlowEntry | None:
        return self._by_id.get(flow_id)

    def by_key(self, key: FlowKey) -> FlowEntry | None:
        fid = self._by_key.get(key)
        return None if fid is None else self._by_id[fid]

    def by_wire(self, wire: WireKey) -> FlowEntry | None:
        fid = self._by_wire.get(wire)
        return None if fid is None else self._by_id[fid]

    def hoas_used_by(self, cn: IPv6Address) -> Mapping[IPv6Address, int]:
        """HoA -> number of live flows to `cn` on it (Figure 6's question, answered in O(1))."""
        return self._cn_hoas.get(cn, _EMPTY)

    def flows_on_hoa(self, hoa: IPv6Address) -> frozenset[int]:
        return frozenset(self._hoa_flows.get(hoa, ()))

    def a_flow_on_hoa(self, hoa: IPv6Address) -> FlowEntry | None:
        """Any one live flow on `hoa` (O(1)), or None."""
        flows = self._hoa_flows.get(hoa)
        return self._by_id[next(iter(flows))] if flows else None

    def hoa_flow_count(self, hoa: IPv6Address) -> int:
        flows = self._hoa_flows.get(hoa)
        return 0 if flows is None else len(flows)

    def cns_on_hoa(self, hoa: IPv6Address) -> Mapping[IPv6Address, int]:
        return self._hoa_cns.get(hoa, _EMPTY)

    def is_reserved(self, hoa: IPv6Address) -> bool:
        """True if an `own_hoa` flow holds this HoA: no other flow may be placed on it."""
        return self._own_hoas[hoa] > 0

    def flows_on_uplink(self, uplink: str) -> frozenset[int]:
        return frozenset(self._uplink_flows.get(uplink, ()))

    # -- changes --------------------------------------------------------------------------------

    def add(self, entry: FlowEntry) -> None:
        fid = entry.flow_id
        if fid in self._by_id:
            raise FlowTableError(f"flow id {fid} is already live")
        other = self._by_key.get(entry.key)
        if other is not None:
            raise FlowTableError(f"flow {fid} has the same 5-tuple as live flow {other}")
        wire = entry.wire_key
        other = self._by_wire.get(wire)
        if other is not None:
            raise FlowTableError(f"flow {fid} has the same wire key as live flow {other}")
        # Checked: only now does the table change (a refused entry leaves it as it was).
        if fid >= self._next_id:
            self._next_id = fid + 1
        self._by_id[fid] = entry
        self._by_key[entry.key] = fid
        self._by_wire[wire] = fid
        self._uplink_flows.setdefault(entry.uplink, set()).add(fid)
        if entry.hoa is not None:
            self._index_hoa(entry, entry.hoa, +1)

    def remove(self, flow_id: int) -> FlowEntry:
        entry = self._by_id.pop(flow_id)
        del self._by_key[entry.key]
        del self._by_wire[entry.wire_key]
        _discard(self._uplink_flows, entry.uplink, flow_id)
        if entry.hoa is not None:
            self._index_hoa(entry, entry.hoa, -1)
        return entry

    def set_uplink(self, flow_id: int, uplink: str) -> None:
        entry = self._by_id[flow_id]
        if entry.uplink == uplink:
            return
        _discard(self._uplink_flows, entry.uplink, flow_id)
        entry.uplink = uplink
        self._uplink_flows.setdefault(uplink, set()).add(flow_id)

    def _index_hoa(self, entry: FlowEntry, hoa: IPv6Address, delta: int) -> None:
        cn = entry.cn
        fid = entry.flow_id
        if delta > 0:
            self._hoa_flows.setdefault(hoa, set()).add(fid)
            self._hoa_cns.setdefault(hoa, Counter())[cn] += 1
            self._cn_hoas.setdefault(cn, Counter())[hoa] += 1
            if entry.own_hoa:
                self._own_hoas[hoa] += 1
            return
        _discard(self._hoa_flows, hoa, fid)
        _decrement(self._hoa_cns, hoa, cn)
        _decrement(self._cn_hoas, cn, hoa)
        if entry.own_hoa:
            self._own_hoas[hoa] -= 1
            if self._own_hoas[hoa] <= 0:
                del self._own_hoas[hoa]

    # -- persistence ----------------------------------------------------------------------------

    def to_dict(self) -> dict[str, Any]:
        return {"next_id": self._next_id, "flows": [e.to_dict() for e in self._by_id.values()]}

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> FlowTable:
        table = cls(next_id=int(d["next_id"]))
        for row in d["flows"]:
            table.add(FlowEntry.from_dict(row))
        return table


_EMPTY: Mapping[IPv6Address, int] = Counter()


def _pin(value: object, uplink: str) -> str | None:
    """A snapshot's `pinned`: the uplink's name, or null. Snapshots written before pins named
    their uplink hold a bool; a pinned flow of theirs had not been rescued since it was pinned
    (a rescue never unpinned, but it is the best guess), so it counts as pinned where it is."""
    if value is None or value is False:
        return None
    if value is True:
        return uplink
    if isinstance(value, str):
        return value
    raise ValueError(f"pinned: {value!r} is neither an uplink name nor a boolean")


@lru_cache(maxsize=8192)
def _text(addr: IPv6Address) -> str:
    # Formatting an IPv6 address costs microseconds; a snapshot formats the same few HoAs and
    # correspondents for every flow, and runs while the controller does nothing else.
    return str(addr)


def _discard(index: dict[Any, set[int]], key: Any, fid: int) -> None:
    members = index.get(key)
    if members is None:
        return
    members.discard(fid)
    if not members:
        del index[key]


def _decrement(
    index: dict[IPv6Address, Counter[IPv6Address]], a: IPv6Address, b: IPv6Address
) -> None:
    counts = index[a]
    counts[b] -= 1
    if counts[b] <= 0:
        del counts[b]
        if not counts:
            del index[a]
