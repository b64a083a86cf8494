"""The agent against the real `sdnmip ha` in the testbed: registration, the spare pool, claims
without signalling, per-HoA rebinding, release, link loss, agent and HA restarts.

What the HA holds is read from its control socket (what `sdnmip ha status` prints); which uplink
carried traffic from the MN's kernel interface counters. The OpenFlow rules the controller will
own are installed by hand (mnlab.py)."""

from __future__ import annotations

import statistics
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from ipaddress import IPv6Address, IPv6Network
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from sdnmip.mn_agent.api import BindingState, EventKind, HoaInfo, Role, Snapshot, UplinkInfo
from sdnmip.testbed import Testbed, TestbedError
from sdnmip.testbed.mn_service import HOME_PREFIX, PRIMARY_HOA, MnAgentService
from tests.integration.mn_agent.mnlab import (
    Capture,
    counters,
    install_down_rule,
    install_up_rule,
    ping,
    ping_both,
    wait_until,
)

if TYPE_CHECKING:  # imported in the fixture: the unit tier collects this module too
    from sdnmip.testbed.ha_service import HaService

TESTBED_PROFILE = "fast"
POOL = 2
LIFETIME = 16  # seconds: a binding the HA lost is registered again at the refresh (12 s)
HOLD = 1.0
CN1, CN2 = "2001:db8:c1::10", "2001:db8:c2::10"
PRIMARY = IPv6Address(PRIMARY_HOA)
NOISE = 6  # packets an uplink sees besides the test's (RAs, neighbour discovery) in a few s
WAIT = 20.0
ROUNDS = 5
MAX_UPDATE_RATE = 3  # RFC 6275 §12: BUs per second per HoA


@dataclass
class Lab:
    tb: Testbed
    mn: MnAgentService
    ha: HaService
    coa: dict[str, str]

    def ha_bindings(self) -> dict[str, str]:
        """HoA -> CoA, as the HA's binding cache holds them."""
        return {h: b["careof"] for h, b in self.ha.bindings().items()}

    def follow_primary(self) -> None:
        """Send the applications' packets by the Primary's current uplink (the controller's
        job): the HA accepts reverse-tunnelled packets only from the registered CoA."""
        primary = _info(self.mn.status(), PRIMARY)
        assert primary.uplink is not None
        install_up_rule(self.tb, primary.uplink)

    def steady(self) -> Snapshot:
        """Wait until every HoA is bound, nothing is being registered and the pool is full."""

        def ok(s: Snapshot) -> bool:
            return len(s.spares) == POOL and all(
                h.state is BindingState.BOUND and h.role in (Role.PRIMARY, Role.SPARE, Role.IN_USE)
                for h in s.hoas
            )

        return self.mn.wait_status("every HoA bound and the pool full", ok, WAIT)


@pytest.fixture(scope="module")
def lab(testbed: Testbed) -> Iterator[Lab]:
    from sdnmip.testbed.ha_service import HaService

    coa = testbed.wait_coas()
    mn = MnAgentService(
        testbed,
        overrides={
            "pool": {"size": POOL, "hold_time": HOLD, "max_hoas": 10},
            "binding": {"lifetime": LIFETIME},
        },
    )
    ha = HaService.prepare(testbed, {mn.nai: (mn.spi, mn.key)})
    ha.start()
    try:
        mn.start()
        install_down_rule(testbed, PRIMARY_HOA)
        install_up_rule(testbed, "wlan")
        yield Lab(testbed, mn, ha, coa)
    finally:
        if mn.alive():
            mn.stop()
        if ha.alive():
            ha.stop()


def _info(snap: Snapshot, hoa: IPv6Address) -> HoaInfo:
    return next(h for h in snap.hoas if h.hoa == hoa)


def test_primary_registers_via_the_preferred_uplink_and_cn1_reaches_it(lab: Lab):
    snap = lab.mn.wait_status(
        "the Primary HoA bound",
        lambda s: _info(s, PRIMARY).state is BindingState.BOUND,
        WAIT,
    )
    primary = _info(snap, PRIMARY)
    assert (primary.role, primary.uplink, str(primary.coa)) == (
        Role.PRIMARY,
        "wlan",
        lab.coa["wlan"],
    )
    assert lab.ha_bindings()[PRIMARY_HOA] == lab.coa["wlan"]
    wlan0, lte0 = counters(lab.tb, "wlan"), counters(lab.tb, "lte")
    assert ping(lab.tb, "cn1", PRIMARY_HOA, 20) == 20
    wlan1, lte1 = counters(lab.tb, "wlan"), counters(lab.tb, "lte")
    assert wlan1[0] - wlan0[0] >= 20 and wlan1[1] - wlan0[1] >= 20  # tunnelled both ways
    assert lte1[0] - lte0[0] <= NOISE and lte1[1] - lte0[1] <= NOISE


def test_the_pool_fills_to_its_size_as_the_ha_shows(lab: Lab):
    snap = lab.steady()
    assert len(snap.spares) == POOL
    held = lab.ha_bindings()
    assert set(held) == {str(h.hoa) for h in snap.hoas}  # the HA holds exactly the agent's HoAs
    for spare in snap.spares:
        assert held[str(spare)] == lab.coa["wlan"]
        assert spare in IPv6Network(HOME_PREFIX) and spare != PRIMARY
    # The same, as an operator sees it.
    out = lab.tb.run(
        "ha", *lab.tb.sdnmip_argv("ha", "status", "--socket", str(lab.ha.socket_path)),
        env=lab.tb.python_env(),
    ).stdout  # fmt: skip
    assert all(str(s) in out for s in snap.spares) and PRIMARY_HOA in out


def test_taking_a_hoa_from_the_pool_costs_no_signalling_round_trip(lab: Lab, tmp_path: Path):
    snap = lab.steady()
    spare, other = snap.spares
    claims, rtts = [], []
    with Capture(lab.tb, tmp_path / "bu.pcap") as cap, lab.mn.client() as c, lab.mn.client() as sub:
        sub.subscribe()
        for _ in range(ROUNDS):
            # Take the spare for a flow, and give it back (it rejoins the refilling pool).
            t0 = time.perf_counter()
            info = c.claim(spare)
            claims.append(time.perf_counter() - t0)
            assert (info.hoa, info.role, info.state, info.uplink) == (
                spare, Role.IN_USE, BindingState.BOUND, "wlan"
            )  # fmt: skip
            c.release(spare)
        for uplink in ["lte", "wlan"] * (ROUNDS // 2) + ["lte"]:
            # For comparison, BU round trips: move the other spare and wait for each BA.
            time.sleep(1.0 / MAX_UPDATE_RATE)  # RFC 6275 §11.8 would hold the BU back
            t1 = time.perf_counter()
            c.bind(other, uplink)

            def bound(want: str = uplink) -> bool:
                ev = sub.next_event(timeout=0.5)
                d = ev.data if ev is not None else None
                return (
                    isinstance(d, HoaInfo) and d.hoa == other
                    and d.state is BindingState.BOUND and d.uplink == want
                )  # fmt: skip

            wait_until(f"the other spare bound via {uplink}", bound, WAIT, interval=0)
            rtts.append(time.perf_counter() - t1)
    claim_s, rtt_s = statistics.median(claims), statistics.median(rtts)
    print(f"claim answered in {claim_s * 1e3:.2f} ms (median of {ROUNDS}); "
          f"a BU/BA round trip took {rtt_s * 1e3:.2f} ms (median of {len(rtts)})")  # fmt: skip
    seen = cap.home_addresses()
    assert seen.count(other) >= len(rtts)  # the capture does see the BUs...
    assert spare not in seen  # ...and the claimed HoA needed none
    # Less than one BU/BA exchange (which itself starts with an RPC like the claim).
    assert claim_s < rtt_s
    assert lab.ha_bindings()[str(spare)] == lab.coa["wlan"]
    # What a flow would wait for without the pool: a new HoA's first registration (the HA's DAD).
    fresh = IPv6Address("2001:db8:100::cafe")
    t2 = time.perf_counter()
    with lab.mn.client() as c:
        c.adopt(fresh)
    lab.mn.wait_status(
        f"{fresh} bound", lambda s: _info(s, fresh).state is BindingState.BOUND, WAIT
    )
    new_s = time.perf_counter() - t2
    print(f"a new HoA took {new_s * 1e3:.0f} ms to register (DAD at the HA)")
    assert new_s > rtt_s
    with lab.mn.client() as c:
        c.release(fresh)


def test_rebinding_one_hoa_to_lte_moves_only_that_hoas_traffic(lab: Lab):
    lab.steady()
    with lab.mn.client() as c, lab.mn.client() as sub:
        sub.subscribe()
        d = c.claim()
        hoa = str(d.hoa)
        install_down_rule(lab.tb, hoa)
        install_up_rule(lab.tb, "wlan", to=CN2, hoa=hoa)
        assert ping(lab.tb, "cn2", hoa, 5) == 5  # both flows on wlan
        c.bind(d.hoa, "lte")

        def moved() -> bool:
            ev = sub.next_event(timeout=0.5)
            x = ev.data if ev is not None else None
            return (
                isinstance(x, HoaInfo) and x.hoa == d.hoa
                and x.state is BindingState.BOUND and x.uplink == "lte"
            )  # fmt: skip

        wait_until(f"{hoa} bound via lte", moved, WAIT, interval=0)
    install_up_rule(lab.tb, "lte", to=CN2, hoa=hoa)  # the controller's half of the move
    held = lab.ha_bindings()
    assert held[hoa] == lab.coa["lte"] and held[PRIMARY_HOA] == lab.coa["wlan"]
    n = 40
    wlan0, lte0 = counters(lab.tb, "wlan"), counters(lab.tb, "lte")
    assert ping_both(lab.tb, ("cn1", PRIMARY_HOA), ("cn2", hoa), n) == (n, n)
    wlan1, lte1 = counters(lab.tb, "wlan"), counters(lab.tb, "lte")
    for before, after in ((wlan0, wlan1), (lte0, lte1)):
        rx, tx = after[0] - before[0], after[1] - before[1]
        # each uplink carried exactly one of the two flows: n requests in, n replies out
        assert n <= rx <= n + NOISE and n <= tx <= n + NOISE, (before, after)


def test_releasing_a_hoa_frees_it_at_the_ha(lab: Lab):
    lab.steady()
    with lab.mn.client() as c, lab.mn.client() as sub:
        x = c.claim().hoa
        lab.steady()  # the pool refilled: the released HoA will be held, then deregistered
        sub.subscribe()
        assert str(x) in lab.ha_bindings()
        c.release(x)
        assert _info(c.status(), x).role is Role.HELD

        def freed() -> bool:
            ev = sub.next_event(timeout=0.5)
            return ev is not None and ev.kind is EventKind.HOA_FREED and ev.data == x

        wait_until(f"{x} freed", freed, WAIT, interval=0)
    assert str(x) not in lab.ha_bindings()
    assert x not in {h.hoa for h in lab.mn.status().hoas}


def test_pulling_the_wlan_carrier_rebinds_every_hoa_on_wlan_to_lte(lab: Lab):
    lab.steady()
    on_wlan = {h for h, coa in lab.ha_bindings().items() if coa == lab.coa["wlan"]}
    assert PRIMARY_HOA in on_wlan and len(on_wlan) >= 1 + POOL
    lab.tb.set_carrier("wlan", False)
    try:
        wait_until(
            "every HoA that was on wlan bound via lte at the HA",
            lambda: all(lab.ha_bindings().get(h) == lab.coa["lte"] for h in on_wlan),
            WAIT,
        )
        snap = lab.mn.status()
        for h in on_wlan:
            info = _info(snap, IPv6Address(h))
            assert info.uplink == "lte" and str(info.coa) == lab.coa["lte"]
        install_up_rule(lab.tb, "lte")  # the controller's half: traffic follows
        lte0 = counters(lab.tb, "lte")
        assert ping(lab.tb, "cn1", PRIMARY_HOA, 10) == 10
        lte1 = counters(lab.tb, "lte")
        assert lte1[0] - lte0[0] >= 10 and lte1[1] - lte0[1] >= 10
    finally:
        lab.tb.set_carrier("wlan", True)
    lab.mn.wait_status("wlan usable again", lambda s: s.uplinks[0].usable, WAIT)


def test_a_vanished_coa_moves_its_hoas_and_the_new_one_is_used_when_the_ra_brings_it(lab: Lab):
    lab.steady()
    with lab.mn.client() as c:
        c.bind(PRIMARY, "wlan")
    install_up_rule(lab.tb, "wlan")
    wait_until(
        "the Primary back on wlan", lambda: lab.ha_bindings()[PRIMARY_HOA] == lab.coa["wlan"]
    )
    on_wlan = {h for h, coa in lab.ha_bindings().items() if coa == lab.coa["wlan"]}
    with lab.mn.client() as sub:
        sub.subscribe()
        lab.tb.run("mn", "ip", "-6", "addr", "del", f"{lab.coa['wlan']}/64", "dev", "iwlan")

        def lost() -> bool:
            ev = sub.next_event(timeout=0.5)
            d = ev.data if ev is not None else None
            return isinstance(d, UplinkInfo) and d.name == "wlan" and d.coa is None

        wait_until("wlan reported without a CoA", lost, WAIT, interval=0)
    wait_until(
        "the HoAs of the vanished CoA bound via lte",
        lambda: all(lab.ha_bindings().get(h) == lab.coa["lte"] for h in on_wlan),
        WAIT,
    )
    # The access router's next RA gives the address back (SLAAC, DAD): wlan is usable again.
    snap = lab.mn.wait_status("wlan usable again", lambda s: s.uplinks[0].usable, WAIT)
    assert str(snap.uplinks[0].coa) == lab.coa["wlan"]
    lab.follow_primary()
    assert ping(lab.tb, "cn1", PRIMARY_HOA, 5) == 5


BRR_SENDER = """
import sys
from ipaddress import IPv6Address
from sdnmip.kernel.rawsock import HdrinclSender
from sdnmip.mipv6 import BindingRefreshRequest, build_mh_packet
ha, hoa = IPv6Address(sys.argv[1]), IPv6Address(sys.argv[2])
with HdrinclSender("home0", ha) as s:
    s.send(build_mh_packet(ha, hoa, BindingRefreshRequest()))
"""


def test_a_binding_refresh_request_tunnelled_to_a_hoa_is_answered_with_a_bu(
    lab: Lab, tmp_path: Path
):
    # The HA routes a packet to a bound HoA into the tunnel to its CoA, as it would a BRR
    # (RFC 6275 §9.5.5); the MN gets it on its raw 41 socket (nft mh-divert + BPF on the inner
    # next header) and answers with a BU at once, long before the binding's refresh is due.
    def far(h: HoaInfo) -> bool:
        # bound, and its refresh (at 3/4 of the lifetime) more than LIFETIME/4 away
        left = h.expires_in if h.state is BindingState.BOUND else None
        return h.role is Role.SPARE and left is not None and left > LIFETIME / 2

    snap = lab.mn.wait_status(
        "a spare whose refresh is far ahead", lambda s: any(far(h) for h in s.hoas), WAIT
    )
    target = next(h for h in snap.hoas if far(h))
    seq = lab.ha.bindings()[str(target.hoa)]["sequence"]
    with Capture(lab.tb, tmp_path / "brr.pcap") as cap:
        t0 = time.monotonic()
        lab.tb.run(
            "ha", sys.executable, "-c", BRR_SENDER, lab.tb.addr("ha", "home0"), str(target.hoa),
            env=lab.tb.python_env(),
        )  # fmt: skip
        wait_until(
            "the HA refreshed by the BU answering the BRR",
            lambda: lab.ha.bindings()[str(target.hoa)]["sequence"] != seq,
            3.0,
        )
        answered = time.monotonic() - t0
    assert target.hoa in cap.home_addresses()
    assert answered < LIFETIME / 4  # sooner than the scheduled refresh could have come


def _state(lab: Lab) -> tuple[dict[str, str], dict[str, tuple[str, str | None]]]:
    snap = lab.steady()
    ha = lab.ha_bindings()
    mn = {str(h.hoa): (h.role.value, h.uplink) for h in snap.hoas}
    assert set(ha) == set(mn), "the HA holds a HoA the agent does not know (a leak), or less"
    return ha, mn


@pytest.mark.parametrize("how", ["stop", "kill"])
def test_an_agent_restart_ends_with_the_same_bindings_and_nothing_leaked(lab: Lab, how: str):
    before_ha, before_mn = _state(lab)
    seq = {h: b["sequence"] for h, b in lab.ha.bindings().items()}
    lab.mn.stop() if how == "stop" else lab.mn.kill()
    lab.mn.start()
    after_ha, after_mn = _state(lab)
    assert after_ha == before_ha and after_mn == before_mn
    refreshed = {h: b["sequence"] for h, b in lab.ha.bindings().items()}
    # Every restored binding was refreshed with a newer sequence number (accepted, no 135 round).
    assert all(refreshed[h] > seq[h] for h in seq)
    lab.follow_primary()
    assert ping(lab.tb, "cn1", PRIMARY_HOA, 5) == 5


def test_an_ha_restart_ends_with_the_same_bindings(lab: Lab):
    before_ha, before_mn = _state(lab)
    lab.ha.restart()
    after_ha, after_mn = _state(lab)
    assert after_ha == before_ha and after_mn == before_mn
    lab.follow_primary()
    assert ping(lab.tb, "cn1", PRIMARY_HOA, 5) == 5


def test_bindings_the_ha_lost_are_registered_again_without_operator_action(lab: Lab):
    before_ha, before_mn = _state(lab)
    lab.ha.kill()
    lab.ha.database.unlink()  # the HA comes back knowing nothing
    lab.ha.start()
    assert lab.ha_bindings() == {}
    wait_until(
        "the HA holding every binding again",
        lambda: lab.ha_bindings() == before_ha,
        LIFETIME + 5,
    )
    after_ha, after_mn = _state(lab)
    assert after_ha == before_ha and after_mn == before_mn
    lab.follow_primary()
    assert ping(lab.tb, "cn1", PRIMARY_HOA, 5) == 5


def test_a_hoa_in_use_on_the_home_link_is_refused_by_dad_and_never_bound(lab: Lab):
    taken = "2001:db8:100::bad"
    lab.tb.run("core", "ip", "-6", "addr", "add", f"{taken}/64", "dev", "home")
    try:
        with lab.mn.client() as c:
            c.adopt(IPv6Address(taken))
        try:
            snap = lab.mn.wait_status(
                f"{taken} refused",
                lambda s: _info(s, IPv6Address(taken)).state is BindingState.FAILED,
                WAIT,
            )
        except TestbedError as exc:
            ha_says = [ln for ln in lab.ha.log_text().splitlines() if taken in ln]
            raise AssertionError(f"{exc}\nHA log about {taken}:\n" + "\n".join(ha_says)) from None
        info = _info(snap, IPv6Address(taken))
        assert (info.role, info.status) == (Role.FAILED, 134)  # RFC 6275 §10.3.1: DAD failed
        assert taken not in lab.ha_bindings()
        with lab.mn.client() as c:
            c.release(IPv6Address(taken))
        lab.mn.wait_status(f"{taken} gone", lambda s: all(str(h.hoa) != taken for h in s.hoas))
    finally:
        lab.tb.run("core", "ip", "-6", "addr", "del", f"{taken}/64", "dev", "home")
