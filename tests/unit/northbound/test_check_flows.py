"""`sdnmip check-flows`: the same parser offline, one line per file, exit 0 or 1."""

from __future__ import annotations

from pathlib import Path

import pytest

from sdnmip import cli
from sdnmip.northbound import check

FLOWS_DIR = Path(__file__).resolve().parents[3] / "flows"
RULE = "version: 1\nsource: operator\nrules:\n  - id: {id}\n    uplink: {uplink}\n"


def write(tmp_path: Path, name: str, rule_id: str = "a", uplink: str = "wlan") -> Path:
    path = tmp_path / name
    path.write_text(RULE.format(id=rule_id, uplink=uplink))
    return path


def test_good_files_print_ok_with_their_rule_count(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    a = write(tmp_path, "a.yaml")
    b = tmp_path / "b.yaml"
    b.write_text(RULE.format(id="b", uplink="lte") + "  - id: c\n    strategy: cheapest\n")
    assert check.main([str(a), str(b)]) == 0
    out, err = capsys.readouterr()
    assert out.splitlines() == [f"OK {a} (1 rule)", f"OK {b} (2 rules)"]
    assert err == ""


def test_a_bad_file_names_file_line_and_field(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    good = write(tmp_path, "good.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text(
        "version: 1\nsource: operator\nrules:\n  - id: x\n    uplink: wlan\n    mode: tunnel\n"
    )
    assert check.main([str(good), str(bad)]) == 1
    out, err = capsys.readouterr()
    assert out.splitlines() == [f"OK {good} (1 rule)"]
    assert err.splitlines() == [
        f"{bad}:6: rules[0].mode: unknown mode 'tunnel' (expected one of: anchored, direct)"
    ]


def test_files_that_clash_together_are_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    a = write(tmp_path, "a.yaml", "same")
    b = write(tmp_path, "b.yaml", "same")
    assert check.main([str(a), str(b)]) == 1
    err = capsys.readouterr().err
    assert err.strip() == f"{b}:4: rules[0].id: operator rule id 'same' is already used in {a}"


def test_uplink_names_are_checked_when_given(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = write(tmp_path, "a.yaml", uplink="eth0")
    assert check.main([str(path)]) == 0
    assert check.main(["--uplinks", "wlan,lte", str(path)]) == 1
    assert (
        "rules[0].uplink: unknown uplink 'eth0' (configured: lte, wlan)" in capsys.readouterr().err
    )


def test_home_prefix_is_checked_when_given(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "v.yaml"
    path.write_text(RULE.format(id="v", uplink="wlan") + "    dedicated_hoa: 2001:db8:100::5\n")
    assert check.main(["--home-prefix", "2001:db8:100::/64", str(path)]) == 0
    assert check.main(["--home-prefix", "2001:db8:200::/64", str(path)]) == 1
    assert "is not in the home prefix (2001:db8:200::/64)" in capsys.readouterr().err


def test_missing_files_and_empty_directories(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert check.main([str(tmp_path / "nope.yaml")]) == 1
    assert "nope.yaml: cannot read" in capsys.readouterr().err
    assert check.main([str(tmp_path)]) == 1
    assert "no policy files" in capsys.readouterr().err


def test_usage_errors_exit_2(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as info:
        check.main([])
    assert info.value.code == 2
    with pytest.raises(SystemExit) as info:
        check.main(["--home-prefix", "2001:db8::1/64", "x.yaml"])
    assert info.value.code == 2
    assert "is not an IPv6 prefix" in capsys.readouterr().err


def test_the_shipped_examples_pass_through_the_sdnmip_command(
    capsys: pytest.CaptureFixture[str],
) -> None:
    rc = cli.main(
        [
            "check-flows",
            "--uplinks",
            "wlan,lte",
            "--home-prefix",
            "2001:db8:100::/64",
            str(FLOWS_DIR),
        ]
    )
    out = capsys.readouterr().out
    assert rc == 0, out
    assert sum(line.startswith("OK ") for line in out.splitlines()) == len(
        list(FLOWS_DIR.glob("*.yaml"))
    )
