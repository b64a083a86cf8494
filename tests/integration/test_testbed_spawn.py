"""`Testbed.spawn` runs this checkout's code, whatever the caller's working directory holds.

`python -m sdnmip` (and `python -c`) put the working directory first on the module path, so a
daemon spawned from a directory holding another `sdnmip` package (another checkout, say) would
run that one. Spawned processes start in the checkout's root instead.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

import sdnmip
from sdnmip.testbed import Testbed

TESTBED_PROFILE = "fast"


def test_a_spawned_daemon_imports_this_checkout_not_the_callers_directory(
    testbed: Testbed, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    shadow = tmp_path / "sdnmip"
    shadow.mkdir()
    (shadow / "__init__.py").write_text("")
    monkeypatch.chdir(tmp_path)
    out = tmp_path / "which.txt"
    code = f"import sdnmip, os\nwith open({str(out)!r}, 'w') as f:\n    f.write(sdnmip.__file__)"
    code += "\n    f.write('\\n' + os.getcwd())"
    proc = testbed.spawn("mn", [sys.executable, "-c", code], "which-sdnmip")
    assert proc.popen is not None and proc.popen.wait(timeout=20) == 0
    imported, cwd = out.read_text().splitlines()
    assert Path(imported).resolve() == Path(sdnmip.__file__).resolve()
    assert Path(imported).resolve().parent != shadow
    assert Path(cwd) == Path(sdnmip.__file__).resolve().parent.parent
