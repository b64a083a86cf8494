"""Strategies over uplinks: the weighted split's accuracy, and the measured-value strategies."""

from __future__ import annotations

from collections import Counter

import pytest
from hypothesis import given
from hypothesis import strategies as st

from sdnmip.core.policy import RuleEngine
from sdnmip.core.policy_model import Action, Strategy
from sdnmip.core.strategies import SmoothWeighted, choose_stateless
from tests.unit.core.policy_helpers import UP, flow, policy, uplink, uplinks


def split(engine: RuleEngine, count: int, ups=UP) -> Counter[str]:  # type: ignore[no-untyped-def]
    return Counter(engine.decide(flow(local_port=i), ups, float(i)).uplink for i in range(count))


def test_a_3_to_1_split_of_100_new_flows_is_exact() -> None:
    engine = RuleEngine(policy({"id": "s", "strategy": {"weighted": {"wlan": 3, "lte": 1}}}))
    counts = split(engine, 100)
    assert counts == {"wlan": 75, "lte": 25}


def test_the_split_is_smooth_not_bursty() -> None:
    engine = RuleEngine(policy({"id": "s", "strategy": {"weighted": {"wlan": 3, "lte": 1}}}))
    order = [engine.decide(flow(local_port=i), UP, 0.0).uplink for i in range(8)]
    assert order == ["wlan", "wlan", "lte", "wlan"] * 2


def run_split(weights: list[int], count: int) -> list[tuple[int, dict[str, int]]]:
    """(n, counts after n picks) for every n up to count."""
    names = tuple(f"u{i}" for i in range(len(weights)))
    ups = uplinks(*(uplink(n) for n in names))
    swrr = SmoothWeighted(names, tuple(weights))
    counts = dict.fromkeys(names, 0)
    out = []
    for n in range(1, count + 1):
        name = swrr.pick(ups, None)
        assert name is not None
        counts[name] += 1
        out.append((n, dict(counts)))
    return out


WEIGHTS = st.lists(st.integers(min_value=0, max_value=50), min_size=1, max_size=5).filter(any)


@given(weights=WEIGHTS)
def test_every_full_cycle_of_the_split_is_exact(weights: list[int]) -> None:
    total = sum(weights)
    for n, counts in run_split(weights, 3 * total):
        if n % total == 0:
            assert list(counts.values()) == [w * n // total for w in weights]


@given(weights=WEIGHTS, count=st.integers(min_value=1, max_value=300))
def test_every_prefix_of_the_split_stays_close_to_the_weights(
    weights: list[int], count: int
) -> None:
    # Within one flow for two uplinks; a little more with more uplinks (about 1.2 measured
    # for six), never two.
    bound = 1 if sum(1 for w in weights if w) <= 2 else 2
    total = sum(weights)
    for n, counts in run_split(weights, count):
        for c, w in zip(counts.values(), weights, strict=True):
            assert abs(c - n * w / total) < bound


def test_a_split_skips_a_down_uplink_and_restarts_exactly_when_it_returns() -> None:
    engine = RuleEngine(
        policy({"id": "s", "strategy": {"weighted": {"wlan": 1, "lte": 1, "eth": 2}}})
    )
    three = uplinks(uplink("wlan"), uplink("lte"), uplink("eth"))
    eth_down = uplinks(uplink("wlan"), uplink("lte"), uplink("eth", up=False))
    assert split(engine, 7, eth_down) == {"wlan": 4, "lte": 3}
    assert split(engine, 40, three) == {"wlan": 10, "lte": 10, "eth": 20}


def test_a_split_with_no_usable_uplink_steps_aside() -> None:
    engine = RuleEngine(policy({"id": "s", "strategy": {"weighted": {"wlan": 1, "lte": 0}}}))
    wlan_down = uplinks(uplink("wlan", up=False), uplink("lte"))
    d = engine.decide(flow(), wlan_down, 0.0)
    assert (d.uplink, d.rule_id) == ("lte", None)


def test_each_weighted_rule_has_its_own_split() -> None:
    engine = RuleEngine(
        policy(
            {
                "id": "a",
                "match": {"remote_port": 1},
                "strategy": {"weighted": {"wlan": 1, "lte": 1}},
            },
            {
                "id": "b",
                "match": {"remote_port": 2},
                "strategy": {"weighted": {"wlan": 1, "lte": 1}},
            },
        )
    )
    picks = [engine.decide(flow(remote_port=p), UP, 0.0).uplink for p in (1, 2, 1, 2)]
    assert picks == ["wlan", "wlan", "lte", "lte"]


def test_a_reinstalled_unchanged_split_keeps_its_place_and_a_changed_one_restarts() -> None:
    rule = {"id": "s", "strategy": {"weighted": {"wlan": 1, "lte": 1}}}
    engine = RuleEngine(policy(rule))
    assert engine.decide(flow(), UP, 0.0).uplink == "wlan"
    engine.install(policy(rule, {"id": "other", "match": {"remote_port": 9}, "uplink": "lte"}))
    assert engine.decide(flow(), UP, 0.0).uplink == "lte"  # continues: wlan, lte, ...
    engine.install(policy({"id": "s", "strategy": {"weighted": {"wlan": 1, "lte": 2}}}))
    assert [engine.decide(flow(), UP, 0.0).uplink for _ in range(3)] == ["lte", "wlan", "lte"]


MEASURED = uplinks(
    uplink("wlan", rate_bps=9e6, rtt_ms=30.0, cost=1.0),
    uplink("lte", rate_bps=2e6, rtt_ms=None, cost=3.0),
    uplink("eth", rate_bps=5e6, rtt_ms=10.0, cost=1.0),
)


@pytest.mark.parametrize(
    ("strategy", "expected"),
    [
        (Strategy.LEAST_LOADED, "lte"),
        (Strategy.LOWEST_RTT, "eth"),  # lte has no measurement yet: ranked last
        (Strategy.CHEAPEST, "wlan"),  # tie with eth at 1.0: the first listed wins
        (Strategy.PREFER, "wlan"),
    ],
)
def test_measured_value_strategies(strategy: Strategy, expected: str) -> None:
    assert choose_stateless(Action(strategy, None), MEASURED) == expected


def test_measured_strategies_skip_unusable_and_respect_the_candidate_list() -> None:
    ups = dict(MEASURED)
    ups["lte"] = uplink("lte", up=False, rate_bps=0.0)
    assert choose_stateless(Action(Strategy.LEAST_LOADED, None), ups) == "eth"
    assert choose_stateless(Action(Strategy.LEAST_LOADED, ("wlan", "lte")), ups) == "wlan"
    assert choose_stateless(Action(Strategy.LOWEST_RTT, ("lte",)), ups) is None
    assert choose_stateless(Action(Strategy.CHEAPEST, ("lte", "eth"), max_cost=0.5), ups) is None
    only_unmeasured = uplinks(uplink("a"), uplink("b"))
    assert choose_stateless(Action(Strategy.LOWEST_RTT, None), only_unmeasured) == "a"


def test_strategies_follow_the_measurements_the_caller_passes() -> None:
    engine = RuleEngine(policy({"id": "ll", "strategy": "least_loaded"}))
    busy_wlan = uplinks(uplink("wlan", rate_bps=8e6), uplink("lte", rate_bps=1e6))
    busy_lte = uplinks(uplink("wlan", rate_bps=1e6), uplink("lte", rate_bps=8e6))
    assert engine.decide(flow(), busy_wlan, 0.0).uplink == "lte"
    assert engine.decide(flow(), busy_lte, 1.0).uplink == "wlan"
