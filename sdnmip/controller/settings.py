"""What the controller process takes from the MN configuration (sdnmip/mn/config.py).

Owns: the translation of `MnConfig` into the bridge to set up (`BridgeSpec`), the logic's
settings once the bridge's ports are known (`LogicConfig`) and the
paths the controller uses (its snapshot, its control socket, the agent's socket).
Must not: start anything or read files. The policy engine, the policy files and the REST API
are the northbound's (sdnmip/northbound/server.py).
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from sdnmip.controller.bridge import BridgePorts, BridgeSpec, UplinkSpec
from sdnmip.controller.config import LogicConfig
from sdnmip.controller.packet import address
from sdnmip.core.redirector import PrimaryUse
from sdnmip.core.types import IPPROTO_TCP, IPPROTO_UDP

log = logging.getLogger("sdnmip.controller")

SNAPSHOT_FILE = "controller.json"
CONTROL_SOCKET = "controller.sock"

MnConfig = Any  # sdnmip.mn.config.MnConfig (imported by the CLI)


def bridge_spec(cfg: MnConfig) -> BridgeSpec:
    return BridgeSpec(
        name=cfg.bridge.name,
        datapath_type=cfg.bridge.datapath_type,
        hoa_port=cfg.bridge.hoa_port,
        uplinks=tuple(UplinkSpec(u.name, u.port, u.kernel_port) for u in cfg.uplinks),
        controller_target=cfg.controller.openflow,
    )


def listen_address(cfg: MnConfig) -> tuple[str, int]:
    """Where os-ken listens: the host and port of `controller.openflow` (tcp:HOST:PORT)."""
    _, rest = cfg.controller.openflow.split(":", 1)
    host, _, port = rest.rpartition(":")
    return host.strip("[]"), int(port)


def logic_config(cfg: MnConfig, ports: BridgePorts) -> LogicConfig:
    c = cfg.controller
    return LogicConfig(
        primary_hoa=address(cfg.home.primary_hoa.packed),
        home_prefixes=tuple(cfg.home_prefixes),
        ha_addresses=(address(cfg.home.agent.packed),),
        hoa0_port=ports.hoa_port,
        hoa0_mac=ports.hoa_mac,
        uplinks=ports.uplinks,
        idle_timeouts={
            IPPROTO_TCP: round(c.tcp_idle_timeout),
            IPPROTO_UDP: round(c.udp_idle_timeout),
        },
        other_idle_timeout=round(c.udp_idle_timeout),
        fin_linger=c.tcp_linger,
        primary_use=PrimaryUse.STRICT if c.strict_primary else PrimaryUse.AVOID,
        hoa_per_flow=c.hoa_per_flow,
        failback_after=c.failback_after,
    )


def snapshot_path(cfg: MnConfig) -> Path:
    return Path(cfg.paths.state_dir) / SNAPSHOT_FILE


def control_socket(cfg: MnConfig) -> Path:
    return Path(cfg.paths.run_dir) / CONTROL_SOCKET
