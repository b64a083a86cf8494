"""Application declarations: which flows belong to which program on the MN (patent claims 12, 15).

A program on the MN declares its flows through the application API (the northbound's
`/v1/apps/{app_id}/flows`) with a hint that a new flow's first packet carries — its local port,
the remote endpoint, the protocol, a DSCP or flow label — and the network it prefers. Each
declaration becomes one `application` rule in the rule set `app:<app_id>`: its match is the hint
plus `app_id: <app_id>`, its action the preferred network. The same hints attribute flows to
applications (`AppIndex.attribute`), so operator and user rules that match `app_id` (for example
"never lte for app backup") apply to the program's flows as well.

Why hints: the controller sees packets, not sockets. The one thing a program controls that its
first packet carries is its own local port (bind before connect: `bind(("::", 0))`, read the port
back, declare it, then connect) or, for a server it talks to, the remote endpoint.

When hints of two applications both fit a flow, the more specific hint wins (more fields, then
longer prefixes), then the application id in alphabetical order: a deterministic answer.

Pure: no I/O, no clocks.
"""

from __future__ import annotations

import re
from dataclasses import replace

from sdnmip.core.policy import Policy
from sdnmip.core.policy_index import MatchIndex
from sdnmip.core.policy_model import Match, PolicyError, Rule, RuleSet, Source
from sdnmip.core.policy_parse import (
    RULE_KEYS,
    Context,
    match_to_data,
    parse_rule,
    rule_to_data,
)
from sdnmip.core.types import FlowDescriptor

APP_ORIGIN_PREFIX = "app:"
# A rule id is "<app_id>.<declaration id>" and must fit the rule-id limit (64 characters).
APP_ID_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]{0,31}")
DECLARATION_ID_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]{0,30}")
# What a hint may name: what the first packet of a flow carries. `app_id` is set from the URL.
HINT_KEYS = (
    "proto",
    "direction",
    "local",
    "local_port",
    "remote",
    "remote_port",
    "flow_label",
    "dscp",
)
# A hint must name at least one of these, or it would claim every flow for the application.
IDENTIFYING_KEYS = ("local_port", "remote", "remote_port", "flow_label", "dscp")
# A declaration has the keys of a rule (it becomes one: parse_rule).
DECLARATION_KEYS = RULE_KEYS


def app_origin(app_id: str) -> str:
    return APP_ORIGIN_PREFIX + app_id


def check_app_id(app_id: str, path: tuple[str, ...] = ("app_id",)) -> str:
    if APP_ID_RE.fullmatch(app_id) is None:
        raise PolicyError(
            path,
            f"{app_id!r} is not an application id (letters, digits, '_', '-'; at most 32 "
            "characters, starting with a letter or digit)",
        )
    return app_id


def check_declaration_id(decl_id: object, path: tuple[str, ...] = ("id",)) -> str:
    if not isinstance(decl_id, str) or DECLARATION_ID_RE.fullmatch(decl_id) is None:
        raise PolicyError(
            path,
            f"{decl_id!r} is not a declaration id (letters, digits, '_', '-'; at most 31 "
            "characters, starting with a letter or digit)",
        )
    return decl_id


def rule_id(app_id: str, decl_id: str) -> str:
    return f"{app_id}.{decl_id}"


def parse_declaration(
    app_id: str, data: object, *, decl_id: str, context: Context | None = None
) -> Rule:
    """One declaration (a REST body) -> the application Rule it stands for, or PolicyError
    naming the field of the body. `decl_id` is the declaration's id (from the body or chosen
    by the caller)."""
    check_app_id(app_id)
    check_declaration_id(decl_id)
    if not isinstance(data, dict):
        raise PolicyError((), "expected a JSON object (a declaration)")
    for key in data:
        if key not in DECLARATION_KEYS:
            raise PolicyError(
                (str(key),), f"unknown key (expected one of: {', '.join(DECLARATION_KEYS)})"
            )
    if data.get("id") is not None and data["id"] != decl_id:
        raise PolicyError(("id",), f"{data['id']!r} differs from the declaration id {decl_id!r}")
    hint = data.get("match")
    if not isinstance(hint, dict):
        raise PolicyError(
            ("match",),
            "required: the hint that identifies the application's flows, e.g. "
            '{"proto": "udp", "local_port": 40000}',
        )
    for key in hint:
        if key == "app_id":
            raise PolicyError(("match", "app_id"), "set by the application API from the URL")
        if key not in HINT_KEYS:
            raise PolicyError(
                ("match", str(key)), f"unknown key (a hint may name: {', '.join(HINT_KEYS)})"
            )
    if not any(hint.get(key) is not None for key in IDENTIFYING_KEYS):
        raise PolicyError(
            ("match",),
            f"a hint must name at least one of {', '.join(IDENTIFYING_KEYS)} (otherwise it "
            "would claim every flow of the MN)",
        )
    body = {**data, "id": rule_id(app_id, decl_id), "match": {**hint, "app_id": app_id}}
    try:
        return parse_rule(body, source=Source.APPLICATION, context=context)
    except PolicyError as exc:
        if exc.path[:1] == ("id",):  # the id is ours; the caller's is already checked
            raise PolicyError(("id",), exc.reason) from None
        raise


def declaration_to_data(app_id: str, rule: Rule) -> dict[str, object]:
    """The declaration a rule of `app:<app_id>` stands for (what the API lists)."""
    data = rule_to_data(rule)
    prefix = app_id + "."
    rid = str(data.pop("id"))
    data = {"id": rid.removeprefix(prefix), "rule_id": f"application:{rid}", **data}
    hint = match_to_data(replace(rule.match, app_id=None))
    data["match"] = hint
    return data


def declaration_id_of(app_id: str, rule: Rule) -> str:
    return rule.id.removeprefix(app_id + ".")


class AppIndex:
    """Which application a flow belongs to, from the declarations in a Policy. Immutable."""

    __slots__ = ("_apps", "_index")

    def __init__(self, policy: Policy) -> None:
        hints: list[tuple[tuple[int, int], str, Match]] = []
        for rs in policy.rulesets:
            app = app_of_origin(rs)
            if app is None:
                continue
            for rule in rs.rules:
                hint = replace(rule.match, app_id=None)
                fields, bits = hint.specificity
                hints.append(((-fields, -bits), app, hint))
        hints.sort(key=lambda h: (h[0], h[1]))
        self._apps = tuple(app for _, app, _ in hints)
        self._index = MatchIndex([hint for _, _, hint in hints]) if hints else None

    def app_of(self, flow: FlowDescriptor) -> str | None:
        """The application the flow belongs to (the one its descriptor names, if any)."""
        if flow.app_id is not None or self._index is None:
            return flow.app_id
        mask = self._index.lookup(flow)
        if not mask:
            return None
        return self._apps[(mask & -mask).bit_length() - 1]

    def attribute(self, flow: FlowDescriptor) -> FlowDescriptor:
        """The flow with its application filled in (the same object when nothing changes)."""
        app = self.app_of(flow)
        return flow if app == flow.app_id else replace(flow, app_id=app)

    def __bool__(self) -> bool:
        return self._index is not None


def app_of_origin(rs: RuleSet) -> str | None:
    """The application of an `app:<id>` rule set, None for any other rule set."""
    if rs.source is not Source.APPLICATION or not rs.origin.startswith(APP_ORIGIN_PREFIX):
        return None
    return rs.origin[len(APP_ORIGIN_PREFIX) :]


__all__ = [
    "APP_ORIGIN_PREFIX",
    "AppIndex",
    "app_of_origin",
    "app_origin",
    "check_app_id",
    "check_declaration_id",
    "declaration_id_of",
    "declaration_to_data",
    "parse_declaration",
    "rule_id",
]
