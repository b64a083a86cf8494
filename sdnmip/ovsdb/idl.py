"""One connection to an Open_vSwitch database, driven through the python-ovs IDL.

Owns: idempotent, transactional changes to bridges, ports, interfaces, QoS, controller targets and
fail mode, and the reads that callers need afterwards (ofport, MAC, other_config, errors). Every
call has a deadline and fails with `OvsdbError` naming what it was doing.

Must not: parse `ovs-vsctl` output, install OpenFlow rules, or hold policy. It is shared by the
testbed and the MN controller, so it knows nothing about either.
"""

from __future__ import annotations

import errno
import time
import warnings
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

with warnings.catch_warnings():
    # ovs.poller probes for eventlet, which (when installed) warns about its own deprecation.
    warnings.simplefilter("ignore")
    import ovs.db.idl
    import ovs.jsonrpc
    import ovs.poller
    import ovs.stream

DB_NAME = "Open_vSwitch"
DEFAULT_TIMEOUT = 10.0

Row = Any  # ovs.db.idl.Row: its attributes are the table's columns, so it cannot be typed.


class OvsdbError(RuntimeError):
    """An OVSDB request failed or did not finish before its deadline."""


def _block(deadline: float, *waiters: Callable[[ovs.poller.Poller], None]) -> None:
    poller = ovs.poller.Poller()
    for wait in waiters:
        wait(poller)
    poller.timer_wait(max(0, int((deadline - time.monotonic()) * 1000)))
    poller.block()


def fetch_schema(remote: str, timeout: float = DEFAULT_TIMEOUT) -> dict[str, Any]:
    """The Open_vSwitch schema as the server has it (so a newer or older server still works)."""
    deadline = time.monotonic() + timeout
    error, stream = ovs.stream.Stream.open(remote)
    if error:
        raise OvsdbError(f"cannot connect to {remote}: {errno.errorcode.get(error, error)}")
    while (error := stream.connect()) == errno.EAGAIN:
        if time.monotonic() >= deadline:
            raise OvsdbError(f"cannot connect to {remote}: timed out after {timeout}s")
        _block(deadline, stream.connect_wait)
    if error:
        raise OvsdbError(f"cannot connect to {remote}: {errno.errorcode.get(error, error)}")
    conn = ovs.jsonrpc.Connection(stream)
    try:
        request = ovs.jsonrpc.Message.create_request("get_schema", [DB_NAME])
        if conn.send(request):
            raise OvsdbError(f"{remote}: get_schema: send failed")
        while True:
            error, msg = conn.recv()
            if msg is not None and msg.id == request.id:
                if msg.type != ovs.jsonrpc.Message.T_REPLY:
                    raise OvsdbError(f"{remote}: get_schema: {msg.error}")
                return dict(msg.result)
            if error and error != errno.EAGAIN:
                raise OvsdbError(f"{remote}: get_schema: connection error {error}")
            if time.monotonic() >= deadline:
                raise OvsdbError(f"{remote}: get_schema: no answer after {timeout}s")
            conn.run()
            _block(deadline, conn.wait, conn.recv_wait)
    finally:
        conn.close()


def _opt(value: Sequence[Any]) -> Any:
    """An optional (0..1) column as the IDL returns it (a list) -> the value or None."""
    return value[0] if value else None


class Ovsdb:
    """A replica of one Open_vSwitch database plus transactions against it.

    Use as a context manager. Each mutating method is one transaction, idempotent (calling it again
    with the same arguments changes nothing), retried on TRY_AGAIN until `timeout`, and by default
    waits until ovs-vswitchd has applied it (`next_cfg`/`cur_cfg`), so that a port's ofport and
    kernel device exist when the call returns.
    """

    def __init__(self, remote: str, timeout: float = DEFAULT_TIMEOUT) -> None:
        self.remote = remote
        self.timeout = timeout
        helper = ovs.db.idl.SchemaHelper(schema_json=fetch_schema(remote, timeout))
        helper.register_all()
        self._idl = ovs.db.idl.Idl(remote, helper)
        self._sync(time.monotonic() + timeout, "initial synchronisation")
        self._ensure_root()

    def close(self) -> None:
        self._idl.close()

    def __enter__(self) -> Ovsdb:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ----------------------------------------------------------------------------- plumbing
    def _run_until(self, deadline: float, done: Callable[[], bool], what: str) -> None:
        while True:
            self._idl.run()
            if done():
                return
            if time.monotonic() >= deadline:
                raise OvsdbError(f"{self.remote}: {what}: timed out")
            _block(deadline, self._idl.wait)

    def _sync(self, deadline: float, what: str) -> None:
        """Connect (first time) and process every update received so far."""
        self._run_until(deadline, self._idl.has_ever_connected, what)

    def _rows(self, table: str) -> Iterable[Row]:
        return list(self._idl.tables[table].rows.values())

    def _find(self, table: str, name: str) -> Row | None:
        for row in self._rows(table):
            if row.name == name:
                return row
        return None

    def _root(self) -> Row | None:
        return next(iter(self._rows("Open_vSwitch")), None)

    def transact(
        self,
        what: str,
        build: Callable[[ovs.db.idl.Transaction, Row], bool],
        *,
        wait_applied: bool = True,
    ) -> None:
        """Run `build(txn, root)` in a transaction; `build` returns whether it changed anything.

        `root` is the Open_vSwitch row (inserted if the database is new). `what` names the request
        in errors. Columns `build` reads and rewrites whole should be `verify()`ed: the
        transaction then fails with TRY_AGAIN on a concurrent change and is rebuilt from a fresh
        replica.
        """
        deadline = time.monotonic() + self.timeout
        while True:
            self._sync(deadline, what)
            txn = ovs.db.idl.Transaction(self._idl)
            txn.add_comment(f"sdnmip: {what}")
            root = self._root()
            if root is None:
                raise OvsdbError(f"{self.remote}: {what}: the Open_vSwitch row disappeared")
            changed = build(txn, root)
            if not changed:
                txn.abort()
                return
            if wait_applied:
                root.increment("next_cfg")
            status = self._commit(txn, deadline, what)
            if status == ovs.db.idl.Transaction.TRY_AGAIN:
                continue
            if status not in (ovs.db.idl.Transaction.SUCCESS, ovs.db.idl.Transaction.UNCHANGED):
                raise OvsdbError(f"{self.remote}: {what}: {txn.get_error()}")
            if wait_applied:
                self._wait_cfg(txn.get_increment_new_value(), deadline, what)
            return

    def _wait_cfg(self, target: int, deadline: float, what: str) -> None:
        """Wait until ovs-vswitchd reports (cur_cfg) that it applied configuration `target`."""
        self._run_until(
            deadline,
            lambda: (r := self._root()) is not None and r.cur_cfg >= target,
            f"{what}: waiting for ovs-vswitchd to apply it (is ovs-vswitchd running?)",
        )

    def _ensure_root(self) -> None:
        """A database fresh from `ovsdb-tool create` has no Open_vSwitch row; make it (this is
        what `ovs-vsctl init` does)."""
        deadline = time.monotonic() + self.timeout
        while self._root() is None:
            txn = ovs.db.idl.Transaction(self._idl)
            txn.add_comment("sdnmip: initialise the database")
            txn.insert(self._idl.tables["Open_vSwitch"])
            status = self._commit(txn, deadline, "initialise the database")
            if status not in (ovs.db.idl.Transaction.SUCCESS, ovs.db.idl.Transaction.TRY_AGAIN):
                raise OvsdbError(f"{self.remote}: initialise the database: {txn.get_error()}")
            self._run_until(deadline, lambda: self._root() is not None, "initialise the database")

    def _commit(self, txn: ovs.db.idl.Transaction, deadline: float, what: str) -> str:
        while True:
            status = txn.commit()
            if status != ovs.db.idl.Transaction.INCOMPLETE:
                return str(status)
            if time.monotonic() >= deadline:
                txn.abort()
                raise OvsdbError(f"{self.remote}: {what}: no commit reply before the deadline")
            self._idl.run()
            _block(deadline, self._idl.wait, txn.wait)

    def row(self, table: str, name: str) -> Row | None:
        """The row of `table` named `name` in the replica (for `transact` builders)."""
        return self._find(table, name)

    def insert(self, txn: ovs.db.idl.Transaction, table: str) -> Row:
        """A new row of `table` in `txn` (for `transact` builders)."""
        return txn.insert(self._idl.tables[table])

    def wait_for(self, what: str, done: Callable[[], bool], timeout: float | None = None) -> None:
        """Poll the replica until `done()` holds (or fail with `what` after the timeout)."""
        deadline = time.monotonic() + (self.timeout if timeout is None else timeout)
        self._run_until(deadline, done, what)

    # ----------------------------------------------------------------------------- reads
    def datapath_types(self) -> list[str]:
        """Datapath types ovs-vswitchd supports (filled in once it has started)."""
        self._sync(time.monotonic() + self.timeout, "datapath_types")
        root = self._root()
        return list(root.datapath_types) if root is not None else []

    def wait_vswitchd(self, timeout: float | None = None) -> None:
        """Wait until ovs-vswitchd has connected and published its datapath types."""
        self.wait_for(
            "waiting for ovs-vswitchd to connect to the database",
            lambda: (r := self._root()) is not None and bool(r.datapath_types),
            timeout,
        )

    def bridges(self) -> list[str]:
        self._sync(time.monotonic() + self.timeout, "list bridges")
        return sorted(row.name for row in self._rows("Bridge"))

    def ports(self, bridge: str) -> list[str]:
        self._sync(time.monotonic() + self.timeout, f"list ports of {bridge}")
        row = self._find("Bridge", bridge)
        if row is None:
            raise OvsdbError(f"no bridge {bridge!r}")
        return sorted(port.name for port in row.ports)

    def fail_mode(self, bridge: str) -> str | None:
        row = self._find("Bridge", bridge)
        if row is None:
            raise OvsdbError(f"no bridge {bridge!r}")
        mode = _opt(row.fail_mode)
        return None if mode is None else str(mode)

    def controller_targets(self, bridge: str) -> list[str]:
        row = self._find("Bridge", bridge)
        if row is None:
            raise OvsdbError(f"no bridge {bridge!r}")
        return sorted(c.target for c in row.controller)

    def interface_error(self, name: str) -> str | None:
        row = self._find("Interface", name)
        return None if row is None else _opt(row.error)

    def get_ofport(self, iface: str, timeout: float | None = None) -> int:
        """The OpenFlow port number of `iface`, waiting until ovs-vswitchd has assigned it."""
        result: list[int] = []

        def assigned() -> bool:
            row = self._find("Interface", iface)
            if row is None:
                return False
            err = _opt(row.error)
            if err:
                raise OvsdbError(f"interface {iface}: {err}")
            port = _opt(row.ofport)
            if port is not None and port > 0:
                result.append(int(port))
                return True
            return False

        self.wait_for(f"ofport of {iface}", assigned, timeout)
        return result[0]

    def get_mac(self, iface: str, timeout: float | None = None) -> str:
        """The MAC address `iface` uses (mac_in_use), waiting until ovs-vswitchd reports it."""
        result: list[str] = []

        def known() -> bool:
            row = self._find("Interface", iface)
            mac = None if row is None else _opt(row.mac_in_use)
            if mac:
                result.append(str(mac))
            return bool(mac)

        self.wait_for(f"MAC address of {iface}", known, timeout)
        return result[0]

    def get_other_config(self, table: str, name: str) -> dict[str, str]:
        """other_config of the Bridge/Port/Interface named `name` (or of the root row if
        `table` is "Open_vSwitch", where `name` is ignored)."""
        self._sync(time.monotonic() + self.timeout, f"read {table} {name} other_config")
        row = self._root() if table == "Open_vSwitch" else self._find(table, name)
        if row is None:
            raise OvsdbError(f"no {table} {name!r}")
        return dict(row.other_config)

    # ----------------------------------------------------------------------------- writes
    def ensure_bridge(
        self,
        name: str,
        *,
        datapath_type: str = "",
        protocols: Sequence[str] = (),
        fail_mode: str | None = None,
        other_config: Mapping[str, str] | None = None,
        wait_applied: bool = True,
    ) -> None:
        """Create bridge `name` (with its local port) or bring its settings to the given ones.

        Settings given as None/empty are left as they are on an existing bridge, except
        `datapath_type`, `protocols` and `fail_mode`, which are made exactly as given.
        """

        def build(txn: ovs.db.idl.Transaction, root: Row) -> bool:
            bridge = self._find("Bridge", name)
            if bridge is None:
                iface = txn.insert(self._idl.tables["Interface"])
                iface.name = name
                iface.type = "internal"
                port = txn.insert(self._idl.tables["Port"])
                port.name = name
                port.interfaces = [iface]
                bridge = txn.insert(self._idl.tables["Bridge"])
                bridge.name = name
                bridge.ports = [port]
                bridge.datapath_type = datapath_type
                bridge.protocols = list(protocols)
                bridge.fail_mode = [] if fail_mode is None else [fail_mode]
                bridge.other_config = dict(other_config or {})
                root.addvalue("bridges", bridge)
                return True
            changed = False
            if bridge.datapath_type != datapath_type:
                bridge.datapath_type = datapath_type
                changed = True
            if sorted(bridge.protocols) != sorted(protocols):
                bridge.protocols = list(protocols)
                changed = True
            if _opt(bridge.fail_mode) != fail_mode:
                bridge.fail_mode = [] if fail_mode is None else [fail_mode]
                changed = True
            for key, value in (other_config or {}).items():
                if bridge.other_config.get(key) != value:
                    bridge.setkey("other_config", key, value)
                    changed = True
            return changed

        self.transact(f"ensure bridge {name}", build, wait_applied=wait_applied)

    def remove_bridge(self, name: str, *, wait_applied: bool = True) -> None:
        """Remove bridge `name` with all its ports; nothing happens if it is not there."""

        def build(txn: ovs.db.idl.Transaction, root: Row) -> bool:
            bridge = self._find("Bridge", name)
            if bridge is None:
                return False
            root.delvalue("bridges", bridge)  # its ports and interfaces go with it (GC)
            return True

        self.transact(f"remove bridge {name}", build, wait_applied=wait_applied)

    def ensure_port(
        self,
        bridge: str,
        name: str,
        *,
        type: str = "",
        options: Mapping[str, str] | None = None,
        mtu_request: int | None = None,
        other_config: Mapping[str, str] | None = None,
        qos_type: str | None = None,
        wait_applied: bool = True,
    ) -> None:
        """Add port `name` (one interface of the same name) to `bridge`, or update it in place.

        `type`, `options`, `mtu_request` and `qos_type` are made exactly as given; keys of
        `other_config` are added or changed, others kept. `qos_type` attaches a QoS row of that
        type to the port: "linux-noop" tells ovs-vswitchd to leave the device's qdisc alone
        (otherwise it deletes, say, a netem qdisc it does not manage).
        """
        opts = dict(options or {})

        def build(txn: ovs.db.idl.Transaction, root: Row) -> bool:
            br = self._find("Bridge", bridge)
            if br is None:
                raise OvsdbError(f"add port {name}: no bridge {bridge!r}")
            port = self._find("Port", name)
            if port is None:
                iface = txn.insert(self._idl.tables["Interface"])
                iface.name = name
                iface.type = type
                iface.options = opts
                iface.mtu_request = [] if mtu_request is None else [mtu_request]
                iface.other_config = dict(other_config or {})
                port = txn.insert(self._idl.tables["Port"])
                port.name = name
                port.interfaces = [iface]
                if qos_type is not None:
                    qos = txn.insert(self._idl.tables["QoS"])
                    qos.type = qos_type
                    port.qos = [qos]
                br.addvalue("ports", port)
                return True
            if port not in br.ports:
                raise OvsdbError(f"add port {name} to {bridge}: it belongs to another bridge")
            iface = next(i for i in port.interfaces if i.name == name)
            changed = False
            if iface.type != type:
                iface.type = type
                changed = True
            if dict(iface.options) != opts:
                iface.options = opts
                changed = True
            if _opt(iface.mtu_request) != mtu_request:
                iface.mtu_request = [] if mtu_request is None else [mtu_request]
                changed = True
            for key, value in (other_config or {}).items():
                if iface.other_config.get(key) != value:
                    iface.setkey("other_config", key, value)
                    changed = True
            qos_row = _opt(port.qos)
            current_qos = None if qos_row is None else qos_row.type
            if current_qos != qos_type:
                if qos_type is None:
                    port.qos = []
                else:
                    qos = txn.insert(self._idl.tables["QoS"])
                    qos.type = qos_type
                    port.qos = [qos]
                changed = True
            return changed

        self.transact(f"ensure port {name} on {bridge}", build, wait_applied=wait_applied)

    def remove_port(self, bridge: str, name: str, *, wait_applied: bool = True) -> None:
        """Remove port `name` from `bridge`; nothing happens if it is not there."""

        def build(txn: ovs.db.idl.Transaction, root: Row) -> bool:
            br = self._find("Bridge", bridge)
            port = self._find("Port", name)
            if br is None or port is None or port not in br.ports:
                return False
            # Port, Interface and QoS rows are garbage-collected once unreferenced.
            br.delvalue("ports", port)
            return True

        self.transact(f"remove port {name} from {bridge}", build, wait_applied=wait_applied)

    def set_fail_mode(self, bridge: str, mode: str | None) -> None:
        """ "secure" (drop what no flow matches) or "standalone"; None clears it."""

        def build(txn: ovs.db.idl.Transaction, root: Row) -> bool:
            br = self._find("Bridge", bridge)
            if br is None:
                raise OvsdbError(f"set fail mode: no bridge {bridge!r}")
            if _opt(br.fail_mode) == mode:
                return False
            br.fail_mode = [] if mode is None else [mode]
            return True

        self.transact(f"set fail mode of {bridge} to {mode}", build)

    def set_controller(self, bridge: str, targets: Sequence[str]) -> None:
        """Make `targets` (e.g. "tcp:127.0.0.1:6653") exactly the bridge's controllers.

        Beware: ovs-vswitchd flushes the bridge's flow table whenever the bridge goes from no
        controller to some controller or back, so flows installed before (such as the testbed's
        plumbing) are gone afterwards; the controller must install what it needs.
        """

        def build(txn: ovs.db.idl.Transaction, root: Row) -> bool:
            br = self._find("Bridge", bridge)
            if br is None:
                raise OvsdbError(f"set controller: no bridge {bridge!r}")
            if sorted(c.target for c in br.controller) == sorted(targets):
                return False
            rows = []
            for target in targets:
                row = txn.insert(self._idl.tables["Controller"])
                row.target = target
                rows.append(row)
            br.verify("controller")
            br.controller = rows
            return True

        self.transact(f"set controller of {bridge} to {list(targets)}", build)

    def set_other_config(self, table: str, name: str, values: Mapping[str, str | None]) -> None:
        """Set keys of other_config on a Bridge/Port/Interface (or on the root row if `table` is
        "Open_vSwitch"); a value of None removes the key."""

        def build(txn: ovs.db.idl.Transaction, root: Row) -> bool:
            row = root if table == "Open_vSwitch" else self._find(table, name)
            if row is None:
                raise OvsdbError(f"set other_config: no {table} {name!r}")
            changed = False
            current = dict(row.other_config)
            for key, value in values.items():
                if value is None and key in current:
                    row.delkey("other_config", key)
                    changed = True
                elif value is not None and current.get(key) != value:
                    row.setkey("other_config", key, value)
                    changed = True
            return changed

        self.transact(f"set other_config of {table} {name}", build)
