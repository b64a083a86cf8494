"""The package boundaries of docs/architecture.md ("must not" column), checked on the imports of
every module: the pure core imports no I/O library, the Home Agent knows nothing of the MN's
packages, and no daemon imports the testbed or the demo."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PKG = Path(__file__).resolve().parents[2] / "sdnmip"

# package -> top-level names its modules must not import (prefix match on dotted names)
FORBIDDEN: dict[str, tuple[str, ...]] = {
    "core": ("os_ken", "eventlet", "pyroute2", "scapy", "ovs", "socket", "subprocess",
             "sdnmip.controller", "sdnmip.mn_agent", "sdnmip.northbound", "sdnmip.home_agent",
             "sdnmip.kernel", "sdnmip.testbed", "sdnmip.demo"),
    "mipv6": ("socket", "os_ken", "eventlet", "pyroute2", "scapy", "sdnmip.core",
              "sdnmip.controller", "sdnmip.mn_agent", "sdnmip.home_agent", "sdnmip.testbed"),
    "home_agent": ("sdnmip.core", "sdnmip.controller", "sdnmip.mn_agent", "sdnmip.northbound",
                   "sdnmip.testbed", "sdnmip.demo", "os_ken"),
    "controller": ("sdnmip.testbed", "sdnmip.demo", "sdnmip.home_agent"),
    "mn_agent": ("sdnmip.testbed", "sdnmip.demo", "sdnmip.home_agent", "sdnmip.controller",
                 "os_ken"),
    "northbound": ("sdnmip.testbed", "sdnmip.demo", "sdnmip.home_agent"),
    "kernel": ("sdnmip.core", "sdnmip.controller", "sdnmip.testbed", "sdnmip.demo"),
}  # fmt: skip


def imported_names(path: Path) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
        if isinstance(node, ast.Import):
            names.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
    return names


def violations(package: str) -> list[str]:
    out = []
    for path in sorted((PKG / package).rglob("*.py")):
        for name in imported_names(path):
            for bad in FORBIDDEN[package]:
                if name == bad or name.startswith(bad + "."):
                    out.append(f"{path.relative_to(PKG.parent)} imports {name}")
    return out


@pytest.mark.parametrize("package", sorted(FORBIDDEN))
def test_package_respects_its_boundaries(package: str) -> None:
    assert (PKG / package).is_dir()
    assert violations(package) == []


def test_the_check_sees_a_forbidden_import(tmp_path: Path) -> None:
    mod = tmp_path / "m.py"
    mod.write_text("import socket\nfrom os_ken.lib import hub\nfrom . import x\n")
    assert imported_names(mod) == {"socket", "os_ken.lib"}
