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
