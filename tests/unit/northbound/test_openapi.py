"""The checked-in OpenAPI description matches the router, is a valid OpenAPI 3.1 document, and
describes what the API really answers: every response of a scenario that calls every endpoint
(successes and refusals) is checked against the description's schema with jsonschema."""

from __future__ import annotations

import json
from typing import Any, ClassVar
from urllib.parse import quote

import pytest
import yaml
from jsonschema import Draft202012Validator
from openapi_spec_validator import validate as validate_spec
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT202012

from sdnmip.northbound.rest import OPENAPI_PATH, ROUTES
from sdnmip.northbound.server import OPENAPI_FILE, openapi_json
from tests.unit.controller.rig import CN2

from .nbrig import Answer, NbRig

SPEC: dict[str, Any] = yaml.safe_load(OPENAPI_FILE.read_text())
BASE = "urn:sdnmip:openapi"
REGISTRY: Registry = Registry().with_resource(
    BASE, Resource.from_contents(SPEC, default_specification=DRAFT202012)
)
METHODS = ("get", "put", "post", "delete", "patch")


def spec_operations() -> set[tuple[str, str]]:
    return {
        (method.upper(), path)
        for path, item in SPEC["paths"].items()
        for method in item
        if method in METHODS
    }


def test_the_description_is_valid_openapi_3_1():
    validate_spec(SPEC)
    assert SPEC["openapi"] == "3.1.0"


def test_every_route_is_described_and_every_described_operation_is_routed():
    routed = {(r.method, r.template) for r in ROUTES} | {("GET", OPENAPI_PATH)}
    assert routed == spec_operations()


def test_the_served_document_is_the_checked_in_one():
    assert json.loads(openapi_json()) == SPEC


def test_every_operation_has_an_id_and_documents_401():
    ids = []
    for method, path in sorted(spec_operations()):
        op = SPEC["paths"][path][method.lower()]
        ids.append(op["operationId"])
        assert "401" in op["responses"], f"{method} {path}"
    assert len(ids) == len(set(ids))


def _pointer(*parts: str) -> str:
    return "/".join(quote(p.replace("~", "~0").replace("/", "~1"), safe="~") for p in parts)


def _response(path: str, method: str, status: int) -> dict[str, Any]:
    op = SPEC["paths"][path][method.lower()]
    assert str(status) in op["responses"], f"{method} {path} answered {status}, not described"
    resp = op["responses"][str(status)]
    if "$ref" in resp:
        name = resp["$ref"].rsplit("/", 1)[1]
        return {
            "ref": ("components", "responses", name),
            "obj": SPEC["components"]["responses"][name],
        }
    return {"ref": ("paths", path, method.lower(), "responses", str(status)), "obj": resp}


def check(path: str, method: str, ans: Answer) -> None:
    """The answer fits the description of (path template, method, status)."""
    found = _response(path, method, ans.status)
    content = found["obj"].get("content")
    if content is None:
        assert ans.raw == b"", f"{method} {path} {ans.status}: a body where none is described"
        return
    ctype = ans.headers["content-type"].split(";")[0]
    assert ctype in content, f"{method} {path} {ans.status}: {ctype} not described"
    if ctype != "application/json":
        return
    pointer = _pointer(*found["ref"], "content", ctype, "schema")
    validator = Draft202012Validator({"$ref": f"{BASE}#/{pointer}"}, registry=REGISTRY)
    errors = sorted(validator.iter_errors(ans.body), key=lambda e: list(e.path))
    assert not errors, (
        f"{method} {path} {ans.status}: {errors[0].message} at {list(errors[0].path)}"
    )


def template_of(method: str, path: str) -> str:
    bare = path.split("?", maxsplit=1)[0]
    if bare == OPENAPI_PATH:
        return bare
    for r in ROUTES:
        if r.method == method and r.regex.match(bare):
            return r.template
    raise AssertionError(f"no route for {method} {path}")


class Checked(NbRig):
    """Every answer is checked against the description as it is received."""

    seen: set[tuple[str, str, int]]

    def request(self, method: str, path: str, body: Any = None, **kw: Any) -> Answer:
        ans = super().request(method, path, body, **kw)
        template = template_of(method, path)
        check(template, method, ans)
        self.seen.add((method, template, ans.status))
        return ans


def test_answers_of_every_endpoint_fit_the_description(tmp_path):
    (tmp_path / "a.yaml").write_text("version: 1\nsource: operator\nrules: []\n")

    class Snap:
        hoas = ()
        counters: ClassVar = {}

    nb = Checked.start(policy_dir=tmp_path, agent=Snap)
    nb.seen = set()
    f = nb.open_tcp(40000, 443)
    nb.open_udp(40001, 53, dst=CN2)
    for path in ("/v1/status", "/v1/interfaces", "/v1/hoas", "/v1/flows", f"/v1/flows/{f}",
                 "/v1/rules", "/v1/rules?source=operator", "/v1/policy", "/v1/preferences",
                 "/v1/apps", "/metrics", "/v1/openapi.json"):  # fmt: skip
        assert nb.get(path).status == 200, path
    rule = {"id": "tls", "match": {"remote_port": 443}, "uplink": "lte"}
    assert nb.post("/v1/rules/operator", rule).status == 201
    assert nb.post("/v1/rules/operator", rule).status == 409
    assert nb.post("/v1/rules/operator", {**rule, "id": "x", "uplink": "5g"}).status == 422
    assert nb.put("/v1/rules/operator/tls", {**rule, "priority": 3}).status == 200
    assert nb.put("/v1/rules/user/mine", {"strategy": "cheapest"}).status == 201
    assert nb.get("/v1/rules/operator").status == 200
    assert nb.get("/v1/rules/operator/tls").status == 200
    assert nb.get("/v1/rules/operator/none").status == 404
    assert nb.delete("/v1/rules/operator/tls").status == 200
    assert nb.post(f"/v1/flows/{f}/move", {"network": "lte"}).status == 200
    assert nb.post(f"/v1/flows/{f}/move", {"network": "5g"}).status == 422
    assert nb.post("/v1/flows/999/move", {"network": "lte"}).status == 404
    assert (
        nb.request("POST", f"/v1/flows/{f}/move", raw=b"{", content_type="application/json").status
        == 400
    )
    assert (
        nb.request("POST", f"/v1/flows/{f}/move", raw=b"{}", content_type="text/plain").status
        == 415
    )
    assert nb.request("POST", f"/v1/flows/{f}/move", raw=b" " * 70000).status == 413
    assert nb.put("/v1/preferences", {"prefer": ["wlan"], "max_cost": 30}).status == 200
    assert nb.put("/v1/preferences", {"prefer": ["5g"]}).status == 422
    assert nb.delete("/v1/preferences").status == 200
    assert (
        nb.post("/v1/apps/app1/flows", {"match": {"remote_port": 53}, "uplink": "lte"}).status
        == 201
    )
    assert (
        nb.put("/v1/apps/app1/flows/d2", {"match": {"dscp": "ef"}, "uplink": "wlan"}).status == 201
    )
    assert nb.get("/v1/apps/app1/flows").status == 200
    assert nb.get("/v1/apps").status == 200
    assert nb.delete("/v1/apps/app1/flows/d2").status == 200
    assert nb.delete("/v1/apps/app1/flows").status == 200
    assert nb.post("/v1/policy/reload").status == 200
    (tmp_path / "b.yaml").write_text("version: 1\nsource: operator\nrules: [{id: x}]\n")
    assert nb.post("/v1/policy/reload").status == 422
    assert nb.get("/v1/policy").status == 200
    assert nb.delete(f"/v1/flows/{f}").status == 204
    assert nb.get("/v1/flows", token="x").status == 200
    described = {(m, p) for m, p in spec_operations()}
    assert described == {(m, p) for m, p, _ in nb.seen}, "an operation was not exercised"


def test_auth_refusals_fit_the_description():
    nb = Checked.start(token="a-token-of-enough-length")
    nb.seen = set()
    for method, path in sorted(spec_operations()):
        concrete = path
        for name, value in (("flow_id", "1"), ("source", "operator"), ("rule_id", "r"),
                            ("app_id", "a"), ("decl_id", "d")):  # fmt: skip
            concrete = concrete.replace("{" + name + "}", value)
        assert nb.request(method, concrete, token=False).status == 401


@pytest.mark.parametrize("name", sorted(SPEC["components"]["schemas"]))
def test_schema_examples_fit_their_schema(name):
    schema = SPEC["components"]["schemas"][name]
    validator = Draft202012Validator(
        {"$ref": f"{BASE}#/components/schemas/{name}"}, registry=REGISTRY
    )
    for example in schema.get("examples", []):
        validator.validate(example)
