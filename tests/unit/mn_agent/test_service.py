"""The agent's logic shell on a mock clock, against a home agent in miniature that speaks real
packets: what leaves which uplink, what the HA ends up holding, what the controller is told."""

from __future__ import annotations

import logging
from ipaddress import IPv6Address

import pytest

from sdnmip.mipv6 import MnHaKey, build_mh_packet
from sdnmip.mipv6.mh import BindingError, BindingRefreshRequest
from sdnmip.mn_agent.api import ErrorCode, EventKind, RpcError
from tests.unit.mn_agent.fakes import (
    COA,
    CRED,
    HA,
    HOME,
    PRIMARY,
    Harness,
    PacketHa,
    config,
)


def started(**kw: object) -> Harness:
    h = Harness(**kw)  # type: ignore[arg-type]
    h.uplink("wlan")
    h.uplink("lte")
    h.exchange()
    h.clock.t += 1.0  # later requests are not held back by the rate limit of these BUs
    return h


def test_nothing_is_sent_until_an_uplink_is_usable():
    h = Harness()
    h.svc.uplinks_changed([])
    h.uplink("wlan", up=False)
    assert h.out.take() == []


def test_primary_registers_first_via_the_preferred_uplink_with_nai_timestamp_and_auth():
    h = Harness()
    h.uplink("lte")
    h.uplink("wlan")
    first = h.out.sent[0]
    bu = h.ha.decode(first)
    # lte came first, so the Primary starts there; the preferred uplink takes the spares.
    assert (bu.hoa, bu.uplink, bu.coa) == (PRIMARY, "lte", COA["lte"])
    assert bu.authentic and bu.nai == CRED.nai
    assert abs(bu.timestamp - h.clock.t) < 0.01
    h2 = Harness()
    h2.uplink("wlan")
    h2.uplink("lte")
    bu2 = h2.ha.decode(h2.out.sent[0])
    assert (bu2.hoa, bu2.uplink, bu2.coa) == (PRIMARY, "wlan", COA["wlan"])


def test_pool_fills_to_its_size_with_registered_spares_on_the_preferred_uplink():
    h = started()
    spares = h.svc.table.spares
    assert len(spares) == 2
    assert all(s in HOME and s != PRIMARY for s in spares)
    assert {h.ha.cache[s] for s in spares} == {COA["wlan"]}
    assert h.ha.cache[PRIMARY] == COA["wlan"]
    assert h.out.kinds(EventKind.POOL)[-1] == {"spares": [str(s) for s in spares]}
    assert all(h.out.saved_before_send) and h.out.saved_before_send


def test_claim_answers_from_the_pool_without_any_signalling():
    h = started()
    spare = h.svc.table.spares[0]
    info = h.svc.request("claim", {"hoa": str(spare)})
    # The answer is immediate and nothing was sent to get it: the refill BU that follows is
    # for a *new* HoA, in the background.
    assert info["hoa"] == str(spare) and info["role"] == "in_use" and info["state"] == "bound"
    assert info["uplink"] == "wlan" and info["coa"] == str(COA["wlan"])
    sent = h.out.take()
    assert all(h.ha.decode(s).hoa != spare for s in sent)
    assert len(sent) == 1  # the refill
    h.ha.answer(sent[0])
    assert spare not in h.svc.table.spares


def test_claim_of_any_spare_and_refusals():
    h = started()
    info = h.svc.request("claim", {})
    assert info["role"] == "in_use"
    with pytest.raises(RpcError) as e:
        h.svc.request("claim", {"hoa": "2001:db8:100::dead"})
    assert e.value.code is ErrorCode.UNKNOWN_HOA
    with pytest.raises(RpcError) as e:
        h.svc.request("claim", {"hoa": "nonsense"})
    assert e.value.code is ErrorCode.BAD_REQUEST and "args.hoa" in e.value.message
    with pytest.raises(RpcError) as e:
        h.svc.request("fly", {})
    assert e.value.code is ErrorCode.BAD_REQUEST


def test_bind_moves_only_that_hoa_and_reports_the_outcome_as_an_event():
    h = started()
    a, b = h.svc.table.spares
    h.svc.request("claim", {"hoa": str(a)})
    h.svc.request("claim", {"hoa": str(b)})
    h.exchange()
    h.out.events.clear()
    h.clock.t += 1.0  # past the per-HoA rate limit (RFC 6275 §11.8) of the registration
    assert h.svc.request("bind", {"hoa": str(a), "uplink": "lte"}) == {}
    sent = h.out.sent[:]
    assert [(h.ha.decode(s).hoa, s.uplink) for s in sent] == [(a, "lte")]
    h.exchange()
    assert h.ha.cache[a] == COA["lte"] and h.ha.cache[b] == COA["wlan"]
    assert h.ha.cache[PRIMARY] == COA["wlan"]
    events = h.out.kinds(EventKind.BINDING)
    states = [(e["state"], e["uplink"]) for e in events if e["hoa"] == str(a)]
    assert states[0] == ("updating", "lte") and states[-1] == ("bound", "lte")


def test_bind_refusals_name_the_problem():
    h = started()
    spare = h.svc.table.spares[0]
    for args, code in (
        ({"hoa": str(spare), "uplink": "wifi6"}, ErrorCode.UNKNOWN_UPLINK),
        ({"hoa": "2001:db8:100::77", "uplink": "lte"}, ErrorCode.UNKNOWN_HOA),
        ({"hoa": str(spare)}, ErrorCode.BAD_REQUEST),
    ):
        with pytest.raises(RpcError) as e:
            h.svc.request("bind", args)
        assert e.value.code is code
    h.uplink("lte", up=False)
    with pytest.raises(RpcError) as e:
        h.svc.request("bind", {"hoa": str(spare), "uplink": "lte"})
    assert e.value.code is ErrorCode.UPLINK_DOWN


def test_release_holds_then_deregisters_and_frees_at_the_ha():
    h = started()
    spare = h.svc.table.spares[0]
    h.svc.request("claim", {"hoa": str(spare)})
    h.exchange()  # the refill: the pool is full again
    assert h.svc.request("release", {"hoa": str(spare)}) == {}
    assert h.hoas()[str(spare)]["role"] == "held"
    assert h.out.take() == []  # nothing sent during the hold
    seen = h.advance(5.5)
    assert [(b.hoa, b.lifetime) for b in seen] == [(spare, 0)]
    assert spare not in h.ha.cache
    assert {"hoa": str(spare)} in h.out.kinds(EventKind.HOA_FREED)
    assert str(spare) not in h.hoas()


def test_the_primary_is_never_released():
    h = started()
    with pytest.raises(RpcError) as e:
        h.svc.request("release", {"hoa": str(PRIMARY)})
    assert e.value.code is ErrorCode.PRIMARY


def test_losing_the_wlan_carrier_rebinds_every_hoa_on_wlan_to_lte():
    h = started()
    a = h.svc.table.spares[0]
    h.svc.request("claim", {"hoa": str(a)})
    h.exchange()
    on_wlan = {hoa for hoa, coa in h.ha.cache.items() if coa == COA["wlan"]}
    assert len(on_wlan) == 4  # Primary, the claimed HoA, two spares
    h.clock.t += 1.0
    h.uplink("wlan", up=False)
    sent = h.out.sent[:]  # all at once: the rate limit is per HoA
    assert {h.ha.decode(s).hoa for s in sent} == on_wlan
    assert {s.uplink for s in sent} == {"lte"}
    h.exchange()
    assert set(h.ha.cache.values()) == {COA["lte"]}
    # Carrier back: HoAs stay where they are (the controller moves flows back if it wants).
    h.uplink("wlan")
    assert h.out.take() == []


def test_a_new_coa_on_an_uplink_refreshes_the_bindings_there():
    h = started()
    new = IPv6Address("2001:db8:1::bb")
    h.uplink("wlan", coa=new)
    h.exchange()
    assert set(h.ha.cache.values()) == {new}


def test_restart_resumes_the_same_bindings_without_leaking_or_registering_twice():
    h = started()
    claimed = h.svc.table.spares[0]
    h.svc.request("claim", {"hoa": str(claimed)})
    h.exchange()
    before = dict(h.ha.cache)
    seqs = dict(h.ha.last_seq)
    saved = h.store.doc
    h.clock.t += 3.0  # the agent is down for a while
    h2 = Harness(restored=saved, ha=h.ha, clock=h.clock)
    h2.uplink("wlan")
    h2.uplink("lte")
    seen = h2.exchange()
    assert h.ha.cache == before  # nothing new registered, nothing lost
    assert {b.hoa for b in seen} == set(before)  # every restored binding refreshed once
    assert all(b.sequence > seqs[b.hoa] for b in seen)  # no 135 round: numbers were saved
    assert h2.hoas()[str(claimed)]["role"] == "in_use"
    assert len(h2.svc.table.spares) == 2


def test_restart_deregisters_a_held_hoa_whose_hold_ran_out_meanwhile():
    h = started()
    a = h.svc.table.spares[0]
    h.svc.request("claim", {"hoa": str(a)})
    h.exchange()
    h.svc.request("release", {"hoa": str(a)})
    saved = h.store.doc
    h.clock.t += 8.0  # longer than the hold time, shorter than the binding's lifetime
    h2 = Harness(restored=saved, ha=h.ha, clock=h.clock)
    h2.uplink("wlan")
    h2.uplink("lte")
    seen = h2.advance(2.0)
    assert (a, 0) in {(b.hoa, b.lifetime) for b in seen}
    assert a not in h.ha.cache
    assert str(a) not in h2.hoas()


def test_state_for_another_home_agent_is_not_resumed():
    h = started()
    saved = dict(h.store.doc or {})
    saved["home_agent"] = "2001:db8:999::1"
    h2 = Harness(restored=saved)
    assert [v["hoa"] for v in h2.state()["hoas"]] == [str(PRIMARY)]


def test_dad_failure_at_the_ha_tries_a_new_interface_id():
    ha = PacketHa()
    first_new = IPv6Address(int(HOME.network_address) | 0xA000)
    ha.duplicates.add(first_new)
    h = started(ha=ha)
    assert first_new not in h.ha.cache
    assert len(h.svc.table.spares) == 2 and first_new not in h.svc.table.spares
    published = {s for e in h.out.kinds(EventKind.POOL) for s in e["spares"]}
    assert str(first_new) not in published


def test_exhaustion_and_an_empty_pool_are_refused_not_waited_for():
    h = Harness(cfg=config(pool={"size": 1, "hold_time": 5, "max_hoas": 2}))
    h.uplink("wlan")
    h.exchange()
    h.svc.request("claim", {})
    with pytest.raises(RpcError) as e:
        h.svc.request("claim", {})
    assert e.value.code is ErrorCode.EXHAUSTED
    h2 = Harness()
    h2.uplink("wlan")  # BUs sent, no answers yet: the pool is still registering
    with pytest.raises(RpcError) as e:
        h2.svc.request("claim", {})
    assert e.value.code is ErrorCode.NO_SPARE


def test_adopt_registers_a_specific_hoa_and_checks_the_prefix():
    h = started()
    want = IPv6Address("2001:db8:100::4242")
    info = h.svc.request("adopt", {"hoa": str(want)})
    assert info["role"] == "in_use" and info["state"] == "registering"
    h.exchange()
    assert h.ha.cache[want] == COA["wlan"]
    with pytest.raises(RpcError) as e:
        h.svc.request("adopt", {"hoa": "2001:db8:7::1"})
    assert e.value.code is ErrorCode.NOT_HOME_PREFIX


def test_an_unauthenticated_ba_changes_nothing():
    h = Harness()
    h.uplink("wlan")
    sent = h.out.take()[0]
    bu = h.ha.decode(sent)
    forged = h.ha.ba(bu, 0, bu.sequence, 40, key=MnHaKey(KEY_SPI := 0x5D1F, bytes(16)))
    assert KEY_SPI
    h.svc.packet(43, forged, HA, bu.src)
    assert h.hoas()[str(PRIMARY)]["state"] == "registering"
    h.svc.packet(43, h.ha.ba(bu, 0, bu.sequence, 40), IPv6Address("2001:db8:666::1"), bu.src)
    assert h.hoas()[str(PRIMARY)]["state"] == "registering"  # not from the HA
    h.svc.packet(43, h.ha.ba(bu, 0, bu.sequence, 40), HA, bu.src)
    assert h.hoas()[str(PRIMARY)]["state"] == "bound"


@pytest.mark.parametrize("status", [144, 145])
def test_a_refused_timestamp_resynchronises_to_the_ha_clock(status: int):
    h = Harness()
    h.uplink("wlan")
    sent = h.out.take()[0]
    bu = h.ha.decode(sent)
    ha_clock = bu.timestamp + 1000.0
    ha_bu = type(bu)(**{**bu.__dict__, "timestamp": ha_clock})  # the HA stamps its own time
    h.svc.packet(43, h.ha.ba(ha_bu, status, bu.sequence, 0), HA, bu.src)
    again = h.ha.decode(h.sends()[0])
    assert again.hoa == PRIMARY and again.sequence != bu.sequence
    assert abs(again.timestamp - ha_clock) < 0.5


def test_binding_error_1_and_a_tunnelled_brr_make_the_mn_register_again():
    h = started()
    be = build_mh_packet(HA, COA["wlan"], BindingError(status=1, home_address=PRIMARY))
    h.svc.packet(135, be[40:], HA, COA["wlan"])
    sent = h.sends()
    assert [h.ha.decode(s).hoa for s in sent] == [PRIMARY]
    h.deliver(sent)
    spare = h.svc.table.spares[0]
    brr = build_mh_packet(HA, spare, BindingRefreshRequest())  # inner packet HA -> HoA
    h.clock.t += 1.0
    h.svc.packet(41, brr, HA, COA["wlan"])
    assert [h.ha.decode(s).hoa for s in h.sends()] == [spare]
    other = build_mh_packet(IPv6Address("2001:db8:c1::10"), spare, BindingRefreshRequest())
    h.svc.packet(41, other, HA, COA["wlan"])
    assert h.out.take() == []  # a BRR whose inner source is not the HA


def test_refresh_happens_before_expiry_without_any_request():
    h = started()
    assert h.hoas()[str(PRIMARY)]["lifetime"] == 40
    seen = h.advance(35.0)
    assert PRIMARY in {b.hoa for b in seen}
    assert h.hoas()[str(PRIMARY)]["state"] == "bound"


def test_every_change_is_saved_before_it_is_acted_on():
    h = started()
    h.svc.request("claim", {})
    h.exchange()
    assert h.out.saved_before_send and all(h.out.saved_before_send)
    assert h.store.doc is not None and h.store.doc["home_agent"] == str(HA)


def test_every_core_refusal_and_role_has_an_api_name():
    from sdnmip.core.binding_messages import BindingState as CoreState
    from sdnmip.core.hoa_messages import HoaRole, Refusal
    from sdnmip.mn_agent import api
    from sdnmip.mn_agent.service import _STATES

    assert {r.value for r in Refusal} <= {c.value for c in api.ErrorCode}
    assert {r.value for r in HoaRole} == {r.value for r in api.Role}
    assert set(_STATES) == set(CoreState)


def test_signalling_counters_count_bus_by_kind_and_bas_by_status():
    ha = PacketHa()
    first_new = IPv6Address(int(HOME.network_address) | 0xA000)
    ha.duplicates.add(first_new)  # one registration refused with status 134 (DAD failed)
    h = started(ha=ha)
    counters = h.state()["counters"]
    # The Primary and two spares registered, plus the refused duplicate: four BUs, all answered.
    assert counters["bu_sent"] == {"register": 4}
    assert counters["ba_received"] == {"0": 3, "134": 1}
    assert counters["be_received"] == {}
    assert sum(counters["ba_received"].values()) == len(h.ha.received)
    from sdnmip.mn_agent.api import Snapshot

    assert Snapshot.from_json(h.state()).counters == counters


def test_a_flood_of_malformed_packets_is_counted_logged_once_per_interval_and_survived(caplog):
    h = Harness()
    h.uplink("wlan")
    sent = h.out.take()[0]
    bu = h.ha.decode(sent)
    good = h.ha.ba(bu, 0, bu.sequence, 40)
    truncated = good[: len(good) // 2]  # the real decoder refuses it
    with caplog.at_level(logging.DEBUG, "sdnmip.mn_agent"):
        for _ in range(500):
            h.svc.packet(43, truncated, HA, bu.src)
        h.clock.t += 11.0  # past the report interval: one more line, with the count held back
        h.svc.packet(43, truncated, HA, bu.src)
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 2, warnings
    assert "malformed" in warnings[0] and str(HA) in warnings[0] and "undecodable" in warnings[0]
    assert "499 more" in warnings[1]
    assert h.svc.snapshot().counters["ignored"] == {"malformed": 501}
    assert h.hoas()[str(PRIMARY)]["state"] == "registering"
    h.svc.packet(43, good, HA, bu.src)  # and the agent goes on
    assert h.hoas()[str(PRIMARY)]["state"] == "bound"
