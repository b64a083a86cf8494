"""`sdnmip mn-agent`: refusals are one line naming the field or file, with exit status 1."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from sdnmip.cli import main as sdnmip_main
from sdnmip.mn_agent.cli import main


def _config(tmp_path: Path, **over: object) -> Path:
    doc = {
        "version": 1,
        "identity": {"nai": "mn1@x.test", "spi": 4096, "key_file": str(tmp_path / "mn.key")},
        "home": {"agent": "2001:db8:100::1", "primary_hoa": "2001:db8:100::1000"},
        "paths": {"state_dir": str(tmp_path / "state"), "run_dir": str(tmp_path / "run")},
        **over,
    }
    p = tmp_path / "mn.yaml"
    p.write_text(yaml.safe_dump(doc))
    return p


def test_a_bad_config_is_one_line_and_exit_1(tmp_path: Path, capsys: pytest.CaptureFixture[str]):
    p = _config(tmp_path, pool={"size": "two"})
    assert main(["--config", str(p)]) == 1
    err = capsys.readouterr().err.strip()
    assert err == f"sdnmip mn-agent: {p}: pool.size: expected an integer, got str 'two'"


def test_an_unsafe_key_file_stops_the_agent_before_anything_runs(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
):
    key = tmp_path / "mn.key"
    key.write_text("00" * 16)
    key.chmod(0o644)
    assert main(["--config", str(_config(tmp_path))]) == 1
    assert "identity.key_file:" in capsys.readouterr().err
    assert not (tmp_path / "state").exists() and not (tmp_path / "run").exists()


def test_status_without_a_running_agent(tmp_path: Path, capsys: pytest.CaptureFixture[str]):
    assert main(["--config", str(_config(tmp_path)), "status"]) == 1
    assert "agent.sock" in capsys.readouterr().err


def test_dispatched_by_the_sdnmip_command(capsys: pytest.CaptureFixture[str]):
    with pytest.raises(SystemExit) as e:
        sdnmip_main(["mn-agent", "--help"])
    assert e.value.code == 0
    assert "Mobile IPv6 agent" in capsys.readouterr().out
