"""The pipeline declaration is enforced on every flow-mod, and the fixed pipeline respects it."""

from __future__ import annotations

import pytest

from sdnmip.controller import ofmsg
from sdnmip.controller import pipeline as pl
from sdnmip.controller.rules import RuleBuilder

from .rig import make_config

UP = pl.TABLES[pl.TableId.UPLINK]
FLOW = pl.cookie(pl.CookieKind.FLOW_UP, 7)
FLOW_MATCH = [("in_port", 1), ("eth_type", 0x86DD), ("ip_proto", 17), ("udp_src", 1)]
OUT = [ofmsg.apply_actions([ofmsg.output(3)])]
TIMED = {"idle_timeout": 30, "flags": ofmsg.OFPFF_SEND_FLOW_REM}


def test_a_correct_per_flow_rule_passes():
    msg = UP.add(pl.PRIO_FLOW, FLOW, FLOW_MATCH, OUT, **TIMED)
    assert msg.table_id == pl.TableId.UPLINK and msg.cookie == FLOW


@pytest.mark.parametrize(
    ("build", "message"),
    [
        (
            lambda: UP.add(pl.PRIO_FLOW, FLOW, [*FLOW_MATCH, ("tcp_flags", 1)], OUT, **TIMED),
            "match on tcp_flags",
        ),
        (
            lambda: UP.add(
                pl.PRIO_FLOW,
                FLOW,
                FLOW_MATCH,
                [ofmsg.apply_actions([ofmsg.set_field("ipv6_dst", "::1")])],
                **TIMED,
            ),
            "rewrite ipv6_dst",
        ),
        (
            lambda: UP.add(pl.PRIO_FLOW, FLOW, FLOW_MATCH, [ofmsg.goto_table(3)], **TIMED),
            "go to table 3",
        ),
        (lambda: UP.add(1234, FLOW, FLOW_MATCH, OUT, **TIMED), "priority 1234"),
        (lambda: UP.add(pl.PRIO_FLOW, 0x1234, FLOW_MATCH, OUT, **TIMED), "cookie"),
        (
            lambda: UP.add(
                pl.PRIO_FLOW, pl.cookie(pl.CookieKind.FLOW_DOWN, 7), FLOW_MATCH, OUT, **TIMED
            ),
            "cookie",
        ),
        (lambda: UP.add(pl.PRIO_FLOW, FLOW, FLOW_MATCH, OUT), "idle timeout"),
        (lambda: UP.add(pl.PRIO_FLOW, FLOW, FLOW_MATCH, OUT, idle_timeout=5), "SEND_FLOW_REM"),
        (
            lambda: UP.add(pl.PRIO_MISS, pl.cookie(pl.CookieKind.STATIC), [], OUT, idle_timeout=5),
            "permanent",
        ),
        (
            lambda: pl.TABLES[pl.TableId.DIRECT_IN].add(
                pl.PRIO_MISS,
                pl.cookie(pl.CookieKind.STATIC),
                [],
                [ofmsg.apply_actions([ofmsg.output(ofmsg.OFPP_CONTROLLER)])],
            ),
            "controller",
        ),
        (
            lambda: pl.TABLES[pl.TableId.TCP_END].add(
                pl.PRIO_MISS, pl.cookie(pl.CookieKind.STATIC), [], [ofmsg.write_metadata(1, 1)]
            ),
            "metadata",
        ),
        (
            lambda: pl.TABLES[pl.TableId.INGRESS].add(
                pl.PRIO_MISS,
                pl.cookie(pl.CookieKind.STATIC),
                [],
                [ofmsg.write_metadata(0x10, 0x10)],
            ),
            "metadata",
        ),
    ],
)
def test_the_table_wrapper_rejects_what_the_declaration_does_not_allow(build, message):
    with pytest.raises(pl.PipelineViolation, match=message):
        build()


def test_deletes_are_limited_to_our_cookies_unless_strict():
    pl.check_flow_mod(pl.delete_flow_rules(5))
    with pytest.raises(pl.PipelineViolation, match="sdnmip cookies"):
        pl.check_flow_mod(ofmsg.delete_by_cookie(0, 0))
    with pytest.raises(pl.PipelineViolation, match="sdnmip cookies"):
        pl.check_flow_mod(ofmsg.delete_by_cookie(pl.TESTBED_COOKIE, pl.ALL_ONES_64))
    pl.check_flow_mod(pl.delete_rule(7, 50, pl.TESTBED_COOKIE, [("in_port", 2)]))


def test_cookies_name_the_flow_and_its_role():
    c = pl.cookie(pl.CookieKind.FLOW_DOWN, 0xABCDE12345)
    assert c >> 48 == 0x5D1F
    assert pl.parse_cookie(c) == (pl.CookieKind.FLOW_DOWN, 0xABCDE12345)
    assert pl.parse_cookie(pl.TESTBED_COOKIE) is None
    assert pl.parse_cookie(0x5D1F_77_0000000001) is None  # unknown kind
    up = pl.cookie(pl.CookieKind.FLOW_UP, 9)
    assert (up ^ c) & pl.FLOW_COOKIE_MASK != 0
    assert (up ^ pl.cookie(pl.CookieKind.FLOW_DOWN, 9)) & pl.FLOW_COOKIE_MASK == 0
    with pytest.raises(ValueError, match="40 bits"):
        pl.cookie(pl.CookieKind.FLOW_UP, 1 << 40)


def test_every_fixed_rule_is_checked_and_distinct():
    rules = RuleBuilder(make_config()).static_rules()
    keys = {(r.table_id, r.priority, ofmsg.match_key(ofmsg.match_items(r.match))) for r in rules}
    assert len(keys) == len(rules)
    for r in rules:
        pl.check_flow_mod(r)
    # Every table has an explicit miss rule.
    assert {
        r.table_id for r in rules if r.priority == pl.PRIO_MISS and not r.match._fields2
    } == set(pl.TableId)


def test_goto_only_goes_forward():
    for spec in pl.PIPELINE:
        assert all(n > spec.table_id for n in spec.next_tables)
