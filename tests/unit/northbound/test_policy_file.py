"""Policy files: parsing with line numbers, the example files, and reload that keeps the old
policy when any file is bad."""

from __future__ import annotations

import os
import re
from ipaddress import IPv6Address, IPv6Network
from pathlib import Path

import pytest

from sdnmip.core.policy import Policy, RuleEngine
from sdnmip.core.policy_model import PolicyError, Source
from sdnmip.core.policy_parse import Context, parse_ruleset
from sdnmip.core.types import Direction, FlowDescriptor, FlowKey, Mode, UplinkView
from sdnmip.northbound.policy_file import (
    MAX_FILE_BYTES,
    PolicyDirectory,
    Snapshot,
    Stamp,
    load_file,
    parse_text,
    policy_files,
    scan,
    should_reload,
)

FLOWS_DIR = Path(__file__).resolve().parents[3] / "flows"
TESTBED = Context(
    uplinks=frozenset({"wlan", "lte"}), home_prefixes=(IPv6Network("2001:db8:100::/64"),)
)
UP = {
    "wlan": UplinkView("wlan", True, IPv6Address("2001:db8:1::2"), 1e6, 10.0, 0.0),
    "lte": UplinkView("lte", True, IPv6Address("2001:db8:2::2"), 1e6, 40.0, 1.0),
}
MN = IPv6Address("2001:db8:100::1000")


def flow(proto: int, port: int, remote: str = "2001:db8:c1::10", dscp: int = 0) -> FlowDescriptor:
    key = FlowKey(proto, MN, 40000, IPv6Address(remote), port)
    return FlowDescriptor(key, Direction.OUTGOING, dscp=dscp)


def refused_text(text: str) -> str:
    with pytest.raises(PolicyError) as info:
        parse_text(text, origin="f.yaml", context=TESTBED)
    return str(info.value)


# ---- parsing ------------------------------------------------------------------------------


def test_errors_name_the_file_the_line_and_the_field() -> None:
    text = """\
version: 1
source: operator
rules:
  - id: ok
    uplink: wlan
  - id: web
    match:
      proto: tcp
      remote_port: 70000
    uplink: wlan
"""
    assert (
        refused_text(text) == "f.yaml:9: rules[1].match.remote_port: 70000 is not a port (0-65535)"
    )


def test_an_unknown_key_is_reported_on_its_own_line() -> None:
    text = "version: 1\nsource: operator\nrules:\n  - id: a\n    uplink: wlan\n    colour: red\n"
    assert refused_text(text).startswith("f.yaml:6: rules[0].colour: unknown key")


def test_a_missing_key_is_reported_on_the_line_of_its_mapping() -> None:
    text = "version: 1\nsource: operator\nrules:\n  - uplink: wlan\n"
    assert refused_text(text) == "f.yaml:4: rules[0].id: required key is missing"


def test_duplicate_keys_are_refused_not_silently_overwritten() -> None:
    text = "version: 1\nsource: operator\nrules:\n  - id: a\n    uplink: wlan\n    uplink: lte\n"
    assert refused_text(text) == "f.yaml:6: rules[0].uplink: duplicate key"


def test_yaml_syntax_errors_give_the_line() -> None:
    text = "version: 1\nsource: operator\nrules:\n  - id: a\n   uplink: [wlan\n"
    message = refused_text(text)
    assert message.startswith("f.yaml:5: not valid YAML") or message.startswith(
        "f.yaml:6: not valid YAML"
    )


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "f.yaml:1: the file is empty"),
        ("# only a comment\n", "f.yaml:1: the file is empty"),
        ("- 1\n- 2\n", "f.yaml:1: expected a mapping, got a list"),
        (
            "version: 1\nsource: operator\nrules:\n  - id: a\n    uplink: yes\n",
            "f.yaml:5: rules[0].uplink: expected an uplink name (a string), got a boolean (True)",
        ),
        (
            "version: 1\nsource: operator\nrules:\n  - id: a\n    uplink: wlan\n"
            "    match: {remote_port: 80:90}\n",
            "f.yaml:6: rules[0].match.remote_port: '80:90' is not a port, a range like '10-20'",
        ),
        (
            "version: 1\nsource: operator\nrules:\n  - !!python/object:os.system {}\n",
            "f.yaml:4: not valid YAML: could not determine a constructor",
        ),
    ],
)
def test_malformed_files(text: str, message: str) -> None:
    assert refused_text(text).startswith(message)


def test_aliases_are_followed_once() -> None:
    # A billion-laughs shape: the line walk must not expand it.
    lines = ["version: 1", "source: operator", "a0: &a0 [x, x, x, x, x, x, x, x, x, x]"]
    lines += [
        f"a{i}: &a{i} [*a{i - 1}, *a{i - 1}, *a{i - 1}, *a{i - 1}, *a{i - 1}]" for i in range(1, 30)
    ]
    lines += ["rules: []"]
    assert refused_text("\n".join(lines)).startswith("f.yaml:3: a0: unknown key")


def test_a_key_with_nothing_after_it_is_a_key_left_out() -> None:
    text = "version: 1\nsource: operator\ndefault:\nrules:\n"
    loaded = parse_text(text, origin="f.yaml")
    assert loaded.ruleset.rules == () and loaded.ruleset.default is None
    rule = "version: 1\nsource: operator\nrules:\n  - id: a\n    uplink: wlan\n    mode:\n"
    assert parse_text(rule, origin="f.yaml").ruleset.rules[0].mode is Mode.ANCHORED
    assert refused_text("version: 1\nsource:\n") == "f.yaml:2: source: required key is missing"


def test_unreadable_files(tmp_path: Path) -> None:
    with pytest.raises(PolicyError, match=r"missing\.yaml: cannot read"):
        load_file(tmp_path / "missing.yaml")
    binary = tmp_path / "bin.yaml"
    binary.write_bytes(b"version: 1\n\xff\xfe")
    with pytest.raises(PolicyError, match=r"bin\.yaml: not UTF-8 text"):
        load_file(binary)
    huge = tmp_path / "huge.yaml"
    huge.write_bytes(b"#" * (MAX_FILE_BYTES + 1))
    with pytest.raises(PolicyError, match=r"huge\.yaml: larger than"):
        load_file(huge)


# ---- the documented examples ------------------------------------------------------------


EXAMPLES = sorted(FLOWS_DIR.glob("*.yaml"))


def test_the_examples_are_there() -> None:
    names = {p.name for p in EXAMPLES}
    assert {
        "video-wlan.yaml",
        "bulk-lte.yaml",
        "voice-hoa.yaml",
        "split.yaml",
        "dns-direct.yaml",
    } <= names


@pytest.mark.parametrize("path", EXAMPLES, ids=[p.name for p in EXAMPLES])
def test_each_example_file_is_valid_and_commented(path: Path) -> None:
    loaded = load_file(path, TESTBED)
    assert loaded.ruleset.source is Source.OPERATOR
    assert path.read_text().lstrip().startswith("#"), "examples explain themselves"


def test_the_examples_together_do_what_their_comments_say(tmp_path: Path) -> None:
    policy = PolicyDirectory(FLOWS_DIR, TESTBED).load(Policy.build())
    engine = RuleEngine(policy)

    def d(f: FlowDescriptor, ups: dict[str, UplinkView] = UP) -> tuple[str, Mode, str | None]:
        decision = engine.decide(f, ups, 0.0)
        hoa = None if decision.dedicated_hoa is None else str(decision.dedicated_hoa)
        return decision.uplink, decision.mode, hoa

    assert d(flow(6, 443)) == ("wlan", Mode.ANCHORED, None)  # video to wlan
    assert d(flow(6, 873)) == ("lte", Mode.ANCHORED, None)  # bulk to lte
    assert d(flow(17, 5060)) == ("wlan", Mode.ANCHORED, "2001:db8:100::5060")  # voice, lowest RTT
    assert d(flow(17, 53, remote="2001:db8:c2::53")) == ("wlan", Mode.DIRECT, None)  # DNS direct
    splits = [
        engine.decide(flow(6, 5201, remote="2001:db8:c2::10"), UP, 0.0).uplink for _ in range(100)
    ]
    assert splits.count("wlan") == 75 and splits.count("lte") == 25
    lte_down = {**UP, "lte": UplinkView("lte", False, None)}
    assert engine.decide(flow(6, 873), lte_down, 0.0).uplink == "lte"  # held: fallback none
    assert d(flow(6, 22)) == ("wlan", Mode.ANCHORED, None)  # the default


def test_the_yaml_examples_in_the_reference_are_valid() -> None:
    text = (FLOWS_DIR.parent / "docs" / "policy.md").read_text()
    blocks = re.findall(r"```yaml\n(.*?)```", text, re.S)
    assert len(blocks) >= 2
    for i, block in enumerate(blocks):
        assert parse_text(block, origin=f"docs/policy.md block {i}", context=TESTBED).ruleset.rules


# ---- change detection -------------------------------------------------------------------


def stamp(digest: str) -> Stamp:
    return Stamp(mtime_ns=1, size=1, digest=digest)


def test_should_reload_is_decided_by_content() -> None:
    a = Snapshot(True, (("a.yaml", stamp("1")),))
    assert should_reload(None, a)
    assert not should_reload(a, Snapshot(True, (("a.yaml", Stamp(2, 1, "1")),)))  # touched only
    assert should_reload(a, Snapshot(True, (("a.yaml", stamp("2")),)))
    assert should_reload(a, Snapshot(True, (("a.yaml", stamp("1")), ("b.yaml", stamp("3")))))
    assert should_reload(a, Snapshot(True, ()))
    assert should_reload(a, Snapshot(False))
    assert not should_reload(Snapshot(False), Snapshot(False))


def test_scan_hashes_only_files_whose_stat_changed(tmp_path: Path) -> None:
    f = tmp_path / "a.yaml"
    f.write_text("x: 1\n")
    first = scan(tmp_path)
    # Same stat, different remembered digest: scan trusts stat and does not re-read.
    remembered = Snapshot(
        True, (("a.yaml", Stamp(f.stat().st_mtime_ns, f.stat().st_size, "kept")),)
    )
    assert dict(scan(tmp_path, remembered).files)["a.yaml"].digest == "kept"
    f.write_text("x: 2\n")
    os.utime(f, ns=(f.stat().st_atime_ns, f.stat().st_mtime_ns + 1_000_000))
    assert dict(scan(tmp_path, first).files)["a.yaml"].digest != dict(first.files)["a.yaml"].digest


def test_only_visible_yaml_files_are_policy_files(tmp_path: Path) -> None:
    for name in ("b.yaml", "a.yml", ".hidden.yaml", "notes.txt", "c.yaml~", "d.yaml.swp"):
        (tmp_path / name).write_text("")
    (tmp_path / "dir.yaml").mkdir()
    assert [p.name for p in policy_files(tmp_path)] == ["a.yml", "b.yaml"]


# ---- reload -----------------------------------------------------------------------------

GOOD = (
    "version: 1\nsource: operator\nrules:\n"
    "  - id: web\n    match: {remote_port: 80}\n    uplink: {uplink}\n"
)


def write(path: Path, text: str) -> None:
    """Write and move the mtime on, so change detection never depends on timestamp granularity."""
    old = path.stat().st_mtime_ns if path.exists() else 0
    path.write_text(text)
    st = path.stat()
    os.utime(path, ns=(st.st_atime_ns, max(st.st_mtime_ns, old + 1_000_000)))


def web_uplink(policy: Policy) -> str:
    return RuleEngine(policy).decide(flow(6, 80), UP, 0.0).uplink


def test_load_poll_and_reload(tmp_path: Path) -> None:
    write(tmp_path / "web.yaml", GOOD.replace("{uplink}", "lte"))
    files = PolicyDirectory(tmp_path, TESTBED)
    running = files.load(Policy.build())
    assert web_uplink(running) == "lte"
    assert files.origins == (str(tmp_path / "web.yaml"),)

    unchanged = files.poll(running)
    assert (unchanged.changed, unchanged.error, unchanged.policy) == (False, None, running)

    write(tmp_path / "web.yaml", GOOD.replace("{uplink}", "wlan"))
    result = files.poll(running)
    assert result.changed and result.error is None
    assert web_uplink(result.policy) == "wlan"

    # On request, even without a change on disk.
    again = files.reload(result.policy)
    assert again.changed and web_uplink(again.policy) == "wlan"


def test_a_bad_file_keeps_the_old_policy_and_is_reported_once(tmp_path: Path) -> None:
    write(tmp_path / "web.yaml", GOOD.replace("{uplink}", "lte"))
    write(
        tmp_path / "dns.yaml",
        GOOD.replace("web", "dns").replace("80", "53").replace("{uplink}", "lte"),
    )
    files = PolicyDirectory(tmp_path, TESTBED)
    running = files.load(Policy.build())

    # One good change and one bad file: neither is applied.
    write(tmp_path / "web.yaml", GOOD.replace("{uplink}", "wlan"))
    write(
        tmp_path / "dns.yaml",
        GOOD.replace("web", "dns").replace("80", "70000").replace("{uplink}", "lte"),
    )
    result = files.poll(running)
    assert not result.changed and result.policy is running
    assert (
        str(result.error)
        == f"{tmp_path / 'dns.yaml'}:5: rules[0].match.remote_port: 70000 is not a port (0-65535)"
    )
    assert web_uplink(result.policy) == "lte"
    assert files.poll(running) == type(result)(running, False, None)  # not reported again

    # Fixed: the whole directory applies.
    write(
        tmp_path / "dns.yaml",
        GOOD.replace("web", "dns").replace("80", "53").replace("{uplink}", "wlan"),
    )
    fixed = files.poll(running)
    assert fixed.changed and fixed.error is None and web_uplink(fixed.policy) == "wlan"


def test_a_conflict_between_files_is_refused_and_located(tmp_path: Path) -> None:
    write(tmp_path / "a.yaml", GOOD.replace("{uplink}", "lte"))
    files = PolicyDirectory(tmp_path, TESTBED)
    running = files.load(Policy.build())
    write(tmp_path / "b.yaml", "# same id\n" + GOOD.replace("{uplink}", "wlan"))
    result = files.poll(running)
    assert result.policy is running
    assert str(result.error) == (
        f"{tmp_path / 'b.yaml'}:5: rules[0].id: operator rule id 'web' is already used in "
        f"{tmp_path / 'a.yaml'}"
    )


def test_removing_a_file_removes_its_rules_and_keeps_other_origins(tmp_path: Path) -> None:
    write(tmp_path / "web.yaml", GOOD.replace("{uplink}", "lte"))
    files = PolicyDirectory(tmp_path, TESTBED)
    rest = parse_ruleset(
        {
            "version": 1,
            "source": "network",
            "rules": [{"id": "n", "match": {"remote_port": 22}, "uplink": "lte"}],
        },
        origin="rest",
    )
    running = files.load(Policy.build([rest]))
    assert set(running.origins) == {"rest", str(tmp_path / "web.yaml")}
    (tmp_path / "web.yaml").unlink()
    result = files.poll(running)
    assert result.changed and result.policy.origins == ("rest",)
    assert web_uplink(result.policy) == "wlan"


def test_a_missing_directory(tmp_path: Path) -> None:
    files = PolicyDirectory(tmp_path / "nope")
    with pytest.raises(PolicyError, match="nope: no such directory"):
        files.load(Policy.build())
    write(tmp_path / "web.yaml", GOOD.replace("{uplink}", "lte"))
    files = PolicyDirectory(tmp_path)
    running = files.load(Policy.build())
    tmp_path.joinpath("web.yaml").unlink()
    tmp_path.rmdir()
    gone = files.poll(running)
    assert gone.policy is running and "no such directory" in str(gone.error)
    assert files.poll(running).error is None  # reported once


def test_a_requested_reload_is_not_repeated_by_the_poll_timer(tmp_path: Path) -> None:
    write(tmp_path / "web.yaml", GOOD.replace("{uplink}", "lte"))
    files = PolicyDirectory(tmp_path, TESTBED)
    running = files.load(Policy.build())
    write(tmp_path / "web.yaml", GOOD.replace("{uplink}", "wlan"))
    result = files.reload(running)  # SIGHUP or POST /v1/policy/reload, before the timer
    assert result.changed and web_uplink(result.policy) == "wlan"
    assert not files.pending()
    assert files.poll(result.policy) == type(result)(result.policy, False, None)
    # A refused reload on request is not reported a second time by the timer either.
    write(tmp_path / "web.yaml", GOOD.replace("80", "70000").replace("{uplink}", "lte"))
    refused = files.reload(result.policy)
    assert refused.error is not None and not refused.changed
    assert files.poll(result.policy) == type(result)(result.policy, False, None)
