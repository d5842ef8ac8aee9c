"""GraphQL over HTTP (the GraphQL-over-HTTP draft): which media type a request gets, and its
parameters read once.

A request names what it accepts; we answer with the first type it prefers among those we
offer: `application/graphql-response+json` (the draft's own: 400 for a request that could
not be executed at all, with no `data` entry), `application/json` (the legacy type: 200 for
every GraphQL error, as clients written for it expect), and for subscriptions over HTTP
`text/event-stream` (graphql-sse, distinct connections mode) or
`multipart/mixed;subscriptionSpec="1.0"` (Apollo's multipart subscriptions). No Accept, or
`*/*`, means `application/json`. A request that accepts none of them is answered 406.
"""
from __future__ import annotations

import dataclasses
import json
from typing import Any

import orjson
from aiohttp import web
from cross_web import HTTPException

GRAPHQL_RESPONSE = "application/graphql-response+json"
JSON = "application/json"
EVENT_STREAM = "text/event-stream"
MULTIPART = "multipart/mixed"
HTML = "text/html"  # GraphiQL, for a browser's GET without a query
OFFERED = (GRAPHQL_RESPONSE, JSON, EVENT_STREAM, 'multipart/mixed;subscriptionSpec="1.0"')
STREAMING = (EVENT_STREAM, MULTIPART)


@dataclasses.dataclass(frozen=True, slots=True)
class _Range:
    type: str
    params: dict[str, str]
    q: float
    order: int


def _ranges(accept: str) -> list[_Range]:
    ranges = []
    for order, part in enumerate(accept.split(",")):
        media, *params = [piece.strip() for piece in part.split(";")]
        if not media:
            continue
        values: dict[str, str] = {}
        for param in params:
            key, _, value = param.partition("=")
            values[key.strip().lower()] = value.strip().strip("\"'")
        try:
            q = float(values.pop("q", "1"))
        except ValueError:
            q = 0.0
        ranges.append(_Range(media.lower(), values, q, order))
    return ranges


def negotiate(accept: str | None, *, html: bool = False) -> str | None:
    """The media type to answer with, or None when the request accepts none we offer.
    `html`: the request could be answered with GraphiQL (a GET without a query)."""
    if not accept or not accept.strip():
        return JSON
    best: tuple[float, int, str] | None = None
    for media in _ranges(accept):
        if media.q <= 0:
            continue
        chosen = _match(media, html)
        if chosen is not None and (best is None or (media.q, -media.order) > (best[0], -best[1])):
            best = (media.q, media.order, chosen)
    return best[2] if best else None


def _match(media: _Range, html: bool) -> str | None:
    if media.type in ("*/*", "application/*", JSON):
        return JSON
    if media.type == GRAPHQL_RESPONSE:
        return GRAPHQL_RESPONSE
    if media.type == EVENT_STREAM:
        return EVENT_STREAM
    if media.type == MULTIPART and media.params.get("subscriptionspec", "").startswith("1.0"):
        return MULTIPART
    if html and media.type in (HTML, "text/*"):
        return HTML
    return None


def not_acceptable() -> web.Response:
    body = {
        "errors": [{
            "message": "None of the media types in Accept is offered: " + ", ".join(OFFERED),
            "extensions": {"code": "BAD_USER_INPUT", "offered": list(OFFERED)},
        }]
    }
    return web.json_response(body, status=406, headers={"Accept": ", ".join(OFFERED)}, dumps=_dumps)


def _dumps(data: Any) -> str:
    return orjson.dumps(data).decode()


async def read_params(request: web.Request) -> dict[str, Any]:
    """The request's GraphQL parameters (query, operationName, variables, extensions, documentId),
    from the URL of a GET or the JSON body of a POST. Malformed ones: HTTPException 400 (the view
    answers it in GraphQL's shape)."""
    if request.method == "GET":
        data: Any = dict(request.query)
        for name in ("variables", "extensions"):
            if data.get(name):
                data[name] = _json(data[name], name)
            elif name in data:
                data[name] = None
    elif request.method == "POST":
        if request.content_type != JSON:
            raise HTTPException(415 if request.content_type else 400, "Send the request as application/json")
        data = _json(await request.read(), "body")
    else:
        raise HTTPException(405, "GraphQL only supports GET and POST requests.")
    if not isinstance(data, dict):
        raise HTTPException(400, "The request body must be a JSON object (batches are not supported).")
    for name, kinds in (("query", str), ("operationName", str), ("variables", dict), ("extensions", dict), ("documentId", str)):
        if data.get(name) is not None and not isinstance(data[name], kinds):
            raise HTTPException(400, f"The GraphQL operation's `{name}` must be a {'string' if kinds is str else 'map'} or null, if provided.")
    return data


def _json(raw: str | bytes, what: str) -> Any:
    try:
        return orjson.loads(raw)
    except orjson.JSONDecodeError:
        pass
    try:  # JSON orjson refuses but the standard allows (a lone surrogate): the resolvers refuse it, coded
        return json.loads(raw)
    except ValueError:
        raise HTTPException(400, f"Unable to parse the request {what} as JSON") from None
