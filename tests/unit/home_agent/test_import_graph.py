"""The Home Agent knows nothing of the Mobile Node side: walking the imports of every module of
sdnmip.home_agent, transitively through sdnmip, never reaches an MN-side package."""

from __future__ import annotations

import ast
from pathlib import Path

import sdnmip

FORBIDDEN = (
    "sdnmip.core",
    "sdnmip.controller",
    "sdnmip.mn_agent",
    "sdnmip.northbound",
    "sdnmip.mn",
    "sdnmip.demo",
    "sdnmip.testbed",  # the HA runs inside the testbed; it does not build it
)
PKG_ROOT = Path(sdnmip.__file__).resolve().parent


def module_file(name: str) -> Path | None:
    rel = Path(*name.split("."))
    for candidate in (PKG_ROOT.parent / rel / "__init__.py", PKG_ROOT.parent / f"{rel}.py"):
        if candidate.exists():
            return candidate
    return None


def imports_of(name: str, path: Path) -> set[str]:
    """Every sdnmip module `path` imports, including lazy imports inside functions and the
    package __init__ modules the import system runs on the way."""
    tree = ast.parse(path.read_text(), str(path))
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parts = package.split(".")
                parent = ".".join(parts[: len(parts) - node.level + 1])
                base = f"{parent}.{base}" if base else parent
            found.add(base)
            found |= {f"{base}.{a.name}" for a in node.names}
        elif (
            isinstance(node, ast.Call)
            and getattr(node.func, "attr", "") == "import_module"
            and node.args
            and isinstance(node.args[0], ast.Constant)
        ):
            found.add(str(node.args[0].value))
    out = set()
    for mod in found:
        if mod == "sdnmip" or mod.startswith("sdnmip."):
            parts = mod.split(".")
            # importing a.b.c runs a/__init__, a/b/__init__ and a/b/c
            out |= {".".join(parts[:i]) for i in range(2, len(parts) + 1)}
    return {m for m in out if module_file(m) is not None}


def closure(roots: list[str]) -> dict[str, str]:
    """module -> the module that first imported it (to print the path to a violation)."""
    seen = {r: "" for r in roots}
    todo = list(roots)
    while todo:
        name = todo.pop()
        path = module_file(name)
        assert path is not None, name
        for dep in imports_of(name, path):
            if dep not in seen:
                seen[dep] = name
                todo.append(dep)
    return seen


def chain(seen: dict[str, str], name: str) -> str:
    out = [name]
    while seen.get(out[-1]):
        out.append(seen[out[-1]])
    return " <- ".join(out)


def ha_modules() -> list[str]:
    folder = PKG_ROOT / "home_agent"
    return sorted(
        "sdnmip.home_agent" + ("" if p.stem == "__init__" else f".{p.stem}")
        for p in folder.glob("*.py")
    )


def test_home_agent_reaches_no_mobile_node_package():
    roots = ha_modules()
    assert "sdnmip.home_agent.cache" in roots and "sdnmip.home_agent.daemon" in roots
    seen = closure(roots)
    bad = sorted(m for m in seen if any(m == f or m.startswith(f + ".") for f in FORBIDDEN))
    assert bad == [], "\n".join(chain(seen, m) for m in bad)
    assert "sdnmip.mipv6.packet" in seen  # the walk does follow imports


def test_the_checker_catches_a_forbidden_import(tmp_path: Path):
    # The same walk on a module that imports sdnmip.core finds it (the test can fail).
    seen = closure(["sdnmip.northbound.check"])
    assert any(m.startswith("sdnmip.core") for m in seen)
