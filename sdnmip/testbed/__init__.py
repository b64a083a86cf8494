"""The emulated reference topology in network namespaces (see docs/architecture.md).

    from sdnmip.testbed import Testbed, load_topology
    tb = Testbed(load_topology(profile="fast"), prefix="tb1")
    tb.up(); tb.run("mn", "ping", "-c1", tb.addr("cn1", "eth0")); tb.down()

Daemons (mn, ha) must not import this package.
"""

from sdnmip.testbed.errors import PrerequisiteError, TestbedError
from sdnmip.testbed.names import DEFAULT_PREFIX
from sdnmip.testbed.spec import SpecError, Topology, load_topology
from sdnmip.testbed.testbed import TESTBED_COOKIE, Testbed, teardown

__all__ = [
    "DEFAULT_PREFIX",
    "TESTBED_COOKIE",
    "PrerequisiteError",
    "SpecError",
    "Testbed",
    "TestbedError",
    "Topology",
    "load_topology",
    "teardown",
]
