"""MTUs of the bridge's internal ports, from their uplinks' MTUs."""

from __future__ import annotations

import pytest

from sdnmip.controller.bridge import BridgeError, BridgeSpec, UplinkSpec, plan_mtus

SPEC = BridgeSpec(
    "br-mn", "netdev", "hoa0",
    (UplinkSpec("wlan", "wlan", "iwlan"), UplinkSpec("lte", "lte", "ilte")),
    "tcp:127.0.0.1:6653",
)  # fmt: skip


def test_kernel_ports_take_their_uplinks_mtu_and_the_hoa_port_fits_the_tunnel() -> None:
    m = plan_mtus(SPEC, {"wlan": 1600, "lte": 1500})
    assert m.kernel_port == {"iwlan": 1600, "ilte": 1500}
    assert m.hoa_port == 1460  # the smallest uplink minus the 40-byte tunnel header


def test_large_uplinks_keep_inner_packets_at_ethernet_size() -> None:
    assert plan_mtus(SPEC, {"wlan": 9000, "lte": 1600}).hoa_port == 1500


def test_an_uplink_too_small_for_ipv6_in_ipv6_is_refused() -> None:
    with pytest.raises(BridgeError, match="RFC 8200"):
        plan_mtus(SPEC, {"wlan": 1300, "lte": 1600})
