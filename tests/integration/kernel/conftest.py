"""Fixtures for tests/integration/kernel: one `Lab` of namespaces per module (kernel_lab.py)."""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest

from tests.integration.kernel.kernel_lab import Lab


@pytest.fixture(scope="module")
def lab(request: pytest.FixtureRequest) -> Iterator[Lab]:
    """A `Lab` whose tag comes from the module's `NS_TAG`."""
    if os.geteuid() != 0:
        raise RuntimeError("kernel integration tests need root")
    tag = request.module.NS_TAG
    lab = Lab(tag)
    try:
        yield lab
    finally:
        lab.teardown()
