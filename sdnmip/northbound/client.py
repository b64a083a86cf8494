"""A small blocking client of the northbound REST API (stdlib only), for the CLI and tests.

`NorthboundClient(url, token)` sends JSON and returns the decoded answer; a refusal raises
`ApiError` (status, code, message, field), a northbound that cannot be reached raises
`Unreachable`. `endpoint_from_config` finds the URL and token in the MN configuration.
"""

from __future__ import annotations

import json
import math
import os
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from sdnmip.yaml_values import value_error_reason

DEFAULT_LISTEN = "127.0.0.1:8181"
DEFAULT_CONFIG = Path("/etc/sdnmip/mn.yaml")
CONFIG_ENV = "SDNMIP_CONFIG"


class ClientError(Exception):
    """Any failure of a request, worded for people."""


class Unreachable(ClientError):
    pass


class ApiError(ClientError):
    def __init__(self, status: int, code: str, message: str, field: str | None) -> None:
        where = f" [{field}]" if field else ""
        super().__init__(f"{status} {code}: {message}{where}")
        self.status, self.code, self.message, self.field = status, code, message, field


@dataclass(frozen=True)
class Endpoint:
    url: str
    token: str | None = None


def endpoint_from_config(path: Path) -> Endpoint:
    """The URL (`northbound.listen`; a wildcard address means loopback) and the token
    (`northbound.token_file`) of an MN configuration file."""
    try:
        doc = yaml.safe_load(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ClientError(f"{path}: cannot read: {exc.strerror}") from None
    except yaml.YAMLError as exc:
        raise ClientError(f"{path}: not valid YAML: {exc}") from None
    except ValueError as exc:  # a value PyYAML's constructors refuse (yaml_values.py)
        raise ClientError(f"{path}: not valid YAML: {value_error_reason(exc)}") from None
    section = (doc or {}).get("northbound") or {} if isinstance(doc, dict) else {}
    if not isinstance(section, dict):
        raise ClientError(f"{path}: northbound: expected a mapping")
    listen = str(section.get("listen") or DEFAULT_LISTEN)
    host, _, port = listen.rpartition(":")
    host = host.strip("[]")
    if host in ("0.0.0.0", "::", ""):
        host = "127.0.0.1" if host != "::" else "::1"
    url = f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}"
    token_file = section.get("token_file")
    token = read_token(Path(token_file)) if token_file else None
    return Endpoint(url, token)


def read_token(path: Path) -> str:
    try:
        return path.read_text(encoding="ascii").strip()
    except OSError as exc:
        raise ClientError(f"token file {path}: {exc.strerror}") from None


def default_endpoint() -> Endpoint:
    """$SDNMIP_CONFIG, else /etc/sdnmip/mn.yaml if it exists, else the default address."""
    env = os.environ.get(CONFIG_ENV)
    if env:
        return endpoint_from_config(Path(env))
    if DEFAULT_CONFIG.exists():
        return endpoint_from_config(DEFAULT_CONFIG)
    return Endpoint(f"http://{DEFAULT_LISTEN}")


# The northbound is local (or on the operator's network): never through an HTTP proxy that the
# environment may name.
_OPENER = urllib.request.build_opener(urllib.request.ProxyHandler({}))


class NorthboundClient:
    def __init__(self, url: str, token: str | None = None, timeout: float = 10.0) -> None:
        try:
            parts = urllib.parse.urlsplit(url)
            port_ok = parts.port is None or parts.port > 0
        except ValueError as exc:  # a bad IPv6 literal or port
            raise ClientError(f"northbound URL {url!r}: {exc}") from None
        if parts.scheme not in ("http", "https") or not parts.hostname or not port_ok:
            raise ClientError(f"northbound URL {url!r}: expected http://HOST:PORT (or https://)")
        if not math.isfinite(timeout) or timeout <= 0:
            raise ClientError(f"--timeout {timeout}: expected a positive number of seconds")
        self.url = url.rstrip("/")
        self.token = token
        self.timeout = timeout

    def get(self, path: str) -> Any:
        return self.request("GET", path)

    def post(self, path: str, body: Any = None) -> Any:
        return self.request("POST", path, body)

    def put(self, path: str, body: Any) -> Any:
        return self.request("PUT", path, body)

    def delete(self, path: str) -> Any:
        return self.request("DELETE", path)

    def text(self, path: str) -> str:
        return str(self._send("GET", path, None)[1])

    def request(self, method: str, path: str, body: Any = None) -> Any:
        _, data = self._send(method, path, body)
        return data

    def _send(self, method: str, path: str, body: Any) -> tuple[int, Any]:
        headers = {"Accept": "application/json"}
        payload = None
        if body is not None:
            payload = json.dumps(body).encode()
            headers["Content-Type"] = "application/json"
        if self.token is not None:
            headers["Authorization"] = f"Bearer {self.token}"
        req = urllib.request.Request(self.url + path, payload, headers, method=method)
        try:
            with _OPENER.open(req, timeout=self.timeout) as resp:
                return resp.status, _decode(resp.headers.get("Content-Type", ""), resp.read())
        except urllib.error.HTTPError as exc:
            data = _decode(exc.headers.get("Content-Type", ""), exc.read())
            err = data.get("error") if isinstance(data, dict) else None
            if isinstance(err, dict):
                raise ApiError(exc.code, str(err.get("code")), str(err.get("message")),
                               err.get("field")) from None  # fmt: skip
            raise ApiError(exc.code, "http", str(exc.reason), None) from None
        except (urllib.error.URLError, OSError) as exc:
            reason = getattr(exc, "reason", exc)
            raise Unreachable(
                f"cannot reach the northbound at {self.url}: {reason} (is `sdnmip mn` running? "
                "--url or --config say where it listens)"
            ) from None


def _decode(ctype: str, data: bytes) -> Any:
    if not data:
        return None
    if ctype.startswith("application/json"):
        return json.loads(data)
    return data.decode("utf-8", "replace")
