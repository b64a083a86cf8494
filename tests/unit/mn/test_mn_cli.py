"""`sdnmip mn` refuses what would only make its children fail, before it starts any."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from sdnmip.mn import cli

DEPLOY = Path(__file__).resolve().parents[3] / "deploy" / "mn.yaml"


def config_with_token(tmp_path: Path, mode: int) -> Path:
    token = tmp_path / "token"
    token.write_text("0123456789abcdef0123456789abcdef\n")
    token.chmod(mode)
    doc = yaml.safe_load(DEPLOY.read_text())
    doc["northbound"]["token_file"] = str(token)
    doc["paths"] = {"state_dir": str(tmp_path / "state"), "run_dir": str(tmp_path / "run")}
    path = tmp_path / "mn.yaml"
    path.write_text(yaml.safe_dump(doc))
    return path


def test_a_token_file_others_can_read_is_refused_before_anything_starts(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = config_with_token(tmp_path, 0o644)
    assert cli.main(["--config", str(path)]) == 1
    err = capsys.readouterr().err
    assert "northbound.token_file" in err and "chmod 600" in err
    assert not (tmp_path / "run").exists()  # no child, no log directory
