"""The hand-encoded netlink messages, decoded by pyroute2 as an independent reference; the nft
table text; and the `sdnmip ha` command line (config check, one-line errors, status table)."""

from __future__ import annotations

import os
from ipaddress import IPv6Address
from pathlib import Path

import pytest
import yaml
from pyroute2.netlink.nfnetlink.nftsocket import nft_set_elem_list_msg
from pyroute2.netlink.rtnl.ndmsg import ndmsg
from pyroute2.netlink.rtnl.rtmsg import rtmsg

import sdnmip.kernel.tunnel  # noqa: F401  (teaches pyroute2's decoder the encap.red mode)
from sdnmip.home_agent import cli
from sdnmip.home_agent.dataplane import render_table
from sdnmip.home_agent.nlbatch import (
    NFT_MSG_DELSETELEM,
    NFT_MSG_NEWSETELEM,
    RTPROT_SDNMIP_HA,
    _chunks,
    binding_key,
    encode_proxy,
    encode_route_delete,
    encode_route_replace,
    encode_setelem,
)

HOA = IPv6Address("2001:db8:100::1000")
COA = IPv6Address("2001:db8:1::10")
HA = IPv6Address("2001:db8:100::1")


def attrs(msg) -> dict:  # type: ignore[no-untyped-def,type-arg]
    return dict((k, v) for k, v, *_ in msg["attrs"])


def test_route_replace_is_the_encap_red_route_iproute2_would_send():
    m = rtmsg(encode_route_replace(7, HOA, COA, 3))
    m.decode()
    a = attrs(m)
    assert (m["family"], m["dst_len"], m["table"], m["proto"]) == (10, 128, 254, RTPROT_SDNMIP_HA)
    assert m["header"]["flags"] & 0x100 and m["header"]["flags"] & 0x400  # REPLACE | CREATE
    assert (a["RTA_DST"], a["RTA_OIF"], a["RTA_ENCAP_TYPE"]) == (str(HOA), 3, 5)
    srh = attrs(a["RTA_ENCAP"])["SEG6_IPTUNNEL_SRH"]
    assert srh["mode"] == "encap.red" and srh["segs"] == [str(COA)]
    assert (srh["type"], srh["hdrlen"], srh["segments_left"], srh["first_segment"]) == (4, 2, 0, 0)
    assert m["header"]["length"] == len(encode_route_replace(7, HOA, COA, 3))


def test_route_delete_and_proxy_messages():
    m = rtmsg(encode_route_delete(8, HOA))
    m.decode()
    assert m["header"]["type"] == 25 and attrs(m)["RTA_DST"] == str(HOA)
    n = ndmsg(encode_proxy(9, HOA, 4, add=True))
    n.decode()
    assert (n["header"]["type"], n["ifindex"], n["flags"], n["state"]) == (28, 4, 8, 0x80)
    assert attrs(n) == {"NDA_DST": str(HOA), "NDA_PROTOCOL": RTPROT_SDNMIP_HA}
    d = ndmsg(encode_proxy(10, HOA, 4, add=False))
    d.decode()
    assert d["header"]["type"] == 29 and d["flags"] == 8


@pytest.mark.parametrize("add", [True, False])
def test_set_element_message_carries_coa_then_hoa(add: bool):
    e = nft_set_elem_list_msg(encode_setelem(11, "sdnmip_ha", "bindings", [binding_key(COA, HOA)],
                                             add=add))  # fmt: skip
    e.decode()
    subtype = NFT_MSG_NEWSETELEM if add else NFT_MSG_DELSETELEM
    assert e["header"]["type"] == (10 << 8) | subtype and e["nfgen_family"] == 1
    a = attrs(e)
    assert (a["NFTA_SET_ELEM_LIST_TABLE"], a["NFTA_SET_ELEM_LIST_SET"]) == ("sdnmip_ha", "bindings")
    (elem,) = a["NFTA_SET_ELEM_LIST_ELEMENTS"]
    key = attrs(attrs(elem)["NFTA_SET_ELEM_KEY"])["NFTA_DATA_VALUE"]
    assert key == COA.packed + HOA.packed


def test_batches_are_cut_so_that_acks_fit():
    msgs = [encode_route_replace(i, HOA, COA, 3) for i in range(1000)]
    chunks = _chunks(msgs)
    assert b"".join(chunks) == b"".join(msgs) and all(len(c) <= 60_000 for c in chunks)
    assert len(chunks) == 4  # 256 messages per send at most


def test_nft_table_drops_spurious_errors_and_checks_reverse_tunnels():
    text = render_table(HA, True)
    assert "elements = { 2001:db8:100::1 }" in text
    assert 'icmpv6 code 2 @th,112,8 60 counter drop comment "pp-hao"' in text
    assert "!= @bindings limit rate 50/second counter meta mark set 0x5d1f0029 accept" in text
    assert '!= @bindings counter drop comment "rt-check"' in text
    assert "prerouting" not in render_table(HA, False)


# ------------------------------------------------------------------------------ CLI
def write(tmp: Path, keys_mode: int = 0o600) -> Path:
    keys = tmp / "keys.yaml"
    entry = {"spi": 300, "secret": "11" * 16}
    keys.write_text(yaml.safe_dump({"mobile_nodes": {"a@b.example": entry}}))
    os.chmod(keys, keys_mode)
    cfg = tmp / "ha.yaml"
    cfg.write_text(yaml.safe_dump({
        "home_link": "home0", "address": "2001:db8:100::1",
        "home_prefixes": [{"prefix": "2001:db8:100::/64"}], "keys_file": str(keys),
        "database": str(tmp / "db.sqlite"), "control_socket": str(tmp / "ha.sock"),
    }))  # fmt: skip
    return cfg


def test_check_rejects_keys_readable_by_others_in_one_line(tmp_path: Path, capsys):
    assert cli.main(["--config", str(write(tmp_path, 0o644)), "--check"]) == cli.EXIT_CONFIG
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and err.startswith("sdnmip ha: keys file ") and "chmod 600" in err
    assert "11" * 16 not in err


def test_check_names_the_bad_field(tmp_path: Path, capsys):
    cfg = write(tmp_path)
    cfg.write_text(cfg.read_text() + "dad: {transmits: many}\n")
    assert cli.main(["--config", str(cfg), "--check"]) == cli.EXIT_CONFIG
    assert "dad.transmits: must be an integer" in capsys.readouterr().err


@pytest.mark.skipif(os.geteuid() != 0, reason="the keys file must belong to root")
def test_check_accepts_a_good_configuration(tmp_path: Path, capsys):
    assert cli.main(["--config", str(write(tmp_path)), "--check"]) == cli.EXIT_OK
    assert "valid; 1 mobile node key(s)" in capsys.readouterr().out


def test_status_without_a_daemon_is_one_clear_error(tmp_path: Path, capsys):
    assert cli.main(["status", "--socket", str(tmp_path / "none.sock")]) == cli.EXIT_RUNTIME
    assert "no answer on" in capsys.readouterr().err


def test_status_table():
    st = {
        "home_agent": "2001:db8:100::1", "pid": 42, "uptime": 12.3,
        "counters": {"bindings": 1, "dad_running": 0, "bu_by_status": {"0": 3, "135": 1},
                     "ba_sent": 4, "be_sent": 0, "be_suppressed": 0, "dad_started": 1,
                     "dad_failed": 0, "registrations": 1, "handovers": 1, "refreshes": 1,
                     "deregistrations": 0, "expired": 0},
        "bindings": [{"home_address": str(HOA), "careof": str(COA), "nai": "a@b.example",
                      "sequence": 3, "lifetime": 400, "remaining": 390.2}],
    }  # fmt: skip
    text = cli.format_status(st)
    lines = text.splitlines()
    assert lines[1].split() == ["HOME", "ADDRESS", "CARE-OF", "ADDRESS", "NAI", "SEQ", "LIFETIME",
                                "REMAINING"]  # fmt: skip
    assert lines[2].split() == [str(HOA), str(COA), "a@b.example", "3", "400", "s", "390", "s"]
    assert "BUs by BA status: 0: 3, 135: 1" in text


def test_requeue_and_drop_keep_the_other_messages():
    from sdnmip.home_agent.nlbatch import Failure, RouteBatch

    rb = RouteBatch.__new__(RouteBatch)  # no socket needed to queue
    rb._msgs, rb._expect = [], {}
    first = encode_route_replace(1, HOA, COA, 3)
    other = encode_route_replace(2, IPv6Address("2001:db8:100::2"), COA, 3)
    failure = Failure("route replace", 12, first, HOA)
    assert failure.retriable and not Failure("nft", 12, b"").retriable
    rb.requeue([failure])
    rb._queue(2, other, "other", None)
    assert rb._msgs == [first, other] and set(rb._expect) == {1, 2}
    rb.drop([failure])
    assert rb._msgs == [other] and set(rb._expect) == {2}
