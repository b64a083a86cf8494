"""The facade and the control socket's request handling, over the logic and the fake switch."""

from __future__ import annotations

import json
from collections import Counter
from typing import Any

from sdnmip.controller.control import answer
from sdnmip.controller.facade import ControllerFacade

from .pkt import tcp_pkt
from .rig import CN1, HOA0, ILTE, IWLAN, PRIMARY, Rig


class RigApp:
    """The app's entry points (`call`, `read`) over the rig: messages go to the fake switch."""

    def __init__(self, rig: Rig) -> None:
        self.rig = rig
        self.logic = rig.logic
        self.reconciled = True
        self.last_reconcile = {"rules": 0, "changes": 30, "ms": 1.0}
        self.dp = object()
        self.counters: Counter[str] = Counter({"packet_ins": 3})

    def call(self, fn: Any, *args: Any, atomic: bool = False) -> list[Any]:
        actions: list[Any] = fn(self.rig.now, *args)
        self.rig.run(actions)
        return actions

    def read(self, fn: Any) -> Any:
        return fn()


def ask(facade: ControllerFacade, op: str, **args: Any) -> dict[str, Any]:
    out = answer(facade, json.dumps({"id": 5, "op": op, "args": args}).encode())
    assert out.endswith(b"\n")
    msg: dict[str, Any] = json.loads(out)
    assert msg["id"] == 5
    return msg


def test_moving_a_flow_through_the_control_socket_hands_it_over_when_the_agent_reports() -> None:
    rig = Rig.start()
    facade = ControllerFacade(RigApp(rig), lambda: True)
    rig.send(HOA0, tcp_pkt(PRIMARY, CN1, 40000, 80))
    [flow] = ask(facade, "flows")["result"]
    assert flow["uplink"] == "wlan"
    assert rig.switch.process(HOA0, tcp_pkt(PRIMARY, CN1, 40000, 80, flags=0x10)).ports() == [IWLAN]
    assert ask(facade, "move", flow_id=flow["flow_id"], uplink="lte") == {
        "id": 5, "ok": True, "result": {}
    }  # fmt: skip
    rig.ack_binds()
    assert rig.switch.process(HOA0, tcp_pkt(PRIMARY, CN1, 40000, 80, flags=0x10)).ports() == [ILTE]
    assert ask(facade, "flow", flow_id=flow["flow_id"])["result"]["uplink"] == "lte"


def test_refusals_name_the_problem() -> None:
    facade = ControllerFacade(RigApp(Rig.start()), lambda: True)
    assert ask(facade, "move", flow_id=42, uplink="lte")["error"] == {
        "code": "refused", "message": "no live flow 42"
    }  # fmt: skip
    assert ask(facade, "move", flow_id="x", uplink="lte")["error"]["message"] == (
        "args.flow_id: expected an integer"
    )
    assert ask(facade, "frobnicate")["error"]["code"] == "bad_request"
    bad = json.loads(answer(facade, b"{nope"))
    assert bad["ok"] is False and bad["error"]["code"] == "bad_request"


def test_status_and_views_report_the_tables() -> None:
    rig = Rig.start()
    facade = ControllerFacade(RigApp(rig), lambda: False)
    rig.send(HOA0, tcp_pkt(PRIMARY, CN1, 40000, 80))
    status = ask(facade, "status")["result"]
    assert status["flows"] == 1 and status["switch_connected"] and not status["agent_connected"]
    hoas = ask(facade, "hoas")["result"]
    assert hoas["held"][0]["hoa"] == PRIMARY
    assert sum(h["flows"] for h in hoas["held"]) == 1
    uplinks = {u["name"]: u for u in ask(facade, "uplinks")["result"]}
    assert uplinks["wlan"]["flows"] == 1 and uplinks["lte"]["usable"]


def test_a_number_too_long_or_nesting_too_deep_is_a_bad_request() -> None:
    facade = ControllerFacade(RigApp(Rig.start()), lambda: True)
    for line in (b'{"id": 1' + b"9" * 5000 + b"}", b"[" * 5000 + b"]" * 5000):
        bad = json.loads(answer(facade, line))
        assert bad["ok"] is False and bad["error"]["code"] == "bad_request"
