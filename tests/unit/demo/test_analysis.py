"""Judging a run against the scenario: a run that does what the scenario says passes every
check, and each kind of deviation fails the check that names it."""

from __future__ import annotations

import dataclasses

from sdnmip.demo.analysis import analyse, used_uplink

from .fake import SCENARIO, Perturb, as_planned, fake_run


def failed(summary: dict) -> list[str]:
    return [c["check"] for c in summary["checks"] if not c["ok"]]


def test_a_run_as_the_scenario_says_passes_every_check():
    s = analyse(fake_run())
    assert failed(s) == [] and s["ok"]
    move = next(e for e in s["events"] if e["step"] == "move")
    assert move["handovers"]["bulk"]["ba_ms"] == 40.0
    assert move["handovers"]["bulk"]["first_packet_on_new_ms"] == 50.0
    assert move["unchanged"] == {
        "video": {"uplink": "wlan", "bytes_on_other_uplink": 0},
        "upload": {"uplink": "wlan", "bytes_on_other_uplink": 0},
    }
    assert move["bus_for"] == ["bulk"]
    assert {k: v["first_packet_on_new_ms"] for k, v in s["failover"]["flows"].items()} == {
        "video": 50.0,
        "bulk": 50.0,
        "upload": 50.0,
    }
    assert [r["flows"]["bulk"]["uplink"] for r in s["phases"]] == [
        "wlan",
        "lte",
        "wlan",
        "lte",
        "wlan",
    ]
    # Failback: every flow back on wlan once the delay (0.3 s here) has passed after the restore.
    fb = s["failback"]
    assert fb["failback_after_s"] == 0.3
    assert {k: (v["bu_ms"], v["first_packet_on_new_ms"]) for k, v in fb["flows"].items()} == {
        k: (310.0, 350.0) for k in ("video", "bulk", "upload")
    }


def test_another_flow_touched_by_the_move_fails():
    def leak(key: str, t: float) -> str | None:
        if key == "video" and 2.06 <= t < 2.15:  # before the moved phase is judged (settle)
            return "lte"
        return as_planned(key, t)

    assert failed(analyse(fake_run(Perturb(plan=leak)))) == [
        "move: the other flows kept their uplink"
    ]


def test_a_moved_flow_that_stays_put_fails():
    def stuck(key: str, t: float) -> str | None:
        if key == "bulk" and t >= 1.0:
            return "lte"
        return as_planned(key, t)

    got = failed(analyse(fake_run(Perturb(plan=stuck))))
    assert "phase moved: every flow on its expected uplink" in got
    assert "move: bulk changed uplink lte -> wlan" in got


def test_a_move_that_only_happens_at_the_failback_fails():
    # bulk stays on lte from the policy to the failback: its first packet on wlan, BU and BA
    # come from the restore step, which must not pass for the move.
    def late(key: str, t: float) -> str | None:
        if key == "bulk" and 1.0 <= t < 4.35:
            return "lte"
        return as_planned(key, t)

    s = analyse(fake_run(Perturb(plan=late)))
    assert "move: bulk changed uplink lte -> wlan" in failed(s)
    move = next(e for e in s["events"] if e["step"] == "move")
    assert move["handovers"]["bulk"]["first_packet_on_new_ms"] is None


def test_a_handover_without_a_binding_acknowledgement_fails():
    got = failed(analyse(fake_run(Perturb(no_ba={"bulk"}))))
    assert "move: bulk changed uplink lte -> wlan" in got
    assert "cut: bulk changed uplink wlan -> lte" in got
    assert "signalling: every BU answered by a BA with status 0" in got


def test_a_flow_that_never_reaches_lte_fails_the_failover():
    def dead(key: str, t: float) -> str | None:
        if key == "upload" and t >= 3.0:
            return None
        return as_planned(key, t)

    got = failed(analyse(fake_run(Perturb(plan=dead))))
    assert "failover: every flow carried on by lte" in got
    assert "cut: upload changed uplink wlan -> lte" in got


def test_a_flow_that_fails_back_too_early_or_never_fails_the_failback():
    def early(key: str, t: float) -> str | None:
        if key == "video" and t >= 4.05:  # at once, not after the failback delay
            return "wlan"
        return as_planned(key, t)

    def never(key: str, t: float) -> str | None:
        if key == "upload" and t >= 3.0:
            return "lte"
        return as_planned(key, t)

    name = "failback: every flow back on wlan, not before failback_after (0.3 s) and within 3.3 s"
    got = failed(analyse(fake_run(Perturb(plan=early, failback_bu_at=0.0))))
    assert got == [name]
    got = failed(analyse(fake_run(Perturb(plan=never))))
    assert name in got and "phase restored: every flow on its expected uplink" in got


def test_a_tcp_reset_fails():
    got = failed(analyse(fake_run(Perturb(reset_at=3.5))))
    assert "no TCP connection reset" in got
    assert "bulk: ran to the end" in got


def test_lost_datagrams_are_attributed_to_where_and_when_they_were_sent():
    # One datagram per 10 ms from 0.05 s: counter n leaves at 0.04 + n/100 s; the cut is at 3 s.
    congestion = {50}  # sent on wlan at 0.54 s
    at_cut = {290, 291, 295}  # wlan, in the second before the cut
    in_mn = {296, 297}  # never seen on an uplink
    lte_early = {302}  # by lte (from 3.05 s) before the BA (3.04 s)? no: after it
    s = analyse(fake_run(Perturb(lost=congestion | at_cut | lte_early, not_sent=in_mn)))
    b = s["failover"]["flows"]["video"]["udp_loss_breakdown"]
    assert b["lost_by_cause"] == {
        "in_wlan_link_at_cut": 3,
        "wlan_congestion": 1,
        "in_mn_at_switch": 2,
        "lte_before_ba": 0,
        "lte_after_ba": 1,
    }
    assert b["lost"] == 7
    assert b["oldest_lost_at_cut_ms_before_cut"] == 60.0


def test_too_much_udp_loss_fails():
    lots = set(range(100, 200))  # a second of the stream
    assert "video: UDP loss bounded (<= 500 ms of the stream)" in failed(
        analyse(fake_run(Perturb(lost=lots)))
    )


def test_a_udp_stream_without_datagram_counts_fails_the_loss_check():
    run = fake_run()
    run.iperf["video"] = dataclasses.replace(run.iperf["video"], packets=None, lost_packets=None)
    assert "video: UDP loss bounded (<= 500 ms of the stream)" in failed(analyse(run))


def test_the_uplink_a_flow_used_is_the_one_with_nine_tenths_of_its_bytes():
    assert used_uplink({"wlan": 95, "lte": 5}) == "wlan"
    assert used_uplink({"wlan": 10, "lte": 90}) == "lte"
    assert used_uplink({"wlan": 50, "lte": 50}) == "both"
    assert used_uplink({"wlan": 0, "lte": 0}) == "none"


def test_phases_cover_the_run_in_order():
    assert SCENARIO.phases() == [
        ("start", 0.0, 1.0),
        ("policy", 1.0, 2.0),
        ("moved", 2.0, 3.0),
        ("failover", 3.0, 4.0),
        ("restored", 4.0, 5.0),
    ]
