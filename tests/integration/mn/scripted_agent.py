"""A scripted stand-in for the MN agent's RPC (sdnmip/mn_agent/api.py), for controller-shell tests.

It answers hello/status/subscribe/claim/bind/release/adopt as the contract says and reports
every bind as bound a few milliseconds later, with no Home Agent behind it. It lets the shell
tests (bridge, reconciliation, restart, counters) run without the agent's kernel data path; the
end-to-end must-shows use the real agent and HA.

    python scripted_agent.py SOCKET PRIMARY COA_WLAN ROUTER_MAC_WLAN COA_LTE ROUTER_MAC_LTE
Writes every request it gets to SOCKET.log (one JSON line each).
"""

from __future__ import annotations

import json
import os
import socket
import sys
import threading
import time
from ipaddress import IPv6Address

HOME = "2001:db8:100::"
HA = "2001:db8:100::1"


class Agent:
    def __init__(self, path: str, primary: str, uplinks: dict[str, tuple[str, str]]) -> None:
        self.path = path
        self.primary = primary
        self.uplinks = uplinks
        self.lock = threading.Lock()
        self.subscribers: list[socket.socket] = []
        self.hoas: dict[str, dict] = {primary: self._hoa(primary, "primary", "wlan")}
        self.next_spare = 0x2001
        self.spares: list[str] = []
        for _ in range(4):
            self._new_spare()
        self.log = open(path + ".log", "a")  # noqa: SIM115

    def _hoa(self, hoa: str, role: str, uplink: str) -> dict:
        return {
            "hoa": hoa,
            "role": role,
            "state": "bound",
            "uplink": uplink,
            "coa": self.uplinks[uplink][0],
            "status": 0,
            "lifetime": 600,
            "expires_in": 600,
        }

    def _new_spare(self) -> None:
        hoa = str(IPv6Address(HOME) + self.next_spare)
        self.next_spare += 1
        self.hoas[hoa] = self._hoa(hoa, "spare", "wlan")
        self.spares.append(hoa)

    def snapshot(self) -> dict:
        return {
            "hello": {
                "version": 1,
                "primary_hoa": self.primary,
                "home_agent": HA,
                "home_prefixes": [HOME + "/64"],
            },
            "uplinks": [
                {
                    "name": n,
                    "carrier": True,
                    "coa": coa,
                    "router": "fe80::1",
                    "router_mac": mac,
                    "usable": True,
                }
                for n, (coa, mac) in self.uplinks.items()
            ],
            "hoas": list(self.hoas.values()),
            "spares": list(self.spares),
        }

    def publish(self, event: str, data: dict) -> None:
        line = (json.dumps({"event": event, "data": data}) + "\n").encode()
        for s in list(self.subscribers):
            try:
                s.sendall(line)
            except OSError:
                self.subscribers.remove(s)

    def request(self, conn: socket.socket, req: dict) -> dict:
        op, args = req["op"], req.get("args") or {}
        self.log.write(json.dumps(req) + "\n")
        self.log.flush()
        if op == "subscribe":
            self.subscribers.append(conn)
            return self.snapshot()
        if op == "status":
            return self.snapshot()
        if op == "hello":
            return self.snapshot()["hello"]
        hoa = args.get("hoa")
        if op == "claim":
            if hoa not in self.spares:
                raise KeyError("not_spare")
            self.spares.remove(hoa)
            self.hoas[hoa]["role"] = "in_use"
            self._new_spare()
            self.publish("pool", {"spares": list(self.spares)})
            return self.hoas[hoa]
        if op == "bind":
            uplink = args["uplink"]
            rec = self.hoas[hoa]

            def later() -> None:
                time.sleep(0.02)
                with self.lock:
                    rec.update(uplink=uplink, coa=self.uplinks[uplink][0], state="bound")
                    self.publish("binding", rec)

            threading.Thread(target=later, daemon=True).start()
            return {}
        if op == "release":
            rec = self.hoas.pop(hoa)
            self.publish("hoa_freed", {"hoa": rec["hoa"]})
            return {}
        raise KeyError("bad_request")

    def serve(self) -> None:
        if os.path.exists(self.path):
            os.unlink(self.path)
        srv = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        srv.bind(self.path)
        srv.listen(8)
        while True:
            conn, _ = srv.accept()
            threading.Thread(target=self.connection, args=(conn,), daemon=True).start()

    def connection(self, conn: socket.socket) -> None:
        buf = b""
        while True:
            chunk = conn.recv(65536)
            if not chunk:
                return
            buf += chunk
            while b"\n" in buf:
                line, _, buf = buf.partition(b"\n")
                req = json.loads(line)
                with self.lock:
                    try:
                        ans = {"id": req["id"], "ok": True, "result": self.request(conn, req)}
                    except KeyError as exc:
                        ans = {
                            "id": req["id"],
                            "ok": False,
                            "error": {"code": str(exc.args[0]), "message": "scripted"},
                        }
                    conn.sendall((json.dumps(ans) + "\n").encode())


if __name__ == "__main__":
    path, primary, coa_w, mac_w, coa_l, mac_l = sys.argv[1:7]
    Agent(path, primary, {"wlan": (coa_w, mac_w), "lte": (coa_l, mac_l)}).serve()
