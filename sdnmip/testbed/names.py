"""Every name the testbed derives from its prefix: namespaces, the state directory, pid files.

`down` must work from nothing but the prefix (a crash half-way through `up` leaves no state file),
so every name that `up` creates on the system is a function of the prefix here.
"""

from __future__ import annotations

import re
from pathlib import Path

from sdnmip.testbed.errors import TestbedError

DEFAULT_PREFIX = "smip"
# Short lowercase alphanumerics: `<prefix>-<node>` stays readable and the state paths stay far
# from the 108-byte limit of Unix socket paths (OVS's db.sock lives there).
PREFIX_RE = re.compile(r"^[a-z][a-z0-9]{0,9}$")
STATE_ROOT = Path("/run/sdnmip/testbed")
NETNS_DIR = Path("/run/netns")  # where `ip netns add` keeps its namespaces
SEPARATOR = "-"


def check_prefix(prefix: str) -> str:
    if not PREFIX_RE.match(prefix):
        raise TestbedError(
            f"invalid prefix {prefix!r}: use 1-10 lowercase letters and digits, starting with a "
            "letter (e.g. smip, tb1)"
        )
    return prefix


def namespace(prefix: str, node: str) -> str:
    return f"{prefix}{SEPARATOR}{node}"


def owns_namespace(prefix: str, ns: str) -> bool:
    """Whether namespace `ns` belongs to the testbed with this prefix. Prefixes cannot contain the
    separator, so `tb1-` never matches a namespace of testbed `tb10`."""
    return ns.startswith(prefix + SEPARATOR)


def state_dir(prefix: str, root: Path = STATE_ROOT) -> Path:
    return root / prefix
