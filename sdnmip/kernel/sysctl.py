"""Per-interface IPv6 sysctls of the current network namespace, through /proc/sys.

Owns: reading and writing net.ipv6.conf.<dev>.<key> and net.ipv6.neigh.<dev>.<key> (proxy_delay
lives there, not under conf). /proc/sys/net is per network namespace, so a daemon running inside
its namespace sees its own. Must not: touch other namespaces or non-IPv6 keys.

Keys the data path uses: forwarding, accept_ra, autoconf, proxy_ndp, dad_transmits, accept_dad,
accept_redirects (conf) and proxy_delay (neigh, in the units the kernel prints).
"""

from __future__ import annotations

import re
from pathlib import Path

from sdnmip.kernel.errors import KernelConfigError, KernelRequestError

PROC_SYS = Path("/proc/sys/net/ipv6")
_KEY = re.compile(r"^[a-z0-9_]+$")
_SPECIAL = ("all", "default")


def _path(section: str, dev: str, key: str, root: Path) -> Path:
    if not dev or "/" in dev or dev in (".", "..") or len(dev) > 15:
        raise KernelConfigError("dev", dev, "not a valid interface name")
    if not _KEY.match(key):
        raise KernelConfigError("key", key, "not a sysctl key")
    if dev not in _SPECIAL and not (root / section / dev).is_dir():
        raise KernelConfigError("dev", dev, "no such device in this network namespace")
    path = root / section / dev / key
    if not path.exists():
        raise KernelConfigError("key", key, f"no net.ipv6.{section}.{dev}.{key}")
    return path


def _write(path: Path, value: int | str) -> None:
    try:
        path.write_text(f"{value}\n")
    except OSError as exc:
        raise KernelRequestError(
            f"write {path} = {value}", exc.strerror or str(exc), exc.errno
        ) from exc


def set_conf(dev: str, key: str, value: int | str, *, root: Path = PROC_SYS) -> None:
    """net.ipv6.conf.<dev>.<key> = value (dev may be 'all' or 'default')."""
    _write(_path("conf", dev, key, root), value)


def get_conf(dev: str, key: str, *, root: Path = PROC_SYS) -> str:
    """The current value of net.ipv6.conf.<dev>.<key>, as the kernel prints it."""
    return _path("conf", dev, key, root).read_text().strip()


def set_neigh(dev: str, key: str, value: int | str, *, root: Path = PROC_SYS) -> None:
    """net.ipv6.neigh.<dev>.<key> = value (e.g. proxy_delay = 0)."""
    _write(_path("neigh", dev, key, root), value)


def get_neigh(dev: str, key: str, *, root: Path = PROC_SYS) -> str:
    """The current value of net.ipv6.neigh.<dev>.<key>."""
    return _path("neigh", dev, key, root).read_text().strip()
