"""The floor for a live-page load (issue 20): live.js's STREAM answer built with asyncpg + orjson.

`python -m bench.pagefloor --port N` serves POST /graphql (the document is not parsed: whatever is
posted, the answer is live.js's STREAM for `variables.id`, for the caller of the bearer token) and
GET /healthz. It reads what livecart reads, in four statements (the caller; the stream with its
vendor, viewers and the caller's reaction; the featured products; the comments with their authors
and roles), on the same database, with the statements prepared (asyncpg caches them), and
encodes the answer with orjson. The bench measures its CPU per load exactly as livecart's, and
checks first that both return the same JSON (bench.opcost.same_page).
"""
from __future__ import annotations

import argparse
import datetime as dt
import hashlib
import os
from decimal import Decimal

import asyncpg
import orjson
from aiohttp import web

CALLER = ("SELECT user_id FROM auth_tokens WHERE token_hash = $1 AND revoked_at IS NULL AND expires_at > $2")
STREAM = """
SELECT s.id, s.title, s.description, s.status, s.started_at, s.ended_at, s.playback_id, s.broadcasting,
       s.likes, s.dislikes, s.comment_count, s.vendor_id, v.name AS vendor_name, v.user_id AS owner_id,
       s.viewer_count - (SELECT count(*) FROM stream_viewers w
                         WHERE w.stream_id = s.id AND w.is_active AND w.expires_at <= $2) AS viewers,
       (SELECT interaction_type FROM stream_interactions r WHERE r.stream_id = s.id AND r.user_id = $3
          AND r.interaction_type IN ('like', 'dislike') LIMIT 1) AS my_reaction
FROM live_streams s JOIN vendors v ON v.id = s.vendor_id WHERE s.id = $1"""
PRODUCTS = """
SELECT p.id, p.name, p.description, p.price, p.stock, p.image_url FROM stream_products sp
JOIN products p ON p.id = sp.product_id WHERE sp.stream_id = $1
ORDER BY sp.highlighted DESC, sp.position, sp.id LIMIT 100"""
COMMENTS = """
SELECT c.id, c.comment_text, c.created_at, c.user_id, u.username,
       CASE WHEN c.user_id = $2 THEN 'OWNER'
            WHEN EXISTS (SELECT 1 FROM vendor_moderators m WHERE m.vendor_id = $3 AND m.user_id = c.user_id)
            THEN 'MODERATOR' ELSE 'VIEWER' END AS role
FROM (SELECT * FROM stream_interactions WHERE stream_id = $1 AND interaction_type = 'comment'
      AND deleted_at IS NULL AND held_at IS NULL ORDER BY id DESC LIMIT 50) c
JOIN users u ON u.id = c.user_id ORDER BY c.id"""


def _time(value: dt.datetime) -> str:
    return value.astimezone(dt.timezone.utc).isoformat()


def _money(value: Decimal) -> str:
    return str(value.quantize(Decimal("0.01")))


async def page(request: web.Request) -> web.Response:
    pool: asyncpg.Pool = request.app["pool"]
    body = orjson.loads(await request.read())
    stream_id = int((body.get("variables") or {})["id"])
    token = request.headers.get("Authorization", "").removeprefix("Bearer ").strip()
    now = dt.datetime.now(dt.timezone.utc)
    async with pool.acquire() as conn:
        user_id = await conn.fetchval(CALLER, hashlib.sha256(token.encode()).hexdigest(), now) if token else None
        s = await conn.fetchrow(STREAM, stream_id, now, user_id)
        if s is None:
            return web.Response(body=orjson.dumps({"data": {"stream": None}}), content_type="application/json")
        products = await conn.fetch(PRODUCTS, stream_id)
        comments = await conn.fetch(COMMENTS, stream_id, s["owner_id"], s["vendor_id"])
    end = s["ended_at"] or now
    answer = {"data": {"stream": {
        "id": str(s["id"]), "title": s["title"], "description": s["description"], "status": s["status"].upper(),
        "durationSeconds": max(0, int((end - s["started_at"]).total_seconds())) if s["started_at"] else 0,
        "playbackUrl": request.app["playback"].format(playback_id=s["playback_id"]),
        "broadcasting": s["broadcasting"], "viewerCount": s["viewers"], "likes": s["likes"],
        "dislikes": s["dislikes"], "commentCount": s["comment_count"],
        "myReaction": s["my_reaction"].upper() if s["my_reaction"] else None,
        "vendor": {"id": str(s["vendor_id"]), "name": s["vendor_name"]},
        "featuredProducts": [{"id": str(p["id"]), "name": p["name"], "description": p["description"],
                              "price": _money(p["price"]), "stock": p["stock"], "imageUrl": p["image_url"]}
                             for p in products],
        "comments": [{"id": str(c["id"]), "text": c["comment_text"], "createdAt": _time(c["created_at"]),
                      "held": False, "authorRole": c["role"], "author": {"id": str(c["user_id"]), "username": c["username"]}}
                     for c in comments],
    }}}
    return web.Response(body=orjson.dumps(answer), content_type="application/json")


async def healthz(request: web.Request) -> web.Response:
    return web.json_response({"status": "ok"})


def app(database_url: str, playback: str) -> web.Application:
    application = web.Application()

    async def pool_ctx(application: web.Application):
        application["pool"] = await asyncpg.create_pool(database_url, min_size=2, max_size=10)
        yield
        await application["pool"].close()

    application["playback"] = playback
    application.cleanup_ctx.append(pool_ctx)
    application.router.add_post("/graphql", page)
    application.router.add_get("/healthz", healthz)
    return application


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.pagefloor", description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, required=True)
    args = parser.parse_args()
    from livecart.server.cli import _use_uvloop
    from livecart.server.settings import Settings

    _use_uvloop()  # as `livecart serve` runs
    settings = Settings.from_env()
    playback = settings.playback_url("{playback_id}").replace("{{", "{").replace("}}", "}")
    web.run_app(app(os.environ["DATABASE_URL"], playback), host="127.0.0.1", port=args.port, print=None)


if __name__ == "__main__":
    main()
