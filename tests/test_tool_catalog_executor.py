"""The ``python-catalog`` executor: real calls, per-session state, errors as observations."""

from __future__ import annotations

import json

import pytest
from astra_tool_catalog.bundled_source import catalog_server
from astra_tool_catalog.catalog_model import ServerSpec
from astra_tool_catalog.schema_builders import obj, params, string
from astra_tool_catalog.servers import SERVERS

from astra_core.plugins import load_plugins
from astra_core.protocols import ToolExecutor
from astra_core.records import ToolCall, ToolServer
from astra_core.registry import ComponentBuilder


@pytest.fixture(scope="module")
def executor():
    return ComponentBuilder(load_plugins().registry, seed=0).build(
        "tool_executor", "python-catalog"
    )


@pytest.fixture(scope="module")
def shop() -> ToolServer:
    return catalog_server(SERVERS["shop"], state_seed=0)


def _open_order(shop: ToolServer) -> str:
    state = SERVERS["shop"].initial_state(0)
    return next(o["order_id"] for o in state["orders"] if o["status"] in ("pending", "processing"))


def test_executor_satisfies_the_protocol_and_sessions_too(executor):
    assert isinstance(executor, ToolExecutor)
    assert isinstance(executor.open_session(), ToolExecutor)


def test_state_persists_within_a_session_and_never_leaks_across(executor, shop: ToolServer):
    order = _open_order(shop)
    first = executor.open_session("a")
    cancelled = first.call(shop, ToolCall("cancel_order", {"order_id": order}))
    assert not cancelled.error and json.loads(cancelled.output)["status"] == "cancelled"
    # the same session remembers: a second cancel is refused
    again = first.call(shop, ToolCall("cancel_order", {"order_id": order}))
    assert again.error and "can no longer be cancelled" in json.loads(again.output)["error"]
    # another session starts from the original world
    second = executor.open_session("b")
    seen = json.loads(second.call(shop, ToolCall("get_order", {"order_id": order})).output)
    assert seen["status"] in ("pending", "processing")
    # created ids restart per session too
    customer = SERVERS["shop"].initial_state(0)["customers"][0]["customer_id"]
    product = SERVERS["shop"].initial_state(0)["products"][0]["product_id"]
    args = {"customer_id": customer, "product_id": product, "quantity": 1}
    made = [
        json.loads(executor.open_session().call(shop, ToolCall("create_order", args)).output)
        for _ in range(2)
    ]
    assert made[0]["order_id"] == made[1]["order_id"]


def test_bad_calls_come_back_as_error_observations(executor, shop: ToolServer):
    session = executor.open_session()
    cases = [
        (ToolCall("launch_rocket", {}), "unknown tool 'launch_rocket'"),
        (ToolCall("get_order", {}), "'order_id' is a required property"),
        (ToolCall("get_order", {"order_id": 1003}), "is not of type 'string'"),
        (ToolCall("get_order", {"order_id": "ORD-1001", "extra": 1}), "Additional properties"),
        (
            ToolCall(
                "create_order", {"customer_id": "CUS-101", "product_id": "PRD-201", "quantity": 0}
            ),
            "less than the minimum",
        ),
        (ToolCall("get_order", {"order_id": "ORD-0000"}), "no order with order_id 'ORD-0000'"),
    ]
    for call, expected in cases:
        result = session.call(shop, call)
        assert result.error, call
        message = json.loads(result.output)["error"]
        assert expected in message, (call, message)
        assert result.name == call.name
    assert session.call(shop, ToolCall("get_order", ["ORD-1001"])).error  # type: ignore[arg-type]


def test_servers_without_a_bundled_implementation_are_refused(executor, shop: ToolServer):
    foreign = ToolServer(title="remote", tools=shop.tools, endpoint={"kind": "mcp-stdio"})
    result = executor.call(foreign, ToolCall("get_order", {"order_id": "ORD-1001"}))
    assert result.error and "no bundled Python implementation" in result.output
    emulated = ToolServer(title="emulated", tools=shop.tools)
    assert executor.call(emulated, ToolCall("get_order", {"order_id": "ORD-1001"})).error


def test_a_bug_in_an_implementation_is_an_error_not_a_crash(executor, monkeypatch):
    spec = ServerSpec("buggy", title="Buggy", description="A server with a bug.", domain="test")

    @spec.state
    def state(rng):
        return {"items": []}

    @spec.tool(
        "Divide by the number of items.",
        params({"label": string("A label.")}),
        returns=obj({"ratio": string("Ratio.")}),
        phrase="divide {label}",
    )
    def divide(state, label):
        return {"ratio": str(1 / len(state["items"]))}

    monkeypatch.setitem(SERVERS, "buggy", spec)
    server = catalog_server(spec, state_seed=0)
    result = executor.open_session().call(server, ToolCall("divide", {"label": "x"}))
    assert result.error and "ZeroDivisionError" in result.output


def test_default_call_uses_one_shared_session(executor, shop: ToolServer):
    order = _open_order(shop)
    fresh = ComponentBuilder(load_plugins().registry, seed=0).build(
        "tool_executor", "python-catalog"
    )
    assert not fresh.call(shop, ToolCall("cancel_order", {"order_id": order})).error
    assert fresh.call(shop, ToolCall("cancel_order", {"order_id": order})).error
