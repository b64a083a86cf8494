"""Figure 6: worked examples, and the indexed choice equals a naive flowchart transcription."""

from __future__ import annotations

from ipaddress import IPv6Address as A

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sdnmip.core.flows import FlowEntry, FlowTable
from sdnmip.core.redirector import (
    Assignment,
    ControllerHoaTable,
    HoaRecord,
    HoaTableError,
    PrimaryUse,
    choose_incoming,
    choose_outgoing,
)
from sdnmip.core.types import Direction, FlowDescriptor, FlowKey

PRIMARY = A("2001:db8:100::1000")
DYN = [A(f"2001:db8:100::{i:x}") for i in range(0x2001, 0x2009)]
CNS = [A(f"2001:db8:c{i}::10") for i in range(1, 5)]
UPLINKS = ["wlan", "lte"]


def add_flow(t: FlowTable, hoa: A, cn: A, uplink: str = "wlan", own: bool = False) -> FlowEntry:
    fid = t.new_id()
    key = FlowKey(6, PRIMARY, 1000 + fid, cn, 80)
    e = FlowEntry(fid, FlowDescriptor(key, Direction.OUTGOING), hoa, uplink, own_hoa=own)
    t.add(e)
    return e


def table(*held: tuple[A, str | None], spares=()) -> ControllerHoaTable:
    h = ControllerHoaTable(PRIMARY, "wlan")
    h.set_pool([(a, u) for a, u in held] + list(spares))
    for a, _ in held:
        h.claim(a)
    return h


def test_first_flow_takes_the_primary_a_second_to_the_same_cn_takes_a_spare():
    hoas, flows = table(spares=[(DYN[0], "wlan")]), FlowTable()
    a = choose_outgoing(hoas, flows, CNS[0], "wlan", primary_use=PrimaryUse.AVOID)
    assert a == Assignment(PRIMARY, "wlan")
    add_flow(flows, PRIMARY, CNS[0])
    b = choose_outgoing(hoas, flows, CNS[0], "wlan", primary_use=PrimaryUse.AVOID)
    assert b == Assignment(DYN[0], "wlan", claimed=True)


def test_the_primary_is_avoided_when_a_held_hoa_fits():
    hoas, flows = table((DYN[0], "wlan")), FlowTable()
    add_flow(flows, DYN[0], CNS[1])
    assert choose_outgoing(hoas, flows, CNS[0], "wlan", primary_use=PrimaryUse.AVOID).hoa == DYN[0]


def test_strict_never_uses_the_primary_for_outgoing_flows():
    hoas, flows = table(spares=[(DYN[0], "lte")]), FlowTable()
    a = choose_outgoing(hoas, flows, CNS[0], "wlan", primary_use=PrimaryUse.STRICT)
    assert a == Assignment(DYN[0], "wlan", claimed=True, rebind=True)


def test_a_hoa_carrying_flows_elsewhere_is_not_reused_for_another_uplink():
    hoas, flows = table((DYN[0], "lte"), spares=[(DYN[1], "wlan")]), FlowTable()
    add_flow(flows, DYN[0], CNS[1], "lte")
    add_flow(flows, PRIMARY, CNS[2], "wlan")
    # DYN[0] is at lte; the Primary is at wlan and unused by CNS[0].
    assert choose_outgoing(hoas, flows, CNS[0], "wlan", primary_use=PrimaryUse.AVOID).hoa == PRIMARY
    assert choose_outgoing(hoas, flows, CNS[0], "wlan", primary_use=PrimaryUse.STRICT).hoa == DYN[1]


def test_spare_at_the_chosen_uplink_is_preferred():
    hoas, flows = table(spares=[(DYN[0], "lte"), (DYN[1], "wlan")]), FlowTable()
    a = choose_outgoing(hoas, flows, CNS[0], "wlan", primary_use=PrimaryUse.STRICT)
    assert a == Assignment(DYN[1], "wlan", claimed=True)


def test_exhausted_pool_shares_the_least_loaded_hoa_and_follows_its_uplink():
    hoas, flows = table((DYN[0], "lte")), FlowTable()
    add_flow(flows, PRIMARY, CNS[0], "wlan")
    add_flow(flows, PRIMARY, CNS[1], "wlan")
    add_flow(flows, DYN[0], CNS[0], "lte")
    a = choose_outgoing(hoas, flows, CNS[0], "wlan", primary_use=PrimaryUse.AVOID)
    assert a == Assignment(PRIMARY, "wlan", shared=True)  # at wlan beats fewer flows elsewhere
    a = choose_outgoing(hoas, flows, CNS[0], "lte", primary_use=PrimaryUse.AVOID)
    assert a == Assignment(DYN[0], "lte", shared=True)


def test_own_hoa_always_takes_a_spare_and_nobody_joins_it():
    hoas, flows = table(spares=[(DYN[0], "wlan")]), FlowTable()
    a = choose_outgoing(hoas, flows, CNS[0], "wlan", primary_use=PrimaryUse.AVOID, own_hoa=True)
    assert a.claimed and a.hoa == DYN[0]
    hoas.claim(DYN[0])
    add_flow(flows, DYN[0], CNS[0], own=True)
    b = choose_outgoing(hoas, flows, CNS[1], "wlan", primary_use=PrimaryUse.STRICT)
    # Reserved; strict and exhausted: the Primary is the lesser evil.
    assert b == Assignment(PRIMARY, "wlan", shared=True)


def test_pinned_hoa_is_honoured_if_held_or_spare_and_ignored_otherwise():
    hoas, flows = table(spares=[(DYN[0], "lte")]), FlowTable()
    pick = lambda pin: choose_outgoing(  # noqa: E731
        hoas, flows, CNS[0], "wlan", primary_use=PrimaryUse.STRICT, pin=pin
    )
    assert pick(PRIMARY).hoa == PRIMARY
    assert pick(DYN[0]) == Assignment(DYN[0], "wlan", claimed=True, rebind=True)
    assert pick(DYN[5]).hoa == DYN[0]


def test_incoming_keeps_the_destination_and_follows_a_busy_hoa():
    hoas, flows = table((DYN[0], "lte")), FlowTable()
    assert choose_incoming(hoas, flows, PRIMARY, "lte") == Assignment(PRIMARY, "lte", rebind=True)
    add_flow(flows, DYN[0], CNS[0], "lte")
    assert choose_incoming(hoas, flows, DYN[0], "wlan") == Assignment(DYN[0], "lte")
    with pytest.raises(HoaTableError):
        choose_incoming(hoas, flows, DYN[4], "wlan")


def test_home_address_table_keeps_the_primary_and_round_trips():
    hoas = table((DYN[0], "lte"), spares=[(DYN[1], None)])
    with pytest.raises(HoaTableError, match="never released"):
        hoas.release(PRIMARY)
    with pytest.raises(HoaTableError, match="not a spare"):
        hoas.claim(DYN[0])
    back = ControllerHoaTable.from_dict(hoas.to_dict())
    assert back.to_dict() == hoas.to_dict()
    hoas.release(DYN[0])
    assert [r.addr for r in hoas.held()] == [PRIMARY]


# -- the flowchart, transcribed naively -------------------------------------------------------


def naive_figure6(
    held: list[HoaRecord], spares, flows: list[FlowEntry], *, cn, uplink, use, own, pin
):
    """Patent Figure 6 with sdnmip's rules, scanning the whole Flow Mapping Table each time."""

    def on(ha):  # steps 36/44: every flow whose HoA is ha
        return [f for f in flows if f.hoa == ha]

    def reuse(rec, shared=False):
        if on(rec.addr) and rec.target is not None:
            return Assignment(rec.addr, rec.target, shared=shared)
        return Assignment(rec.addr, uplink, rebind=rec.target != uplink, shared=shared)

    if pin is not None:
        for rec in held:
            if rec.addr == pin:
                return reuse(rec, shared=any(f.cn == cn for f in on(pin)))
        for h, b in spares:
            if h == pin:
                return Assignment(h, uplink, claimed=True, rebind=b != uplink)
    if not own:
        order = [r for r in held if not r.primary]
        if use is PrimaryUse.AVOID:
            order += [r for r in held if r.primary]
        for rec in order:  # steps 35, 41, 42: walk the Home Address Table
            fl = on(rec.addr)
            same_cn = False
            for f in fl:  # decision 37, for each flow on ha
                if f.cn == cn:
                    same_cn = True
                    break
            if same_cn or any(f.own_hoa for f in fl):
                continue
            if not fl or rec.target == uplink:
                return reuse(rec)  # step 39
    if spares:  # step 43: a new HoA, from the pool
        at_u = [(h, b) for h, b in spares if b == uplink]
        h, b = at_u[0] if at_u else spares[0]
        return Assignment(h, uplink, claimed=True, rebind=b != uplink)
    best = min(
        held,
        key=lambda r: (
            any(f.own_hoa for f in on(r.addr)),
            r.primary and use is PrimaryUse.STRICT,
            bool(on(r.addr)) and r.target != uplink,
            sum(1 for f in on(r.addr) if f.cn == cn),
            len(on(r.addr)),
            held.index(r),
        ),
    )
    return reuse(best, shared=True)


maybe_uplink = st.sampled_from([None, *UPLINKS])


@st.composite
def scenarios(draw):
    n_held = draw(st.integers(0, 5))
    dyn = draw(st.permutations(DYN))
    held = [HoaRecord(PRIMARY, primary=True, bound="wlan", target=draw(maybe_uplink))]
    held += [
        HoaRecord(a, bound=draw(maybe_uplink), target=draw(maybe_uplink)) for a in dyn[:n_held]
    ]
    spares = [(a, draw(maybe_uplink)) for a in dyn[n_held : n_held + draw(st.integers(0, 3))]]
    flows = draw(
        st.lists(
            st.tuples(st.sampled_from([r.addr for r in held]), st.sampled_from(CNS), st.booleans()),
            max_size=14,
        )
    )
    return held, spares, flows


requests = st.fixed_dictionaries(
    {
        "cn": st.sampled_from(CNS),
        "uplink": st.sampled_from(UPLINKS),
        "use": st.sampled_from(list(PrimaryUse)),
        "own": st.booleans(),
        "pin": st.sampled_from([None, None, None, PRIMARY, DYN[0], DYN[7]]),
    }
)


@settings(max_examples=400, deadline=None)
@given(scenarios(), requests)
def test_indexed_choice_equals_the_naive_flowchart(scenario, req):
    held, spares, flow_specs = scenario
    cn, uplink, use, own, pin = req["cn"], req["uplink"], req["use"], req["own"], req["pin"]
    hoas = ControllerHoaTable(PRIMARY, "wlan")
    hoas.set_pool([(r.addr, r.bound) for r in held[1:]] + spares)
    for r in held[1:]:
        hoas.claim(r.addr)
    for r in held:
        rec = hoas.record(r.addr)
        rec.bound, rec.target = r.bound, r.target
    flows = FlowTable()
    entries = [
        add_flow(flows, h, c, own=o and i % 4 == 0) for i, (h, c, o) in enumerate(flow_specs)
    ]
    got = choose_outgoing(hoas, flows, cn, uplink, primary_use=use, own_hoa=own, pin=pin)
    want = naive_figure6(held, spares, entries, **req)
    assert got == want
    # Figure 6's promise: unless the pool ran out, no other live flow to cn uses the HoA.
    if not got.shared and pin is None:
        assert got.hoa not in flows.hoas_used_by(cn)
