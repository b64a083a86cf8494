"""The scenario's data, iperf3's JSON, the kernel's interface counters."""

from __future__ import annotations

from sdnmip.demo.iperf import parse_result
from sdnmip.demo.observe import Series
from sdnmip.demo.scenario import EXPECTED, FLOWS, FULL, MOVED, QUICK, Act
from sdnmip.testbed.netns import parse_net_dev


def test_quick_takes_the_full_scenarios_steps_in_the_same_order_only_sooner():
    assert [(s.act, s.phase, s.label) for s in QUICK.steps] == [
        (s.act, s.phase, s.label) for s in FULL.steps
    ]
    assert QUICK.duration < FULL.duration <= 60
    for sc in (QUICK, FULL):
        ats = [s.at for s in sc.steps]
        assert ats == sorted(ats) and ats[-1] + sc.settle < sc.duration
        assert min(b - a for (_, a, b) in sc.phases()) >= 2 * sc.settle
        # The restored phase is judged for at least 2 s after the flows are back on wlan.
        restore = sc.step(Act.RESTORE)
        assert restore.settle is not None and restore.settle > sc.failback_after
        assert restore.at + restore.settle + 2.0 < sc.duration
        assert sc.duration == int(sc.duration)  # iperf3 -t takes whole seconds


def test_expectations_say_what_each_step_does():
    keys = {f.key for f in FLOWS}
    phases = [p for p, _, _ in FULL.phases()]
    assert list(EXPECTED) == phases and all(set(v) == keys for v in EXPECTED.values())

    def changed(a: str, b: str) -> set[str]:
        return {k for k in keys if EXPECTED[a][k] != EXPECTED[b][k]}

    assert changed("start", "policy") == {"bulk"}
    assert changed("policy", "moved") == {MOVED.key}
    assert set(EXPECTED["failover"].values()) == {"lte"}
    assert changed("failover", "restored") == keys  # failback: all back on wlan
    assert set(EXPECTED["restored"].values()) == {"wlan"}
    assert FULL.step(Act.MOVE).phase == "moved"


def test_iperf3_tcp_and_udp_results():
    tcp = {
        "start": {"connected": [{"local_port": 40000}], "test_start": {"protocol": "TCP"}},
        "end": {
            "sum_sent": {"bytes": 1000, "seconds": 2.0, "retransmits": 4},
            "sum_received": {"bytes": 900, "seconds": 2.1},
        },
    }
    r = parse_result(tcp)
    assert (r.error, r.local_port, r.retransmits, r.received_bytes) == (None, 40000, 4, 900)
    assert r.lost_packets is None and abs(r.received_mbit_s - 8e-6 * 900 / 2.1) < 1e-9
    udp = {
        "start": {"connected": [{"local_port": 41000}], "test_start": {"protocol": "UDP"}},
        "end": {
            "sum_sent": {"bytes": 1000, "seconds": 2.0, "packets": 10, "lost_packets": 0},
            "sum_received": {"bytes": 800, "seconds": 2.0, "packets": 10, "lost_packets": 2},
        },
    }
    u = parse_result(udp)
    assert (u.packets, u.lost_packets, u.retransmits) == (10, 2, None)
    failed = parse_result({"start": {}, "end": {}, "error": "unable to connect to server"})
    assert failed.error == "unable to connect to server" and failed.received_bytes == 0


def test_interface_counters_from_proc_net_dev():
    text = (
        "Inter-|   Receive                                                |  Transmit\n"
        " face |bytes    packets errs drop fifo frame compressed multicast|bytes    packets\n"
        "    lo:     100       1    0    0    0     0          0         0      100       1"
        "    0    0    0     0       0          0\n"
        "  wlan: 5000 50 0 0 0 0 0 0 70000 60 0 0 0 0 0 0\n"
    )
    assert parse_net_dev(text) == {"lo": (100, 100), "wlan": (5000, 70000)}


def test_each_udp_counter_keeps_the_time_its_datagram_left():
    # iperf3's client first sends a 4-byte connect datagram (no counter) on the same 5-tuple.
    s = Series()
    s.add(10.0, 66)
    for n in (1, 2, 3):
        s.add(10.0 + n, 1200, n)
    assert dict(zip(s.seqs, s.times, strict=True)) == {0: 10.0, 1: 11.0, 2: 12.0, 3: 13.0}
    tcp = Series()
    tcp.add(1.0, 1500)
    assert len(tcp.seqs) == 0


def test_a_sampler_that_does_not_stop_is_reported_not_left_behind(monkeypatch, tmp_path):
    import threading

    import pytest

    from sdnmip.demo import sampler as mod
    from sdnmip.demo.observe import Observations

    release = threading.Event()

    class Stuck(mod.Sampler):
        def run(self) -> None:  # stands for a sample stuck in a system call
            release.wait(30)

    monkeypatch.setattr(mod, "STOP_TIMEOUT_S", 0.2)
    s = Stuck("smip-mn", Observations({}), uplinks={}, receivers={},
              northbound_url="http://127.0.0.1:1")  # fmt: skip
    s.start()
    try:
        with pytest.raises(RuntimeError, match=r"did not stop within 0\.2 s.*smip-mn"):
            s.stop()
    finally:
        release.set()
        s.join(5)
    s2 = Stuck("smip-mn", Observations({}), uplinks={}, receivers={},
               northbound_url="http://127.0.0.1:1")  # fmt: skip
    release.set()
    s2.start()
    s2.stop()  # ends in time: no error
