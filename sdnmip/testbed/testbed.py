"""The reference testbed in network namespaces: build it, use it, inspect it, remove it.

Owns: the order in which `up` creates namespaces, links, addresses, routes, link emulators, the
MN's private OVS (bridge and ports through OVSDB, plumbing flows through OpenFlow) and radvd; the
API that tests, benchmarks and the demo use (`run`, `spawn`, `addr`, `mn_coa`, `ovs_env`); and
`teardown`, which needs nothing but the prefix.

Must not: be imported by the daemons (mn, ha): they run inside the testbed, they do not build it.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

import sdnmip
from sdnmip.ovsdb.idl import Ovsdb, OvsdbError
from sdnmip.testbed import prereq, processes
from sdnmip.testbed.errors import PrerequisiteError, TestbedError
from sdnmip.testbed.names import (
    DEFAULT_PREFIX,
    STATE_ROOT,
    check_prefix,
    namespace,
    owns_namespace,
    state_dir,
)
from sdnmip.testbed.ovs import PrivateOvs
from sdnmip.testbed.radvd import render_config
from sdnmip.testbed.spec import WIRE_SUFFIX, End, Link, Topology, load_topology, parse

# OpenFlow plumbing of the MN bridge. The MN controller sweeps this cookie when it takes over
# (docs/architecture.md, "OpenFlow ownership").
TESTBED_COOKIE = 0x7E57000000000000
PLUMBING_PRIORITY = 100
OPENFLOW_VERSION = "OpenFlow13"

CMD_TIMEOUT_S = 20.0
UP_TIMEOUT_S = 30.0  # waiting for the link emulators and for the CoAs from the RAs
POLL_S = 0.05
STATE_FILE = "state.json"
SPAWN_NAME = re.compile(r"^[a-z0-9][a-z0-9_.-]{0,63}$")
# The directory holding this `sdnmip` package (the checkout's root, or site-packages).
CODE_ROOT = Path(sdnmip.__file__).resolve().parent.parent

# Kernel errors from `ip` that mean a missing kernel feature, and the fix.
KERNEL_FEATURES = {
    "Unknown device type": "the kernel has no veth driver (CONFIG_VETH): load it (modprobe veth)",
}


@dataclass
class TrackedProcess:
    """A process the testbed started in a namespace; `down` kills it by its recorded PID."""

    name: str
    node: str
    pid: int
    log: Path
    popen: subprocess.Popen[bytes] | None = None

    def alive(self) -> bool:
        if self.popen is not None:
            return self.popen.poll() is None
        return processes.alive(self.pid)

    def stop(self, grace_s: float = 3.0) -> None:
        processes.terminate([self.pid], grace_s=grace_s)
        if self.popen is not None:
            self.popen.wait(timeout=grace_s)


@dataclass(frozen=True)
class CoaInfo:
    """A global address of an MN uplink port, as the kernel reports it."""

    address: str
    prefixlen: int
    dynamic: bool  # has a finite lifetime: it came from an RA (SLAAC), not from `ip addr add`
    tentative: bool  # DAD still running: not usable yet
    valid_lft: int | None


@dataclass
class ProcessStatus:
    name: str
    pid: int | None
    alive: bool


@dataclass
class UplinkStatus:
    uplink: str
    port: str
    router: str
    coas: list[str]
    shaping: str


@dataclass
class Status:
    prefix: str
    namespaces: dict[str, bool] = field(default_factory=dict)  # expected namespace -> exists
    processes: list[ProcessStatus] = field(default_factory=list)
    uplinks: list[UplinkStatus] = field(default_factory=list)
    complete: bool = False  # `up` finished

    @property
    def exists(self) -> bool:
        return any(self.namespaces.values())

    @property
    def healthy(self) -> bool:
        return (
            self.complete
            and all(self.namespaces.values())
            and all(p.alive for p in self.processes)
            and all(u.coas for u in self.uplinks)
        )


@dataclass
class DownReport:
    namespaces: list[str]
    killed: list[int]
    state_dir_removed: bool


def _last_line(text: str) -> str:
    lines = [line for line in text.strip().splitlines() if line.strip()]
    return lines[-1].strip() if lines else "no message"


def run_cmd(
    argv: Sequence[str],
    *,
    what: str,
    input: str | None = None,
    env: dict[str, str] | None = None,
    timeout: float = CMD_TIMEOUT_S,
) -> subprocess.CompletedProcess[str]:
    """Run a setup command; failure is a one-line TestbedError (or PrerequisiteError when the
    kernel lacks a feature)."""
    try:
        proc = subprocess.run(
            list(argv), input=input, env=env, capture_output=True, text=True,
            timeout=timeout, check=False,
        )  # fmt: skip
    except subprocess.TimeoutExpired:
        raise TestbedError(f"{what}: no answer after {timeout:g}s ({' '.join(argv)})") from None
    if proc.returncode != 0:
        detail = _last_line(proc.stderr or proc.stdout)
        for needle, fix in KERNEL_FEATURES.items():
            if needle in proc.stderr:
                raise PrerequisiteError(f"{what}: {detail}: {fix}")
        raise TestbedError(f"{what}: {detail}")
    return proc


def teardown(prefix: str, state_root: Path = STATE_ROOT) -> DownReport:
    """Remove every namespace, process and file of testbed `prefix`, from the prefix alone.

    Works after a crash half-way through `up`: processes are found both from the recorded pid
    files and by scanning for anything still running in the testbed's namespaces (as
    `ip netns pids` does), and killed by PID; deleting the namespaces removes their veths, TAPs and
    OVS ports; then the state directory goes.
    """
    check_prefix(prefix)
    sdir = state_dir(prefix, state_root)
    owned = [ns for ns in processes.namespaces() if owns_namespace(prefix, ns)]
    ids = {i for ns in owned if (i := processes.netns_id(ns)) is not None}
    recorded = []
    if sdir.is_dir():
        for pidfile in sdir.rglob("*.pid"):
            pid = processes.read_pidfile(pidfile)
            # Only a PID still in one of our namespaces is ours: a recycled PID is left alone.
            if pid is not None and processes.pid_netns(pid) in ids:
                recorded.append(pid)
    victims = (set(recorded) | set(processes.pids_in(ids))) - {os.getpid()}
    survivors = processes.terminate(victims)
    if survivors:
        raise TestbedError(f"testbed {prefix}: processes {survivors} survived SIGKILL")
    if owned:
        run_cmd(
            [prereq.which("ip"), "-force", "-batch", "-"],
            input="".join(f"netns del {ns}\n" for ns in owned),
            what=f"delete the namespaces of testbed {prefix}",
        )
    removed = sdir.exists()
    if removed:
        shutil.rmtree(sdir)
    left = [ns for ns in processes.namespaces() if owns_namespace(prefix, ns)]
    if left:
        raise TestbedError(f"testbed {prefix}: namespaces {left} could not be deleted")
    return DownReport(namespaces=owned, killed=sorted(victims), state_dir_removed=removed)


class Testbed:
    """One testbed: a topology instantiated under a prefix.

    `Testbed(topology, prefix).up()` builds it; `Testbed.attach(prefix)` uses one that is up.
    """

    __test__ = False  # not a pytest test class despite the name

    def __init__(
        self,
        topology: Topology | None = None,
        prefix: str = DEFAULT_PREFIX,
        *,
        state_root: Path = STATE_ROOT,
    ) -> None:
        self.prefix = check_prefix(prefix)
        self.topology = topology if topology is not None else load_topology()
        self.state_root = state_root
        self.state_dir = state_dir(prefix, state_root)
        self.ovs = PrivateOvs(self.state_dir / "ovs", self.ns(self.topology.mn_node))
        self._children: list[TrackedProcess] = []

    @classmethod
    def attach(cls, prefix: str = DEFAULT_PREFIX, *, state_root: Path = STATE_ROOT) -> Testbed:
        """The testbed `prefix` that `up` built (possibly in another process)."""
        path = state_dir(check_prefix(prefix), state_root) / STATE_FILE
        try:
            state = json.loads(path.read_text())
        except FileNotFoundError:
            raise TestbedError(f"testbed {prefix} is not up (no {path})") from None
        return cls(parse(state["topology"]), prefix, state_root=state_root)

    # ------------------------------------------------------------------------------ names
    def ns(self, node: str) -> str:
        """The network namespace of `node`."""
        if node not in self.topology.nodes:
            raise TestbedError(f"no node {node!r} (nodes: {', '.join(self.topology.nodes)})")
        return namespace(self.prefix, node)

    def addr(self, node: str, iface: str) -> str:
        """The first static address of `node`'s interface `iface`, without the prefix length."""
        try:
            end = self.topology.end(node, iface)
        except KeyError:
            raise TestbedError(f"{node} has no interface {iface!r}") from None
        if not end.addresses:
            raise TestbedError(f"{node}/{iface} has no static address (CoAs: use mn_coa)")
        return end.addresses[0].split("/")[0]

    @property
    def db_remote(self) -> str:
        """OVSDB remote of the MN's private OVS (for sdnmip.ovsdb.Ovsdb)."""
        return self.ovs.remote

    @property
    def db_sock(self) -> Path:
        return self.ovs.db_sock

    def ovs_env(self) -> dict[str, str]:
        """Environment variables that point OVS tools at the MN's private OVS."""
        return self.ovs.env()

    def python_env(self) -> dict[str, str]:
        """The environment for daemons: this checkout's `sdnmip` package first on the path."""
        env = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join(p for p in (str(CODE_ROOT), env.get("PYTHONPATH")) if p)
        return env

    @staticmethod
    def sdnmip_argv(*args: str) -> list[str]:
        """argv that runs `sdnmip ARGS` from this checkout with this interpreter."""
        return [sys.executable, "-m", "sdnmip", *args]

    # ------------------------------------------------------------------------------ running things
    def run(
        self,
        node: str,
        *argv: str,
        check: bool = True,
        timeout: float = CMD_TIMEOUT_S,
        input: str | None = None,
        env: dict[str, str] | None = None,
    ) -> subprocess.CompletedProcess[str]:
        """Run a command in `node`'s namespace and wait for it (output captured as text)."""
        full = ["ip", "netns", "exec", self.ns(node), *argv]
        try:
            proc = subprocess.run(
                full, input=input, env=env, capture_output=True, text=True,
                timeout=timeout, check=False,
            )  # fmt: skip
        except subprocess.TimeoutExpired:
            raise TestbedError(f"{node}: {' '.join(argv)}: no answer after {timeout:g}s") from None
        if check and proc.returncode != 0:
            raise TestbedError(
                f"{node}: {' '.join(argv)} failed ({proc.returncode}): "
                f"{_last_line(proc.stderr or proc.stdout)}"
            )
        return proc

    def spawn(
        self,
        node: str,
        argv: Sequence[str],
        name: str,
        log: Path | None = None,
        env: dict[str, str] | None = None,
    ) -> TrackedProcess:
        """Start a long-running process in `node`'s namespace; its PID is recorded in the state
        directory so that `down` kills it, even if this Python process has crashed.

        The environment is `python_env()` (plus `env`) and the working directory is the checkout's
        root, so `sdnmip_argv(...)` runs this checkout: `python -m` puts the working directory
        first on the path, where a caller's directory holding another `sdnmip` would win.
        """
        if not SPAWN_NAME.match(name):
            raise TestbedError(f"spawn: invalid process name {name!r}")
        pids = self.state_dir / "pids"
        logs = self.state_dir / "logs"
        pids.mkdir(parents=True, exist_ok=True)
        logs.mkdir(parents=True, exist_ok=True)
        pidfile = pids / f"{name}.pid"
        if pidfile.exists() and processes.alive(processes.read_pidfile(pidfile) or 0):
            raise TestbedError(f"spawn: a process named {name!r} is already running")
        log_path = log or logs / f"{name}.log"
        full_env = {**self.python_env(), **(env or {})}
        with open(log_path, "ab") as out:
            popen = subprocess.Popen(
                ["ip", "netns", "exec", self.ns(node), *argv],
                stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT,
                env=full_env, cwd=CODE_ROOT, start_new_session=True,
            )  # fmt: skip
        # `ip netns exec` execs the command, so this PID is the daemon's own.
        pidfile.write_text(f"{popen.pid}\n")
        proc = TrackedProcess(name=name, node=node, pid=popen.pid, log=log_path, popen=popen)
        self._children.append(proc)
        return proc

    def ofctl(self, *args: str, input: str | None = None) -> subprocess.CompletedProcess[str]:
        """`ovs-ofctl -O OpenFlow13 ARGS` against the MN's private OVS (OpenFlow, not OVSDB)."""
        return run_cmd(
            [prereq.which("ovs-ofctl"), "-O", OPENFLOW_VERSION, *args],
            input=input,
            env={**os.environ, **self.ovs_env()},
            what=f"ovs-ofctl {' '.join(args)}",
        )

    # ------------------------------------------------------------------------------ the MN's CoAs
    def coa_info(self, uplink: str) -> list[CoaInfo]:
        """Global addresses on `uplink`'s internal port, as the kernel holds them."""
        port = self._uplink_port(uplink)
        proc = self.run(self.topology.mn_node, "ip", "-6", "-j", "addr", "show", "dev", port,
                        "scope", "global")  # fmt: skip
        out: list[CoaInfo] = []
        for link in json.loads(proc.stdout or "[]"):
            for info in link.get("addr_info", []):
                if "local" not in info:
                    continue  # iproute2 6.1 prints addresses the filter excluded as {}
                out.append(
                    CoaInfo(
                        address=info["local"],
                        prefixlen=int(info["prefixlen"]),
                        dynamic=bool(info.get("dynamic", False)),
                        tentative=bool(info.get("tentative", False)),
                        valid_lft=info.get("valid_life_time"),
                    )
                )
        return out

    def mn_coa(self, uplink: str) -> str | None:
        """The usable CoA of `uplink` (from its access router's RA), or None if it has none yet."""
        coas = [c.address for c in self.coa_info(uplink) if not c.tentative]
        if len(coas) > 1:
            raise TestbedError(f"uplink {uplink} has {len(coas)} CoAs ({coas}), expected one")
        return coas[0] if coas else None

    def wait_coas(self, timeout: float = UP_TIMEOUT_S) -> dict[str, str]:
        """Wait until every uplink has its CoA; returns uplink -> CoA."""
        deadline = time.monotonic() + timeout
        coas: dict[str, str] = {}
        while True:
            for uplink in self.topology.mn.uplinks:
                if uplink not in coas and (coa := self.mn_coa(uplink)) is not None:
                    coas[uplink] = coa
            if len(coas) == len(self.topology.mn.uplinks):
                return coas
            if time.monotonic() >= deadline:
                missing = [u for u in self.topology.mn.uplinks if u not in coas]
                routers = [self.topology.access_router(u).node for u in missing]
                raise TestbedError(
                    f"uplinks {missing} got no CoA from the RAs of {routers} within {timeout:g}s "
                    f"(radvd logs in {self.state_dir / 'logs'})"
                )
            time.sleep(POLL_S)

    def set_carrier(self, uplink: str, up: bool) -> None:
        """Pull (or restore) `uplink`'s carrier as the MN sees it: the access router's end of the
        link goes administratively down (up), so the MN's veth reports NO-CARRIER (carrier).
        The router keeps its static address meanwhile (keep_addr_on_down), so restoring the
        carrier restores the link as it was; the MN's CoA port (inside OVS) is untouched."""
        self._uplink_port(uplink)  # names the uplink in the error if it is not one
        link = self.topology.uplink_link(uplink)
        end = self.topology.access_router(uplink)
        dev = self._veth_name(link, end)
        if dev == end.iface:  # a plain veth: the router's address lives on it
            self._sysctl(end.node, [f"net.ipv6.conf.{dev}.keep_addr_on_down=1"], "keep")
        self.run(end.node, "ip", "link", "set", "dev", dev, "up" if up else "down")

    def _uplink_port(self, uplink: str) -> str:
        try:
            return self.topology.mn.uplinks[uplink]
        except KeyError:
            raise TestbedError(
                f"no uplink {uplink!r} (uplinks: {', '.join(self.topology.mn.uplinks)})"
            ) from None

    # ------------------------------------------------------------------------------ up
    def existing(self) -> list[str]:
        """Namespaces of this prefix that already exist."""
        return [ns for ns in processes.namespaces() if owns_namespace(self.prefix, ns)]

    def up(self, timeout: float = UP_TIMEOUT_S) -> None:
        """Build the testbed; on any failure (or Ctrl-C) remove what was built and re-raise."""
        prereq.check()
        existing = self.existing()
        if existing or self.state_dir.exists():
            what = f"namespaces {', '.join(existing)}" if existing else f"{self.state_dir}"
            raise TestbedError(
                f"testbed {self.prefix} already exists ({what}): run "
                f"`sdnmip testbed down --prefix {self.prefix}` first, or use another --prefix"
            )
        try:
            self._build(timeout)
        except BaseException:
            self.down()
            raise

    def _build(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        self.state_dir.mkdir(parents=True)
        self._write_state(complete=False)
        ip = prereq.which("ip")
        nodes = list(self.topology.nodes)
        run_cmd([ip, "-batch", "-"], what="create the namespaces",
                input="".join(f"netns add {self.ns(n)}\n" for n in nodes))  # fmt: skip
        for node in nodes:
            self._sysctl(node, self._early_sysctls(node), "configure")
        run_cmd([ip, "-batch", "-"], what="create the links", input=self._link_batch())
        for node in nodes:
            self._configure_node(node)
        self._start_wires(deadline)
        self._start_ovs()
        self._start_radvd()
        self.wait_coas(max(0.0, deadline - time.monotonic()))
        self._write_state(complete=True)

    def _write_state(self, complete: bool) -> None:
        state = {"prefix": self.prefix, "complete": complete, "topology": self.topology.document}
        tmp = self.state_dir / (STATE_FILE + ".tmp")
        tmp.write_text(json.dumps(state, indent=1))
        tmp.replace(self.state_dir / STATE_FILE)

    def _sysctl(self, node: str, settings: Sequence[str], what: str) -> None:
        if settings:
            run_cmd(
                [
                    "ip",
                    "netns",
                    "exec",
                    self.ns(node),
                    prereq.which("sysctl"),
                    "-q",
                    "-w",
                    *settings,
                ],
                what=f"{what} {node} (sysctl)",
            )

    def _early_sysctls(self, node: str) -> list[str]:
        """Defaults that interfaces created later in the namespace inherit."""
        role = self.topology.nodes[node].role
        conf = "net.ipv6.conf"
        forwarding = "1" if role in ("mn", "router") else "0"
        out = [f"{conf}.all.forwarding={forwarding}", f"{conf}.default.forwarding={forwarding}"]
        if role == "mn":
            # Nothing autoconfigures until the CoA ports are set up; the MN keeps DAD, as a
            # real MN does for its SLAAC addresses.
            out += [f"{conf}.default.accept_ra=0", f"{conf}.default.autoconf=0",
                    f"{conf}.default.use_tempaddr=0"]  # fmt: skip
        else:
            # Static, planned addresses: no DAD delay; no RAs are expected on these links.
            out += [f"{conf}.default.accept_dad=0", f"{conf}.default.accept_ra=0"]
        return out

    def _shaped_end(self, link: Link) -> End | None:
        """The access router's end of a shaped uplink (where the link emulator sits)."""
        if self.topology.shaping(link.name) is None:
            return None
        mn = self.topology.mn_node
        return link.b if link.a.node == mn else link.a

    def _veth_name(self, link: Link, end: End) -> str:
        return end.iface + WIRE_SUFFIX if self._shaped_end(link) is end else end.iface

    def _link_batch(self) -> str:
        # Each end is created directly inside its namespace: nothing appears in the root namespace.
        lines = []
        for link in self.topology.links.values():
            a, b = link.a, link.b
            lines.append(
                f"link add {self._veth_name(link, a)} netns {self.ns(a.node)} mtu {link.mtu} "
                f"type veth peer name {self._veth_name(link, b)} netns {self.ns(b.node)} "
                f"mtu {link.mtu}\n"
            )
        return "".join(lines)

    def _port_only(self, node: str) -> list[str]:
        """Devices of `node` that only carry frames for OVS or the link emulator: the kernel's
        IPv6 stack must ignore them, or it would answer ND and take RAs on them too."""
        out = []
        for link, end in self.topology.ends_of(node):
            if node == self.topology.mn_node and end.iface in self.topology.mn.uplinks:
                out.append(end.iface)
            elif self._shaped_end(link) is end:
                out.append(end.iface + WIRE_SUFFIX)
        return out

    def _configure_node(self, node: str) -> None:
        ns = self.ns(node)
        ends = self.topology.ends_of(node)
        port_only = self._port_only(node)
        first = ["link set dev lo up"]
        for link, end in ends:
            if self._shaped_end(link) is end:
                first += [f"tuntap add dev {end.iface} mode tap",
                          f"link set dev {end.iface} mtu {link.mtu}"]  # fmt: skip
        first += [f"link set dev {dev} addrgenmode none" for dev in port_only]
        run_cmd(["ip", "-n", ns, "-batch", "-"], what=f"configure {node}",
                input="\n".join(first) + "\n")  # fmt: skip
        devices = [self._veth_name(link, end) for link, end in ends]
        devices += [end.iface for link, end in ends if self._shaped_end(link) is end]
        # Userspace OVS and the emulator hand frames to veths as they are: the kernel must not
        # leave checksums to an offload that will never happen (ENVIRONMENT.md).
        ethtool, sysctl = prereq.which("ethtool"), prereq.which("sysctl")
        script = [f"{ethtool} -K {dev} tx off >/dev/null" for dev in devices]
        script += [f"{sysctl} -q -w net.ipv6.conf.{dev}.disable_ipv6=1" for dev in port_only]
        run_cmd(["ip", "netns", "exec", ns, "sh", "-ec", "\n".join(script)],
                what=f"configure {node} (ethtool/sysctl)")  # fmt: skip
        second = []
        for _link, end in ends:
            second += [f"addr add {a} dev {end.iface} nodad" for a in end.addresses]
        second += [f"link set dev {dev} up" for dev in devices]
        for route in self.topology.nodes[node].routes:
            second.append(f"route add {route.to} via {route.via}")
        run_cmd(["ip", "-6", "-n", ns, "-batch", "-"], what=f"address {node}",
                input="\n".join(second) + "\n")  # fmt: skip

    def _start_wires(self, deadline: float) -> None:
        started = []
        for link in self.topology.links.values():
            end = self._shaped_end(link)
            shaping = self.topology.shaping(link.name)
            if end is None or shaping is None:
                continue
            argv = self.sdnmip_argv(
                "testbed", "wire", "--tap", end.iface, "--veth", end.iface + WIRE_SUFFIX,
                "--delay-ms", f"{shaping.delay_ms:g}", "--queue-pkts", str(shaping.queue_pkts),
            )  # fmt: skip
            if shaping.rate_mbit is not None:
                argv += ["--rate-mbit", f"{shaping.rate_mbit:g}"]
            started.append((self.spawn(end.node, argv, f"wire-{link.name}"), end))
        for proc, end in started:
            # The TAP has carrier once the emulator holds it.
            while not self._has_carrier(end.node, end.iface):
                if not proc.alive():
                    raise TestbedError(f"link emulator {proc.name} exited (log: {proc.log})")
                if time.monotonic() >= deadline:
                    raise TestbedError(f"link emulator {proc.name} did not start (log: {proc.log})")
                time.sleep(POLL_S)

    def _has_carrier(self, node: str, dev: str) -> bool:
        proc = self.run(node, "ip", "-j", "link", "show", "dev", dev)
        info: list[dict[str, Any]] = json.loads(proc.stdout or "[]")
        return (
            bool(info)
            and "NO-CARRIER" not in info[0].get("flags", [])
            and "UP" in info[0].get("flags", [])
        )

    def _start_ovs(self) -> None:
        mn = self.topology.mn
        node = self.topology.mn_node
        self.ovs.start(dict(os.environ))
        try:
            with Ovsdb(self.ovs.remote, timeout=CMD_TIMEOUT_S) as db:
                db.wait_vswitchd()
                if "netdev" not in db.datapath_types():
                    raise PrerequisiteError(
                        "ovs-vswitchd has no userspace (netdev) datapath: install Debian's "
                        "openvswitch-switch (deploy/install.sh)"
                    )
                db.ensure_bridge(mn.bridge, datapath_type="netdev", protocols=[OPENFLOW_VERSION],
                                 fail_mode="secure")  # fmt: skip
                for uplink, port in mn.uplinks.items():
                    db.ensure_port(mn.bridge, uplink)
                    db.ensure_port(mn.bridge, port, type="internal", mtu_request=mn.uplink_port_mtu)
                db.ensure_port(mn.bridge, mn.hoa_port, type="internal", mtu_request=mn.hoa_port_mtu)
                for name in [*mn.uplinks, *mn.uplinks.values(), mn.hoa_port]:
                    db.get_ofport(name)  # waits until OVS has the port (and its device)
        except OvsdbError as exc:
            raise TestbedError(f"configure OVS on {node}: {exc}") from None
        flows = []
        for uplink, port in mn.uplinks.items():
            for src, dst in ((uplink, port), (port, uplink)):
                flows.append(
                    f"cookie={TESTBED_COOKIE:#x},priority={PLUMBING_PRIORITY},"
                    f"in_port={src},actions=output:{dst}\n"
                )
        self.ofctl("add-flows", mn.bridge, "-", input="".join(flows))
        conf = "net.ipv6.conf"
        settings = []
        for port in mn.uplinks.values():
            # forwarding=1 (the data path hairpins through the kernel) ignores RAs unless
            # accept_ra=2; SLAAC then gives the port its CoA (RFC 4862).
            settings += [f"{conf}.{port}.accept_ra=2", f"{conf}.{port}.autoconf=1",
                         f"{conf}.{port}.use_tempaddr=0"]  # fmt: skip
        settings += [f"{conf}.{mn.hoa_port}.accept_ra=0", f"{conf}.{mn.hoa_port}.autoconf=0"]
        self._sysctl(node, settings, "configure the CoA ports of")
        # The HoA port stays without any address (no link-local either): the MN controller owns it.
        lines = [f"link set dev {mn.hoa_port} addrgenmode none"]
        lines += [f"link set dev {p} up" for p in [*mn.uplinks.values(), mn.hoa_port]]
        run_cmd(["ip", "-n", self.ns(node), "-batch", "-"], what="bring up the MN's OVS ports",
                input="\n".join(lines) + "\n")  # fmt: skip

    def _start_radvd(self) -> None:
        radvd = prereq.which("radvd")
        for link in self.topology.links.values():
            for end in link.ends:
                if not end.advertise:
                    continue
                name = f"radvd-{end.node}-{end.iface}"
                conf = self.state_dir / f"{name}.conf"
                conf.write_text(render_config(end.iface, end.advertise, self.topology.ra))
                conf.chmod(0o644)  # radvd refuses a configuration others can write
                # radvd insists on writing a pid file of its own; spawn() records the PID anyway.
                pidfile = self.state_dir / "radvd" / f"{name}.pid"
                pidfile.parent.mkdir(parents=True, exist_ok=True)
                self.spawn(end.node, [radvd, "--nodaemon", "--config", str(conf),
                                      "--pidfile", str(pidfile), "--logmethod", "stderr"],
                           name)  # fmt: skip

    # ------------------------------------------------------------------------------ down, status
    def down(self) -> DownReport:
        """Remove everything `up` made (see `teardown`), reaping our own children."""
        report = teardown(self.prefix, self.state_root)
        for child in self._children:
            if child.popen is not None:
                child.popen.wait(timeout=5)
        self._children.clear()
        return report

    def status(self) -> Status:
        status = Status(prefix=self.prefix)
        existing = set(self.existing())
        status.namespaces = {self.ns(n): self.ns(n) in existing for n in self.topology.nodes}
        state_path = self.state_dir / STATE_FILE
        if state_path.exists():
            status.complete = bool(json.loads(state_path.read_text()).get("complete"))
        pidfiles = sorted(self.ovs.dir.glob("*.pid")) + sorted(
            (self.state_dir / "pids").glob("*.pid")
        )
        for pidfile in pidfiles:
            pid = processes.read_pidfile(pidfile)
            alive = pid is not None and processes.alive(pid)
            status.processes.append(ProcessStatus(pidfile.stem, pid, alive))
        if not all(status.namespaces.values()):
            return status
        for uplink, port in self.topology.mn.uplinks.items():
            link = self.topology.uplink_link(uplink)
            shaping = self.topology.shaping(link.name)
            status.uplinks.append(
                UplinkStatus(
                    uplink=uplink,
                    port=port,
                    router=self.topology.access_router(uplink).node,
                    coas=[c.address for c in self.coa_info(uplink)],
                    shaping=shaping.describe() if shaping else "none (plain veth)",
                )
            )
        return status


def format_status(status: Status, out: TextIO) -> None:
    state = (
        "up" if status.healthy
        else "not up" if not status.exists and not status.processes
        else "incomplete or damaged (run `sdnmip testbed down` and `up` again)"
    )  # fmt: skip
    print(f"testbed {status.prefix}: {state}", file=out)
    if not status.exists and not status.processes:
        return
    print("namespaces:", file=out)
    for ns, exists in status.namespaces.items():
        print(f"  {ns:<16} {'present' if exists else 'MISSING'}", file=out)
    print("processes:", file=out)
    for p in status.processes:
        print(f"  {p.name:<24} pid {p.pid!s:<8} {'alive' if p.alive else 'DEAD'}", file=out)
    if status.uplinks:
        print("uplinks:", file=out)
        for u in status.uplinks:
            coas = ", ".join(u.coas) or "NO CoA"
            print(f"  {u.uplink:<6} port {u.port:<6} router {u.router:<5} CoA {coas}", file=out)
            print(f"  {'':<6} profile: {u.shaping}", file=out)
