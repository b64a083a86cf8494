"""The MN's Open vSwitch bridge, set up through OVSDB before the controller starts.

Owns: making the bridge exactly what the controller needs (datapath type, OpenFlow 1.3 only,
fail_mode secure, in-band control off), its ports (each uplink's physical port, one internal
port per uplink where the kernel holds that uplink's CoA, the internal HoA port), the MTUs and
MAC addresses of the internal ports, the controller target, and reading back what the logic
needs (ofports, MACs, datapath id) as `BridgePorts`.
Must not: install OpenFlow rules (the controller does, after it connects), parse `ovs-vsctl`
output (sdnmip/ovsdb does the transactions), or configure the kernel side of the ports (the
agent owns addresses, routes and the tunnel data path).

Idempotent: run again on a configured bridge it changes nothing, which matters because
ovs-vswitchd flushes a bridge's flow table when its controller set goes from none to some; a
controller restart must find the established flows where they were (fail_mode secure keeps
them while no controller is connected).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sdnmip.controller.config import UplinkPorts
from sdnmip.ovsdb.idl import Ovsdb, OvsdbError

OPENFLOW_VERSION = "OpenFlow13"
FAIL_MODE = "secure"
TUNNEL_OVERHEAD = 40  # RFC 2473 §4: the IPv6 header the tunnel entry point adds
MAX_INNER_MTU = 1500  # what correspondents on Ethernet expect; larger inner packets only hurt
# ovs-vswitchd reconnects to a lost controller with a back-off that grows to this (default 8 s);
# a restarted controller process should get the switch back within a second. (Open vSwitch
# 3.1.0 was seen to back off 1, 2, 4, 8 s regardless; the rules keep forwarding meanwhile.)
CONTROLLER_MAX_BACKOFF_MS = 1000
# Packet-ins OVS queues per controller connection before dropping (OVS allows 1..512; default
# 100): a burst of new flows should wait, not be lost.
CONTROLLER_QUEUE_SIZE = 512
# OVS probes a silent controller after this long and drops it if the probe goes unanswered as
# long again (default 5 s). A local controller busy reconciling a large table must not be
# dropped mid-way (and start over); a dead one is noticed by the closed connection anyway.
CONTROLLER_INACTIVITY_PROBE_MS = 30_000


class BridgeError(RuntimeError):
    """The bridge cannot be set up as configured; the message names the port or setting."""


@dataclass(frozen=True, slots=True)
class UplinkSpec:
    name: str  # the uplink's name in the configuration (wlan, lte, ...)
    port: str  # the physical interface (its carrier is the link state)
    kernel_port: str  # the internal port where the kernel holds the uplink's CoA


@dataclass(frozen=True, slots=True)
class BridgeSpec:
    name: str
    datapath_type: str  # "netdev" (userspace) or "system" (kernel module)
    hoa_port: str
    uplinks: tuple[UplinkSpec, ...]
    controller_target: str  # e.g. "tcp:127.0.0.1:6653"


@dataclass(frozen=True, slots=True)
class BridgePorts:
    """What the logic needs from the bridge, read back after setup."""

    datapath_id: int
    hoa_port: int
    hoa_mac: str
    uplinks: tuple[UplinkPorts, ...]


def device_mtu(dev: str, sys_class_net: Path = Path("/sys/class/net")) -> int:
    """The MTU of a network device in this namespace."""
    try:
        return int((sys_class_net / dev / "mtu").read_text())
    except FileNotFoundError:
        raise BridgeError(f"uplink port {dev}: no such network device") from None


@dataclass(frozen=True, slots=True)
class Mtus:
    kernel_port: dict[str, int]  # internal port -> MTU (that of its physical uplink)
    hoa_port: int


def plan_mtus(spec: BridgeSpec, phys_mtu: dict[str, int]) -> Mtus:
    """Each kernel port carries the uplink's outer packets: its physical link's MTU. The HoA
    port carries inner packets, which must fit every uplink with the tunnel header added."""
    smallest = min(phys_mtu[u.port] for u in spec.uplinks)
    inner = min(MAX_INNER_MTU, smallest - TUNNEL_OVERHEAD)
    if inner < 1280:  # RFC 8200 §5: the IPv6 minimum link MTU
        raise BridgeError(
            f"uplink MTU {smallest} leaves {inner} bytes for inner packets (RFC 8200 needs 1280)"
        )
    return Mtus({u.kernel_port: phys_mtu[u.port] for u in spec.uplinks}, inner)


def setup_bridge(
    db: Ovsdb, spec: BridgeSpec, phys_mtu: dict[str, int] | None = None
) -> BridgePorts:
    """Make the bridge as `spec` says and return its ports. `phys_mtu` (port -> MTU) is read
    from the devices when not given."""
    if phys_mtu is None:
        phys_mtu = {u.port: device_mtu(u.port) for u in spec.uplinks}
    mtus = plan_mtus(spec, phys_mtu)
    try:
        db.wait_vswitchd()
        if spec.datapath_type not in db.datapath_types():
            raise BridgeError(
                f"bridge.datapath_type: ovs-vswitchd supports {db.datapath_types()}, not "
                f"{spec.datapath_type!r} (the 'system' datapath needs the openvswitch module)"
            )
        db.ensure_bridge(
            spec.name,
            datapath_type=spec.datapath_type,
            protocols=[OPENFLOW_VERSION],
            fail_mode=FAIL_MODE,
            other_config={"disable-in-band": "true"},
        )
        for u in spec.uplinks:
            db.ensure_port(spec.name, u.port)
            db.ensure_port(
                spec.name,
                u.kernel_port,
                type="internal",
                mtu_request=mtus.kernel_port[u.kernel_port],
            )
        db.ensure_port(spec.name, spec.hoa_port, type="internal", mtu_request=mtus.hoa_port)
        internal = [u.kernel_port for u in spec.uplinks] + [spec.hoa_port]
        for name in internal:
            db.get_mac(name)  # wait until ovs-vswitchd reports mac_in_use
        _pin_macs(db, internal)
        _ensure_controller(db, spec.name, spec.controller_target)
        return read_ports(db, spec)
    except OvsdbError as exc:
        raise BridgeError(f"set up bridge {spec.name}: {exc}") from None


def read_ports(db: Ovsdb, spec: BridgeSpec) -> BridgePorts:
    """The bridge's ofports, MACs and datapath id as ovs-vswitchd reports them now."""
    uplinks = tuple(
        UplinkPorts(
            name=u.name,
            phys_port=db.get_ofport(u.port),
            tun_port=db.get_ofport(u.kernel_port),
            tun_mac=db.get_mac(u.kernel_port),
        )
        for u in spec.uplinks
    )
    hoa_port = db.get_ofport(spec.hoa_port)
    hoa_mac = db.get_mac(spec.hoa_port)
    return BridgePorts(_datapath_id(db, spec.name), hoa_port, hoa_mac, uplinks)


def _datapath_id(db: Ovsdb, bridge: str) -> int:
    result: list[int] = []

    def known() -> bool:
        row = _find(db, "Bridge", bridge)
        dpid = _opt(row.datapath_id) if row is not None else None
        if dpid:
            result.append(int(dpid, 16))
        return bool(dpid)

    db.wait_for(f"datapath id of {bridge}", known)
    return result[0]


def _pin_macs(db: Ovsdb, ifaces: Sequence[str]) -> None:
    """Set each internal interface's `mac` to the address it uses now.

    ovs-vswitchd re-creates internal devices when it restarts; without a configured MAC they
    come back with new random ones, and the CoA the kernel derived from the old one (SLAAC)
    and the MACs the controller writes into its rules would both be stale.
    """

    def build(txn: Any, root: Any) -> bool:
        changed = False
        for name in ifaces:
            row = _find(db, "Interface", name)
            if row is None:
                raise OvsdbError(f"pin MAC of {name}: no such interface")
            in_use = _opt(row.mac_in_use)
            if not _opt(row.mac) and in_use:
                row.mac = [in_use]
                changed = True
        return changed

    db.transact(f"pin the MACs of {', '.join(ifaces)}", build)


def _ensure_controller(db: Ovsdb, bridge: str, target: str) -> None:
    """Exactly one controller, `target`, out of band, reconnecting fast. An existing row with
    the same target is updated in place (a new row would flush the flow table)."""

    def build(txn: Any, root: Any) -> bool:
        br = _find(db, "Bridge", bridge)
        if br is None:
            raise OvsdbError(f"set controller: no bridge {bridge!r}")
        rows = list(br.controller)
        mine = [c for c in rows if c.target == target]
        changed = False
        if mine and len(rows) == 1:
            row = mine[0]
        else:
            br.verify("controller")
            row = mine[0] if mine else db.insert(txn, "Controller")
            if not mine:
                row.target = target
            br.controller = [row]
            changed = True
        wanted: dict[str, Any] = {
            "connection_mode": "out-of-band",
            "max_backoff": CONTROLLER_MAX_BACKOFF_MS,
            "controller_queue_size": CONTROLLER_QUEUE_SIZE,
            "inactivity_probe": CONTROLLER_INACTIVITY_PROBE_MS,
        }
        for column, value in wanted.items():
            if _opt(getattr(row, column, [])) != value:
                setattr(row, column, [value])
                changed = True
        return changed

    db.transact(f"set the controller of {bridge} to {target}", build)


def _find(db: Ovsdb, table: str, name: str) -> Any:
    return db.row(table, name)


def _opt(value: Any) -> Any:
    if isinstance(value, list):
        return value[0] if value else None
    return value
