"""What the real-time engine relies on beyond its dependencies' public API, each used in one guarded
place: these fail on the upgrade that removes it (pyproject.toml bounds the versions tested).

- aiohttp's WebSocket frame writer (server/ws_aiohttp.py, direct_frame_writer): a synchronous
  write per subscriber during a fan-out.
- strawberry's graphql-core schema (schema/internals.py, graphql_schema) and MaskErrors'
  `_process_errors` hook (schema/extensions.py, ErrorCodes).
- graphql-core's per-event execution (subscriptions/shared.py): exported names, checked here too.
"""
from __future__ import annotations

import inspect

import graphql.execution
import strawberry
from aiohttp import WSMsgType, web
from graphql import GraphQLSchema
from strawberry.extensions import MaskErrors

from livecart.schema import build_schema
from livecart.schema.extensions import INTERNAL_MESSAGE, ErrorCodes
from livecart.schema.internals import graphql_schema
from livecart.server.ws_aiohttp import direct_frame_writer


async def test_aiohttps_frame_writer_writes_a_frame_synchronously(aiohttp_client):
    written: list[bool] = []

    async def handler(request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse(compress=False)
        await ws.prepare(request)
        writer = ws._writer  # the private attribute direct_frame_writer reads
        parameters = list(inspect.signature(writer._write_websocket_frame).parameters)
        assert parameters[:3] == ["message", "opcode", "rsv"], parameters  # rsv 0: an uncompressed frame
        assert isinstance(writer.protocol._paused, bool)
        write = direct_frame_writer(ws)
        assert write is not None, "aiohttp no longer has the frame writer server/ws_aiohttp.py uses"
        written.append(write(b'{"hello":"frame"}'))
        await ws.receive()  # until the client closes
        return ws

    app = web.Application()
    app.router.add_get("/ws", handler)
    client = await aiohttp_client(app)
    async with client.ws_connect("/ws") as ws:
        message = await ws.receive(timeout=5)
        assert message.type == WSMsgType.TEXT and message.data == '{"hello":"frame"}'
    assert written == [True]


def test_strawberrys_graphql_core_schema_is_reachable():
    assert isinstance(graphql_schema(build_schema()), GraphQLSchema)


def test_strawberrys_mask_errors_hook_is_the_one_error_codes_overrides():
    hook = getattr(MaskErrors, "_process_errors", None)
    assert callable(hook), "strawberry's MaskErrors no longer has _process_errors: ErrorCodes would not run"
    assert list(inspect.signature(hook).parameters) == ["self", "errors"]
    assert ErrorCodes._process_errors is not MaskErrors._process_errors


async def test_strawberry_calls_the_hook_error_codes_overrides():
    @strawberry.type
    class Query:
        @strawberry.field
        def boom(self) -> int:
            raise RuntimeError("secret")

    result = await strawberry.Schema(Query, extensions=[ErrorCodes]).execute("{ boom }")
    (error,) = result.errors
    assert error.message == INTERNAL_MESSAGE and error.extensions["code"] == "INTERNAL_SERVER_ERROR"


def test_graphql_cores_per_event_execution_is_exported():
    for name in ("Executor", "execute_subscription_event"):
        assert name in graphql.execution.__all__, name
    assert callable(getattr(graphql.execution.Executor, "build", None))
    assert callable(getattr(graphql.execution.Executor, "build_per_event_executor", None))
