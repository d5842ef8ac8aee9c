"""The web pages: plain HTML files and ES modules from client/, no build step.

The pages talk to the server only through /graphql. Two things a page cannot
ask GraphQL for are written into <meta> tags when it is served: the ingest
address broadcasting software publishes to (the seller page), and where the
login page goes afterwards, as server/return_path.py decided (issue 13).
"""
from __future__ import annotations

import html
import pathlib
from importlib import resources

from aiohttp import web

from livecart.models.stream import LiveStream
from livecart.server.appkeys import SETTINGS
from livecart.server.return_path import safe_return_path

# Found as package data, wherever the package is installed; a plain directory (a wheel is never run
# zipped), which aiohttp's static route needs.
CLIENT_DIR = pathlib.Path(str(resources.files("livecart.client")))
PAGES_DIR = CLIENT_DIR / "pages"
STATIC_DIR = CLIENT_DIR / "static"

# Pages change with deployments; the browser must revalidate them each time.
NO_CACHE = {"Cache-Control": "no-cache"}
PAGE_SECURITY = {
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    # Scripts only from our own origin: even a rendering slip cannot run injected markup.
    "Content-Security-Policy": (
        "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data: https: http:; "
        "media-src 'self' https: http: blob:; connect-src 'self' ws: wss: https: http:; "
        "object-src 'none'; base-uri 'none'; frame-ancestors 'none'"
    ),
}

INGEST_PLACEHOLDER = "{{INGEST_URL}}"
RETURN_PLACEHOLDER = "{{RETURN_TO}}"
MAX_ID = 2**31 - 1  # the id columns' range: a larger number names no stream


def _render(request: web.Request, name: str, status: int = 200) -> web.Response:
    text = (PAGES_DIR / f"{name}.html").read_text(encoding="utf-8")
    if INGEST_PLACEHOLDER in text:
        ingest = request.app[SETTINGS].ingest_url
        text = text.replace(INGEST_PLACEHOLDER, html.escape(ingest, quote=True))
    if RETURN_PLACEHOLDER in text:
        return_to = safe_return_path(request.query.get("return"))
        text = text.replace(RETURN_PLACEHOLDER, html.escape(return_to, quote=True))
    return web.Response(text=text, status=status, content_type="text/html", headers={**NO_CACHE, **PAGE_SECURITY})

# GraphiQL (issue 16): every script, style, font and request from this origin only.
GRAPHIQL_SECURITY = {
    **PAGE_SECURITY,
    "Content-Security-Policy": (
        "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; font-src 'self' data:; "
        "connect-src 'self'; worker-src 'self'; object-src 'none'; base-uri 'none'; frame-ancestors 'none'"
    ),
}


def graphiql_page() -> web.Response:
    """GraphiQL as livecart serves it at /graphql (client/pages/graphiql.html, assets of client/vendor.py)."""
    text = (PAGES_DIR / "graphiql.html").read_text(encoding="utf-8")
    return web.Response(text=text, content_type="text/html", headers={**NO_CACHE, **GRAPHIQL_SECURITY})


def _page(name: str):
    async def handler(request: web.Request) -> web.Response:
        return _render(request, name)

    return handler


async def not_found_page(request: web.Request) -> web.Response:
    """The 404 page: says what was not found and offers the way back."""
    return _render(request, "not-found", status=404)


async def live_page(request: web.Request) -> web.Response:
    """A stream's page, or the 404 page when there is no such stream (the page would only say so)."""
    raw = request.match_info["id"]
    if not raw.isascii() or not raw.isdigit() or not 0 < int(raw) <= MAX_ID:
        return await not_found_page(request)
    if not await LiveStream.exists(id=int(raw)):
        return await not_found_page(request)
    return _render(request, "live")


async def favicon(request: web.Request) -> web.FileResponse:
    # Browsers ask for /favicon.ico whatever the pages link; the same small SVG answers.
    return web.FileResponse(STATIC_DIR / "favicon.svg", headers={"Content-Type": "image/svg+xml"})


def add_page_routes(app: web.Application) -> None:
    """The pages and their static files; called by create_app."""
    router = app.router
    router.add_get("/", _page("index"), name="page-index")
    # Anything after /live/ that is not a stream's number is the same 404 page as a missing stream.
    router.add_get(r"/live/{id:[^/]+}", live_page, name="page-live")
    router.add_get("/live/", not_found_page, name="page-live-none")
    router.add_get("/favicon.ico", favicon, name="favicon")
    router.add_get("/login", _page("login"), name="page-login")
    router.add_get("/seller", _page("seller"), name="page-seller")
    router.add_get("/replays", _page("replays"), name="page-replays")
    router.add_static("/static/", STATIC_DIR, name="static", append_version=False)
    # Product images uploaded through setProductImage (issue 18); their names are content hashes.
    images = pathlib.Path(app[SETTINGS].image_dir)
    images.mkdir(parents=True, exist_ok=True)
    router.add_static("/images/", images, name="images", append_version=False)
