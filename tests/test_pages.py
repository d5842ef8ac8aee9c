"""The web pages as served, without a browser: routes, headers, modules, and
the rules the browser tests cannot see everywhere (no HTML built from strings)."""
from __future__ import annotations

import re

import pytest

from livecart.server.app import create_app
from livecart.server.pages import PAGES_DIR, STATIC_DIR

PAGES = {"/": "index", "/login": "login", "/seller": "seller", "/replays": "replays"}
IMPORT = re.compile(r"""(?:import\s[^;]*?from\s|import\s*\(\s*)["'](/static/[^"']+)["']""")
SCRIPT_SRC = re.compile(r"""<script[^>]*\ssrc=["'](/static/[^"']+)["']""")
STYLESHEET = re.compile(r"""<link[^>]*\shref=["'](/static/[^"']+)["']""")


@pytest.mark.parametrize("path", list(PAGES))
async def test_each_page_is_served_as_html_that_revalidates(client, path):
    response = await client.http.get(path)
    assert response.status == 200
    assert response.content_type == "text/html"
    assert response.headers["Cache-Control"] == "no-cache"
    assert "script-src 'self'" in response.headers["Content-Security-Policy"]
    text = await response.text()
    assert f'src="/static/{PAGES[path]}.js"' in text


async def test_a_streams_page_is_served_for_a_stream_that_exists(client):
    from tests.support import make_vendor

    seller = await make_vendor(client)
    created = await client.data('mutation { createStream(title: "Soon", productIds: []) { id } }', token=seller.token)
    response = await client.http.get(f"/live/{created['createStream']['id']}")
    assert response.status == 200 and response.headers["Cache-Control"] == "no-cache"
    assert 'src="/static/live.js"' in await response.text()


@pytest.mark.parametrize("path", ["/live/999999", "/live/abc", "/live/0", "/live/99999999999999999999", "/live/%D9%A3", "/live/"])
async def test_a_missing_stream_or_a_non_numeric_id_is_the_404_page_with_a_way_back(client, path):
    response = await client.http.get(path)
    assert response.status == 404
    assert response.content_type == "text/html"
    assert "script-src 'self'" in response.headers["Content-Security-Policy"]
    text = await response.text()
    assert "There is no such stream" in text and 'href="/"' in text and 'href="/replays"' in text


async def test_the_favicon_is_served(client):
    response = await client.http.get("/favicon.ico")
    assert response.status == 200 and response.content_type == "image/svg+xml"


async def test_static_modules_are_javascript_and_missing_files_404(client):
    response = await client.http.get("/static/graphql.js")
    assert response.status == 200
    assert "javascript" in response.content_type  # browsers refuse ES modules of any other type
    assert (await client.http.get("/static/style.css")).content_type == "text/css"
    assert (await client.http.get("/static/nope.js")).status == 404
    assert (await client.http.get("/static/../pages.py")).status in (403, 404)


async def test_every_module_and_stylesheet_a_page_loads_exists(client):
    wanted: set[str] = set()
    for page in PAGES_DIR.glob("*.html"):
        html = page.read_text()
        wanted |= set(SCRIPT_SRC.findall(html)) | set(STYLESHEET.findall(html))
    for module in STATIC_DIR.glob("*.js"):
        wanted |= set(IMPORT.findall(module.read_text()))
    assert len(wanted) > 8
    for path in sorted(wanted):
        assert (await client.http.get(path)).status == 200, path


async def test_the_seller_page_carries_the_ingest_url_escaped(aiohttp_client, settings):
    http = await aiohttp_client(create_app(settings.replace(ingest_url='rtmp://ingest.example/live?a="b"&c=<d>')))
    text = await (await http.get("/seller")).text()
    assert 'content="rtmp://ingest.example/live?a=&quot;b&quot;&amp;c=&lt;d&gt;"' in text
    assert "{{INGEST_URL}}" not in text


def test_pages_have_no_inline_script_or_handler():
    """The CSP forbids inline scripts; a page that relied on one would break silently."""
    for page in PAGES_DIR.glob("*.html"):
        html = page.read_text()
        assert not re.search(r"<script(?![^>]*\ssrc=)[^>]*>", html), page.name
        assert not re.search(r"\son[a-z]+=", html), page.name


def test_scripts_never_turn_strings_into_html():
    """User text is only ever set as text: no API that parses a string as markup is used."""
    parsing = re.compile(r"innerHTML|outerHTML|insertAdjacentHTML|document\.write|createContextualFragment|DOMParser")
    modules = list(STATIC_DIR.glob("*.js"))
    assert len(modules) >= 8
    for module in modules:
        assert not parsing.search(module.read_text()), module.name
