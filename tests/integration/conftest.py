"""Integration tier: real namespaces, real Open vSwitch, real radvd.

A missing prerequisite fails every test loudly (CI selects this tier on purpose). Each test module
that asks for `testbed` gets one fresh testbed with its own prefix, shared by its tests; set
`TESTBED_PROFILE = "..."` in the module to pick a link profile. Prefixes start with
$SDNMIP_TEST_PREFIX (default "tb") and embed the PID, so parallel runs never collide.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from sdnmip.testbed import PrerequisiteError, Testbed, load_topology, prereq
from tests.integration.helpers import unique_prefix


@pytest.fixture(scope="session", autouse=True)
def _prerequisites() -> None:
    try:
        prereq.check()
    except PrerequisiteError as exc:
        pytest.fail(f"integration prerequisite missing: {exc}", pytrace=False)


@pytest.fixture(scope="module")
def testbed(request: pytest.FixtureRequest) -> Iterator[Testbed]:
    """One testbed for the whole module, removed afterwards (and checked to be gone)."""
    profile = getattr(request.module, "TESTBED_PROFILE", None)
    tb = Testbed(load_topology(profile=profile), unique_prefix())
    tb.up()
    try:
        yield tb
    finally:
        tb.down()
        assert tb.existing() == [], f"testbed {tb.prefix} left namespaces behind"
