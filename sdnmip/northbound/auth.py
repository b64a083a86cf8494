"""Who may use the northbound: the listen address rule, the token file, the bearer check.

- Loopback by default. When `northbound.listen` is not a loopback address, a token file is
  required (the configuration refuses otherwise, and `load_token` refuses a file that others can
  read), and every request must carry `Authorization: Bearer <token>`.
- A token file may also be configured on loopback; then the token is required there too.
- Tokens are compared in constant time (`hmac.compare_digest`), on bytes.
Pure apart from reading the token file.
"""

from __future__ import annotations

import hmac
from ipaddress import ip_address
from pathlib import Path

from sdnmip.secret_file import SecretFileError, read_secret_file

MIN_TOKEN_CHARS = 16  # a token is a secret: refuse one short enough to guess
MAX_TOKEN_CHARS = 4096


class TokenFileError(ValueError):
    """The token file is missing, unsafe or unusable; the message names the field."""


def is_loopback(host: str) -> bool:
    return ip_address(host.strip("[]")).is_loopback


def split_listen(listen: str) -> tuple[str, int]:
    """`127.0.0.1:8181` or `[::1]:8181` -> (host, port); the configuration checked the form."""
    host, _, port = listen.rpartition(":")
    return host.strip("[]"), int(port)


def load_token(path: Path, field: str = "northbound.token_file") -> str:
    """The bearer token from `path`: owned by root (or by us), not accessible to others, one
    line of printable ASCII of at least MIN_TOKEN_CHARS characters."""
    try:
        text = read_secret_file(path, field, "token")
    except SecretFileError as exc:
        raise TokenFileError(str(exc)) from None
    if not MIN_TOKEN_CHARS <= len(text) <= MAX_TOKEN_CHARS or not all(
        33 <= ord(c) < 127 for c in text
    ):
        raise TokenFileError(
            f"{field}: {path} must hold one token of {MIN_TOKEN_CHARS}-{MAX_TOKEN_CHARS} "
            "printable characters without spaces (e.g. `openssl rand -hex 32`)"
        )
    return text


class BearerAuth:
    """Checks the Authorization header of a request against the configured token."""

    def __init__(self, token: str) -> None:
        self._token = token.encode("ascii")

    def allows(self, header: str | None) -> bool:
        if header is None:
            return False
        scheme, _, credentials = header.strip().partition(" ")
        if scheme.lower() != "bearer":
            return False
        try:
            given = credentials.strip().encode("ascii")
        except UnicodeEncodeError:
            return False
        return hmac.compare_digest(given, self._token)
