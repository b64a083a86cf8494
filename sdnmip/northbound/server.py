"""The northbound inside the controller process: built before the logic, started with the app.

Owns the start-up of everything northbound in `sdnmip mn-controller`:
- `Northbound.from_config(cfg)` (before os-ken starts): the policy engine the logic will ask
  (`SteeringEngine`, with the policy files of `policy.dir` and the rules saved by the REST API
  and applications), the token when one is configured (a token file that others can read, or
  a non-loopback address without one, stops the start with a message naming the field);
- `start(app, ...)` (once the app runs, from its `on_started` hook): the service, `/metrics`
  collectors, the WSGI application served by `eventlet.wsgi` on `northbound.listen`, the
  policy poll (reload when the files change) and SIGHUP (reload now).
Must not: hold logic (service.py), parse HTTP (rest.py), or block the hub: everything here runs
in green threads of the controller's eventlet hub.
"""

from __future__ import annotations

import contextlib
import json
import logging
import signal
import socket
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

import yaml

from sdnmip.core.policy import EMPTY_POLICY
from sdnmip.core.policy_parse import Context
from sdnmip.core.steering import SteeringEngine
from sdnmip.northbound import telemetry
from sdnmip.northbound.auth import BearerAuth, TokenFileError, is_loopback, load_token, split_listen
from sdnmip.northbound.errors import NorthboundError
from sdnmip.northbound.metrics import Histogram, Registry
from sdnmip.northbound.policy_file import PolicyDirectory
from sdnmip.northbound.policy_store import STATE_FILE, PolicyStore, RuleSetFile
from sdnmip.northbound.rest import RestApp
from sdnmip.northbound.service import AgentView, AppLike, NorthboundService, Settings

log = logging.getLogger("sdnmip.northbound")

OPENAPI_FILE = Path(__file__).with_name("openapi.yaml")
POLICY_POLL_S = 2.0  # how often the policy directory is checked for changes
MAX_CONNECTIONS = 64  # concurrent HTTP connections (green threads) before new ones wait
SOCKET_TIMEOUT_S = 30.0  # an idle or stalled client is dropped after this long

MnConfig = Any  # sdnmip.mn.config.MnConfig


@cache
def openapi_json() -> bytes:
    """The checked-in OpenAPI description (openapi.yaml beside this module), as JSON."""
    doc = yaml.safe_load(OPENAPI_FILE.read_text(encoding="utf-8"))
    return json.dumps(doc, separators=(",", ":")).encode()


class StartError(ValueError):
    """The northbound cannot start as configured; the message names the field."""


@dataclass
class Northbound:
    engine: SteeringEngine
    store: PolicyStore
    settings: Settings
    host: str
    port: int
    directory: PolicyDirectory | None = None
    saved: RuleSetFile | None = None
    token: str | None = None
    registry: Registry = field(default_factory=Registry)
    service: NorthboundService | None = None
    flow_setup: Histogram = field(init=False)
    _reload_now: Any = None

    def __post_init__(self) -> None:
        # Created before the app starts: the app observes it (Runtime.flow_setup).
        self.flow_setup = telemetry.flow_setup_histogram(self.registry)

    @classmethod
    def from_config(cls, cfg: MnConfig, registry: Registry | None = None) -> Northbound:
        """Raises PolicyError for a bad policy file at start (there is no old policy to keep)
        and StartError for an unusable listen address or token file."""
        names = [u.name for u in cfg.uplinks]
        order = [cfg.preferred, *(n for n in names if n != cfg.preferred)]
        context = Context(uplinks=frozenset(names), home_prefixes=tuple(cfg.home_prefixes))
        directory = PolicyDirectory(cfg.policy.dir, context) if cfg.policy.dir else None
        policy = directory.load(EMPTY_POLICY) if directory is not None else EMPTY_POLICY
        saved = RuleSetFile(Path(cfg.paths.state_dir) / STATE_FILE)
        policy, problems = saved.load(policy, context)
        for problem in problems:
            log.error("%s", problem)
        costs = {u.name: float(u.cost) for u in cfg.uplinks}
        host, port = split_listen(cfg.northbound.listen)
        token = None
        if cfg.northbound.token_file is not None:
            try:
                token = load_token(Path(cfg.northbound.token_file))
            except TokenFileError as exc:
                raise StartError(str(exc)) from None
        elif not is_loopback(host):
            raise StartError(
                "northbound.token_file: required when northbound.listen is not loopback "
                f"({cfg.northbound.listen})"
            )
        return cls(
            engine=SteeringEngine(policy, costs=costs, order=order),
            store=PolicyStore(context, order),
            settings=Settings(tuple(names), costs, cfg.policy.dir),
            host=host,
            port=port,
            directory=directory,
            saved=saved,
            token=token,
            registry=registry if registry is not None else Registry(),
        )

    def start(
        self,
        app: AppLike,
        spawn: Callable[..., Any],
        *,
        agent: AgentView | None = None,
        agent_connected: Callable[[], bool] | None = None,
    ) -> NorthboundService:
        """Serve the REST API and keep the policy files in force (green threads)."""
        import eventlet
        import eventlet.wsgi
        from eventlet.event import Event

        service = NorthboundService(
            app,
            self.engine,
            self.store,
            self.settings,
            directory=self.directory,
            saved=self.saved,
            agent=agent,
            agent_connected=agent_connected,
            registry=self.registry,
        )
        telemetry.register(self.registry, service)
        self.service = service
        rest = RestApp(
            service,
            auth=BearerAuth(self.token) if self.token is not None else None,
            openapi=openapi_json(),
        )
        family = socket.AF_INET6 if ":" in self.host else socket.AF_INET
        sock = eventlet.listen((self.host, self.port), family=family)
        log.info("northbound REST API on http://%s:%d/v1 (%s)",
                 f"[{self.host}]" if family == socket.AF_INET6 else self.host, self.port,
                 "bearer token required" if self.token else "no token: loopback only")  # fmt: skip
        spawn(
            eventlet.wsgi.server,
            sock,
            rest,
            log=_WsgiLog(),
            max_size=MAX_CONNECTIONS,
            socket_timeout=SOCKET_TIMEOUT_S,
            debug=False,  # never send a traceback to the client; it is logged
        )
        if self.directory is not None:
            self._reload_now = Event()
            spawn(self._policy_loop, service)
            signal.signal(signal.SIGHUP, self._on_sighup)
        return service

    def _on_sighup(self, signum: int, frame: Any) -> None:
        if self._reload_now is not None and not self._reload_now.ready():
            self._reload_now.send(True)

    def _policy_loop(self, service: NorthboundService) -> None:
        from eventlet import Timeout
        from eventlet.event import Event

        assert self.directory is not None
        while True:
            forced = False
            try:
                with Timeout(POLICY_POLL_S):
                    forced = bool(self._reload_now.wait())
            except Timeout:
                pass
            if forced:
                self._reload_now = Event()
                log.info("SIGHUP: reloading the policy files")
            elif not self.directory.pending():
                continue
            # A refusal is logged and counted by the service; the running policy stays.
            with contextlib.suppress(NorthboundError):
                service.reload(force=forced)


class _WsgiLog:
    """eventlet.wsgi writes its access log and tracebacks to a file-like object: send both
    to logging (tracebacks of handler bugs at error level)."""

    def write(self, text: str) -> None:
        text = text.rstrip()
        if not text:
            return
        if "Traceback" in text or "Error" in text:
            log.error("%s", text)
        else:
            log.debug("%s", text)

    def flush(self) -> None:
        pass
