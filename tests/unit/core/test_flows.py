"""Flow Mapping Table: lookups, index consistency under random changes, persistence."""

from __future__ import annotations

import contextlib
import json
from collections import Counter
from ipaddress import IPv6Address as A

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sdnmip.core.flows import FlowEntry, FlowTable, FlowTableError, icmpv6_peer_type
from sdnmip.core.types import Direction, FlowDescriptor, FlowKey, Mode

PRIMARY = A("2001:db8:100::1000")
HOAS = [PRIMARY, A("2001:db8:100::2001"), A("2001:db8:100::2002")]
CNS = [A("2001:db8:c1::10"), A("2001:db8:c2::10"), A("2001:db8:c3::10")]


def entry(fid: int, cn: A, hoa: A | None, port: int, uplink: str = "wlan", **kw) -> FlowEntry:
    key = FlowKey(6, PRIMARY, port, cn, 80)
    mode = Mode.DIRECT if hoa is None else Mode.ANCHORED
    coa = A("2001:db8:1::2") if hoa is None else None
    return FlowEntry(fid, FlowDescriptor(key, Direction.OUTGOING), hoa, uplink, mode, coa=coa, **kw)


def test_lookups_by_id_key_wire_hoa_cn_and_uplink():
    t = FlowTable()
    e = entry(t.new_id(), CNS[0], HOAS[1], 40000)
    t.add(e)
    assert t.get(e.flow_id) is e and t.by_key(e.key) is e
    assert t.by_wire((6, HOAS[1], 40000, CNS[0], 80)) is e
    assert t.by_wire((6, PRIMARY, 40000, CNS[0], 80)) is None
    assert dict(t.hoas_used_by(CNS[0])) == {HOAS[1]: 1}
    assert t.flows_on_hoa(HOAS[1]) == {e.flow_id} and t.flows_on_uplink("wlan") == {e.flow_id}
    t.set_uplink(e.flow_id, "lte")
    assert t.flows_on_uplink("wlan") == frozenset() and t.flows_on_uplink("lte") == {e.flow_id}
    t.remove(e.flow_id)
    assert len(t) == 0 and t.hoas_used_by(CNS[0]) == {} and t.hoa_flow_count(HOAS[1]) == 0


def test_collisions_are_refused():
    t = FlowTable()
    t.add(entry(1, CNS[0], HOAS[1], 40000))
    with pytest.raises(FlowTableError, match="same 5-tuple"):
        t.add(entry(2, CNS[0], HOAS[2], 40000))
    with pytest.raises(FlowTableError, match="already live"):
        t.add(entry(1, CNS[1], HOAS[2], 40001))
    # A refused entry leaves the table as it was, its id counter included.
    with pytest.raises(FlowTableError, match="same 5-tuple"):
        t.add(entry(90, CNS[0], HOAS[2], 40000))
    assert t.new_id() == 2 and len(t) == 1


def test_ids_are_never_reused():
    t = FlowTable()
    a = t.new_id()
    t.add(entry(a, CNS[0], HOAS[0], 1))
    t.remove(a)
    assert t.new_id() == a + 1
    t.add(entry(50, CNS[0], HOAS[0], 1))
    assert t.new_id() == 51


def test_icmpv6_exchanges_pair_request_and_reply_types():
    assert icmpv6_peer_type(128) == 129 and icmpv6_peer_type(129) == 128
    assert icmpv6_peer_type(139) == 140 and icmpv6_peer_type(200) == 200


ops = st.lists(
    st.tuples(
        st.sampled_from(["add", "remove", "move"]),
        st.integers(0, 2),
        st.sampled_from([*HOAS, None]),
        st.integers(1, 6),
        st.booleans(),
    ),
    max_size=60,
)


@settings(max_examples=150, deadline=None)
@given(ops)
def test_indexes_always_equal_a_recomputation_from_the_entries(script):
    t = FlowTable()
    for op, cn, hoa, port, flag in script:
        live = sorted(e.flow_id for e in t)
        if op == "add":
            with contextlib.suppress(FlowTableError):  # a colliding 5-tuple: refused, no change
                t.add(entry(t.new_id(), CNS[cn], hoa, port, own_hoa=flag and hoa is not None))
        elif op == "remove" and live:
            t.remove(live[port % len(live)])
        elif op == "move" and live:
            t.set_uplink(live[port % len(live)], "lte" if flag else "wlan")
    entries = list(t)
    for cn in CNS:
        want = Counter(e.hoa for e in entries if e.cn == cn and e.hoa is not None)
        assert dict(t.hoas_used_by(cn)) == dict(want)
    for h in HOAS:
        on = {e.flow_id for e in entries if e.hoa == h}
        assert t.flows_on_hoa(h) == on and t.hoa_flow_count(h) == len(on)
        assert dict(t.cns_on_hoa(h)) == dict(Counter(e.cn for e in entries if e.hoa == h))
        assert t.is_reserved(h) == any(e.own_hoa for e in entries if e.hoa == h)
    for u in ("wlan", "lte"):
        assert t.flows_on_uplink(u) == {e.flow_id for e in entries if e.uplink == u}
    for e in entries:
        assert t.by_key(e.key) is e and t.by_wire(e.wire_key) is e
    # Persistence round trip (through JSON, as the shell stores it).
    back = FlowTable.from_dict(json.loads(json.dumps(t.to_dict())))
    assert back.to_dict() == t.to_dict()
    assert back.next_id == t.next_id


def test_a_flow_on_a_hoa_is_any_live_flow_on_it_or_none() -> None:
    table = FlowTable()
    hoa = A("2001:db8:100::2001")
    e = entry(1, A("2001:db8:c1::10"), hoa, 40000)
    table.add(e)
    assert table.a_flow_on_hoa(hoa) is e
    table.remove(e.flow_id)
    assert table.a_flow_on_hoa(hoa) is None
