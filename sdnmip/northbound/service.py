"""The northbound as a service: every REST operation as a method, over the controller's app.

Owns: the JSON-ready views of interfaces, HoAs (with the agent's bindings), flows and rules; the
changes (move or remove a flow; push, replace or remove rules; set user preferences; application
declarations; reload the policy files) and their effect on live flows.
How changes reach the controller: only through the app's one locked entry point
(`app.call(fn, atomic=True)` for changes, `app.read(fn)` for views), like every other event,
so each change is atomic with respect to packet-ins and its OpenFlow messages and agent requests
go out through the app's one send path. A policy change is built from the running policy and
installed inside that call: a refusal (PolicyError, or any NorthboundError) raises before
anything is installed, so the running policy stays as it was. Installing re-steers the live
flows the change affects (`SteeringEngine.install` says which; `MnLogic.resteer(now, only=...)`
hands them over by re-binding their HoAs), not only new flows.
Must not: parse HTTP, hold policy logic of its own (sdnmip/core does), or do network I/O other
than through the injected agent view.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from ipaddress import IPv6Address, IPv6Network
from pathlib import Path
from typing import Any, Protocol, TypeVar

from sdnmip.core.policy import Policy
from sdnmip.core.policy_model import PolicyError
from sdnmip.core.policy_parse import PROTOCOLS, action_to_data
from sdnmip.core.steering import SteeringEngine
from sdnmip.core.types import Mode
from sdnmip.northbound.errors import BadRequest, Conflict, Invalid, NotFound, invalid
from sdnmip.northbound.metrics import Registry
from sdnmip.northbound.policy_file import PolicyDirectory
from sdnmip.northbound.policy_store import (
    PolicyStore,
    RuleSetFile,
    owner,
    parse_source,
    rule_view,
)

log = logging.getLogger("sdnmip.northbound")

T = TypeVar("T")
PROTO_NAMES = {number: name for name, number in PROTOCOLS.items()}
MOVE_KEYS = ("network",)
FLOW_FILTERS = ("uplink", "app_id", "proto", "remote")


class AppLike(Protocol):
    """What the service needs of the controller app (sdnmip/controller/app.py)."""

    logic: Any  # sdnmip.controller.logic.MnLogic
    dp: Any
    reconciled: bool
    counters: Mapping[str, int]

    def call(self, fn: Callable[..., list[Any]], *args: Any, atomic: bool = False) -> list[Any]: ...

    def read(self, fn: Callable[[], Any]) -> Any: ...


AgentView = Callable[[], Any]  # -> sdnmip.mn_agent.api.Snapshot, or None when unreachable


@dataclass(frozen=True)
class Settings:
    """What the service takes from the MN configuration."""

    uplinks: tuple[str, ...]  # configured order
    costs: Mapping[str, float]
    policy_dir: Path | None = None


@dataclass
class ReloadRecord:
    at: float | None = None  # wall-clock time (for people), None before the first reload
    ok: bool = True
    changed: bool = False
    error: dict[str, Any] | None = None


class NorthboundService:
    def __init__(
        self,
        app: AppLike,
        engine: SteeringEngine,
        store: PolicyStore,
        settings: Settings,
        *,
        directory: PolicyDirectory | None = None,
        saved: RuleSetFile | None = None,
        agent: AgentView | None = None,
        agent_connected: Callable[[], bool] | None = None,
        registry: Registry | None = None,
        clock: Callable[[], float] = time.monotonic,
        wall_clock: Callable[[], float] = time.time,
    ) -> None:
        self.app = app
        self.engine = engine
        self.store = store
        self.settings = settings
        self.directory = directory
        self.saved = saved
        self.agent = agent
        self.agent_connected = agent_connected
        self.clock = clock
        self.wall_clock = wall_clock
        self.last_reload = ReloadRecord()
        self.registry = registry if registry is not None else Registry()
        self.reloads = self.registry.counter(
            "sdnmip_policy_reloads_total",
            "Policy file reloads, by result (ok, refused: the running policy stayed)",
            ("result",),
        )
        self.changes = self.registry.counter(
            "sdnmip_policy_changes_total",
            "Policy changes through the northbound, by kind",
            ("kind",),
        )
        self.resteered = self.registry.counter(
            "sdnmip_flows_resteered_total",
            "Live flows handed over because a policy change decided them again",
        )

    @property
    def logic(self) -> Any:
        return self.app.logic

    # -- status and views -----------------------------------------------------------------------

    def status(self) -> dict[str, Any]:
        def view() -> dict[str, Any]:
            logic = self.logic
            return {
                "switch_connected": self.app.dp is not None,
                "reconciled": bool(self.app.reconciled),
                "flows": len(logic.flows),
                "hoas_held": len(logic.hoas),
                "spares": len(logic.hoas.spares()),
                "rules": len(self.engine.policy.rules),
            }

        out: dict[str, Any] = self.app.read(view)
        out["agent_connected"] = bool(self.agent_connected and self.agent_connected())
        out["policy_ok"] = self.last_reload.ok
        return out

    def interfaces(self) -> list[dict[str, Any]]:
        def view() -> list[dict[str, Any]]:
            logic = self.logic
            out = []
            for name, u in logic.uplinks.items():
                out.append(
                    {
                        "name": name,
                        "link_up": u.link_up,
                        "agent_up": u.agent_up,
                        "usable": u.usable,
                        "coa": _s(u.coa),
                        "router_mac": u.router_mac,
                        "cost": self.settings.costs.get(name),
                        "rate_bps": u.rate_bps,
                        "rx_bytes": u.rx_bytes,
                        "tx_bytes": u.tx_bytes,
                        "flows": len(logic.flows.flows_on_uplink(name)),
                    }
                )
            return out

        result: list[dict[str, Any]] = self.app.read(view)
        return result

    def hoas(self) -> dict[str, Any]:
        """The controller's Home Address view joined with the agent's bindings."""

        def view() -> dict[str, Any]:
            logic = self.logic
            rows: dict[IPv6Address, dict[str, Any]] = {}
            for rec in logic.hoas.held():
                role = "primary" if rec.addr == logic.hoas.primary else "in_use"
                rows[rec.addr] = _hoa_row(rec.addr, role, rec.bound, rec.target)
                rows[rec.addr]["flows"] = logic.flows.hoa_flow_count(rec.addr)
            for addr, uplink in logic.hoas.spares().items():
                rows.setdefault(addr, _hoa_row(addr, "spare", uplink, None))
            return {"primary": str(logic.hoas.primary), "rows": rows}

        found = self.app.read(view)
        rows: dict[IPv6Address, dict[str, Any]] = found["rows"]
        snap = self.agent() if self.agent is not None else None
        if snap is not None:
            for h in snap.hoas:
                row = rows.get(h.hoa)
                if row is None:  # registering, held or deregistering at the agent
                    row = rows[h.hoa] = _hoa_row(h.hoa, str(h.role), None, None)
                row["binding"] = {
                    "state": str(h.state),
                    "uplink": h.uplink,
                    "coa": _s(h.coa),
                    "status": h.status,
                    "lifetime": h.lifetime,
                    "expires_in": h.expires_in,
                }
        return {
            "primary": found["primary"],
            "agent_connected": snap is not None,
            "hoas": list(rows.values()),
        }

    def flows(self, query: Mapping[str, str] | None = None) -> list[dict[str, Any]]:
        filters = dict(query or {})
        for key in filters:
            if key not in FLOW_FILTERS:
                raise BadRequest(
                    f"unknown query parameter (filters: {', '.join(FLOW_FILTERS)})", key
                )
        uplink = filters.get("uplink")
        if uplink is not None and uplink not in self.settings.uplinks:
            raise BadRequest(
                f"no uplink {uplink!r} (uplinks: {', '.join(self.settings.uplinks)})", "uplink"
            )
        proto = _proto_filter(filters.get("proto"))
        remote = _prefix_filter(filters.get("remote"))
        now = self.clock()

        def view() -> list[dict[str, Any]]:
            out = []
            for e in self.logic.flows:
                if "uplink" in filters and e.uplink != filters["uplink"]:
                    continue
                if proto is not None and e.key.proto != proto:
                    continue
                if remote is not None and e.key.remote not in remote:
                    continue
                row = self._flow_row(e, now)
                if "app_id" in filters and row["app_id"] != filters["app_id"]:
                    continue
                out.append(row)
            return out

        result: list[dict[str, Any]] = self.app.read(view)
        return result

    def flow(self, flow_id: int) -> dict[str, Any]:
        now = self.clock()

        def view() -> dict[str, Any] | None:
            e = self.logic.flows.get(flow_id)
            return None if e is None else self._flow_row(e, now)

        row: dict[str, Any] | None = self.app.read(view)
        if row is None:
            raise NotFound(f"no live flow {flow_id}", "flow_id")
        return row

    def _flow_row(self, e: Any, now: float) -> dict[str, Any]:
        """Under the app's lock."""
        logic = self.logic
        k = e.key
        rec = logic.hoas.record(e.hoa) if e.hoa is not None else None
        target = rec.target if rec is not None else None
        if e.mode is Mode.DIRECT:
            coa = e.coa
        else:
            u = logic.uplinks.get(e.uplink)
            coa = u.coa if u is not None else None
        return {
            "flow_id": e.flow_id,
            "proto": PROTO_NAMES.get(k.proto, k.proto),
            "local": str(k.local),
            "local_port": k.local_port,
            "remote": str(k.remote),
            "remote_port": k.remote_port,
            "direction": e.desc.direction.value,
            "dscp": e.desc.dscp,
            "flow_label": e.desc.flow_label,
            "app_id": self.engine.attribute(e.desc).app_id,
            "mode": e.mode.value,
            "hoa": _s(e.hoa),
            "uplink": e.uplink,
            "coa": _s(coa),
            "moving_to": target if target is not None and target != e.uplink else None,
            "rule_id": e.rule_id,
            "pinned": e.pinned is not None,
            "pinned_to": e.pinned,
            "age_s": round(max(0.0, now - e.created), 3),
            "idle_s": round(max(0.0, now - e.last_seen), 3),
            "packets_up": e.up.packets,
            "bytes_up": e.up.bytes,
            "packets_down": e.down.packets,
            "bytes_down": e.down.bytes,
        }

    # -- flow commands --------------------------------------------------------------------------

    def move_flow(self, flow_id: int, body: object) -> dict[str, Any]:
        """Hand one flow over to a network (and the flows that share its HoA with it)."""
        network = _network(body)
        result: dict[str, Any] = {}

        def run(now: float) -> list[Any]:
            from sdnmip.controller.logic import FlowError

            logic = self.logic
            e = logic.flows.get(flow_id)
            if e is None:
                raise NotFound(f"no live flow {flow_id}", "flow_id")
            if network not in logic.uplinks:
                raise Invalid(
                    f"no network {network!r} (networks: {', '.join(logic.uplinks)})", "network"
                )
            try:
                actions: list[Any] = logic.move_flow(now, flow_id, network)
            except FlowError as exc:
                raise Conflict(str(exc), "network") from None
            together = sorted(logic.flows.flows_on_hoa(e.hoa)) if e.hoa is not None else []
            result.update(
                flow_id=flow_id,
                network=network,
                hoa=_s(e.hoa),
                moved=together,
                pending=e.uplink != network,
            )
            return actions

        self.app.call(run, atomic=True)
        self.changes.inc(kind="move")
        return result

    def remove_flow(self, flow_id: int) -> None:
        def run(now: float) -> list[Any]:
            if self.logic.flows.get(flow_id) is None:
                raise NotFound(f"no live flow {flow_id}", "flow_id")
            actions: list[Any] = self.logic.remove_flow(now, flow_id)
            return actions

        self.app.call(run, atomic=True)
        self.changes.inc(kind="remove_flow")

    # -- rules ----------------------------------------------------------------------------------

    def rules(self, source: str | None = None) -> dict[str, Any]:
        policy = self.engine.policy
        wanted = parse_source(source) if source is not None else None
        origin_of = {(r.source, r.id): rs for rs in policy.rulesets for r in rs.rules}
        rows = [
            rule_view(r, origin_of[(r.source, r.id)])
            for r in policy.rules
            if wanted is None or r.source is wanted
        ]
        if wanted is not None:
            return {"source": wanted.value, "rules": rows}
        default_from = next((rs.origin for rs in policy.rulesets if rs.default is not None), None)
        return {
            "precedence": [s.value for s in policy.precedence],
            "default": action_to_data(policy.default) if default_from is not None else None,
            "default_origin": default_from,
            "rules": rows,
        }

    def rule(self, source: str, rule_id: str) -> dict[str, Any]:
        src = parse_source(source)
        policy = self.engine.policy
        rs = owner(policy, src, rule_id)
        found = policy.find(src, rule_id)
        if rs is None or found is None:
            raise NotFound(f"there is no {src.value} rule {rule_id!r}", "rule_id")
        return rule_view(found, rs)

    def put_rule(
        self, source: str, body: object, rule_id: str | None = None
    ) -> tuple[dict[str, Any], bool]:
        """POST (rule_id None) or PUT one rule; returns the answer and whether it was created."""
        src = parse_source(source)

        def build(policy: Policy) -> tuple[Policy, tuple[Any, bool]]:
            new, rule, created = self.store.put_rule(policy, src, body, rule_id)
            return new, (rule, created)

        (rule, created), moved = self._change(build, "put_rule")
        rs = owner(self.engine.policy, src, rule.id)
        assert rs is not None
        return {"rule": rule_view(rule, rs), "resteered": moved}, created

    def delete_rule(self, source: str, rule_id: str) -> dict[str, Any]:
        src = parse_source(source)

        def build(policy: Policy) -> tuple[Policy, None]:
            return self.store.remove_rule(policy, src, rule_id), None

        _, moved = self._change(build, "delete_rule")
        return {"deleted": f"{src.value}:{rule_id}", "resteered": moved}

    # -- preferences ----------------------------------------------------------------------------

    def preferences(self) -> dict[str, Any]:
        return self.store.preferences(self.engine.policy)

    def set_preferences(self, body: object) -> dict[str, Any]:
        def build(policy: Policy) -> tuple[Policy, None]:
            return self.store.set_preferences(policy, body), None

        _, moved = self._change(build, "preferences")
        return {"preferences": self.preferences(), "resteered": moved}

    def clear_preferences(self) -> dict[str, Any]:
        return self.set_preferences({})

    # -- applications ---------------------------------------------------------------------------

    def apps(self) -> list[dict[str, Any]]:
        return self.store.apps(self.engine.policy)

    def declarations(self, app_id: str) -> dict[str, Any]:
        return {"app_id": app_id, "flows": self.store.declarations(self.engine.policy, app_id)}

    def declare(
        self, app_id: str, body: object, decl_id: str | None = None
    ) -> tuple[dict[str, Any], bool]:
        def build(policy: Policy) -> tuple[Policy, tuple[dict[str, Any], bool]]:
            new, decl, created = self.store.declare(policy, app_id, body, decl_id)
            return new, (decl, created)

        (decl, created), moved = self._change(build, "declare")
        return {"app_id": app_id, "declaration": decl, "resteered": moved}, created

    def withdraw(self, app_id: str, decl_id: str | None = None) -> dict[str, Any]:
        def build(policy: Policy) -> tuple[Policy, None]:
            return self.store.withdraw(policy, app_id, decl_id), None

        _, moved = self._change(build, "withdraw")
        return {"app_id": app_id, "withdrawn": decl_id, "resteered": moved}

    # -- policy files ---------------------------------------------------------------------------

    def policy_info(self) -> dict[str, Any]:
        policy = self.engine.policy
        r = self.last_reload
        return {
            "directory": str(self.settings.policy_dir) if self.settings.policy_dir else None,
            "rulesets": [
                {
                    "origin": rs.origin,
                    "source": rs.source.value,
                    "rules": len(rs.rules),
                    "editable": rs.origin.startswith("rest:"),
                }
                for rs in policy.rulesets
            ],
            "rules": len(policy.rules),
            "last_reload": {"at": r.at, "ok": r.ok, "changed": r.changed, "error": r.error},
        }

    def reload(self, *, force: bool = True) -> dict[str, Any]:
        """Reload the policy files: at once (`force`, SIGHUP and REST) or if they changed (the
        poll timer). A bad file refuses the reload, the running policy stays, and the refusal is
        logged once, counted and returned (Invalid, with the file and line)."""
        directory = self.directory
        if directory is None:
            raise Conflict("no policy directory is configured (policy.dir in mn.yaml)", None)
        outcome: dict[str, Any] = {}

        def build(policy: Policy) -> tuple[Policy, None]:
            reload = directory.reload(policy) if force else directory.poll(policy)
            outcome["changed"] = reload.changed
            outcome["error"] = reload.error
            return reload.policy, None

        _, moved = self._change(build, "reload", count=False)
        error: PolicyError | None = outcome["error"]
        if error is None and not outcome["changed"]:
            return {"changed": False, "resteered": []}
        self.last_reload = ReloadRecord(
            at=self.wall_clock(),
            ok=error is None,
            changed=bool(outcome["changed"]),
            error=None if error is None else invalid(error).to_json()["error"],  # type: ignore[arg-type]
        )
        if error is not None:
            self.reloads.inc(result="refused")
            log.error("policy reload refused, the running policy stays: %s", error)
            raise invalid(error)
        self.reloads.inc(result="ok")
        log.info("policy reloaded from %s: %d flows re-steered", directory.directory, len(moved))
        return {"changed": True, "resteered": moved}

    # -- the one way to change the policy -------------------------------------------------------

    def _change(
        self, build: Callable[[Policy], tuple[Policy, T]], kind: str, *, count: bool = True
    ) -> tuple[T, list[dict[str, Any]]]:
        """Build a new policy from the running one and install it, under the controller's lock;
        hand over the live flows it affects. A refusal raises before anything changes."""
        box: dict[str, Any] = {}

        def run(now: float) -> list[Any]:
            logic = self.logic
            old = self.engine.policy
            new, extra = build(old)
            box["extra"] = extra
            box["moved"] = []
            if new is old:
                return []
            before = _targets(logic)
            affected = self.engine.install(new, ((e.flow_id, e.desc) for e in logic.flows))
            actions: list[Any] = logic.resteer(now, only=affected) if affected else []
            box["moved"] = _moved(logic, before)
            box["new"] = True
            return actions

        self.app.call(run, atomic=True)
        if box.get("new"):
            if count:
                self.changes.inc(kind=kind)
            self.resteered.inc(len(box["moved"]))
            if self.saved is not None:
                self.saved.save(self.engine.policy)
        return box["extra"], box["moved"]


def _targets(logic: Any) -> dict[int, str | None]:
    """Where each anchored flow is going (its HoA's target uplink)."""
    out: dict[int, str | None] = {}
    for e in logic.flows:
        if e.hoa is None:
            continue
        rec = logic.hoas.record(e.hoa)
        out[e.flow_id] = rec.target if rec is not None else None
    return out


def _moved(logic: Any, before: Mapping[int, str | None]) -> list[dict[str, Any]]:
    """Flows whose HoA's target changed. `from` is where the flow was going: its uplink, or,
    when a handover was still waiting for its BA, that handover's target (so a change that
    calls a pending move off reads lte -> wlan, not wlan -> wlan)."""
    out = []
    for fid, target in sorted(_targets(logic).items()):
        if fid in before and before[fid] != target:
            e = logic.flows.get(fid)
            out.append({"flow_id": fid, "from": before[fid] or e.uplink, "to": target})
    return out


def _hoa_row(
    addr: IPv6Address, role: str, uplink: str | None, target: str | None
) -> dict[str, Any]:
    return {
        "hoa": str(addr),
        "role": role,
        "uplink": uplink,
        "moving_to": target if target is not None and target != uplink else None,
        "flows": 0,
        "binding": None,
    }


def _network(body: object) -> str:
    if not isinstance(body, dict):
        raise Invalid('expected a JSON object such as {"network": "lte"}', None)
    for key in body:
        if key not in MOVE_KEYS:
            raise Invalid("unknown key (expected: network)", str(key))
    network = body.get("network")
    if network is None:
        raise Invalid("required key is missing", "network")
    if not isinstance(network, str):
        raise Invalid(f"expected a network name (a string), got {type(network).__name__}",
                      "network")  # fmt: skip
    return network


def _proto_filter(text: str | None) -> int | None:
    if text is None:
        return None
    if text in PROTOCOLS:
        return PROTOCOLS[text]
    if text.isdigit() and int(text) <= 255:
        return int(text)
    raise BadRequest(f"{text!r} is not a protocol (tcp, udp, icmpv6, sctp or 0-255)", "proto")


def _prefix_filter(text: str | None) -> IPv6Network | None:
    if text is None:
        return None
    try:
        return IPv6Network(text, strict=False)
    except ValueError:
        raise BadRequest(f"{text!r} is not an IPv6 address or prefix", "remote") from None


def _s(a: object) -> str | None:
    return None if a is None else str(a)


__all__ = ["AppLike", "NorthboundService", "Settings"]
