"""`sdnmip flows | hoas | move | rules` over HTTP on loopback against the real WSGI application
(served by the stdlib's wsgiref in a thread, over the unit rig), and their errors."""

from __future__ import annotations

import json
import socket
import threading
from collections.abc import Iterator
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

import pytest

from sdnmip.cli import main as sdnmip
from sdnmip.northbound.client import ApiError, NorthboundClient, Unreachable, endpoint_from_config

from .nbrig import TOKEN, NbRig


class _Quiet(WSGIRequestHandler):
    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture
def served(tmp_path) -> Iterator[tuple[NbRig, str]]:
    nb = NbRig.start(token=TOKEN)
    server: WSGIServer = make_server("127.0.0.1", 0, nb.rest, handler_class=_Quiet)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield nb, f"http://127.0.0.1:{server.server_port}"
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture
def token_file(tmp_path):
    path = tmp_path / "token"
    path.write_text(TOKEN)
    path.chmod(0o600)
    return path


def run(capsys, *argv: str) -> tuple[int, str, str]:
    code = sdnmip(list(argv))
    out = capsys.readouterr()
    return code, out.out, out.err


def test_flows_table_and_json(served, token_file, capsys):
    nb, url = served
    nb.open_tcp(40000, 443)
    nb.open_udp(40001, 53)
    code, out, _ = run(capsys, "flows", "--url", url, "--token-file", str(token_file))
    assert code == 0
    lines = out.splitlines()
    assert lines[0].split() == ["ID", "PROTO", "LOCAL", "REMOTE", "HOA", "UPLINK", "RULE", "APP",
                                "AGE", "UP/DOWN"]  # fmt: skip
    assert "[2001:db8:c1::10]:443" in lines[1] and "wlan" in lines[1]
    assert lines[-1] == "2 flows"
    code, out, _ = run(capsys, "flows", "--url", url, "--token-file", str(token_file), "--json")
    assert code == 0 and len(json.loads(out)["flows"]) == 2
    code, out, _ = run(capsys, "flows", "--url", url, "--token-file", str(token_file),
                       "--uplink", "lte")  # fmt: skip
    assert out.splitlines()[-1] == "0 flows"


def test_move_and_hoas(served, token_file, capsys):
    nb, url = served
    f = nb.open_tcp(40000, 443)
    auth = ("--url", url, "--token-file", str(token_file))
    code, out, _ = run(capsys, "move", str(f), "lte", *auth)
    assert code == 0 and f"flow {f} -> lte" in out and "Binding Acknowledgement" in out
    nb.rig.ack_binds()
    assert nb.uplink_of(f) == "lte"
    code, out, _ = run(capsys, "hoas", *auth)
    assert code == 0 and "2001:db8:100::1000" in out and "primary" in out
    assert "UPLINK  STATE" in out and "2001:db8:2::2" in out
    code, _, err = run(capsys, "move", str(f), "5g", *auth)
    assert code == 1 and "422 invalid" in err and "[network]" in err
    code, _, err = run(capsys, "move", "999", "lte", *auth)
    assert code == 1 and "404 not_found" in err


def test_rules_add_list_show_delete(served, token_file, tmp_path, capsys):
    nb, url = served
    f = nb.open_tcp(40000, 443)
    auth = ("--url", url, "--token-file", str(token_file))
    rule = tmp_path / "rule.yaml"
    rule.write_text("id: tls\nmatch: {proto: tcp, remote_port: 443}\nuplink: lte\n")
    code, out, _ = run(capsys, "rules", "add", "operator", str(rule), *auth)
    assert code == 0 and "add operator:tls: ok" in out and f"flow {f}: wlan -> lte" in out
    code, out, _ = run(capsys, "rules", *auth)
    assert code == 0 and "operator:tls" in out and "proto=tcp remote_port=443" in out
    assert "rest:operator" in out
    code, out, _ = run(capsys, "rules", "show", "operator", "tls", *auth)
    assert code == 0 and "uplink: lte" in out
    rule.write_text("id: tls\nmatch: {proto: tcp, remote_port: 70000}\nuplink: lte\n")
    code, _, err = run(capsys, "rules", "put", "operator", "tls", str(rule), *auth)
    assert code == 1 and "match.remote_port" in err and "70000 is not a port" in err
    code, out, _ = run(capsys, "rules", "delete", "operator", "tls", *auth)
    assert code == 0 and "delete operator:tls: ok" in out
    code, _, err = run(capsys, "rules", "show", "operator", *auth)
    assert code == 2 and "usage: sdnmip rules show SOURCE ID" in err
    code, _, err = run(capsys, "rules", "reload", *auth)
    assert code == 1 and "409 conflict" in err


def test_without_the_token_the_cli_says_so(served, capsys):
    _, url = served
    code, _, err = run(capsys, "flows", "--url", url)
    assert code == 1 and "401 unauthorized" in err


def test_a_northbound_that_is_not_running(capsys):
    with socket.socket() as s:  # a free port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    code, _, err = run(capsys, "flows", "--url", f"http://127.0.0.1:{port}")
    assert code == 1 and "cannot reach the northbound" in err and "sdnmip mn" in err
    with pytest.raises(Unreachable):
        NorthboundClient(f"http://127.0.0.1:{port}", timeout=2).get("/v1/status")


@pytest.mark.parametrize(
    ("args", "words"),
    [
        (["--url", "notaurl"], "'notaurl': expected http://HOST:PORT"),
        (["--url", "ftp://h:1"], "expected http://HOST:PORT"),
        (["--url", "http://[bad"], "Invalid IPv6 URL"),
        (["--url", "http://h:99999"], "Port out of range"),
        (["--url", "http://127.0.0.1:1", "--timeout", "-1"], "--timeout -1.0"),
        (["--url", "http://127.0.0.1:1", "--timeout", "nan"], "--timeout nan"),
    ],
)
def test_bad_arguments_are_one_line_not_a_traceback(capsys, args, words):
    code, out, err = run(capsys, "flows", *args)
    assert code == 1 and out == ""
    assert err.startswith("sdnmip flows: ") and words in err and err.count("\n") == 1


def test_the_url_and_token_come_from_the_mn_configuration(tmp_path, token_file):
    cfg = tmp_path / "mn.yaml"
    cfg.write_text(f"northbound:\n  listen: '[::]:9000'\n  token_file: {token_file}\n")
    ep = endpoint_from_config(cfg)
    assert ep.url == "http://[::1]:9000" and ep.token == TOKEN
    cfg.write_text("version: 1\n")
    assert endpoint_from_config(cfg).url == "http://127.0.0.1:8181"


def test_client_raises_api_errors_with_the_field(served):
    _, url = served
    c = NorthboundClient(url, TOKEN)
    with pytest.raises(ApiError) as err:
        c.post("/v1/rules/operator", {"id": "x", "uplink": "lte", "priority": -1})
    assert (err.value.status, err.value.field) == (422, "priority")
    assert "sdnmip_flows" in c.text("/metrics")
