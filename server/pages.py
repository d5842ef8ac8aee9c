"""The web pages: plain HTML files and ES modules from client/, no build step.

The pages talk to the server only through /graphql. The one thing a page
cannot ask GraphQL for, the ingest address broadcasting software publishes to,
is written into the seller page's <meta> tag when it is served.
"""
from __future__ import annotations

import html
import pathlib

from aiohttp import web

from server.appkeys import SETTINGS

CLIENT_DIR = pathlib.Path(__file__).resolve().parent.parent / "client"
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


def _page(name: str):
    path = PAGES_DIR / f"{name}.html"

    async def handler(request: web.Request) -> web.Response:
        text = path.read_text(encoding="utf-8")
        if INGEST_PLACEHOLDER in text:
            ingest = request.app[SETTINGS].ingest_url
            text = text.replace(INGEST_PLACEHOLDER, html.escape(ingest, quote=True))
        return web.Response(text=text, content_type="text/html", headers={**NO_CACHE, **PAGE_SECURITY})

    return handler


def add_page_routes(app: web.Application) -> None:
    """The pages and their static files; called by create_app."""
    router = app.router
    router.add_get("/", _page("index"), name="page-index")
    # Digits only: anything else is no stream, and 404s before a page loads.
    router.add_get(r"/live/{id:\d+}", _page("live"), name="page-live")
    router.add_get("/login", _page("login"), name="page-login")
    router.add_get("/seller", _page("seller"), name="page-seller")
    router.add_get("/replays", _page("replays"), name="page-replays")
    router.add_static("/static/", STATIC_DIR, name="static", append_version=False)
    # Product images uploaded through setProductImage (issue 18); their names are content hashes.
    images = pathlib.Path(app[SETTINGS].image_dir)
    images.mkdir(parents=True, exist_ok=True)
    router.add_static("/images/", images, name="images", append_version=False)
