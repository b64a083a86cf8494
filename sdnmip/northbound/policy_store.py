"""Where the running policy's rules come from, and how each northbound change builds a new one.

Rule sets have origins: policy files (their paths, owned by `PolicyDirectory`), the REST API
(`rest:<source>`, one per source; the user's preferences are `rest:user`) and applications
(`app:<app_id>`, see sdnmip/core/apps.py). This module owns the REST and application rule sets:
it turns each request (push a rule, remove one, set the preferences, declare an application
flow) into a new `Policy` built from the running one, or a refusal naming the field. It does
not install anything: the service installs the new Policy under the controller's lock, so a
refused change never touches the running policy.

REST and application rule sets survive a controller restart: `RuleSetFile` keeps them in
`<state_dir>/northbound-rules.json` (written whole, atomically, after each change). Files in
`flows/` are never written.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

from sdnmip.core.apps import (
    app_of_origin,
    app_origin,
    check_app_id,
    check_declaration_id,
    declaration_id_of,
    declaration_to_data,
    parse_declaration,
    rule_id,
)
from sdnmip.core.policy import Policy
from sdnmip.core.policy_model import PolicyError, Rule, RuleSet, Source
from sdnmip.core.policy_parse import (
    Context,
    action_to_data,
    parse_rule,
    parse_ruleset,
    rule_to_data,
    ruleset_to_data,
)
from sdnmip.northbound.errors import (
    BadRequest,
    Conflict,
    Forbidden,
    Invalid,
    NotFound,
    invalid,
)

log = logging.getLogger("sdnmip.northbound")

REST_PREFIX = "rest:"
PREFERENCE_RULE = "prefer"  # the rule id `prefer`/`max_cost` of the preferences become
PREFERENCE_KEYS = ("prefer", "max_cost", "rules")
STATE_FILE = "northbound-rules.json"
STATE_VERSION = 1


def rest_origin(source: Source) -> str:
    return REST_PREFIX + source.value


def parse_source(text: str) -> Source:
    for s in Source:
        if s.value == text:
            return s
    raise NotFound(
        f"no rule source {text!r} (sources: {', '.join(s.value for s in Source)})", "source"
    )


def owner(policy: Policy, source: Source, rid: str) -> RuleSet | None:
    """The rule set that holds the rule (ids are unique per source)."""
    for rs in policy.rulesets:
        if rs.source is source and any(r.id == rid for r in rs.rules):
            return rs
    return None


def editable(rs: RuleSet) -> bool:
    return rs.origin.startswith(REST_PREFIX)


def rule_view(rule: Rule, rs: RuleSet) -> dict[str, Any]:
    """A rule as the API lists it: its data, where it comes from, whether REST may change it."""
    return {
        "source": rule.source.value,
        "rule_id": rule.qualified_id,
        "origin": rs.origin,
        "editable": editable(rs),
        "rule": rule_to_data(rule),
    }


def _refuse_not_rest(rs: RuleSet, source: Source, rid: str) -> Forbidden:
    app = app_of_origin(rs)
    if app is not None:
        where = f"declared by application {app!r} (change it through /v1/apps/{app}/flows)"
    else:
        where = f"defined in the policy file {rs.origin} (edit the file, then reload)"
    return Forbidden(f"{source.value} rule {rid!r} is {where}", "id")


def _body_id(body: object, path_id: str | None) -> str:
    """The id of a pushed rule: in the body, or the URL's (PUT), which must agree."""
    if not isinstance(body, dict):
        raise Invalid("expected a JSON object (a rule)", None)
    given = body.get("id")
    if path_id is None:
        if given is None:
            raise Invalid("required key is missing", "id")
        if not isinstance(given, str):
            raise Invalid(f"expected a rule id (a string), got {type(given).__name__}", "id")
        return given
    if given is not None and given != path_id:
        raise Invalid(f"{given!r} differs from the id in the URL ({path_id!r})", "id")
    return path_id


class PolicyStore:
    """Builds new Policies for northbound changes (pure given its Context and uplink order)."""

    def __init__(self, context: Context, uplink_order: Sequence[str]) -> None:
        self.context = context
        self.uplink_order = tuple(uplink_order)

    # -- rules ----------------------------------------------------------------------------------

    def put_rule(
        self, policy: Policy, source: Source, body: object, path_id: str | None
    ) -> tuple[Policy, Rule, bool]:
        """POST (path_id None: create only) or PUT (create or replace) one REST rule.
        Returns the new policy, the rule, and whether it was created."""
        rid = _body_id(body, path_id)
        assert isinstance(body, dict)
        existing = owner(policy, source, rid)
        if existing is not None:
            if path_id is None:
                raise Conflict(f"{source.value} rule {rid!r} already exists (PUT replaces)", "id")
            if not editable(existing):
                raise _refuse_not_rest(existing, source, rid)
        try:
            rule = parse_rule({**body, "id": rid}, source=source, context=self.context)
        except PolicyError as exc:
            raise invalid(exc) from None
        try:
            new = policy.put_rule(rest_origin(source), rule)
        except PolicyError as exc:
            raise Conflict(str(exc), "id") from None
        return new, rule, existing is None

    def remove_rule(self, policy: Policy, source: Source, rid: str) -> Policy:
        rs = owner(policy, source, rid)
        if rs is None:
            raise NotFound(f"there is no {source.value} rule {rid!r}", "rule_id")
        if not editable(rs):
            raise _refuse_not_rest(rs, source, rid)
        return policy.remove_rule(source, rid)

    # -- user preferences -----------------------------------------------------------------------

    def preferences(self, policy: Policy) -> dict[str, Any]:
        """The user's preferences set through the API: `prefer`, `max_cost`, `rules`."""
        rs = policy.ruleset(rest_origin(Source.USER))
        out: dict[str, Any] = {"prefer": None, "max_cost": None, "rules": []}
        for rule in rs.rules if rs is not None else ():
            if rule.id == PREFERENCE_RULE and _is_preference(rule):
                action = action_to_data(rule.action)
                strategy = action.get("strategy")
                assert isinstance(strategy, dict)
                out["prefer"] = list(strategy["prefer"])
                out["max_cost"] = rule.action.max_cost
            else:
                out["rules"].append(rule_to_data(rule))
        return out

    def set_preferences(self, policy: Policy, body: object) -> Policy:
        """Replace the user's preferences (every user rule pushed through the API).

        `prefer` (uplinks, best first) and `max_cost` become one catch-all user rule `prefer`
        (`fallback: next`: when none of them is usable, lower rules and the default decide);
        `rules` are further user rules, as in a `source: user` policy file."""
        if not isinstance(body, dict):
            raise Invalid("expected a JSON object with prefer, max_cost and/or rules", None)
        for key in body:
            if key not in PREFERENCE_KEYS:
                raise Invalid(f"unknown key (expected one of: {', '.join(PREFERENCE_KEYS)})", key)
        rules: list[Rule] = []
        prefer, max_cost = body.get("prefer"), body.get("max_cost")
        if prefer is not None or max_cost is not None:
            rules.append(self._preference_rule(prefer, max_cost))
        raw_rules = body.get("rules")
        if raw_rules is not None and not isinstance(raw_rules, list):
            raise Invalid("expected a list of user rules", "rules")
        seen = {r.id: "prefer" for r in rules}
        for i, raw in enumerate(raw_rules or []):
            try:
                rule = parse_rule(raw, source=Source.USER, context=self.context, path=("rules", i))
            except PolicyError as exc:
                raise invalid(exc) from None
            if rule.id in seen:
                raise Invalid(f"rule id {rule.id!r} is already used by {seen[rule.id]}",
                              f"rules[{i}].id")  # fmt: skip
            seen[rule.id] = f"rules[{i}]"
            rules.append(rule)
        origin = rest_origin(Source.USER)
        try:
            if not rules:
                return policy.update(remove=[origin])
            return policy.update(put=[RuleSet(origin, Source.USER, tuple(rules))])
        except PolicyError as exc:
            raise Conflict(str(exc), "rules") from None

    def _preference_rule(self, prefer: object, max_cost: object) -> Rule:
        if prefer is None:
            prefer = list(self.uplink_order)
        elif not isinstance(prefer, list) or not prefer:
            raise Invalid("expected a non-empty list of uplink names, best first", "prefer")
        data: dict[str, object] = {"id": PREFERENCE_RULE, "strategy": {"prefer": prefer}}
        if max_cost is not None:
            data["max_cost"] = max_cost
        try:
            return parse_rule(data, source=Source.USER, context=self.context)
        except PolicyError as exc:
            path = exc.path
            if path[:2] == ("strategy", "prefer"):
                path = ("prefer", *path[2:])
            raise invalid(replace_path(exc, path)) from None

    # -- applications ---------------------------------------------------------------------------

    def apps(self, policy: Policy) -> list[dict[str, Any]]:
        out = []
        for rs in policy.rulesets:
            app = app_of_origin(rs)
            if app is not None:
                out.append(
                    {"app_id": app, "flows": [declaration_to_data(app, r) for r in rs.rules]}
                )
        return out

    def declarations(self, policy: Policy, app_id: str) -> list[dict[str, Any]]:
        rs = self._app_ruleset(policy, app_id)
        return [declaration_to_data(app_id, r) for r in rs.rules]

    def declare(
        self, policy: Policy, app_id: str, body: object, path_id: str | None
    ) -> tuple[Policy, dict[str, Any], bool]:
        """POST (path_id None: a new declaration, id from the body or chosen) or PUT (create
        or replace `path_id`). Returns the new policy, the declaration, whether it is new."""
        try:
            check_app_id(app_id)
        except PolicyError as exc:
            raise NotFound(exc.reason, "app_id") from None
        if not isinstance(body, dict):
            raise Invalid("expected a JSON object (a declaration)", None)
        origin = app_origin(app_id)
        rs = policy.ruleset(origin)
        taken = {declaration_id_of(app_id, r) for r in rs.rules} if rs is not None else set()
        given = body.get("id")
        if path_id is not None:
            if given is not None and given != path_id:
                raise Invalid(f"{given!r} differs from the id in the URL ({path_id!r})", "id")
            decl_id = path_id
        elif given is not None:
            decl_id = given
            if decl_id in taken:
                raise Conflict(f"application {app_id!r} already declared {decl_id!r}", "id")
        else:
            n = 1
            while f"flow-{n}" in taken:
                n += 1
            decl_id = f"flow-{n}"
        try:
            check_declaration_id(decl_id)
            rule = parse_declaration(
                app_id, {k: v for k, v in body.items() if k != "id"}, decl_id=decl_id,
                context=self.context,
            )  # fmt: skip
        except PolicyError as exc:
            raise invalid(exc) from None
        created = decl_id not in taken
        rules = [r for r in (rs.rules if rs is not None else ()) if r.id != rule.id]
        try:
            new = policy.update(put=[RuleSet(origin, Source.APPLICATION, (*rules, rule))])
        except PolicyError as exc:
            raise Conflict(str(exc), "id") from None
        return new, declaration_to_data(app_id, rule), created

    def withdraw(self, policy: Policy, app_id: str, decl_id: str | None) -> Policy:
        """Remove one declaration, or all of the application's when `decl_id` is None."""
        rs = self._app_ruleset(policy, app_id)
        if decl_id is None:
            return policy.update(remove=[rs.origin])
        rid = rule_id(app_id, decl_id)
        if not any(r.id == rid for r in rs.rules):
            raise NotFound(f"application {app_id!r} has no declaration {decl_id!r}", "decl_id")
        rules = tuple(r for r in rs.rules if r.id != rid)
        if not rules:
            return policy.update(remove=[rs.origin])
        return policy.update(put=[replace(rs, rules=rules)])

    def _app_ruleset(self, policy: Policy, app_id: str) -> RuleSet:
        rs = policy.ruleset(app_origin(app_id))
        if rs is None:
            raise NotFound(f"application {app_id!r} has declared no flows", "app_id")
        return rs


def _is_preference(rule: Rule) -> bool:
    action = action_to_data(rule.action)
    strategy = action.get("strategy")
    return (
        isinstance(strategy, dict)
        and "prefer" in strategy
        and rule.match == type(rule.match)()
        and rule.priority == 0
    )


def replace_path(exc: PolicyError, path: tuple[str | int, ...]) -> PolicyError:
    return PolicyError(path, exc.reason, origin=exc.origin, line=exc.line)


def stored(policy: Policy) -> list[RuleSet]:
    """The rule sets the northbound owns (to be kept across restarts)."""
    return [
        rs
        for rs in policy.rulesets
        if rs.origin.startswith(REST_PREFIX) or app_of_origin(rs) is not None
    ]


class RuleSetFile:
    """The northbound's rule sets on disk (JSON, written whole through a temporary file)."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def save(self, policy: Policy) -> None:
        doc = {
            "version": STATE_VERSION,
            "rulesets": [
                {"origin": rs.origin, "document": ruleset_to_data(rs)} for rs in stored(policy)
            ],
        }
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_name(self.path.name + ".tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            json.dump(doc, f, indent=1)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, self.path)

    def load(self, policy: Policy, context: Context) -> tuple[Policy, list[str]]:
        """`policy` with the saved rule sets put in. A rule set that no longer fits (an uplink
        renamed in the configuration, an id now used by a policy file) is dropped and reported,
        rather than stopping the controller."""
        try:
            text = self.path.read_text(encoding="utf-8")
        except FileNotFoundError:
            return policy, []
        try:
            doc = json.loads(text)
        except (ValueError, RecursionError) as exc:
            return policy, [f"{self.path}: not JSON ({exc}); the saved rules are ignored"]
        if not isinstance(doc, dict) or doc.get("version") != STATE_VERSION:
            return policy, [f"{self.path}: not a version-{STATE_VERSION} rules file; ignored"]
        problems: list[str] = []
        for item in doc.get("rulesets", []):
            origin = item.get("origin") if isinstance(item, dict) else None
            if not isinstance(origin, str) or not (
                origin.startswith(REST_PREFIX) or origin.startswith("app:")
            ):
                problems.append(f"{self.path}: an entry without a northbound origin; dropped")
                continue
            try:
                rs = parse_ruleset(item.get("document"), origin=origin, context=context)
                policy = policy.update(put=[rs])
            except PolicyError as exc:
                problems.append(f"{self.path}: saved rule set {origin} dropped: {exc}")
        return policy, problems


__all__ = [
    "BadRequest",
    "PolicyStore",
    "RuleSetFile",
    "editable",
    "owner",
    "parse_source",
    "rest_origin",
    "rule_view",
    "stored",
]
