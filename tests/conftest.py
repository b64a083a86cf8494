"""Test tiers: every test is marked by the folder it lives in.

- tests/unit/         -> `unit`: pure, no root, no OVS. The default (`pytest` alone).
- tests/integration/  -> `integration`: root, network namespaces, real Open vSwitch.
Benchmarks live in bench/ and are never collected here.

Integration tests do not skip when a prerequisite is missing: CI selects them on purpose, so a
missing prerequisite must fail loudly (see tests/integration/conftest.py).
"""

from __future__ import annotations

from pathlib import Path

import pytest

_TIERS = {"unit": pytest.mark.unit, "integration": pytest.mark.integration}


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    root = Path(__file__).parent
    for item in items:
        rel = Path(str(item.fspath)).relative_to(root)
        tier = rel.parts[0] if rel.parts else ""
        if tier in _TIERS:
            item.add_marker(_TIERS[tier])


# Hypothesis: random exploration while developing; a fixed, derandomized run in the README's test
# command (deploy/test.sh sets HYPOTHESIS_PROFILE=ci), so CI is reproducible and a newly found
# counterexample shows up in a developer's run, not as a red main. The long fuzz runs live in
# bench/ (see docs/benchmarks.md).
def _hypothesis_profiles() -> None:
    import os

    from hypothesis import HealthCheck, settings

    settings.register_profile("dev", deadline=None)
    settings.register_profile(
        "ci", deadline=None, derandomize=True, suppress_health_check=[HealthCheck.too_slow]
    )
    settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "dev"))


_hypothesis_profiles()
