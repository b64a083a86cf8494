"""Namespace helpers for the kernel helper tests (root, real kernel, no mocks).

Every namespace is named `kx<tag>-<pid>-<node>` (unique per test module and per run) and its
removal is registered before it is created. Processes started in a namespace are tracked by PID
and killed by PID. Code under test runs in a namespace by switching the calling thread into it
(`Netns.entered()`), which is what the daemons do by being started inside their namespace:
netlink sockets, raw sockets and /proc/sys/net all follow the thread's network namespace.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import subprocess
import time
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import Any, TypeVar

from sdnmip.testbed import netns

T = TypeVar("T")
Done = subprocess.CompletedProcess[str]

for tool in ("ip", "nft", "tcpdump", "iperf3", "ping"):
    if shutil.which(tool) is None:
        raise RuntimeError(f"integration tests need {tool!r} (see ENVIRONMENT.md install line)")


def sh(*cmd: str, check: bool = True, timeout: float = 20) -> subprocess.CompletedProcess[str]:
    """Run a command, capturing text output; fail with its stderr."""
    res = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, check=False)
    if check and res.returncode != 0:
        raise AssertionError(f"{' '.join(cmd)} -> {res.returncode}: {res.stderr.strip()}")
    return res


def wait_for(cond: Callable[[], T], timeout: float = 5.0, what: str = "condition") -> T:
    """Poll `cond` until it returns something truthy, or fail after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        val = cond()
        if val:
            return val
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(0.02)


class Netns:
    """A network namespace made for one test module."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.procs: list[subprocess.Popen[bytes]] = []

    def run(self, *cmd: str, check: bool = True, timeout: float = 20) -> Done:
        return sh("ip", "netns", "exec", self.name, *cmd, check=check, timeout=timeout)

    def popen(self, *cmd: str, **kw: Any) -> subprocess.Popen[bytes]:
        kw.setdefault("stdout", subprocess.DEVNULL)
        kw.setdefault("stderr", subprocess.DEVNULL)
        p = subprocess.Popen(["ip", "netns", "exec", self.name, *cmd], **kw)
        self.procs.append(p)
        return p

    def entered(self) -> contextlib.AbstractContextManager[None]:
        """Move the calling thread into the namespace for the duration of the block."""
        return netns.entered(self.name)

    def arun(self, fn: Callable[[], Coroutine[Any, Any, T]]) -> T:
        """asyncio.run(fn()) with the thread inside the namespace."""
        with self.entered():
            return asyncio.run(fn())

    def ifindex(self, dev: str) -> int:
        return int(self.run("cat", f"/sys/class/net/{dev}/ifindex").stdout)

    def mac(self, dev: str) -> str:
        return self.run("cat", f"/sys/class/net/{dev}/address").stdout.strip()

    def kill_all(self) -> None:
        for p in self.procs:
            if p.poll() is None:
                p.terminate()
                try:
                    p.wait(timeout=3)
                except subprocess.TimeoutExpired:
                    p.kill()
                    p.wait(timeout=3)


class Lab:
    """Namespaces of one test module; everything is removed at teardown."""

    def __init__(self, tag: str) -> None:
        self.prefix = f"kx{tag}-{os.getpid()}"
        self.nss: list[Netns] = []

    def ns(self, node: str) -> Netns:
        n = Netns(f"{self.prefix}-{node}")
        self.nss.append(n)  # registered for removal before it exists
        sh("ip", "netns", "add", n.name)
        n.run("ip", "link", "set", "lo", "up")
        n.run(
            "sysctl",
            "-qw",
            "net.ipv6.conf.all.accept_dad=0",
            "net.ipv6.conf.default.accept_dad=0",
            "net.ipv6.conf.all.accept_ra=0",
            "net.ipv6.conf.default.accept_ra=0",
        )
        return n

    def veth(self, a: Netns, if_a: str, b: Netns, if_b: str, mtu: int = 1500) -> None:
        # create in a's namespace directly, so nothing is ever left in the root namespace
        a.run(
            "ip",
            "link",
            "add",
            if_a,
            "mtu",
            str(mtu),
            "type",
            "veth",
            "peer",
            "name",
            if_b,
            "mtu",
            str(mtu),
            "netns",
            b.name,
        )
        a.run("ip", "link", "set", if_a, "up")
        b.run("ip", "link", "set", if_b, "up")

    def teardown(self) -> None:
        for n in self.nss:
            n.kill_all()
        for n in self.nss:
            sh("ip", "netns", "del", n.name, check=False)


class Capture:
    """tcpdump in a namespace, written to a file; `stop()` returns the packets as tshark text."""

    def __init__(self, ns: Netns, dev: str, path: str, bpf: str) -> None:
        self.path = path
        log = path + ".log"
        with open(log, "wb") as err:
            self.proc = ns.popen(
                "tcpdump", "--immediate-mode", "-i", dev, "-U", "-w", path, bpf, stderr=err
            )
        # tcpdump prints "listening on" once the capture is attached
        wait_for(lambda: "listening on" in Path(log).read_text(), 5, f"tcpdump on {ns.name}:{dev}")

    def stop(self, *fields: str) -> list[list[str]]:
        self.proc.terminate()
        self.proc.wait(timeout=5)
        args = ["tshark", "-r", self.path, "-T", "fields"]
        for f in fields:
            args += ["-e", f]
        out = sh(*args).stdout
        return [line.split("\t") for line in out.splitlines() if line.strip()]
