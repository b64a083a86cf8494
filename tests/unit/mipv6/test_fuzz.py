"""Property tests on every decoder: random bytes and mutations of valid packets (truncation,
bit flips, length fields, insertions; half with the checksum repaired) only ever yield a
message or a `DecodeError`. The long run (>= 1,000,000 inputs per decoder) is bench/fuzz_codec.py.
"""

from __future__ import annotations

import random

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.unit.mipv6.fuzzing import COA, HA, TARGETS, mutate, run_one, seeds_for

FAST = settings(
    max_examples=300,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
    derandomize=False,
)


@pytest.mark.parametrize("name", sorted(TARGETS))
@FAST
@given(data=st.binary(max_size=256))
def test_random_bytes_give_message_or_decode_error(name: str, data: bytes) -> None:
    run_one(TARGETS[name], data, COA, HA)


@pytest.mark.parametrize("name", sorted(TARGETS))
@FAST
@given(pick=st.integers(min_value=0), rng_seed=st.integers(min_value=0, max_value=2**64 - 1))
def test_mutated_packets_give_message_or_decode_error(name: str, pick: int, rng_seed: int) -> None:
    seeds = seeds_for(name)
    seed = seeds[pick % len(seeds)]
    run_one(TARGETS[name], mutate(random.Random(rng_seed), seed), seed.src, seed.dst)


@pytest.mark.parametrize("name", sorted(TARGETS))
def test_every_target_has_seeds_that_decode(name: str) -> None:
    seeds = seeds_for(name)
    assert seeds
    for seed in seeds:
        assert run_one(TARGETS[name], seed.head + seed.upper, seed.src, seed.dst)


def test_mutations_reach_both_outcomes() -> None:
    # The mutator must not only produce garbage: some inputs decode, some do not.
    outcomes = set()
    rng = random.Random(7)
    seeds = seeds_for("ipv6_packet")
    for i in range(400):
        seed = seeds[i % len(seeds)]
        outcomes.add(run_one(TARGETS["ipv6_packet"], mutate(rng, seed)))
    assert outcomes == {True, False}
