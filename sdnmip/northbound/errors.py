"""The northbound's refusals: one error class per HTTP status family, each naming the field.

The service raises these for a user's mistake; the REST layer turns them into
`{"error": {"code", "message", "field"}}` with the status. Anything else that escapes a handler is
a bug: the REST layer logs its traceback and answers 500.
"""

from __future__ import annotations

from sdnmip.core.policy_model import PolicyError, format_path


class NorthboundError(Exception):
    """A refused request. `field` is the offending field's path in the request ("" for none)."""

    status = 400
    code = "bad_request"

    def __init__(self, message: str, field: str | None = None, **extra: object) -> None:
        super().__init__(message)
        self.message = message
        self.field = field
        self.extra = extra

    def to_json(self) -> dict[str, object]:
        body: dict[str, object] = {"code": self.code, "message": self.message, "field": self.field}
        body.update(self.extra)
        return {"error": body}


class BadRequest(NorthboundError):
    """The request is malformed: not JSON, a duplicate key, NaN/Infinity, a bad query
    parameter (a JSON body that is not an object is `Invalid`, 422)."""


class Unauthorized(NorthboundError):
    status = 401
    code = "unauthorized"


class Forbidden(NorthboundError):
    """Allowed for nobody through this API (e.g. a rule that lives in a policy file)."""

    status = 403
    code = "forbidden"


class NotFound(NorthboundError):
    status = 404
    code = "not_found"


class MethodNotAllowed(NorthboundError):
    status = 405
    code = "method_not_allowed"


class Conflict(NorthboundError):
    """Valid, but not in the current state (an id in use, an uplink that is down)."""

    status = 409
    code = "conflict"


class PayloadTooLarge(NorthboundError):
    status = 413
    code = "payload_too_large"


class UnsupportedMediaType(NorthboundError):
    status = 415
    code = "unsupported_media_type"


class Invalid(NorthboundError):
    """Well-formed JSON whose content the validator refuses."""

    status = 422
    code = "invalid"


def invalid(exc: PolicyError, prefix: tuple[str | int, ...] = ()) -> Invalid:
    """A policy validator refusal as a 422 naming the field of the request body.

    A refusal located in a policy file (a reload) also carries the file and line."""
    field = format_path((*prefix, *exc.path)) or None
    extra: dict[str, object] = {}
    if exc.origin is not None and exc.origin not in ("rest",):
        extra["origin"] = exc.origin
    if exc.line is not None:
        extra["line"] = exc.line
    message = exc.reason if not extra else str(exc)
    return Invalid(message, field, **extra)
