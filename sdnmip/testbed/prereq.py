"""Checks that the machine can run a testbed, each failing with one line naming the fix."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

from sdnmip.testbed.errors import PrerequisiteError

INSTALL_HINT = "run deploy/install.sh"
VSWITCH_SCHEMA = Path("/usr/share/openvswitch/vswitch.ovsschema")
# binary -> what provides it
BINARIES = {
    "ip": "iproute2",
    "ethtool": "ethtool",
    "sysctl": "procps",
    "ping": "iputils-ping",
    "ovsdb-tool": "openvswitch-switch",
    "ovsdb-server": "openvswitch-switch",
    "ovs-vswitchd": "openvswitch-switch",
    "ovs-ofctl": "openvswitch-switch",
    "radvd": "radvd",
}
# Debian keeps daemons in sbin, which a non-login root shell may not have on PATH.
SEARCH_PATH = os.pathsep.join(
    [os.environ.get("PATH", ""), "/usr/local/sbin", "/usr/sbin", "/sbin", "/usr/bin", "/bin"]
)


def which(binary: str) -> str:
    """Absolute path of `binary`, or a PrerequisiteError naming the package that provides it."""
    path = shutil.which(binary, path=SEARCH_PATH)
    if path is None:
        package = BINARIES.get(binary, binary)
        raise PrerequisiteError(f"{binary} not found (Debian package {package}): {INSTALL_HINT}")
    return path


def check() -> None:
    """Everything `sdnmip testbed up` needs before it creates anything."""
    if os.geteuid() != 0:
        raise PrerequisiteError(
            "not root: the testbed creates network namespaces; run it as root (e.g. with sudo)"
        )
    if not Path("/proc/self/ns/net").exists():
        raise PrerequisiteError(
            "the kernel has no network namespaces (CONFIG_NET_NS): use a kernel that has them"
        )
    if not Path("/proc/net/if_inet6").exists():
        raise PrerequisiteError("the kernel has IPv6 disabled: boot without ipv6.disable=1")
    if not Path("/dev/net/tun").exists():
        raise PrerequisiteError(
            "/dev/net/tun is missing (OVS's userspace ports and the link emulator need TUN): "
            "load the tun module (modprobe tun)"
        )
    for binary in BINARIES:
        which(binary)
    if not VSWITCH_SCHEMA.exists():
        raise PrerequisiteError(f"{VSWITCH_SCHEMA} not found (openvswitch-common): {INSTALL_HINT}")
