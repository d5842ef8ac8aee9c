"""GraphiQL served entirely by livecart (issue 16): in Chromium with every request to another
origin blocked, it loads, runs a query and a subscription and shows their results, with no
Content-Security-Policy violation (the page allows only its own origin)."""
from __future__ import annotations

import contextlib
import json

import aiohttp
import pytest

from livecart.server.settings import Settings
from tests.processes import Ports
from tests.realtime_support import live_stream
from tests.support import make_vendor
from tests.test_browser import browser, page_until, pytestmark  # noqa: F401 - the fixture and the skip conditions
from tests.test_browser import serve as serve_app

PORTS = Ports(19450, 19499)


def serve(settings: Settings) -> contextlib.AbstractAsyncContextManager[str]:
    return serve_app(settings, PORTS)


async def set_query(page, text: str) -> None:
    await page.evaluate("(q) => document.querySelector('.graphiql-query-editor .CodeMirror').CodeMirror.setValue(q)", text)


async def response_text(page) -> str:
    return await page.evaluate("() => document.querySelector('.graphiql-response .CodeMirror').CodeMirror.getValue()")


async def shows(page, predicate, timeout: float = 15_000) -> dict:
    """Wait until GraphiQL's result pane holds JSON that `predicate` accepts."""
    await page_until(
        page,
        f"""() => {{
            const text = document.querySelector('.graphiql-response .CodeMirror')?.CodeMirror.getValue() ?? '';
            try {{ return ({predicate})(JSON.parse(text)); }} catch (e) {{ return false; }}
        }}""",
        timeout=timeout / 1000,
    )
    return json.loads(await response_text(page))


async def test_graphiql_runs_a_query_and_a_subscription_offline(browser, settings):  # noqa: F811
    async with serve(settings) as base:
        async with aiohttp.ClientSession(base_url=base) as http:
            from tests.support import GraphQLClient

            api = GraphQLClient(http)
            seller = await make_vendor(api)
            stream = await live_stream(seller, title="In GraphiQL")
            context = await browser.new_context(base_url=base)
            blocked: list[str] = []

            async def only_here(route) -> None:
                if route.request.url.startswith(base):
                    await route.continue_()
                else:
                    blocked.append(route.request.url)
                    await route.abort()

            await context.route("**/*", only_here)
            page = await context.new_page()
            problems: list[str] = []
            page.on("console", lambda message: problems.append(message.text) if message.type == "error" else None)
            page.on("pageerror", lambda error: problems.append(str(error)))
            await page.goto("/graphql", wait_until="networkidle")
            await page.wait_for_selector(".graphiql-query-editor .CodeMirror")

            await set_query(page, "{ liveStreams { title } }")
            await page.click(".graphiql-execute-button")
            answer = await shows(page, "(r) => r.data && r.data.liveStreams")
            assert answer == {"data": {"liveStreams": [{"title": "In GraphiQL"}]}}

            await set_query(page, f'subscription {{ viewerCount(streamId: "{stream.id}") {{ count }} }}')
            await page.click(".graphiql-execute-button")
            await shows(page, "(r) => r.data && r.data.viewerCount && r.data.viewerCount.count === 0")
            await api.data("mutation($s: ID!) { joinStream(streamId: $s) { id } }", {"s": str(stream.id)})
            await shows(page, "(r) => r.data && r.data.viewerCount && r.data.viewerCount.count === 1")

            assert blocked == [], blocked  # nothing was even asked of another origin
            assert not [p for p in problems if "Content Security Policy" in p or "Refused" in p], problems
            await context.close()


async def test_the_pages_work_in_trusted_documents_mode_with_the_commands_manifest(browser, settings, tmp_path):  # noqa: F811
    """`livecart trusted-documents` writes the pages' documents; served with only those allowed,
    a seller goes live through the dashboard and a viewer logs in, likes and comments, and the
    server refused nothing the pages sent."""
    from livecart.server.cli import main as livecart
    from tests.test_browser import (
        Dialogs, new_page, post_comment, seller_goes_live, unique, viewer_logs_in_from_the_stream,
    )

    manifest = tmp_path / "trusted.json"
    livecart(["trusted-documents", str(manifest)])
    async with serve(settings.replace(trusted_documents=str(manifest), ingest_url="rtmp://ingest.test:1935/live")) as base:
        async with aiohttp.ClientSession(base_url=base) as http:
            from tests.support import GraphQLClient

            api = GraphQLClient(http)
            refused: list[str] = []

            def watch(page):
                async def on_response(response) -> None:
                    if not response.url.endswith("/graphql"):
                        return
                    try:
                        text = await response.text()
                    except Exception:  # noqa: BLE001 - the page navigated on: its body is gone, and was read
                        return
                    if "PERSISTED_QUERY_NOT_ALLOWED" in text:
                        refused.append(response.request.post_data or response.url)

                page.on("response", on_response)
                page.on("websocket", lambda ws: ws.on(
                    "framereceived", lambda frame: refused.append(str(frame)) if "PERSISTED_QUERY_NOT_ALLOWED" in str(frame) else None
                ))
                return page

            dialogs = Dialogs()
            seller_name, viewer_name = unique("seller"), unique("viewer")
            # The seller's account, with the login page's own document (the only one trusted).
            page_register = "mutation($u: String!, $p: String!) { register(username: $u, password: $p) { token user { username } } }"
            await api.data(page_register, {"u": seller_name, "p": "seller password"})
            seller = watch(await new_page(browser, base, dialogs))
            stream_id = await seller_goes_live(seller, seller_name, "seller password")
            viewer = watch(await new_page(browser, base, dialogs))
            await viewer_logs_in_from_the_stream(viewer, stream_id, viewer_name)
            await post_comment(viewer, "trusted")
            from playwright.async_api import expect

            await expect(seller.locator(".comment .text").filter(has_text="trusted")).to_be_visible(timeout=5000)
            # A document of nobody's pages is refused, on this same server.
            body = await (await http.post("/graphql", json={"query": "{ liveStreams { id } }"})).json()
            assert body["errors"][0]["extensions"]["code"] == "PERSISTED_QUERY_NOT_ALLOWED"
            assert refused == []
            for page in (seller, viewer):
                await page.context.close()
