"""The REST northbound as a plain WSGI application: a small router, JSON in and out.

Owns: routing (`ROUTES`, the one list the OpenAPI description must match), the bearer check,
request bodies (Content-Type application/json, at most MAX_BODY bytes, parsed with `json.loads`
only, duplicate keys and NaN refused), query parameters, and turning the service's answers and
refusals into responses (`{"error": {"code", "message", "field"}}` with a 4xx status).
Must not: hold logic (the service does), or catch what it does not expect: a bug propagates to
the WSGI server, which logs its traceback and answers 500.

Served by `eventlet.wsgi` inside the controller process (sdnmip/northbound/server.py); unit
tests call the application directly with a WSGI environ.
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qs

from sdnmip.northbound.auth import BearerAuth
from sdnmip.northbound.errors import (
    BadRequest,
    MethodNotAllowed,
    NorthboundError,
    NotFound,
    PayloadTooLarge,
    Unauthorized,
    UnsupportedMediaType,
)
from sdnmip.northbound.metrics import CONTENT_TYPE as METRICS_TYPE
from sdnmip.northbound.metrics import Counter
from sdnmip.northbound.service import NorthboundService

log = logging.getLogger("sdnmip.northbound.rest")

MAX_BODY = 64 * 1024  # a rule or a declaration is well under a kilobyte
JSON_TYPE = "application/json"
STATUS_TEXT = {
    200: "OK",
    201: "Created",
    204: "No Content",
    400: "Bad Request",
    401: "Unauthorized",
    403: "Forbidden",
    404: "Not Found",
    405: "Method Not Allowed",
    409: "Conflict",
    413: "Content Too Large",
    415: "Unsupported Media Type",
    422: "Unprocessable Content",
}

StartResponse = Callable[[str, list[tuple[str, str]]], Any]


@dataclass
class Request:
    method: str
    path: str
    params: dict[str, str]
    query: dict[str, str]
    headers: Mapping[str, str]
    _environ: Mapping[str, Any]
    _body: object = None
    _read: bool = False

    def json(self, *, required: bool = True) -> object:
        """The body as JSON (an object), read and parsed once. `required=False` allows none."""
        if not self._read:
            self._body = _read_json(self._environ, required)
            self._read = True
        return self._body


@dataclass
class Response:
    status: int
    body: object = None  # JSON-ready, or str for text
    headers: tuple[tuple[str, str], ...] = ()
    content_type: str = JSON_TYPE


Handler = Callable[[NorthboundService, Request], Response]


@dataclass(frozen=True)
class Route:
    method: str
    template: str  # OpenAPI path template, e.g. /v1/flows/{flow_id}
    handler: Handler
    regex: re.Pattern[str]


def route(method: str, template: str, handler: Handler) -> Route:
    pattern = re.sub(r"\{(\w+)\}", r"(?P<\1>[^/]+)", template)
    return Route(method, template, handler, re.compile(f"^{pattern}$"))


def ok(body: object, status: int = 200, **headers: str) -> Response:
    return Response(status, body, tuple((k.replace("_", "-"), v) for k, v in headers.items()))


def _flow_id(req: Request) -> int:
    text = req.params["flow_id"]
    if not text.isdigit() or len(text) > 15:
        raise NotFound(f"no flow {text!r} (flow ids are positive integers)", "flow_id")
    return int(text)


def _no_query(req: Request) -> None:
    for key in req.query:
        raise BadRequest("this endpoint takes no query parameters", key)


# -- handlers ---------------------------------------------------------------------------------


def get_status(s: NorthboundService, req: Request) -> Response:
    _no_query(req)
    return ok(s.status())


def get_interfaces(s: NorthboundService, req: Request) -> Response:
    _no_query(req)
    return ok({"interfaces": s.interfaces()})


def get_hoas(s: NorthboundService, req: Request) -> Response:
    _no_query(req)
    return ok(s.hoas())


def get_flows(s: NorthboundService, req: Request) -> Response:
    return ok({"flows": s.flows(req.query)})


def get_flow(s: NorthboundService, req: Request) -> Response:
    _no_query(req)
    return ok(s.flow(_flow_id(req)))


def delete_flow(s: NorthboundService, req: Request) -> Response:
    _no_query(req)
    s.remove_flow(_flow_id(req))
    return Response(204)


def move_flow(s: NorthboundService, req: Request) -> Response:
    _no_query(req)
    flow_id = _flow_id(req)
    return ok(s.move_flow(flow_id, req.json()))


def get_rules(s: NorthboundService, req: Request) -> Response:
    for key in req.query:
        if key != "source":
            raise BadRequest("unknown query parameter (filters: source)", key)
    return ok(s.rules(req.query.get("source")))


def get_source_rules(s: NorthboundService, req: Request) -> Response:
    _no_query(req)
    return ok(s.rules(req.params["source"]))


def post_rule(s: NorthboundService, req: Request) -> Response:
    _no_query(req)
    body, _ = s.put_rule(req.params["source"], req.json())
    rule = body["rule"]
    return ok(body, 201, Location=f"/v1/rules/{rule['source']}/{rule['rule']['id']}")


def get_rule(s: NorthboundService, req: Request) -> Response:
    _no_query(req)
    return ok(s.rule(req.params["source"], req.params["rule_id"]))


def put_rule(s: NorthboundService, req: Request) -> Response:
    _no_query(req)
    body, created = s.put_rule(req.params["source"], req.json(), req.params["rule_id"])
    return ok(body, 201 if created else 200)


def delete_rule(s: NorthboundService, req: Request) -> Response:
    _no_query(req)
    return ok(s.delete_rule(req.params["source"], req.params["rule_id"]))


def get_policy(s: NorthboundService, req: Request) -> Response:
    _no_query(req)
    return ok(s.policy_info())


def reload_policy(s: NorthboundService, req: Request) -> Response:
    _no_query(req)
    body = req.json(required=False)
    if body not in (None, {}):
        raise BadRequest("this endpoint takes no body (or an empty object)", None)
    return ok(s.reload(force=True))


def get_preferences(s: NorthboundService, req: Request) -> Response:
    _no_query(req)
    return ok(s.preferences())


def put_preferences(s: NorthboundService, req: Request) -> Response:
    _no_query(req)
    return ok(s.set_preferences(req.json()))


def delete_preferences(s: NorthboundService, req: Request) -> Response:
    _no_query(req)
    return ok(s.clear_preferences())


def get_apps(s: NorthboundService, req: Request) -> Response:
    _no_query(req)
    return ok({"apps": s.apps()})


def get_app_flows(s: NorthboundService, req: Request) -> Response:
    _no_query(req)
    return ok(s.declarations(req.params["app_id"]))


def post_app_flow(s: NorthboundService, req: Request) -> Response:
    _no_query(req)
    app_id = req.params["app_id"]
    body, _ = s.declare(app_id, req.json())
    decl = body["declaration"]["id"]
    return ok(body, 201, Location=f"/v1/apps/{app_id}/flows/{decl}")


def put_app_flow(s: NorthboundService, req: Request) -> Response:
    _no_query(req)
    body, created = s.declare(req.params["app_id"], req.json(), req.params["decl_id"])
    return ok(body, 201 if created else 200)


def delete_app_flows(s: NorthboundService, req: Request) -> Response:
    _no_query(req)
    return ok(s.withdraw(req.params["app_id"]))


def delete_app_flow(s: NorthboundService, req: Request) -> Response:
    _no_query(req)
    return ok(s.withdraw(req.params["app_id"], req.params["decl_id"]))


def get_metrics(s: NorthboundService, req: Request) -> Response:
    _no_query(req)
    return Response(200, s.registry.render(), content_type=METRICS_TYPE)


ROUTES: tuple[Route, ...] = (
    route("GET", "/v1/status", get_status),
    route("GET", "/v1/interfaces", get_interfaces),
    route("GET", "/v1/hoas", get_hoas),
    route("GET", "/v1/flows", get_flows),
    route("GET", "/v1/flows/{flow_id}", get_flow),
    route("DELETE", "/v1/flows/{flow_id}", delete_flow),
    route("POST", "/v1/flows/{flow_id}/move", move_flow),
    route("GET", "/v1/rules", get_rules),
    route("GET", "/v1/rules/{source}", get_source_rules),
    route("POST", "/v1/rules/{source}", post_rule),
    route("GET", "/v1/rules/{source}/{rule_id}", get_rule),
    route("PUT", "/v1/rules/{source}/{rule_id}", put_rule),
    route("DELETE", "/v1/rules/{source}/{rule_id}", delete_rule),
    route("GET", "/v1/policy", get_policy),
    route("POST", "/v1/policy/reload", reload_policy),
    route("GET", "/v1/preferences", get_preferences),
    route("PUT", "/v1/preferences", put_preferences),
    route("DELETE", "/v1/preferences", delete_preferences),
    route("GET", "/v1/apps", get_apps),
    route("GET", "/v1/apps/{app_id}/flows", get_app_flows),
    route("POST", "/v1/apps/{app_id}/flows", post_app_flow),
    route("DELETE", "/v1/apps/{app_id}/flows", delete_app_flows),
    route("PUT", "/v1/apps/{app_id}/flows/{decl_id}", put_app_flow),
    route("DELETE", "/v1/apps/{app_id}/flows/{decl_id}", delete_app_flow),
    route("GET", "/metrics", get_metrics),
    # GET /v1/openapi.json is served by RestApp itself (it needs no service).
)
OPENAPI_PATH = "/v1/openapi.json"


class RestApp:
    """The WSGI application. `auth` None: no token required (loopback without a token file)."""

    def __init__(
        self,
        service: NorthboundService,
        *,
        auth: BearerAuth | None = None,
        openapi: bytes | None = None,
        routes: Iterable[Route] = ROUTES,
    ) -> None:
        self.service = service
        self.auth = auth
        self.openapi = openapi
        self.routes = tuple(routes)
        self.requests: Counter = service.registry.counter(
            "sdnmip_northbound_requests_total",
            "Northbound HTTP requests, by method and status code",
            ("method", "code"),
        )

    def __call__(self, environ: Mapping[str, Any], start_response: StartResponse) -> list[bytes]:
        method = str(environ.get("REQUEST_METHOD", "GET")).upper()
        try:
            response = self._dispatch(method, environ)
        except NorthboundError as exc:
            response = _error(exc)
        self.requests.inc(method=method, code=response.status)
        return _send(response, start_response, head=method == "HEAD")

    def _dispatch(self, method: str, environ: Mapping[str, Any]) -> Response:
        if self.auth is not None and not self.auth.allows(environ.get("HTTP_AUTHORIZATION")):
            raise Unauthorized("a valid bearer token is required (Authorization: Bearer ...)")
        path = _path(environ)
        if path == OPENAPI_PATH and self.openapi is not None:
            if method not in ("GET", "HEAD"):
                raise MethodNotAllowed(f"{method} is not allowed here", None, allow="GET, HEAD")
            return Response(200, self.openapi)
        allowed: list[str] = []
        for r in self.routes:
            m = r.regex.match(path)
            if m is None:
                continue
            if r.method != ("GET" if method == "HEAD" else method):
                allowed.append(r.method)
                continue
            req = Request(
                method=method,
                path=path,
                params=m.groupdict(),
                query=_query(environ),
                headers=_headers(environ),
                _environ=environ,
            )
            return r.handler(self.service, req)
        if allowed:
            if "GET" in allowed:
                allowed.append("HEAD")  # answered as GET without the body (RFC 9110 §9.3.2)
            raise MethodNotAllowed(
                f"{method} is not allowed here (allowed: {', '.join(allowed)})", None,
                allow=", ".join(allowed),
            )  # fmt: skip
        raise NotFound(f"no such resource {path!r} (see /v1/openapi.json)", None)


def _path(environ: Mapping[str, Any]) -> str:
    # PEP 3333: PATH_INFO is latin-1 decoded bytes; paths here are ASCII.
    path = str(environ.get("PATH_INFO") or "/")
    return path.rstrip("/") or "/"


def _query(environ: Mapping[str, Any]) -> dict[str, str]:
    text = str(environ.get("QUERY_STRING") or "")
    try:
        parsed = parse_qs(
            text, keep_blank_values=True, strict_parsing=bool(text), max_num_fields=32
        )
    except ValueError as exc:
        raise BadRequest(f"bad query string: {exc}", None) from None
    out = {}
    for key, values in parsed.items():
        if len(values) != 1:
            raise BadRequest("given more than once", key)
        out[key] = values[0]
    return out


def _headers(environ: Mapping[str, Any]) -> dict[str, str]:
    return {
        k[5:].replace("_", "-").lower(): str(v) for k, v in environ.items() if k.startswith("HTTP_")
    }


def _read_json(environ: Mapping[str, Any], required: bool) -> object:
    length_text = str(environ.get("CONTENT_LENGTH") or "").strip()
    chunked = "chunked" in str(environ.get("HTTP_TRANSFER_ENCODING", "")).lower()
    if length_text:
        if not length_text.isdigit():
            raise BadRequest(f"bad Content-Length {length_text!r}", None)
        length = int(length_text)
        if length > MAX_BODY:
            raise PayloadTooLarge(f"the body is {length} bytes; at most {MAX_BODY}", None)
    elif chunked:
        length = MAX_BODY + 1
    else:
        length = 0
    data = environ["wsgi.input"].read(length) if length else b""
    if len(data) > MAX_BODY:
        raise PayloadTooLarge(f"the body is larger than {MAX_BODY} bytes", None)
    if not data:
        if required:
            raise BadRequest("a JSON body is required", None)
        return None
    ctype = str(environ.get("CONTENT_TYPE") or "").split(";")[0].strip().lower()
    if ctype != JSON_TYPE:
        raise UnsupportedMediaType(
            f"the body must be {JSON_TYPE} (Content-Type was {ctype or 'missing'!r})", None
        )
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise BadRequest(f"the body is not UTF-8 (byte {exc.start})", None) from None
    try:
        return json.loads(text, object_pairs_hook=_no_duplicates, parse_constant=_no_constant)
    except json.JSONDecodeError as exc:
        raise BadRequest(
            f"not valid JSON: {exc.msg} (line {exc.lineno}, column {exc.colno})", None
        ) from None
    except ValueError as exc:  # an integer of more than sys.get_int_max_str_digits() digits
        raise BadRequest(f"a number in the body is too long: {exc}", None) from None
    except RecursionError:  # arrays or objects nested thousands deep: no request needs that
        raise BadRequest("the body is nested too deeply", None) from None


class _DuplicateKey(BadRequest):
    pass


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in pairs:
        if key in out:
            raise _DuplicateKey(f"duplicate key {key!r} in the JSON body", key)
        out[key] = value
    return out


def _no_constant(name: str) -> object:
    raise BadRequest(f"{name} is not a JSON number", None)


def _error(exc: NorthboundError) -> Response:
    headers: list[tuple[str, str]] = []
    if isinstance(exc, Unauthorized):
        headers.append(("WWW-Authenticate", 'Bearer realm="sdnmip"'))
    allow = exc.extra.pop("allow", None) if isinstance(exc, MethodNotAllowed) else None
    if allow is not None:
        headers.append(("Allow", str(allow)))
    if exc.status >= 400 and not isinstance(exc, Unauthorized | MethodNotAllowed | NotFound):
        log.info("refused (%d %s): %s%s", exc.status, exc.code, exc.message,
                 f" [{exc.field}]" if exc.field else "")  # fmt: skip
    return Response(exc.status, exc.to_json(), tuple(headers))


def _send(response: Response, start_response: StartResponse, head: bool = False) -> list[bytes]:
    status = f"{response.status} {STATUS_TEXT.get(response.status, '')}".strip()
    headers = [("Cache-Control", "no-store"), *response.headers]
    if response.status == 204:
        start_response(status, headers)
        return []
    if isinstance(response.body, bytes):
        payload = response.body
    elif isinstance(response.body, str):
        payload = response.body.encode("utf-8")
    else:
        payload = json.dumps(response.body, separators=(",", ":"), allow_nan=False).encode()
    headers += [("Content-Type", response.content_type), ("Content-Length", str(len(payload)))]
    start_response(status, headers)
    return [] if head else [payload]
