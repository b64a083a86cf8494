"""The agent's snapshot and events become the logic's events; the logic's requests become calls."""

from __future__ import annotations

from dataclasses import replace
from ipaddress import IPv6Address, IPv6Network

from sdnmip.controller.agent_link import AgentTranslator, Call, calls_for, on_refusal
from sdnmip.controller.config import (
    AgentHoas,
    BindFailed,
    BindHoas,
    ClaimHoa,
    HoaBound,
    ReleaseHoa,
    SparePool,
    UplinkState,
)
from sdnmip.mn_agent import api

A = IPv6Address
PRIMARY, S1, S2 = A("2001:db8:100::1000"), A("2001:db8:100::2001"), A("2001:db8:100::2002")
COA = A("2001:db8:1::5")


def _hoa(
    hoa: IPv6Address, role: api.Role, state: api.BindingState, uplink: str | None
) -> api.HoaInfo:
    return api.HoaInfo(hoa, role, state, uplink, COA if uplink else None, 0, 600, 600.0)


def _snapshot() -> api.Snapshot:
    hello = api.Hello(1, PRIMARY, A("2001:db8:100::1"), (IPv6Network("2001:db8:100::/64"),))
    return api.Snapshot(
        hello,
        uplinks=(
            api.UplinkInfo("wlan", True, COA, A("fe80::1"), "02:aa:00:00:00:01"),
            api.UplinkInfo("lte", True, None, None, None),  # no CoA yet
        ),
        hoas=(
            _hoa(PRIMARY, api.Role.PRIMARY, api.BindingState.BOUND, "wlan"),
            _hoa(S1, api.Role.SPARE, api.BindingState.BOUND, "wlan"),
            _hoa(S2, api.Role.SPARE, api.BindingState.REGISTERING, "lte"),
        ),
        spares=(S1, S2),
    )


def test_a_snapshot_gives_uplinks_bindings_and_the_pool_with_each_spares_uplink() -> None:
    events = AgentTranslator().snapshot(_snapshot())
    assert UplinkState("wlan", True, COA, "02:aa:00:00:00:01") in events
    assert UplinkState("lte", False, None, None) in events  # not usable without a CoA
    assert HoaBound(PRIMARY, "wlan") in events
    assert HoaBound(S1, "wlan") in events
    assert not any(isinstance(e, HoaBound) and e.hoa == S2 for e in events)  # not bound yet
    assert events[-2] == SparePool(((S1, "wlan"), (S2, None)))
    assert events[-1] == AgentHoas(frozenset(), ((PRIMARY, "wlan"), (S1, "wlan")))


def test_a_snapshot_ends_with_the_hoas_the_agent_counts_as_claimed() -> None:
    snap = _snapshot()
    used, failed, held = A("2001:db8:100::3001"), A("2001:db8:100::3002"), A("2001:db8:100::3003")
    snap = replace(
        snap,
        hoas=(
            *snap.hoas,
            _hoa(used, api.Role.IN_USE, api.BindingState.BOUND, "lte"),
            _hoa(failed, api.Role.FAILED, api.BindingState.FAILED, "wlan"),
            _hoa(held, api.Role.HELD, api.BindingState.BOUND, "wlan"),
        ),
    )
    last = AgentTranslator().snapshot(snap)[-1]
    assert isinstance(last, AgentHoas)
    assert last.claimed == {used, failed}  # not the Primary, the spares or the released one
    assert dict(last.bound) == {PRIMARY: "wlan", S1: "wlan", used: "lte", held: "wlan"}


def test_a_binding_event_reports_bound_and_failed_and_refreshes_the_pool_for_spares() -> None:
    t = AgentTranslator()
    t.snapshot(_snapshot())
    out = t.event(api.EventKind.BINDING, _hoa(S2, api.Role.SPARE, api.BindingState.BOUND, "lte"))
    assert out == [HoaBound(S2, "lte"), SparePool(((S1, "wlan"), (S2, "lte")))]
    failed = _hoa(S1, api.Role.IN_USE, api.BindingState.FAILED, "lte")
    out = t.event(api.EventKind.BINDING, failed)
    assert out[0] == BindFailed(S1, "lte", "binding failed (status 0)")
    registering = _hoa(S1, api.Role.IN_USE, api.BindingState.REGISTERING, "lte")
    assert t.event(api.EventKind.BINDING, registering) == []


def test_a_pool_event_lists_spares_with_the_uplink_each_is_bound_at() -> None:
    t = AgentTranslator()
    t.snapshot(_snapshot())
    s3 = A("2001:db8:100::2003")
    assert t.event(api.EventKind.POOL, (S2, s3)) == [SparePool(((S2, None), (s3, None)))]
    t.event(api.EventKind.BINDING, _hoa(s3, api.Role.SPARE, api.BindingState.BOUND, "lte"))
    assert t.event(api.EventKind.POOL, (s3,)) == [SparePool(((s3, "lte"),))]


def test_requests_become_calls_in_order() -> None:
    assert calls_for(ClaimHoa(S1)) == [Call(api.Op.CLAIM, S1)]
    assert calls_for(BindHoas(((S1, "lte"), (S2, "wlan")), "move")) == [
        Call(api.Op.BIND, S1, "lte", "move"),
        Call(api.Op.BIND, S2, "wlan", "move"),
    ]
    assert calls_for(ReleaseHoa(S1)) == [Call(api.Op.RELEASE, S1)]


def test_a_raced_claim_becomes_an_adoption_and_a_refused_bind_a_bind_failure() -> None:
    not_spare = api.RpcError(api.ErrorCode.NOT_SPARE, "taken")
    assert on_refusal(Call(api.Op.CLAIM, S1), not_spare) == (Call(api.Op.ADOPT, S1), None)
    down = api.RpcError(api.ErrorCode.UPLINK_DOWN, "lte has no CoA")
    follow, event = on_refusal(Call(api.Op.BIND, S1, "lte"), down)
    assert follow is None
    assert event == BindFailed(S1, "lte", "agent refused: lte has no CoA")
    primary = api.RpcError(api.ErrorCode.PRIMARY, "never")
    assert on_refusal(Call(api.Op.RELEASE, PRIMARY), primary) == (None, None)
