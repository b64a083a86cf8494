"""Pure pieces of the testbed: names, the radvd configuration and the link emulator's model."""

from __future__ import annotations

import pytest

from sdnmip.testbed.errors import TestbedError
from sdnmip.testbed.names import check_prefix, namespace, owns_namespace
from sdnmip.testbed.radvd import render_config
from sdnmip.testbed.spec import load_topology
from sdnmip.testbed.wire import Direction


@pytest.mark.parametrize("prefix", ["smip", "tb1", "a", "tbabcdefgh"])
def test_valid_prefixes(prefix):
    assert check_prefix(prefix) == prefix


@pytest.mark.parametrize("prefix", ["", "1tb", "TB", "tb-1", "tb_1", "tbabcdefghi", "tb 1"])
def test_invalid_prefixes_are_refused(prefix):
    with pytest.raises(TestbedError, match="invalid prefix"):
        check_prefix(prefix)


def test_namespace_ownership_does_not_leak_between_prefixes():
    assert namespace("tb1", "mn") == "tb1-mn"
    assert owns_namespace("tb1", "tb1-mn")
    assert not owns_namespace("tb1", "tb10-mn")
    assert not owns_namespace("tb1", "tb1")


def test_radvd_config_advertises_one_autonomous_prefix():
    topo = load_topology()
    conf = render_config("mn", ["2001:db8:1::/64"], topo.ra)
    assert "interface mn {" in conf
    assert "prefix 2001:db8:1::/64 {" in conf
    assert "AdvAutonomous on;" in conf and "AdvOnLink on;" in conf
    assert "MaxRtrAdvInterval 3;" in conf and "MinRtrAdvInterval 1;" in conf
    assert "AdvIntervalOpt on;" in conf
    assert conf.count("prefix ") == 1


def test_delay_only_link_delivers_each_frame_after_the_delay():
    d = Direction(delay_s=0.025, rate_bps=None, queue_pkts=10)
    assert d.offer(1.0, b"a" * 100) == pytest.approx(1.025)
    assert d.offer(1.001, b"b" * 100) == pytest.approx(1.026)
    assert d.due(1.0249) == []
    assert d.due(1.025) == [b"a" * 100]
    assert d.next_due() == pytest.approx(1.026)
    assert d.due(2.0) == [b"b" * 100]
    assert d.next_due() is None
    assert d.delivered == 2


def test_rate_serialises_back_to_back_frames():
    # 1500 bytes at 12 Mbit/s take 1 ms each.
    d = Direction(delay_s=0.010, rate_bps=12e6, queue_pkts=10)
    times = [d.offer(0.0, b"x" * 1500) for _ in range(3)]
    assert times == pytest.approx([0.011, 0.012, 0.013])
    # An idle transmitter starts at once: no credit carried from the past, no penalty either.
    assert d.offer(5.0, b"x" * 1500) == pytest.approx(5.011)


def test_full_queue_drops_the_newcomer():
    d = Direction(delay_s=1.0, rate_bps=None, queue_pkts=2)
    assert d.offer(0.0, b"1") is not None
    assert d.offer(0.0, b"2") is not None
    assert d.offer(0.0, b"3") is None
    assert d.dropped == 1
    assert d.due(1.0) == [b"1", b"2"]
    assert d.offer(1.0, b"4") is not None  # room again once delivered


def test_wait_until_returns_the_probes_value_or_says_what_it_waited_for() -> None:
    import pytest

    from sdnmip.testbed.errors import TestbedError
    from sdnmip.testbed.waiting import wait_until

    answers = iter([None, None, 7])
    assert wait_until("seven", lambda: next(answers), 5, tail=lambda: "log") == 7
    with pytest.raises(TestbedError, match=r"^agent: timed out after 0\.1s waiting for x\nlog$"):
        wait_until("x", lambda: None, 0.1, tail=lambda: "log", label="agent: ")
    with pytest.raises(TestbedError, match=r"^sdnmip mn exited while waiting for x\nlast$"):
        wait_until("x", lambda: 1, 5, tail=lambda: "last", gone=lambda: "sdnmip mn exited")
