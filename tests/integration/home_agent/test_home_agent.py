"""The Home Agent in the testbed, with the MN side played by a test client that sends
hand-built BUs (not the MN agent). One testbed and one HA for the module; every test uses its
own Home Addresses. The HA's home link is captured for the whole module and the last test has
tshark dissect every BU and BA.

Run: SDNMIP_TEST_PREFIX=ha pytest -m integration tests/integration/home_agent
"""

from __future__ import annotations

import json
import signal
import subprocess
import time
from collections.abc import Iterator
from ipaddress import IPv6Address, IPv6Network
from pathlib import Path

import pytest

from sdnmip.home_agent.cache import home_agents_anycast
from sdnmip.mipv6 import (
    BindingAcknowledgement,
    BindingError,
    BindingRefreshAdvice,
    HomeAgentAddressDiscoveryReply,
    HomeAgentAddressDiscoveryRequest,
    MnHaKey,
    MobileNodeIdentifier,
    MobilePrefixAdvertisement,
    MobilePrefixSolicitation,
    MobilityMessageAuthentication,
    MobilityMessageReplayProtection,
    UnknownMobilityMessage,
    build_icmpv6_packet,
    build_mh_packet,
    find_option,
    unix_time,
)
from sdnmip.testbed import Testbed
from sdnmip.testbed.ha_service import HaService
from tests.integration.home_agent.ha_testlib import (
    MnClient,
    add_hoa,
    build_echo,
    move_hoa,
    poll,
    setup_mn_datapath,
    tunnel,
    tunnelled_counts,
)

TESTBED_PROFILE = "fast"
NAI1, NAI2 = "mn1@sdnmip.example", "mn2@sdnmip.example"
K1 = MnHaKey(4096, bytes.fromhex("5d1f5d1f0011223344556677a5a5a5a5"))
K2 = MnHaKey(4097, bytes.fromhex("00ff00ff102030405060708090a0b0c0"))
DAD_S = 0.5
PREFIX = "2001:db8:100:"


def hoa(n: int) -> str:
    return f"2001:db8:100::{n:x}"


class Mn:
    """One mobile node of the tests: its NAI and key, and a sequence number per HoA."""

    def __init__(self, client: MnClient, nai: str, key: MnHaKey) -> None:
        self.client, self.nai, self.key = client, nai, key
        self.seqs: dict[str, int] = {}
        self.sent = 0

    def next_seq(self, h: str) -> int:
        self.seqs[h] = (self.seqs.get(h, 0) + 1) % 65536
        return self.seqs[h]

    def bu(self, h: str, uplink: str, **kw) -> tuple[int, bytes]:  # type: ignore[no-untyped-def]
        seq = kw.pop("seq", None) or self.next_seq(h)
        kw.setdefault("nai", self.nai)
        kw.setdefault("key", self.key)
        packet = self.client.bu(h, uplink, seq, **kw)
        self.sent += 1
        return seq, packet

    def register(self, h: str, uplink: str, timeout: float = 5.0, **kw) -> BindingAcknowledgement:  # type: ignore[no-untyped-def]
        seq, _ = self.bu(h, uplink, **kw)
        return self.client.ba(seq, h, timeout).packet.message  # type: ignore[return-value]


# ------------------------------------------------------------------------------ fixtures
@pytest.fixture(scope="module")
def capture(testbed: Testbed) -> Iterator[dict]:  # type: ignore[type-arg]
    """tcpdump on the HA's home link: every BU arriving and BA leaving (started first)."""
    pcap = Path(testbed.state_dir) / "ha-signalling.pcap"
    proc = subprocess.Popen(
        ["ip", "netns", "exec", testbed.ns("ha"), "tcpdump", "-i", "home0", "-n", "-U",
         "--immediate-mode", "-s", "0", "-w", str(pcap), "ip6 and (ip6[6] == 60 or ip6[6] == 43 "
         "or ip6[6] == 135)"],
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
    )  # fmt: skip
    poll("tcpdump to start", lambda: pcap.exists() and pcap.stat().st_size > 0, 30)
    state = {"pcap": pcap, "proc": proc}
    yield state
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=5)


@pytest.fixture(scope="module")
def ha(testbed: Testbed, capture: dict) -> Iterator[HaService]:  # type: ignore[type-arg]
    svc = HaService.prepare(
        testbed,
        {NAI1: (K1.spi, K1.key), NAI2: (K2.spi, K2.key)},
        dad={"transmits": 1, "retrans_timer": DAD_S},
        unsolicited_na={"count": 2, "interval": 0.2},
    )
    svc.start()
    yield svc
    if svc.alive():
        svc.stop()


@pytest.fixture(scope="module")
def client(testbed: Testbed, ha: HaService) -> Iterator[MnClient]:
    c = MnClient(testbed, ha.address)
    setup_mn_datapath(testbed, ha.address)
    # Count reverse-tunnelled packets at the HA (what its decap accepts), per CoA and HoA.
    testbed.run("ha", "nft", "-f", "-", input="table inet ha_test {\n\tchain pre { type filter "
                "hook prerouting priority -10; policy accept; }\n}\n")  # fmt: skip
    yield c
    c.close()


@pytest.fixture(scope="module")
def mn1(client: MnClient) -> Mn:
    return Mn(client, NAI1, K1)


@pytest.fixture(scope="module")
def mn2(client: MnClient) -> Mn:
    return Mn(client, NAI2, K2)


def ha_route(tb: Testbed, h: str) -> str:
    return tb.run("ha", "ip", "-6", "route", "show", h).stdout.strip()


def ha_proxies(tb: Testbed) -> str:
    return tb.run("ha", "ip", "-6", "neigh", "show", "proxy").stdout


def ping(tb: Testbed, target: str, count: int = 10, interval: float = 0.05) -> int:
    out = tb.run("cn1", "ping", "-n", "-q", "-c", str(count), "-i", str(interval), "-W", "1",
                 target, check=False, timeout=30).stdout  # fmt: skip
    return int(out.split(" received")[0].rsplit(" ", 1)[-1]) if " received" in out else 0


def count_reverse(tb: Testbed, coa: IPv6Address, h: str) -> None:
    tb.run("ha", "nft", "add", "rule", "inet", "ha_test", "pre", "ip6", "saddr", str(coa), "ip6",
           "nexthdr", "41", "@nh,384,128", f"0x{int(IPv6Address(h)):032x}", "counter", "comment",
           f"\"{coa}>{h}\"")  # fmt: skip


def reverse_counts(tb: Testbed) -> dict[str, int]:
    out = json.loads(tb.run("ha", "nft", "-j", "list", "table", "inet", "ha_test").stdout)
    return {
        o["rule"]["comment"]: e["counter"]["packets"]
        for o in out["nftables"]
        if "rule" in o and "comment" in o["rule"]
        for e in o["rule"]["expr"]
        if "counter" in e
    }


def delta(before: dict[str, int], after: dict[str, int], key: str) -> int:
    return after.get(key, 0) - before.get(key, 0)


# ------------------------------------------------------------------------------ tests
def test_register_from_coa1_gets_status_0_in_an_authenticated_ba(testbed, ha, client, mn1):
    h = hoa(0xA1)
    t0 = time.monotonic()
    seq, _ = mn1.bu(h, "wlan", lifetime=100)
    answer = client.ba(seq, h)
    elapsed = time.monotonic() - t0
    ba = answer.packet.message
    assert ba.status == 0 and ba.sequence == seq and ba.lifetime == 100
    assert elapsed >= DAD_S * 0.9, "a first registration waits for DAD on the home link"
    # RFC 6275 §9.5.4 / RFC 4285: to the CoA with a type 2 routing header, signed with K1.
    assert answer.uplink == "wlan" and answer.packet.dst == client.coas["wlan"]
    assert answer.packet.rh2_address == IPv6Address(h)
    assert answer.packet.verify_mn_ha(K1.key) and not answer.packet.verify_mn_ha(K2.key)
    assert find_option(ba.options, MobileNodeIdentifier).nai == NAI1
    assert find_option(ba.options, BindingRefreshAdvice).refresh_interval == 80
    # The kernel state: binding route, proxy ND, the §10.4.5 set, as the HA reports it.
    coa = str(client.coas["wlan"])
    assert f"encap seg6 mode encap.red segs 1 [ {coa} ]" in ha_route(testbed, h)
    assert h in ha_proxies(testbed)
    elements = testbed.run("ha", "nft", "list", "set", "inet", "sdnmip_ha", "bindings").stdout
    assert f"{coa} . 0x{int(IPv6Address(h)):032x}" in elements
    b = ha.bindings()[h]
    assert (b["careof"], b["nai"], b["sequence"], b["lifetime"]) == (coa, NAI1, seq, 400)
    # A refresh from the same CoA: no DAD, answered at once, the route untouched.
    t0 = time.monotonic()
    assert mn1.register(h, "wlan").status == 0
    assert time.monotonic() - t0 < DAD_S


def test_cn1_ping_and_iperf3_reach_the_hoa_through_the_tunnel(testbed, ha, client, mn1):
    h = hoa(0xB1)
    assert mn1.register(h, "wlan").status == 0
    add_hoa(testbed, h, "wlan")
    count_reverse(testbed, client.coas["wlan"], h)
    before, rev0 = tunnelled_counts(testbed), reverse_counts(testbed)
    assert ping(testbed, h, count=20) == 20
    after, rev1 = tunnelled_counts(testbed), reverse_counts(testbed)
    assert delta(before, after, f"wlan:{h}") >= 20 and delta(before, after, f"lte:{h}") == 0
    # The replies went back through the reverse tunnel, decapsulated by the HA.
    assert delta(rev0, rev1, f"{client.coas['wlan']}>{h}") >= 20
    server = subprocess.Popen(
        ["ip", "netns", "exec", testbed.ns("mn"), "iperf3", "-s", "-1", "-B", h, "-p", "5301"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        poll("iperf3 listening on the HoA",
             lambda: f"[{h}]:5301" in testbed.run("mn", "ss", "-6ltn").stdout)  # fmt: skip
        proc = testbed.run("cn1", "iperf3", "-c", h, "-p", "5301", "-t", "2", "-J",
                           check=False, timeout=30)  # fmt: skip
        assert proc.returncode == 0, f"iperf3 from CN1 to the HoA failed: {proc.stdout[-500:]}"
        result = json.loads(proc.stdout)
    finally:
        server.kill()
        server.wait(timeout=5)
    received = result["end"]["sum_received"]["bytes"]
    assert received > 1_000_000
    final = tunnelled_counts(testbed)
    assert (
        delta(after, final, f"wlan:{h}") > received // 1500 and delta(after, final, f"lte:{h}") == 0
    )


def test_rebinding_to_coa2_moves_that_hoa_to_lte_and_leaves_the_other_on_wlan(
    testbed, ha, client, mn1
):
    moved, stays = hoa(0xC1), hoa(0xC2)
    s1, _ = mn1.bu(moved, "wlan")
    s2, _ = mn1.bu(stays, "wlan")  # two registrations, one DAD period
    assert client.ba(s1, moved).packet.message.status == 0
    assert client.ba(s2, stays).packet.message.status == 0
    add_hoa(testbed, moved, "wlan")
    add_hoa(testbed, stays, "wlan")
    # A steady ping to the HoA that stays, across the rebinding of the other.
    steady = subprocess.Popen(
        ["ip", "netns", "exec", testbed.ns("cn1"), "ping", "-n", "-q", "-c", "150", "-i", "0.01",
         stays], stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    start = tunnelled_counts(testbed)[f"wlan:{stays}"]
    poll("the steady ping to flow", lambda: tunnelled_counts(testbed)[f"wlan:{stays}"] > start + 5)
    seq, _ = mn1.bu(moved, "lte")
    answer = client.ba(seq, moved)
    assert answer.packet.message.status == 0 and answer.uplink == "lte"
    move_hoa(testbed, moved, "lte")
    out, _ = steady.communicate(timeout=20)
    assert "150 received" in out, out
    assert f"segs 1 [ {client.coas['lte']} ]" in ha_route(testbed, moved)
    assert f"segs 1 [ {client.coas['wlan']} ]" in ha_route(testbed, stays)
    before = tunnelled_counts(testbed)
    assert ping(testbed, moved) == 10 and ping(testbed, stays) == 10
    after = tunnelled_counts(testbed)
    assert delta(before, after, f"lte:{moved}") >= 10 and delta(before, after, f"wlan:{moved}") == 0
    assert delta(before, after, f"wlan:{stays}") >= 10 and delta(before, after, f"lte:{stays}") == 0
    assert ha.status()["counters"]["handovers"] >= 1


def test_deregistration_makes_the_hoa_unreachable_and_stops_proxy_nd(testbed, ha, client, mn1):
    h = hoa(0xD1)
    assert mn1.register(h, "wlan").status == 0
    add_hoa(testbed, h, "wlan")
    assert ping(testbed, h, count=3) == 3
    ba = mn1.register(h, "wlan", lifetime=0)
    assert (ba.status, ba.lifetime) == (0, 0)
    assert ha_route(testbed, h) == "" and h not in ha_proxies(testbed)
    assert h not in ha.bindings()
    # The core router forgets the HA's link-layer address for the HoA and asks again: no one
    # answers any more (the HA's proxy ND stopped).
    testbed.run("core", "ip", "-6", "neigh", "del", h, "dev", "home", check=False)
    assert ping(testbed, h, count=3, interval=0.3) == 0
    state = testbed.run("core", "ip", "-6", "neigh", "show", h, "dev", "home").stdout
    assert "lladdr" not in state, state


def test_unsolicited_nas_point_the_home_link_at_the_ha(testbed, ha, client, mn1):
    """RFC 6275 §10.4.1: a node holding a stale mapping for the HoA (here the core router)
    learns the HA's link-layer address from the HA's unsolicited, overriding NAs."""
    h = hoa(0xD5)
    testbed.run("core", "ip", "-6", "neigh", "replace", h, "lladdr", "02:00:00:00:00:99",
                "dev", "home", "nud", "stale")  # fmt: skip
    ha_mac = testbed.run("ha", "cat", "/sys/class/net/home0/address").stdout.strip()
    assert mn1.register(h, "wlan").status == 0
    poll(
        "the core's neighbour entry to follow the HA's NA",
        lambda: ha_mac in testbed.run("core", "ip", "-6", "neigh", "show", h, "dev", "home").stdout,
        timeout=3,
    )


def test_a_binding_expires_at_the_end_of_its_lifetime(testbed, ha, client, mn1):
    h = hoa(0xD6)
    ba = mn1.register(h, "wlan", lifetime=1)  # 4 s
    assert (ba.status, ba.lifetime) == (0, 1)
    assert h in ha.bindings()
    t0 = time.monotonic()
    poll("the binding to expire", lambda: ha_route(testbed, h) == "", timeout=8, interval=0.1)
    assert 3.0 <= time.monotonic() - t0 <= 5.5
    assert h not in ha.bindings() and h not in ha_proxies(testbed)
    assert ha.status()["counters"]["expired"] >= 1


def test_a_home_address_in_use_on_the_home_link_is_refused_with_134(testbed, ha, client, mn1):
    h = hoa(0xE1)
    testbed.run("core", "ip", "-6", "addr", "add", f"{h}/64", "dev", "home", "nodad")
    try:
        failed_before = ha.status()["counters"]["dad_failed"]
        ba = mn1.register(h, "wlan")
        assert ba.status == 134
        assert h not in ha.bindings() and ha_route(testbed, h) == ""
        assert ha.status()["counters"]["dad_failed"] == failed_before + 1
    finally:
        testbed.run("core", "ip", "-6", "addr", "del", f"{h}/64", "dev", "home")
    assert mn1.register(h, "wlan").status == 0  # free again: DAD succeeds


def test_wrong_key_replay_and_a_second_mn_are_refused_and_change_nothing(
    testbed, ha, client, mn1, mn2
):
    h = hoa(0xF1)
    seq, original = mn1.bu(h, "wlan")
    assert client.ba(seq, h).packet.message.status == 0

    def state() -> tuple[dict[str, object], str]:
        # The binding as the HA holds it, minus `remaining`, which counts down while we test.
        binding = {k: v for k, v in ha.bindings()[h].items() if k != "remaining"}
        return binding, ha_route(testbed, h)

    snapshot = state()

    def refused(seq: int, status: int) -> BindingAcknowledgement:
        answer = client.ba(seq, h)
        assert answer.packet.message.status == status
        assert state() == snapshot
        return answer

    # Wrong key: 146, and the HA cannot sign (it holds no key the sender proved).
    s, _ = mn1.bu(h, "lte", key=MnHaKey(K1.spi, bytes(16)))
    answer = refused(s, 146)
    assert find_option(answer.packet.message.options, MobilityMessageAuthentication) is None
    # The captured registration, replayed byte for byte: 144, with the HA's clock.
    client.send(original, "wlan")
    mn1.sent += 1
    answer = refused(seq, 144)
    stamp = find_option(answer.packet.message.options, MobilityMessageReplayProtection).timestamp
    assert abs(unix_time(stamp) - time.time()) < 2 and answer.packet.verify_mn_ha(K1.key)
    # A fresh sequence number with a timestamp 30 s old: 144 as well.
    s, _ = mn1.bu(h, "lte", ts_wall=time.time() - 30)
    refused(s, 144)
    # Another MN claiming the HoA: 134 (in use); trying to remove it: 133.
    s, _ = mn2.bu(h, "lte")
    assert refused(s, 134).packet.verify_mn_ha(K2.key)
    s, _ = mn2.bu(h, "lte", lifetime=0)
    refused(s, 133)
    assert mn1.register(h, "wlan").status == 0  # the owner still can


def test_binding_errors_for_an_unknown_mh_type_and_for_an_unbound_home_address(
    testbed, ha, client, mn1
):
    coa = client.coas["wlan"]
    unknown = UnknownMobilityMessage(mh_type=200, message_data=bytes(2))
    client.send(build_mh_packet(coa, client.ha, unknown), "wlan")
    be = client.wait_for(lambda a: isinstance(a.packet.message, BindingError)).packet.message
    assert be.status == 2
    # Reverse-tunnelled traffic from a HoA nobody registered: status 1 for that HoA.
    stranger = IPv6Address(hoa(0x99))
    inner = build_echo(stranger, IPv6Address(testbed.addr("cn1", "eth0")))
    client.send(tunnel(coa, client.ha, inner), "wlan")
    be = client.wait_for(lambda a: isinstance(a.packet.message, BindingError)).packet.message
    assert (be.status, be.home_address) == (1, stranger)
    # From the wrong CoA for a bound HoA (RFC 6275 §10.4.5): dropped, no Binding Error.
    h = hoa(0xA1)
    assert h in ha.bindings()
    inner = build_echo(IPv6Address(h), IPv6Address(testbed.addr("cn1", "eth0")))
    client.send(tunnel(client.coas["lte"], client.ha, inner), "lte")
    assert [a for a in client.nothing_for(0.5) if isinstance(a.packet.message, BindingError)] == []


def test_mobile_prefix_and_home_agent_address_discovery(testbed, ha, client, mn1):
    h = hoa(0xA1)  # bound at the wlan CoA by the first test
    solicitation = MobilePrefixSolicitation(identifier=7)
    mps = build_icmpv6_packet(
        client.coas["wlan"], client.ha, solicitation, home_address=IPv6Address(h), hop_limit=64
    )
    client.send(mps, "wlan")
    answer = client.wait_for(lambda a: isinstance(a.packet.message, MobilePrefixAdvertisement))
    assert answer.packet.rh2_address == IPv6Address(h) and answer.packet.message.identifier == 7
    (prefix,) = answer.packet.message.prefixes
    assert (str(prefix.prefix), prefix.prefix_length) == ("2001:db8:100::", 64)
    anycast = home_agents_anycast(IPv6Network("2001:db8:100::/64"))
    request = HomeAgentAddressDiscoveryRequest(identifier=9)
    req = build_icmpv6_packet(client.coas["lte"], anycast, request, hop_limit=64)
    client.send(req, "lte")
    reply = client.wait_for(
        lambda a: isinstance(a.packet.message, HomeAgentAddressDiscoveryReply)
    ).packet.message
    assert reply.identifier == 9 and reply.home_agent_addresses == (client.ha,)


def test_status_command_lists_the_bindings(testbed, ha, client):
    """`sdnmip ha status` (table and --json) as an operator runs it."""
    argv = [*testbed.sdnmip_argv("ha", "status", "--config", str(ha.config_path))]
    table = subprocess.run(argv, capture_output=True, text=True, timeout=20, check=True,
                           env=testbed.python_env()).stdout  # fmt: skip
    print(table)
    lines = table.splitlines()
    assert lines[0].startswith(f"home agent {ha.address} ")
    assert lines[1].split()[:2] == ["HOME", "ADDRESS"]
    rows = {line.split()[0]: line.split() for line in lines[2:] if line.startswith(PREFIX)}
    bindings = ha.bindings()
    assert set(rows) == set(bindings)
    h = hoa(0xC1)
    assert rows[h][1:3] == [str(client.coas["lte"]), NAI1]
    assert "BUs by BA status: 0:" in table and "DAD run" in table
    as_json = subprocess.run([*argv, "--json"], capture_output=True, text=True, timeout=20,
                             check=True, env=testbed.python_env()).stdout  # fmt: skip
    st = json.loads(as_json)
    assert {b["home_address"] for b in st["bindings"]} == set(bindings)
    assert st["counters"]["bu_by_status"]["134"] >= 2 and st["counters"]["bu_by_status"]["146"] >= 1


def test_a_second_ha_on_the_same_store_refuses_to_start_and_touches_nothing(testbed, ha):
    def state():  # type: ignore[no-untyped-def]
        bindings = {k: (v["careof"], v["sequence"]) for k, v in ha.bindings().items()}
        return bindings, testbed.run("ha", "ip", "-6", "route", "show", "proto", "93").stdout

    before = state()
    proc = testbed.run("ha", *ha.argv(), check=False, env=testbed.python_env(), timeout=20)
    assert proc.returncode == 1 and "another home agent holds" in proc.stderr
    assert state() == before and ha.alive()


def test_ha_restart_restores_bindings_and_traffic(testbed, ha, client, mn1):
    on_wlan, on_lte = hoa(0xB1), hoa(0xC1)  # from the ping/iperf3 and rebinding tests
    before = ha.bindings()
    assert before[on_lte]["careof"] == str(client.coas["lte"])
    assert ha.stop() == 0
    # A clean stop removes the kernel state and keeps the store.
    assert testbed.run("ha", "ip", "-6", "route", "show", "proto", "93").stdout == ""
    assert ha_proxies(testbed).strip() == ""
    assert "sdnmip_ha" not in testbed.run("ha", "nft", "list", "tables").stdout
    assert "lookup 250" not in testbed.run("ha", "ip", "-6", "rule").stdout
    assert ping(testbed, on_wlan, count=2) == 0
    ha.start()
    after = ha.bindings()
    assert {k: (v["careof"], v["sequence"], v["nai"]) for k, v in after.items()} == {
        k: (v["careof"], v["sequence"], v["nai"]) for k, v in before.items()
    }
    counts0 = tunnelled_counts(testbed)
    assert ping(testbed, on_wlan) == 10 and ping(testbed, on_lte) == 10
    counts1 = tunnelled_counts(testbed)
    assert delta(counts0, counts1, f"wlan:{on_wlan}") >= 10
    assert delta(counts0, counts1, f"lte:{on_lte}") >= 10
    # The sequence window survived too.
    stale = mn1.seqs[on_wlan]
    s, _ = mn1.bu(on_wlan, "wlan", seq=stale)
    assert client.ba(s, on_wlan).packet.message.status == 135
    # A crash leaves the kernel state behind; the next start takes it over and restores.
    ha.kill()
    assert testbed.run("ha", "ip", "-6", "route", "show", "proto", "93").stdout != ""
    ha.start()
    assert "left by a previous HA" in ha.log_text()
    assert set(ha.bindings()) == set(before)
    assert ping(testbed, on_wlan, count=3) == 3


def test_a_corrupt_store_is_reported_and_the_ha_starts_empty(testbed, ha, client, mn1):
    ha.stop()
    ha.database.write_bytes(b"definitely not SQLite\n" * 200)
    ha.start()
    assert ha.alive() and ha.bindings() == {}
    assert "is unreadable" in ha.log_text() and "starting with no bindings" in ha.log_text()
    assert mn1.register(hoa(0xA2), "wlan").status == 0  # and works


def test_secrets_never_appear_in_logs_status_or_command_lines(testbed, ha):
    text = ha.log_text() + ha.status_json()
    cmdline = Path(f"/proc/{ha.process.pid}/cmdline").read_bytes().decode()
    for key in (K1.key, K2.key):
        for form in (key.hex(), key.hex().upper(), repr(key)):
            assert form not in text and form not in cmdline


def test_every_bu_and_ba_on_the_wire_is_dissected_by_tshark(testbed, capture, mn1, mn2):
    proc = capture["proc"]
    proc.send_signal(signal.SIGTERM)
    proc.wait(timeout=5)
    pcap = str(capture["pcap"])

    def tshark(*args: str) -> list[list[str]]:
        proc = subprocess.run(["tshark", "-r", pcap, *args], capture_output=True, text=True,
                              timeout=60, check=False)  # fmt: skip
        assert proc.returncode == 0, f"tshark {' '.join(args)}: {proc.stderr.strip()}"
        return [line.split("|") for line in proc.stdout.splitlines() if line]

    rows = tshark(
        "-Y", "mipv6", "-T", "fields", "-E", "separator=|", "-e", "frame.number",
        "-e", "mip6.mhtype", "-e", "_ws.expert.severity", "-e", "_ws.expert.message",
    )  # fmt: skip
    bus = [r for r in rows if r[1] == "5"]
    bas = [r for r in rows if r[1] == "6"]
    assert len(bus) == mn1.sent + mn2.sent, "every BU the tests sent reached the HA"
    assert len(bas) == len(bus), "every BU (all with the A flag) got exactly one BA"
    # No expert warning or error on any BU or BA (severity 0x600000 is "warning").
    flagged = [r for r in bus + bas if r[2] and max(int(x, 0) for x in r[2].split(",")) >= 0x600000]
    assert flagged == [], f"tshark expert info on {flagged}"
    malformed = tshark("-Y", "mipv6 && _ws.malformed", "-T", "fields", "-e", "frame.number")
    assert malformed == [], f"tshark found malformed frames {malformed}"
