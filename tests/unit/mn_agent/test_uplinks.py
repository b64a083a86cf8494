"""Link state per uplink from netlink observations: carrier, sticky CoA, RA default router."""

from __future__ import annotations

from ipaddress import IPv6Address

from sdnmip.mn.config import DEFAULT_UPLINKS
from sdnmip.mn_agent.api import UplinkInfo
from sdnmip.mn_agent.uplinks import UplinkTracker

WLAN, IWLAN, LTE, ILTE = 3, 5, 4, 6
C1 = IPv6Address("2001:db8:1::aa")
C1B = IPv6Address("2001:db8:1::5")
C2 = IPv6Address("2001:db8:2::aa")
R1 = IPv6Address("fe80::1")
R1B = IPv6Address("fe80::1:1")


def tracker() -> UplinkTracker:
    t = UplinkTracker(DEFAULT_UPLINKS)
    for name, idx in (("wlan", WLAN), ("iwlan", IWLAN), ("lte", LTE), ("ilte", ILTE)):
        t.link(name, idx, carrier=True)
    t.link("hoa0", 9, carrier=True)  # not an uplink's: ignored
    return t


def test_first_call_reports_every_uplink_then_only_changes():
    t = tracker()
    assert [i.name for i in t.changes()] == ["wlan", "lte"]
    assert t.changes() == []
    t.address(IWLAN, C1, usable=True, present=True)
    t.router(IWLAN, R1, 1024, present=True)
    assert t.changes() == [UplinkInfo("wlan", True, C1, R1)]
    assert t.info("wlan").usable and not t.info("lte").usable


def test_carrier_of_the_physical_port_is_the_link_state():
    t = tracker()
    t.address(IWLAN, C1, usable=True, present=True)
    t.router(IWLAN, R1, 1024, present=True)
    t.changes()
    t.link("wlan", WLAN, carrier=False)
    [info] = t.changes()
    assert (info.carrier, info.coa, info.usable) == (False, C1, False)
    t.link("iwlan", IWLAN, carrier=True)  # the kernel port's carrier does not matter
    assert t.changes() == []
    t.link("wlan", WLAN, carrier=True)
    assert t.changes()[0].usable


def test_the_coa_is_sticky_and_only_usable_addresses_count():
    t = tracker()
    t.address(IWLAN, C1, usable=False, present=True)  # tentative (DAD running)
    assert t.info("wlan").coa is None
    t.address(IWLAN, C1, usable=True, present=True)
    t.address(IWLAN, C1B, usable=True, present=True)  # lower, but C1 came first
    assert t.info("wlan").coa == C1
    t.address(IWLAN, C1, usable=False, present=True)  # deprecated
    assert t.info("wlan").coa == C1B
    t.address(IWLAN, C1B, usable=True, present=False)
    assert t.info("wlan").coa is None
    t.address(IWLAN, IPv6Address("fe80::99"), usable=True, present=True)
    assert t.info("wlan").coa is None


def test_addresses_and_routes_of_other_devices_are_ignored():
    t = tracker()
    t.address(9, C2, usable=True, present=True)
    t.router(WLAN, R1, 1024, present=True)  # on the physical port, not the kernel port
    t.changes()
    assert t.info("wlan").router is None and t.info("lte").coa is None


def test_router_choice_prefers_the_lowest_metric_and_follows_removal():
    t = tracker()
    t.router(ILTE, R1B, 1024, present=True)
    t.router(ILTE, R1, 2048, present=True)
    assert t.info("lte").router == R1B
    t.router(ILTE, R1B, 1024, present=False)
    assert t.info("lte").router == R1


def test_a_vanished_kernel_port_loses_its_addresses_and_routes():
    t = tracker()
    t.address(ILTE, C2, usable=True, present=True)
    t.router(ILTE, R1, 1024, present=True)
    t.link("ilte", ILTE, carrier=False, present=False)
    assert (t.info("lte").coa, t.info("lte").router) == (None, None)
    assert t.uplink_of_kernel_index(ILTE) is None
    t.link("ilte", 16, carrier=True)
    assert t.uplink_of_kernel_index(16) == "lte"


def test_a_new_kernel_port_device_is_a_change_even_with_the_same_addresses():
    t = tracker()
    t.changes()
    t.link("iwlan", 42, carrier=True)  # re-created by the controller: new ifindex
    assert [i.name for i in t.changes()] == ["wlan"]
    assert t.kernel_index("wlan") == 42


def test_a_full_re_read_after_reset_reports_only_real_changes():
    t = tracker()
    t.address(IWLAN, C1, usable=True, present=True)
    t.address(IWLAN, C1B, usable=True, present=True)
    t.router(IWLAN, R1, 1024, present=True)
    t.changes()
    t.reset()
    for name, idx in (("wlan", WLAN), ("iwlan", IWLAN), ("lte", LTE), ("ilte", ILTE)):
        t.link(name, idx, carrier=True)
    t.address(IWLAN, C1B, usable=True, present=True)
    t.address(IWLAN, C1, usable=True, present=True)  # re-read in another order
    t.router(IWLAN, R1, 1024, present=True)
    assert t.changes() == []  # the sticky CoA C1 survived the reset
    t.reset()
    for name, idx in (("wlan", WLAN), ("iwlan", IWLAN), ("lte", LTE), ("ilte", ILTE)):
        t.link(name, idx, carrier=True)
    t.router(IWLAN, R1, 1024, present=True)
    assert t.changes() == [UplinkInfo("wlan", True, None, R1)]  # both addresses went meanwhile
