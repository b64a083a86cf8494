"""`sdnmip testbed` argument handling and its one-line errors (nothing here touches the system:
every case stops before the first namespace is created)."""

from __future__ import annotations

import pytest

from sdnmip import cli
from sdnmip.testbed import cli as testbed_cli
from sdnmip.testbed import prereq
from sdnmip.testbed.errors import PrerequisiteError


def run(capsys, *argv: str) -> tuple[int, str, str]:
    rc = cli.main(["testbed", *argv])
    out, err = capsys.readouterr()
    return rc, out, err


def test_no_action_is_a_usage_error(capsys):
    rc, _, err = run(capsys)
    assert rc == 2
    assert "up" in err and "down" in err and "status" in err


def test_help_describes_the_actions(capsys):
    rc, out, _ = run(capsys, "--help")
    assert rc == 0
    for action in ("up", "down", "status"):
        assert action in out
    rc, out, _ = run(capsys, "up", "--help")
    assert rc == 0
    assert "--prefix" in out and "--profile" in out and "--set" in out


@pytest.mark.parametrize("action", ["up", "down", "status"])
def test_invalid_prefix_is_one_line(capsys, action):
    rc, _, err = run(capsys, action, "--prefix", "Bad-Prefix")
    assert rc == 1
    assert err.count("\n") == 1
    assert err.startswith("sdnmip testbed: invalid prefix 'Bad-Prefix'")


def test_bad_override_is_a_usage_error_naming_the_field(capsys):
    rc, _, err = run(capsys, "up", "--prefix", "tbx", "--set", "links.wlan.mtu=big")
    assert rc == 2
    assert err == "sdnmip testbed: topology: links.wlan.mtu: expected an integer, got str 'big'\n"


def test_unknown_profile_is_a_usage_error(capsys):
    rc, _, err = run(capsys, "up", "--prefix", "tbx", "--profile", "warp")
    assert rc == 2
    assert "profile: no profile 'warp'" in err


def test_unknown_option_is_a_usage_error(capsys):
    rc, _, err = run(capsys, "down", "--prefix", "tbx", "--force")
    assert rc == 2
    assert "unrecognized arguments: --force" in err


def test_not_root_stops_with_the_fix(capsys, monkeypatch):
    monkeypatch.setattr(prereq.os, "geteuid", lambda: 1000)
    rc, _, err = run(capsys, "up", "--prefix", "tbx")
    assert rc == 1
    assert err.count("\n") == 1
    assert "not root" in err and "run it as root" in err


def test_missing_ovs_names_the_binary_and_the_fix(monkeypatch):
    monkeypatch.setattr(prereq.os, "geteuid", lambda: 0)
    real_which = prereq.shutil.which
    monkeypatch.setattr(
        prereq.shutil,
        "which",
        lambda name, path=None: None if name == "ovs-vswitchd" else real_which(name, path=path),
    )
    monkeypatch.setattr(prereq.Path, "exists", lambda self: True)
    with pytest.raises(PrerequisiteError) as info:
        prereq.check()
    assert str(info.value) == (
        "ovs-vswitchd not found (Debian package openvswitch-switch): run deploy/install.sh"
    )


def test_wire_subcommand_is_dispatched_to_the_link_emulator(capsys):
    # Usage errors of the internal emulator come from its own parser.
    with pytest.raises(SystemExit) as info:
        testbed_cli.main(["wire"])
    assert info.value.code == 2
    assert "--tap" in capsys.readouterr().err
