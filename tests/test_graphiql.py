"""GraphiQL served entirely by livecart (issue 16): in Chromium with every request to another
origin blocked, it loads, runs a query and a subscription and shows their results, with no
Content-Security-Policy violation (the page allows only its own origin)."""
from __future__ import annotations

import contextlib
import json
from collections.abc import AsyncIterator

import aiohttp
import pytest
from aiohttp import web

from server.app import create_app
from server.settings import Settings
from tests.processes import Ports
from tests.realtime_support import live_stream
from tests.support import make_vendor
from tests.test_browser import browser, pytestmark  # noqa: F401 - the fixture and the skip conditions

PORTS = Ports(19450, 19499)


@contextlib.asynccontextmanager
async def serve(settings: Settings) -> AsyncIterator[str]:
    port = PORTS.take()
    base = f"http://127.0.0.1:{port}"
    runner = web.AppRunner(create_app(settings.replace(port=port, public_url=base)))
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    try:
        yield base
    finally:
        await runner.cleanup()


async def set_query(page, text: str) -> None:
    await page.evaluate("(q) => document.querySelector('.graphiql-query-editor .CodeMirror').CodeMirror.setValue(q)", text)


async def response_text(page) -> str:
    return await page.evaluate("() => document.querySelector('.graphiql-response .CodeMirror').CodeMirror.getValue()")


async def shows(page, predicate, timeout: float = 15_000) -> dict:
    """Wait until GraphiQL's result pane holds JSON that `predicate` accepts."""
    await page.wait_for_function(
        f"""() => {{
            const text = document.querySelector('.graphiql-response .CodeMirror')?.CodeMirror.getValue() ?? '';
            try {{ return ({predicate})(JSON.parse(text)); }} catch (e) {{ return false; }}
        }}""",
        timeout=timeout,
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
