"""Which rules match a flow, found with a few lookups whatever the number of rules.

Bit-vector classification (Lakshman and Stiliadis, SIGCOMM 1998): rule i is bit i, in evaluation
order. For each match field, the field's value space is cut at every rule boundary into intervals,
and each interval holds the bitmask of the rules that accept its values (a rule that does not
constrain the field accepts all). A flow's matching rules are the AND of one mask per field, each
found by one binary search; the lowest set bit is the first rule in order. Fields that no rule
constrains cost nothing.

Built once per Policy; pure and immutable afterwards. Knows nothing of actions or uplinks.
"""

from __future__ import annotations

from bisect import bisect_right
from collections.abc import Hashable, Sequence
from ipaddress import IPv6Network

from sdnmip.core.policy_model import Match, Ranges
from sdnmip.core.policy_parse import merge_ranges
from sdnmip.core.types import FlowDescriptor


def net_ranges(nets: tuple[IPv6Network, ...]) -> Ranges:
    return merge_ranges([(int(n.network_address), int(n.broadcast_address)) for n in nets])


class RangeField:
    """Rules' integer ranges on one field -> interval bounds and the mask of each interval."""

    __slots__ = ("bounds", "masks")

    def __init__(self, per_rule: Sequence[Ranges | None]) -> None:
        # A sweep over range starts and ends: O(boundaries log boundaries + rules).
        wildcard = 0
        starts: dict[int, int] = {}
        ends: dict[int, int] = {}
        for i, ranges in enumerate(per_rule):
            bit = 1 << i
            if ranges is None:
                wildcard |= bit
                continue
            for lo, hi in ranges:  # merged: a rule's ranges neither overlap nor touch
                starts[lo] = starts.get(lo, 0) | bit
                ends[hi + 1] = ends.get(hi + 1, 0) | bit
        bounds = sorted({0, *starts, *ends})
        masks: list[int] = []
        current = wildcard
        for point in bounds:
            current = (current & ~ends.get(point, 0)) | starts.get(point, 0)
            masks.append(current)
        self.bounds = bounds
        self.masks = masks

    def mask(self, value: int) -> int:
        return self.masks[bisect_right(self.bounds, value) - 1]


class KeyField:
    """Rules' sets of exact values on one field (protocol, direction, application id)."""

    __slots__ = ("by_value", "wildcard")

    def __init__(self, per_rule: Sequence[Sequence[Hashable] | None]) -> None:
        self.wildcard = 0
        for i, values in enumerate(per_rule):
            if values is None:
                self.wildcard |= 1 << i
        self.by_value: dict[Hashable, int] = {}
        for i, values in enumerate(per_rule):
            for value in values or ():
                self.by_value[value] = self.by_value.get(value, self.wildcard) | (1 << i)

    def mask(self, value: Hashable) -> int:
        return self.by_value.get(value, self.wildcard)


def _ranges(values: list[Ranges | None]) -> RangeField | None:
    return None if all(v is None for v in values) else RangeField(values)


def _keys(values: Sequence[Sequence[Hashable] | None]) -> KeyField | None:
    return None if all(v is None for v in values) else KeyField(values)


class MatchIndex:
    """`lookup(flow)`: the bitmask of the rules (in evaluation order) whose match holds."""

    __slots__ = (
        "all",
        "app_id",
        "direction",
        "dscp",
        "flow_label",
        "local",
        "local_port",
        "proto",
        "remote",
        "remote_port",
    )

    def __init__(self, matches: Sequence[Match]) -> None:
        self.all = (1 << len(matches)) - 1
        self.proto = _keys([m.proto for m in matches])
        self.direction = _keys([None if m.direction is None else (m.direction,) for m in matches])
        self.app_id = _keys([m.app_id for m in matches])
        self.remote_port = _ranges([m.remote_port for m in matches])
        self.local_port = _ranges([m.local_port for m in matches])
        self.dscp = _ranges([m.dscp for m in matches])
        self.flow_label = _ranges([m.flow_label for m in matches])
        self.remote = _ranges([None if m.remote is None else net_ranges(m.remote) for m in matches])
        self.local = _ranges([None if m.local is None else net_ranges(m.local) for m in matches])

    def lookup(self, flow: FlowDescriptor) -> int:
        key = flow.key
        mask = self.all
        if self.proto is not None:
            mask &= self.proto.mask(key.proto)
        if self.remote_port is not None:
            mask &= self.remote_port.mask(key.remote_port)
        if self.direction is not None:
            mask &= self.direction.mask(flow.direction)
        if not mask:
            return 0
        if self.local_port is not None:
            mask &= self.local_port.mask(key.local_port)
        if self.app_id is not None:
            mask &= self.app_id.mask(flow.app_id)
        if self.dscp is not None:
            mask &= self.dscp.mask(flow.dscp)
        if self.flow_label is not None:
            mask &= self.flow_label.mask(flow.flow_label)
        if self.remote is not None and mask:
            mask &= self.remote.mask(int(key.remote))
        if self.local is not None and mask:
            mask &= self.local.mask(int(key.local))
        return mask
