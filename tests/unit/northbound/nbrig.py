"""The northbound over a real controller logic, for unit tests: no sockets, no eventlet.

`NbRig` wires the controller test rig (the pure MnLogic, the fake OpenFlow switch, a scripted
agent and a mock clock; tests/unit/controller/rig.py) to the NorthboundService through a fake
app with the real app's `call`/`read` shape, and calls the WSGI application directly.
"""

from __future__ import annotations

import io
import json
from collections import Counter
from dataclasses import dataclass, field
from ipaddress import IPv6Network
from pathlib import Path
from typing import Any

from sdnmip.core.policy import EMPTY_POLICY, Policy
from sdnmip.core.policy_parse import Context
from sdnmip.core.steering import SteeringEngine
from sdnmip.northbound import telemetry
from sdnmip.northbound.auth import BearerAuth
from sdnmip.northbound.metrics import Registry
from sdnmip.northbound.policy_file import PolicyDirectory
from sdnmip.northbound.policy_store import PolicyStore, RuleSetFile
from sdnmip.northbound.rest import RestApp
from sdnmip.northbound.server import openapi_json
from sdnmip.northbound.service import NorthboundService, Settings
from tests.unit.controller.pkt import tcp_pkt, udp_pkt
from tests.unit.controller.rig import CN1, HOA0, HOME, PRIMARY, Rig

UPLINKS = ("wlan", "lte")
COSTS = {"wlan": 10.0, "lte": 20.0}
CONTEXT = Context(uplinks=frozenset(UPLINKS), home_prefixes=(IPv6Network(HOME),))
TOKEN = "s3cret-token-0123456789"


class FakeApp:
    """The app's one entry point into the logic, as sdnmip/controller/app.py has it: `call`
    runs a logic function with `now` and sends what it returns (here: to the fake switch and
    the scripted agent); `read` runs a read-only function."""

    def __init__(self, rig: Rig) -> None:
        self.rig = rig
        self.logic = rig.logic
        self.dp: object | None = object()
        self.reconciled = True
        self.counters: Counter[str] = Counter()
        self.calls = 0

    def call(self, fn: Any, *args: Any, atomic: bool = False) -> list[Any]:
        self.calls += 1
        actions: list[Any] = fn(self.rig.now, *args)
        self.rig.run(actions)
        return actions

    def read(self, fn: Any) -> Any:
        return fn()


@dataclass
class Answer:
    status: int
    headers: dict[str, str]
    body: Any
    raw: bytes = b""

    @property
    def error(self) -> dict[str, Any]:
        err: dict[str, Any] = self.body["error"]
        return err


@dataclass
class NbRig:
    rig: Rig
    app: FakeApp
    engine: SteeringEngine
    service: NorthboundService
    rest: RestApp
    registry: Registry
    token: str | None = None
    tmp: Path | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def start(
        cls,
        policy: Policy = EMPTY_POLICY,
        *,
        token: str | None = None,
        policy_dir: Path | None = None,
        state: Path | None = None,
        agent: Any = None,
        **cfg: Any,
    ) -> NbRig:
        directory = None
        if policy_dir is not None:
            directory = PolicyDirectory(policy_dir, CONTEXT)
            policy = directory.load(policy)
        engine = SteeringEngine(policy, costs=COSTS, order=UPLINKS)
        cfg.setdefault("hoa_per_flow", True)  # mn.yaml's default: every flow can move alone
        rig = Rig.start(policy=engine, **cfg)
        app = FakeApp(rig)
        registry = Registry()
        service = NorthboundService(
            app,
            engine,
            PolicyStore(CONTEXT, UPLINKS),
            Settings(UPLINKS, COSTS, policy_dir),
            directory=directory,
            saved=RuleSetFile(state) if state is not None else None,
            agent=agent,
            agent_connected=lambda: agent is not None,
            registry=registry,
            clock=lambda: rig.now,
            wall_clock=lambda: 1_700_000_000.0 + rig.now,
        )
        telemetry.register(registry, service)
        setup = telemetry.flow_setup_histogram(registry)
        auth = BearerAuth(token) if token is not None else None
        rest = RestApp(service, auth=auth, openapi=openapi_json())
        return cls(rig, app, engine, service, rest, registry, token, extra={"setup": setup})

    # -- HTTP without sockets -------------------------------------------------------------------

    def request(
        self,
        method: str,
        path: str,
        body: Any = None,
        *,
        raw: bytes | None = None,
        content_type: str | None = "application/json",
        token: str | bool | None = True,
        headers: dict[str, str] | None = None,
    ) -> Answer:
        path, _, query = path.partition("?")
        data = raw if raw is not None else (b"" if body is None else json.dumps(body).encode())
        environ: dict[str, Any] = {
            "REQUEST_METHOD": method,
            "PATH_INFO": path,
            "QUERY_STRING": query,
            "SERVER_NAME": "127.0.0.1",
            "SERVER_PORT": "8181",
            "wsgi.input": io.BytesIO(data),
            "wsgi.url_scheme": "http",
        }
        if data:
            environ["CONTENT_LENGTH"] = str(len(data))
            if content_type is not None:
                environ["CONTENT_TYPE"] = content_type
        use = self.token if token is True else (token or None)
        if use is not None:
            environ["HTTP_AUTHORIZATION"] = f"Bearer {use}"
        for k, v in (headers or {}).items():
            environ["HTTP_" + k.upper().replace("-", "_")] = v
        seen: dict[str, Any] = {}

        def start_response(status: str, hdrs: list[tuple[str, str]]) -> None:
            seen["status"] = int(status.split(maxsplit=1)[0])
            seen["headers"] = {k.lower(): v for k, v in hdrs}

        chunks = self.rest(environ, start_response)
        payload = b"".join(chunks)
        ctype = seen["headers"].get("content-type", "")
        parsed = json.loads(payload) if payload and ctype.startswith("application/json") else None
        return Answer(seen["status"], seen["headers"], parsed, payload)

    def get(self, path: str, **kw: Any) -> Answer:
        return self.request("GET", path, **kw)

    def post(self, path: str, body: Any = None, **kw: Any) -> Answer:
        return self.request("POST", path, body, **kw)

    def put(self, path: str, body: Any = None, **kw: Any) -> Answer:
        return self.request("PUT", path, body, **kw)

    def delete(self, path: str, **kw: Any) -> Answer:
        return self.request("DELETE", path, **kw)

    # -- traffic --------------------------------------------------------------------------------

    def open_tcp(self, sport: int, dport: int, dst: str = CN1) -> int:
        """A new outgoing TCP flow (its SYN); the binds it asks for are acknowledged."""
        self.rig.send(HOA0, tcp_pkt(PRIMARY, dst, sport, dport))
        self.rig.ack_binds()
        return int(self.flow_to(dst, dport, sport)["flow_id"])

    def open_udp(self, sport: int, dport: int, dst: str = CN1) -> int:
        self.rig.send(HOA0, udp_pkt(PRIMARY, dst, sport, dport))
        self.rig.ack_binds()
        return int(self.flow_to(dst, dport, sport)["flow_id"])

    def flow_to(self, dst: str, dport: int, sport: int) -> dict[str, Any]:
        for e in self.rig.logic.flows:
            k = e.key
            if str(k.remote) == dst and k.remote_port == dport and k.local_port == sport:
                return {"flow_id": e.flow_id, "uplink": e.uplink, "hoa": e.hoa}
        raise AssertionError(f"no flow to [{dst}]:{dport} from port {sport}")

    def uplink_of(self, flow_id: int) -> str:
        e = self.rig.logic.flows.get(flow_id)
        assert e is not None, f"flow {flow_id} is gone"
        return str(e.uplink)
