"""A YAML or JSON number of thousands of digits (Python refuses to convert it: the int digit
limit) is a user's mistake like any other: every loader of a file or argument a person writes
answers one line naming the file, not a ValueError traceback."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from sdnmip.cli import main as sdnmip
from sdnmip.core.policy_model import PolicyError
from sdnmip.home_agent.keys import KeysFileError, load_keys
from sdnmip.northbound.client import ClientError, endpoint_from_config
from sdnmip.northbound.policy_file import parse_text
from sdnmip.testbed.spec import SpecError, apply_override, load_document

HUGE = "9" * 5000  # over Python's default 4300-digit int conversion limit


def test_a_policy_file(tmp_path: Path) -> None:
    text = f"version: 1\nsource: operator\nrules:\n  - id: a\n    priority: {HUGE}\n"
    with pytest.raises(PolicyError) as info:
        parse_text(text + "    uplink: wlan\n", origin="f.yaml")
    assert str(info.value) == "f.yaml: not valid YAML: a number has thousands of digits"
    (tmp_path / "f.yaml").write_text(text)
    assert sdnmip(["check-flows", str(tmp_path / "f.yaml")]) == 1


@pytest.mark.parametrize(
    ("command", "text", "code"),
    [
        ("mn", f"version: 1\nidentity:\n  spi: {HUGE}\n", 1),
        ("ha", f"home_link: h\nmax_binding_lifetime: {HUGE}\n", 2),
    ],
)
def test_the_daemons_configuration(tmp_path, capsys, command, text, code) -> None:
    path = tmp_path / "c.yaml"
    path.write_text(text)
    args = [command, "--config", str(path)] + (["--check"] if command == "ha" else [])
    assert sdnmip(args) == code
    err = capsys.readouterr().err
    assert err == f"sdnmip {command}: {path}: not valid YAML: a number has thousands of digits\n"


def test_the_keys_file_the_client_config_and_the_testbed(tmp_path: Path) -> None:
    keys = tmp_path / "keys.yaml"
    keys.write_text(f"keys:\n  - spi: {HUGE}\n")
    os.chmod(keys, 0o600)
    with pytest.raises(KeysFileError, match="not valid YAML"):
        load_keys(keys, owner_uid=os.getuid())
    mn = tmp_path / "mn.yaml"
    mn.write_text(f"northbound:\n  listen: {HUGE}\n")
    with pytest.raises(ClientError, match="thousands of digits"):
        endpoint_from_config(mn)
    topo = tmp_path / "topo.yaml"
    topo.write_text(f"x: {HUGE}\n")
    with pytest.raises(SpecError, match="thousands of digits"):
        load_document(topo)
    with pytest.raises(SpecError, match="is not a YAML value"):
        apply_override({}, f"a.b={HUGE}")


def test_other_values_pyyaml_refuses_are_reported_with_their_own_reason(tmp_path: Path) -> None:
    """A timestamp that is no date also raises ValueError inside PyYAML: its reason is given,
    not the digit limit's."""
    from sdnmip.mn.config import ConfigError, load_config

    path = tmp_path / "mn.yaml"
    path.write_text("version: 1\nidentity:\n  since: 2001-13-01\n")
    with pytest.raises(ConfigError, match=r"month must be in 1\.\.12") as info:
        load_config(path)
    assert "thousands of digits" not in str(info.value)
    with pytest.raises(PolicyError, match=r"not valid YAML: month must be in 1\.\.12"):
        parse_text("version: 1\nsource: operator\ndescription: 2001-13-01\n", origin="f.yaml")
