"""`sdnmip demo` refuses a report folder it could clobber, before it builds anything."""

from __future__ import annotations

from pathlib import Path

import pytest

from sdnmip.demo import run


@pytest.mark.parametrize("existing", ["report", "report.partial"])
def test_an_existing_report_or_staging_folder_is_refused_and_left_alone(
    tmp_path: Path,
    existing: str,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Not root: were the check missing, main would stop at "needs root", never build a testbed.
    monkeypatch.setattr(run.os, "geteuid", lambda: 1000)
    mine = tmp_path / existing
    mine.mkdir()
    (mine / "keep").write_text("data")
    assert run.main(["--out", str(tmp_path / "report")]) == 2
    assert (mine / "keep").read_text() == "data"
    assert f"{mine} already exists" in capsys.readouterr().err
