"""The controller as a service: what the northbound (REST, next issue), the local control socket
and tests may ask of it, over the logic and the app's one locked entry point.

Owns: read-only views of the Flow Mapping Table, the Home Address view, the uplinks and the
shell's counters as plain JSON-ready dicts, and the two commands (move a flow, remove a flow).
Must not: touch the logic except through `app.call`/`app.read` (so every change is sent to the
switch and the agent like any other event), or know a transport.
"""

from __future__ import annotations

import os
from ipaddress import IPv6Address
from typing import Any, Protocol

from sdnmip.controller.logic import FlowError, MnLogic
from sdnmip.core.flows import FlowEntry

__all__ = ["ControllerFacade", "FlowError", "SwitchRequestFailed"]


class SwitchRequestFailed(RuntimeError):
    """A request to the switch failed or timed out; the message names the request."""


class AppLike(Protocol):
    logic: MnLogic
    reconciled: bool
    last_reconcile: dict[str, float]
    dp: Any
    counters: Any

    def call(self, fn: Any, *args: Any, atomic: bool = False) -> list[Any]: ...

    def poll_stats(self) -> None: ...

    def read(self, fn: Any) -> Any: ...


def flow_view(e: FlowEntry) -> dict[str, Any]:
    d = e.to_dict()
    d["up_installed"] = e.up.installed
    d["down_installed"] = e.down.installed
    return d


class ControllerFacade:
    def __init__(self, app: AppLike, agent_connected: Any = None) -> None:
        self.app = app
        self._agent_connected = agent_connected

    @property
    def logic(self) -> MnLogic:
        return self.app.logic

    def flows(self) -> list[dict[str, Any]]:
        return self.app.read(lambda: [flow_view(e) for e in self.logic.flows])  # type: ignore[no-any-return]

    def flow(self, flow_id: int) -> dict[str, Any]:
        def get() -> dict[str, Any]:
            e = self.logic.flows.get(flow_id)
            if e is None:
                raise FlowError(f"no live flow {flow_id}")
            return flow_view(e)

        return self.app.read(get)  # type: ignore[no-any-return]

    def hoas(self) -> dict[str, Any]:
        def view() -> dict[str, Any]:
            d = self.logic.hoas.to_dict()
            for row in d["held"]:
                row["flows"] = self.logic.flows.hoa_flow_count(IPv6Address(row["hoa"]))
            return d

        return self.app.read(view)  # type: ignore[no-any-return]

    def uplinks(self) -> list[dict[str, Any]]:
        def view() -> list[dict[str, Any]]:
            out = []
            for name, u in self.logic.uplinks.items():
                out.append(
                    {
                        "name": name,
                        "link_up": u.link_up,
                        "agent_up": u.agent_up,
                        "usable": u.usable,
                        "coa": None if u.coa is None else str(u.coa),
                        "router_mac": u.router_mac,
                        "rate_bps": u.rate_bps,
                        "flows": len(self.logic.flows.flows_on_uplink(name)),
                    }
                )
            return out

        return self.app.read(view)  # type: ignore[no-any-return]

    def status(self) -> dict[str, Any]:
        def view() -> dict[str, Any]:
            return {
                "pid": os.getpid(),
                "switch_connected": self.app.dp is not None,
                "reconciled": self.app.reconciled,
                "last_reconcile": dict(self.app.last_reconcile),
                "agent_connected": bool(self._agent_connected and self._agent_connected()),
                "flows": len(self.logic.flows),
                "hoas_held": len(self.logic.hoas),
                "spares": len(self.logic.hoas.spares()),
                "logic": dict(self.logic.stats),
                "refused": dict(self.logic.refused),
                "shell": dict(self.app.counters),
            }

        return self.app.read(view)  # type: ignore[no-any-return]

    def refresh(self) -> None:
        """Read the switch's flow and port counters now (instead of at the next poll)."""
        self.app.poll_stats()

    def move_flow(self, flow_id: int, uplink: str) -> None:
        """Hand one flow (and the flows sharing its HoA) over to `uplink`. FlowError if the
        flow or uplink cannot be acted on."""
        self.app.call(self.logic.move_flow, flow_id, uplink, atomic=True)

    def remove_flow(self, flow_id: int) -> None:
        self.app.call(self.logic.remove_flow, flow_id, atomic=True)
