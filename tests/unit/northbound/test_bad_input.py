"""Bad input the other northbound tests do not reach: JSON that parses to trouble (huge
integers, deep nesting), a filter naming no uplink, HEAD, and 404s naming the URL's parameter.
Each is a 4xx naming what was wrong, and changes nothing."""

from __future__ import annotations

from typing import Any

import pytest

from sdnmip.northbound.rest import ROUTES

from .nbrig import NbRig
from .test_openapi import SPEC
from .test_validation import snapshot

WRITES = [
    ("POST", "/v1/rules/operator"),
    ("PUT", "/v1/rules/operator/keep"),
    ("PUT", "/v1/preferences"),
    ("POST", "/v1/apps/app1/flows"),
    ("PUT", "/v1/apps/app1/flows/d1"),
    ("POST", "/v1/policy/reload"),
]


@pytest.fixture
def nb(tmp_path: Any) -> NbRig:
    nb = NbRig.start(state=tmp_path / "saved.json")
    nb.open_tcp(40000, 443)
    assert nb.post("/v1/rules/operator", {"id": "keep", "uplink": "lte"}).status == 201
    body = {"id": "d1", "match": {"local_port": 5000}, "uplink": "lte"}
    assert nb.post("/v1/apps/app1/flows", body).status == 201
    nb.rig.ack_binds()
    nb.rig.take_agent()
    nb.extra["saved"] = (tmp_path / "saved.json").read_bytes()
    return nb


def unchanged(nb: NbRig, before: tuple[Any, ...], tmp_saved: bytes) -> None:
    assert snapshot(nb) == before and snapshot(nb)[0] is before[0]
    assert nb.rig.take_agent() == []
    assert nb.extra["saved"] == tmp_saved


@pytest.mark.parametrize(("method", "path"), WRITES)
@pytest.mark.parametrize(
    ("raw", "words"),
    [
        (b'{"id": "a", "priority": 1' + b"0" * 5000 + b', "uplink": "lte"}', "too long"),
        (b"[" * 30000 + b"]" * 30000, "nested too deeply"),
        (b'{"a":' * 10000 + b"1" + b"}" * 10000, "nested too deeply"),
    ],
)
def test_json_that_parses_to_trouble_is_400_not_500(nb, method, path, raw, words):
    before = snapshot(nb)
    ans = nb.request(method, path, raw=raw)
    assert (ans.status, ans.error["code"]) == (400, "bad_request"), ans.raw[:200]
    assert words in ans.error["message"]
    unchanged(nb, before, nb.extra["saved"])


def test_a_flow_filter_naming_no_uplink_is_400_naming_it(nb):
    ans = nb.get("/v1/flows?uplink=5g")
    assert (ans.status, ans.error["field"]) == (400, "uplink")
    assert "5g" in ans.error["message"] and "wlan" in ans.error["message"]
    assert len(nb.get("/v1/flows?uplink=lte").body["flows"]) == 1  # moved by "keep"


def test_404s_name_the_parameter_of_the_url(nb):
    before = snapshot(nb)
    gone = nb.delete("/v1/rules/operator/nope")
    assert (gone.status, gone.error["field"]) == (404, "rule_id")
    gone = nb.delete("/v1/apps/app1/flows/nope")
    assert (gone.status, gone.error["field"]) == (404, "decl_id")
    unchanged(nb, before, nb.extra["saved"])


def test_head_is_get_without_the_body(nb):
    head = nb.request("HEAD", "/v1/status")
    get = nb.get("/v1/status")
    assert head.status == 200 and head.raw == b""
    assert head.headers["content-type"] == get.headers["content-type"]
    assert nb.request("HEAD", "/v1/openapi.json").status == 200
    wrong = nb.request("PATCH", "/v1/status")
    assert wrong.status == 405 and set(wrong.headers["allow"].split(", ")) == {"GET", "HEAD"}
    writes = nb.request("HEAD", "/v1/policy/reload")
    assert writes.status == 405 and writes.headers["allow"] == "POST"


def _concrete(template: str, flow_id: int) -> str:
    params = {"flow_id": str(flow_id), "source": "operator", "rule_id": "keep"}
    params |= {"app_id": "app1", "decl_id": "d1"}
    for name, value in params.items():
        template = template.replace("{" + name + "}", value)
    return template


@pytest.mark.parametrize("route", ROUTES, ids=lambda r: f"{r.method} {r.template}")
def test_every_refusal_is_documented_and_changes_nothing(nb, route):
    """A stray query parameter, and for a body a wrong Content-Type or an oversized one: the
    status is the one docs/openapi.yaml gives for the operation, and nothing changes."""
    before = snapshot(nb)
    saved = nb.extra["saved"]
    flow_id = next(iter(nb.rig.logic.flows)).flow_id
    path = _concrete(route.template, flow_id)
    documented = SPEC["paths"][route.template][route.method.lower()]["responses"]
    stray = nb.request(route.method, path + "?bogus=1")
    assert (stray.status, stray.error["field"]) == (400, "bogus")
    assert "400" in documented, f"{route.method} {route.template} answers 400, not described"
    if route.method in ("POST", "PUT"):
        text = nb.request(route.method, path, raw=b"{}", content_type="text/plain")
        assert text.status == 415 and "415" in documented
        big = nb.request(route.method, path, raw=b" " * (64 * 1024 + 1))
        assert big.status == 413 and "413" in documented
    unchanged(nb, before, saved)
