"""`python -m bench.barews --port N`: the memory floor for an idle subscriber (issue 20).

A bare aiohttp WebSocket server on the same event loop livecart uses (uvloop): it speaks just
enough graphql-transport-ws for the bench's subscribers (connection_ack, pong) and keeps each
socket and its subscribe message, nothing else. What its RSS grows by per idle connection is
what any aiohttp WebSocket costs on this machine; livecart's idle subscriber is measured against it.
"""
from __future__ import annotations

import argparse

import orjson
from aiohttp import WSMsgType, web

SUBSCRIPTIONS = web.AppKey("subscriptions", dict)


async def graphql(request: web.Request) -> web.WebSocketResponse:
    ws = web.WebSocketResponse(protocols=("graphql-transport-ws",), compress=False)
    await ws.prepare(request)
    async for message in ws:
        if message.type != WSMsgType.TEXT:
            continue
        body = orjson.loads(message.data)
        kind = body.get("type")
        if kind == "connection_init":
            await ws.send_str('{"type":"connection_ack"}')
        elif kind == "ping":
            await ws.send_str('{"type":"pong"}')
        elif kind == "subscribe":
            request.app[SUBSCRIPTIONS][(id(ws), body.get("id"))] = body.get("payload")
    for key in [k for k in request.app[SUBSCRIPTIONS] if k[0] == id(ws)]:
        del request.app[SUBSCRIPTIONS][key]
    return ws


async def healthz(request: web.Request) -> web.Response:
    return web.json_response({"status": "ok"})


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.barews", description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, required=True)
    args = parser.parse_args()
    from livecart.server.cli import _use_uvloop

    _use_uvloop()  # as `livecart serve` runs
    app = web.Application()
    app[SUBSCRIPTIONS] = {}
    app.router.add_get("/graphql", graphql)
    app.router.add_get("/healthz", healthz)
    web.run_app(app, host="127.0.0.1", port=args.port, print=None)


if __name__ == "__main__":
    main()
