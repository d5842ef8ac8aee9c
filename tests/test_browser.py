"""The pages in a real browser: Playwright drives Debian's Chromium against the
app served on a real port, on each backend.

Skips (saying why) where /usr/bin/chromium or the playwright package is
missing; .ci/run installs Chromium with apt, so CI runs them. Set
LIVECART_SCREENSHOTS=docs/screenshots to refresh the README's screenshots.
"""
from __future__ import annotations

import contextlib
import io
import os
import pathlib
import uuid
from collections.abc import AsyncIterator

import aiohttp
import pytest
from aiohttp import web

from livecart.server.app import create_app
from livecart.server.settings import Settings
from tests.processes import Ports
from tests.realtime_support import until
from tests.support import GraphQLClient, make_vendor, register

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
    "--disable-component-update", "--no-first-run",
]
PORTS = Ports(18400, 18499)  # each served app takes the next free one
XSS = "<img src=x onerror=alert(1)>"

try:
    from playwright.async_api import Browser, BrowserContext, Page, async_playwright, expect
except ImportError:  # a fresh laptop without the test extras
    async_playwright = None

pytestmark = [
    pytest.mark.skipif(async_playwright is None, reason="browser tests skipped: pip install playwright (the test extras)"),
    pytest.mark.skipif(
        not os.access(CHROMIUM, os.X_OK),
        reason=f"browser tests skipped: no {CHROMIUM} (apt-get install chromium; .ci/run does)",
    ),
]


# ---------------------------------------------------------------- fixtures

@contextlib.asynccontextmanager
async def serve(settings: Settings, ports: Ports = PORTS, **changes) -> AsyncIterator[str]:
    """The app served on a real port (the next free one of `ports`: each module its own range), in
    this test's event loop; yields its base URL."""
    port = ports.take()
    base = f"http://127.0.0.1:{port}"
    app = create_app(settings.replace(port=port, public_url=base, ingest_url="rtmp://ingest.test:1935/live", **changes))
    runner = web.AppRunner(app)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    try:
        yield base
    finally:
        await runner.cleanup()


@pytest.fixture
async def site(settings: Settings) -> AsyncIterator[str]:
    async with serve(settings) as base:
        yield base


@pytest.fixture
async def api(site: str) -> AsyncIterator[GraphQLClient]:
    """GraphQL over real HTTP to the served app, for set-up and checks."""
    async with aiohttp.ClientSession(base_url=site) as session:
        yield GraphQLClient(session)


@pytest.fixture
async def browser() -> AsyncIterator["Browser"]:
    async with async_playwright() as playwright:
        chromium = await playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            yield chromium
        finally:
            await chromium.close()


@pytest.fixture
def screenshots(tmp_path, backend: str) -> pathlib.Path:
    """Where screenshots go: the README's folder when asked for (once, from SQLite), else the test's tmp."""
    wanted = os.environ.get("LIVECART_SCREENSHOTS")
    if wanted and backend == "embedded":
        path = pathlib.Path(wanted)
        path.mkdir(parents=True, exist_ok=True)
        return path
    return tmp_path


class Dialogs:
    """Every JavaScript dialog a page opens (alert, confirm...): an injected script would open one."""

    def __init__(self) -> None:
        self.seen: list[str] = []

    def watch(self, page: "Page") -> "Page":
        async def record(dialog) -> None:
            self.seen.append(dialog.message)
            await dialog.dismiss()

        page.on("dialog", record)
        return page


async def page_until(page, expression: str, arg=None, timeout: float = 30.0):
    """page.wait_for_function without eval: Playwright builds wait_for_function's predicate inside
    the page with `new Function`, which the pages' own CSP (script-src 'self', no 'unsafe-eval')
    refuses under Debian's Chromium; page.evaluate goes through the DevTools protocol, which the
    CSP does not govern. Polls the expression (a JavaScript expression or function, as
    page.evaluate takes; `page` may be a Page or a Frame) until it is truthy; `timeout` in seconds."""
    return await until(lambda: page.evaluate(expression, arg), timeout=timeout, interval=0.05)


async def new_page(browser: "Browser", base: str, dialogs: Dialogs, token: str | None = None) -> "Page":
    context: BrowserContext = await browser.new_context(base_url=base, viewport={"width": 1280, "height": 860})
    if token:
        await context.add_init_script(f"localStorage.setItem('livecart.token', {token!r})")
    return dialogs.watch(await context.new_page())


def ends_with(path: str):
    """A URL matcher by suffix (Playwright's globs treat ? and { specially)."""
    return lambda url: url.endswith(path)


def unique(name: str) -> str:
    return f"{name}-{uuid.uuid4().hex[:6]}"


async def log_in_through_the_page(page: "Page", username: str, password: str, *, register_new: bool) -> None:
    await page.fill("#username-input", username)
    await page.fill("#password-input", password)
    await page.click("#register-button" if register_new else "#login-button")


# ---------------------------------------------------------------- the seller and the viewer

async def seller_goes_live(page: "Page", seller: str, password: str) -> str:
    """Through the dashboard: log in, become a vendor, add a product, create a stream, Go Live."""
    await page.goto("/seller")
    await page.wait_for_url(ends_with("/login?return=%2Fseller"))
    await log_in_through_the_page(page, seller, password, register_new=False)
    await page.wait_for_url(ends_with("/seller"))

    await page.fill("#vendor-name", "Kiln & Co")
    await page.click("#vendor-submit")
    await expect(page.locator("#seller-status")).to_have_text("Selling as Kiln & Co.")

    await page.fill("#product-name", "Stoneware mug")
    await page.fill("#product-price", "12.50")
    await page.fill("#product-stock", "5")
    await page.click("#product-submit")
    await expect(page.locator("#my-products")).to_contain_text("Stoneware mug · $12.50 · 5 in stock")

    await page.fill("#stream-title-input", "Mugs, fresh from the kiln")
    # Nothing is offered until the seller ticks it.
    await expect(page.locator("#stream-products input[type=checkbox]")).not_to_be_checked()
    await page.check("#stream-products input[type=checkbox]")
    await page.click("#create-stream")
    await expect(page.locator("#manage-status")).to_have_text("SCHEDULED")
    stream_id = page.url.rsplit("=", 1)[1]

    await expect(page.locator("#ingest-url")).to_have_text("rtmp://ingest.test:1935/live")
    await page.click("#show-key")
    assert len((await page.text_content("#stream-key")).strip()) >= 20
    await page.click("#show-key")  # hidden again: screenshots must not show it
    await expect(page.locator("#stream-key")).to_have_text("••••••••")
    await page.click("#go-live")
    await expect(page.locator("#manage-status")).to_have_text("LIVE")
    await expect(page.locator("#connection")).to_have_attribute("data-status", "connected")
    return stream_id


async def viewer_logs_in_from_the_stream(page: "Page", stream_id: str, username: str) -> None:
    """A logged-out viewer finds the stream on /, clicks Like, is sent to log in and comes back."""
    await page.goto("/")
    card = page.locator(f'.stream-card[data-stream-id="{stream_id}"]')
    await expect(card).to_contain_text("Mugs, fresh from the kiln")
    await expect(card).to_contain_text("Kiln & Co")
    await card.locator("a").click()
    await page.wait_for_url(ends_with(f"/live/{stream_id}"))
    await expect(page.locator("#stream-title")).to_have_text("Mugs, fresh from the kiln")
    await expect(page.locator("#chat-login")).to_be_visible()
    # Counted as a guest first (a Like before that join is answered would leave its goodbye
    # without a session to end, and the guest counted until the session lapses: see the note).
    await page_until(page, "() => Boolean(window.livecart && window.livecart.state.session)")

    await page.click("#like-button")
    await page.wait_for_url(ends_with(f"/login?return=%2Flive%2F{stream_id}"))
    await log_in_through_the_page(page, username, "viewer password", register_new=True)
    await page.wait_for_url(ends_with(f"/live/{stream_id}"))
    await expect(page.locator("#username")).to_have_text(username)
    await expect(page.locator("#comment-form")).to_be_visible()

    # The Like clicked as a guest was kept across the login and done on return (issue 18).
    await expect(page.locator("#like-button")).to_have_attribute("aria-pressed", "true")
    await expect(page.locator("#like-count")).to_have_text("1")


async def post_comment(page: "Page", text: str) -> None:
    await page.fill("#comment-input", text)
    await page.click("#comment-send")


# `browser` after `site` in each signature: it closes first, so no open page holds up the server's shutdown.
async def test_seller_goes_live_and_a_viewer_logs_in_chats_and_buys(site, browser, api, screenshots):
    dialogs = Dialogs()
    seller_name, viewer_name = unique("seller"), unique("viewer")
    await register(api, seller_name, "seller password")
    seller = await new_page(browser, site, dialogs)
    stream_id = await seller_goes_live(seller, seller_name, "seller password")

    viewer = await new_page(browser, site, dialogs)
    await viewer_logs_in_from_the_stream(viewer, stream_id, viewer_name)
    await expect(seller.locator("#stat-likes")).to_have_text("1")
    await expect(seller.locator("#active-viewers")).to_contain_text(viewer_name)

    # A second, anonymous viewer watches the chat.
    watcher = await new_page(browser, site, dialogs)
    await watcher.goto(f"/live/{stream_id}")
    await expect(watcher.locator("#connection")).to_have_attribute("data-status", "connected")
    await expect(seller.locator("#stat-viewers")).to_have_text("2")

    # Typed by one, on the others' pages within two seconds, without a reload.
    await post_comment(viewer, "Is the glaze food safe?")
    for page in (seller, watcher):
        await expect(page.locator(".comment .text").filter(has_text="Is the glaze food safe?")).to_be_visible(timeout=2000)
    await expect(seller.locator("#stat-comments")).to_have_text("1")

    # Markup in a comment is text everywhere: no element is made of it and no script runs.
    await post_comment(viewer, XSS)
    for page in (viewer, seller, watcher):
        comment = page.locator(".comment .text").filter(has_text=XSS)
        await expect(comment).to_have_count(1, timeout=2000)
        assert await comment.text_content() == XSS
        assert await page.locator(".comments img").count() == 0
    await watcher.wait_for_timeout(300)  # time for a broken page's onerror to fire
    assert dialogs.seen == []

    # Buy Now shows up in the seller's order feed and revenue; stock left drops for the viewer.
    product = viewer.locator(".product").filter(has_text="Stoneware mug")
    await expect(product.locator(".stock")).to_have_text("5 left")
    await product.locator(".buy-now").click()
    await viewer.click("#buy-confirm")  # Buy Now asks how many (1) and confirms (issue 18)
    await expect(viewer.locator(".toast-success")).to_contain_text("Ordered Stoneware mug: $12.50")
    await expect(product.locator(".stock")).to_have_text("4 left")
    order = seller.locator("#order-feed .order").first
    await expect(order).to_contain_text(viewer_name)
    await expect(order).to_contain_text("Stoneware mug")
    await expect(order.locator(".amount")).to_have_text("$12.50")
    await expect(seller.locator("#stat-revenue")).to_have_text("$12.50")
    await expect(seller.locator("#stat-orders")).to_have_text("1")
    await expect(seller.locator("#stat-items")).to_have_text("1")

    # Add to Cart, then Check out: the order counts for the stream it was added from.
    await product.locator(".add-to-cart").click()
    await expect(viewer.locator("#cart-summary")).to_have_text("Cart: 1 item · $12.50")
    await viewer.click("#checkout-button")
    await expect(viewer.locator(".toast-success").last).to_contain_text("Order placed: $12.50")
    await expect(viewer.locator("#cart")).to_be_hidden()
    await expect(seller.locator("#order-feed .order")).to_have_count(2)
    await expect(seller.locator("#stat-revenue")).to_have_text("$25.00")
    await expect(seller.locator("#stat-orders")).to_have_text("2")
    await expect(product.locator(".stock")).to_have_text("3 left")

    # The page as one arrives on it: at the top, without the purchases' passing messages.
    await viewer.evaluate("window.scrollTo(0, 0); document.getElementById('toasts')?.remove()")
    await viewer.screenshot(path=str(screenshots / "live-page.png"))
    await seller.screenshot(path=str(screenshots / "seller-dashboard.png"), full_page=True)

    # The seller deletes a comment; it leaves the dashboard and, after a reload, the viewer's page.
    doomed = seller.locator(".comment").filter(has_text="Is the glaze food safe?")
    await doomed.locator(".delete-comment").click()
    await expect(doomed).to_have_count(0)

    # End Stream shows the final figures; Save keeps the replay, and the viewer's page says it ended.
    await seller.click("#end-stream")
    await expect(seller.locator("#end-dialog")).to_be_visible()
    await expect(seller.locator("#end-stats")).to_contain_text("$25.00")
    await seller.screenshot(path=str(screenshots / "end-stream.png"))
    await seller.click("#end-save")
    await expect(seller.locator("#end-result-title")).to_have_text("Stream saved for on-demand viewing")
    await expect(seller.locator("#end-result-stats")).to_contain_text("$25.00")
    await expect(viewer.locator("#ended-banner")).to_be_visible()
    await expect(viewer.locator("#stream-status")).to_have_text("ENDED")

    await viewer.goto("/replays")
    replay = viewer.locator(f'.replay[data-stream-id="{stream_id}"]')
    await expect(replay.locator(".title")).to_have_text("Mugs, fresh from the kiln")
    await expect(replay.locator(".vendor")).to_have_text("Kiln & Co")
    assert (await replay.locator("video").get_attribute("src")).endswith(".mp4")
    await viewer.screenshot(path=str(screenshots / "replays.png"))
    assert dialogs.seen == []


async def live_stream_from_models(api: GraphQLClient, seller_token: str, title: str = "Catch-up test") -> str:
    """A LIVE stream made with the model functions (the served app has Tortoise open in this loop)."""
    from livecart.models import stream as streams

    data = await api.data('mutation { becomeVendor(name: "Shop") { id } }', token=seller_token)
    stream = await streams.create_stream(int(data["becomeVendor"]["id"]), title=title)
    await streams.start_stream(stream)
    return str(stream.id)


async def start_stream_through_api(
    api: GraphQLClient, seller_token: str, title: str = "Catch-up test", products: list[int] | None = None
) -> str:
    if products is None:
        await api.data('mutation { becomeVendor(name: "Shop") { id } }', token=seller_token)
    data = await api.data(
        "mutation($t: String!, $p: [ID!]!) { createStream(title: $t, productIds: $p) { id } }",
        {"t": title, "p": [str(p) for p in products or []]},
        token=seller_token,
    )
    stream_id = data["createStream"]["id"]
    await api.data("mutation($id: ID!) { startStream(id: $id) { id } }", {"id": stream_id}, token=seller_token)
    return stream_id


async def test_the_page_catches_up_on_what_it_missed_while_disconnected(site, browser, api):
    seller = await register(api, unique("seller"))
    talker = await register(api, unique("talker"))
    stream_id = await live_stream_from_models(api, seller.token)
    dialogs = Dialogs()
    comment = "mutation($s: ID!, $t: String!) { postComment(streamId: $s, text: $t) { id } }"
    for text in ("first", "taken back"):
        taken_back = (await api.data(comment, {"s": stream_id, "t": text}, token=talker.token))["postComment"]["id"]
    page = await new_page(browser, site, dialogs)
    await page.goto(f"/live/{stream_id}")
    connection = page.locator("#connection")
    await expect(connection).to_have_attribute("data-status", "connected")
    await expect(page.locator(".comment .text")).to_have_text(["first", "taken back"])
    await expect(page.locator("#comment-count")).to_have_text("2 comments")

    # The socket drops and stays down (its retries held) until all of this has happened, so what
    # happens meanwhile arrives by no subscription (on a loaded machine a retry 0.5 s later could
    # otherwise land between these mutations and hear some of them live).
    await page.evaluate("""() => {
        const socket = window.livecart.socket;
        socket.heldConnect = socket.connect;
        socket.connect = () => {};
        socket.drop();
    }""")
    await expect(connection).to_have_attribute("data-status", "reconnecting")
    await api.data(comment, {"s": stream_id, "t": "said while you were away"}, token=talker.token)
    await api.data("mutation($id: ID!) { deleteComment(id: $id) }", {"id": taken_back}, token=talker.token)
    await api.data('mutation($s: ID!) { react(streamId: $s, kind: LIKE) { likes } }', {"s": stream_id}, token=talker.token)
    await page.evaluate("() => { const s = window.livecart.socket; s.connect = s.heldConnect; s.connect(); }")

    # Back: the new comment is there, the deleted one gone, the older one kept, and every figure right.
    await expect(connection).to_have_attribute("data-status", "connected", timeout=10000)
    await expect(page.locator(".comment .text")).to_have_text(["first", "said while you were away"])
    await expect(page.locator("#like-count")).to_have_text("1")
    await expect(page.locator("#comment-count")).to_have_text("2 comments")

    # And the new subscriptions carry what follows, counted once.
    await api.data(comment, {"s": stream_id, "t": "and after"}, token=talker.token)
    await expect(page.locator(".comment .text")).to_have_text(["first", "said while you were away", "and after"])
    await expect(page.locator("#comment-count")).to_have_text("3 comments")


async def a_logged_in_viewer_watching(site: str, browser: "Browser", api: GraphQLClient):
    """A live stream and a logged-in viewer's page on it, wired and connected: (seller, viewer, stream id, page)."""
    seller = await register(api, unique("seller"))
    viewer = await register(api, unique("viewer"))
    stream_id = await live_stream_from_models(api, seller.token)
    page = await new_page(browser, site, Dialogs(), token=viewer.token)
    await page.goto(f"/live/{stream_id}")
    await expect(page.locator("#username")).to_have_text(viewer.username)
    await expect(page.locator("#stream-title")).to_have_text("Catch-up test")  # and its buttons wired
    await expect(page.locator("#connection")).to_have_attribute("data-status", "connected")
    return seller, viewer, stream_id, page


async def test_a_token_that_expires_while_watching_sends_the_viewer_to_the_servers_login_url(site, browser, api):
    from livecart.models.clock import utcnow
    from livecart.models.user import AuthToken, hash_token

    _, viewer, stream_id, page = await a_logged_in_viewer_watching(site, browser, api)
    await AuthToken.filter(token_hash=hash_token(viewer.token)).update(expires_at=utcnow())  # its time is up
    await page.locator(".reaction").first.click()
    # The API's UNAUTHENTICATED error carries loginUrl, which returns to this stream.
    await page.wait_for_url(ends_with(f"/login?return=/live/{stream_id}"))
    await expect(page.locator("#login-reason")).to_contain_text("taken straight back")


async def test_logging_out_elsewhere_ends_the_pages_login_and_it_stays_live(site, browser, api):
    seller, viewer, stream_id, page = await a_logged_in_viewer_watching(site, browser, api)
    connection = page.locator("#connection")
    await api.data("mutation { logout }", token=viewer.token)
    # The server closes the socket that token opened (4403); the page forgets it, shows a guest's
    # header and chat box, and goes on live.
    await page_until(page, "localStorage.getItem('livecart.token') === null")
    await expect(page.locator("#login-link")).to_be_visible()
    await expect(page.locator("#comment-form")).to_be_hidden()
    await expect(connection).to_have_attribute("data-status", "connected")
    await page.locator(".reaction").first.click()
    await page.wait_for_url(ends_with(f"/login?return=%2Flive%2F{stream_id}"))

    # A seller's dashboard, whose figures are the seller's only, goes to log in and back to it.
    dashboard = await new_page(browser, site, Dialogs(), token=seller.token)
    await dashboard.goto(f"/seller?stream={stream_id}")
    await expect(dashboard.locator("#connection")).to_have_attribute("data-status", "connected")
    await api.data("mutation { logout }", token=seller.token)
    await dashboard.wait_for_url(ends_with(f"/login?return=%2Fseller%3Fstream%3D{stream_id}"))


async def test_a_page_opened_with_an_unknown_token_goes_on_logged_out_and_live(site, browser, api):
    seller = await register(api, unique("seller"))
    stream_id = await live_stream_from_models(api, seller.token)
    page = await new_page(browser, site, Dialogs(), token="a-token-the-server-does-not-know")
    await page.goto(f"/live/{stream_id}")
    await expect(page.locator("#stream-title")).to_have_text("Catch-up test")
    # Not stuck offering the token to the socket (refused with 4403) for ever.
    await expect(page.locator("#connection")).to_have_attribute("data-status", "connected")
    await expect(page.locator("#login-link")).to_be_visible()
    assert await page.evaluate("localStorage.getItem('livecart.token')") is None
    await page.locator(".reaction").first.click()
    await page.wait_for_url(ends_with(f"/login?return=%2Flive%2F{stream_id}"))


async def test_a_viewer_who_came_before_go_live_is_counted_once_it_starts(site, browser, api):
    seller = await make_vendor(api, unique("seller"), products=1)
    created = await api.data(
        "mutation($p: [ID!]!) { createStream(title: \"Soon\", productIds: $p) { id } }",
        {"p": [str(seller.product_ids[0])]},
        token=seller.token,
    )
    stream_id = created["createStream"]["id"]
    page = await new_page(browser, site, Dialogs())
    await page.goto(f"/live/{stream_id}")
    await expect(page.locator("#stream-status")).to_have_text("SCHEDULED")
    await expect(page.locator("#connection")).to_have_attribute("data-status", "connected")

    await api.data("mutation($id: ID!) { startStream(id: $id) { id } }", {"id": stream_id}, token=seller.token)
    await expect(page.locator("#stream-status")).to_have_text("LIVE")
    await expect(page.locator("#viewer-count")).to_have_text("1")
    figures = await api.data("query($id: ID!) { stream(id: $id) { viewerCount } }", {"id": stream_id})
    assert figures["stream"]["viewerCount"] == 1


@pytest.mark.parametrize("sneaky", [
    "%2F%09%2Fevil.example", "%2F%5Cevil.example", "https%3A%2F%2Fevil.example",
    # issue 13: dot segments resolve to "//evil.example", a scheme-relative URL to another site
    "%2F.%2F%2Fevil.example", "%2F%2Fx", "%2F%252e%2F%2Fevil.example", "%2F%0A%2Fevil.example",
])
async def test_login_goes_back_only_to_a_page_of_this_site(site, browser, sneaky):
    page = await new_page(browser, site, Dialogs())
    await page.goto(f"/login?return={sneaky}")
    await log_in_through_the_page(page, unique("viewer"), "viewer password", register_new=True)
    await page.wait_for_url(f"{site}/")


async def test_login_goes_back_to_the_page_the_server_allowed(site, browser):
    page = await new_page(browser, site, Dialogs())
    await page.goto("/login?return=%2Freplays%3Fx%3D1")
    await log_in_through_the_page(page, unique("viewer"), "viewer password", register_new=True)
    await page.wait_for_url(f"{site}/replays?x=1")
    # A path whose dot segments stay on this site is resolved, not refused.
    page = await new_page(browser, site, Dialogs())
    await page.goto("/login?return=%2Fx%2F..%2Freplays")
    await log_in_through_the_page(page, unique("viewer"), "viewer password", register_new=True)
    await page.wait_for_url(f"{site}/replays")


async def test_the_dashboard_shows_the_figures_the_simulator_counted(browser, settings):
    """`livecart simulate` (small) against a served app, with the seller's dashboard open."""
    from livecart.server.simulate import Plan, simulate

    # Every simulated viewer comes from 127.0.0.1: per-address limits are for real audiences.
    async with serve(settings, rate_limits=False) as base, aiohttp.ClientSession(base_url=base) as session:
        api = GraphQLClient(session)
        seller = await make_vendor(api, unique("seller"), products=2, price="3.10", stock=500)
        stream_id = await start_stream_through_api(api, seller.token, products=seller.product_ids)
        context = await browser.new_context(base_url=base, viewport={"width": 1280, "height": 860})
        await context.add_init_script(f"localStorage.setItem('livecart.token', {seller.token!r})")
        dashboard = await context.new_page()
        await dashboard.goto(f"/seller?stream={stream_id}")
        await expect(dashboard.locator("#connection")).to_have_attribute("data-status", "connected")

        plan = Plan(url=base, stream_id=stream_id, viewers=12, duration=3, comment_rate=0.4, react_rate=0.4,
                    buy_rate=0.2, watchers=2, seller=(seller.username, "correct horse"), seed=3)
        result = await simulate(plan, io.StringIO())
        tally = result.tally
        assert result.matches, result.rows()
        assert tally.comments and tally.orders

        for cell, value in (
            ("#stat-comments", tally.comments), ("#stat-likes", tally.likes), ("#stat-dislikes", tally.dislikes),
            ("#stat-orders", tally.orders), ("#stat-items", tally.items), ("#stat-unique", 12), ("#stat-viewers", 0),
        ):
            await expect(dashboard.locator(cell)).to_have_text(str(value))
        await expect(dashboard.locator("#stat-revenue")).to_have_text(f"${tally.revenue}")
        await expect(dashboard.locator("#order-feed .order")).to_have_count(tally.orders)
        await context.close()


async def test_presence_featuring_and_ending_without_a_replay(browser, settings):
    """Heartbeats keep a viewer counted past the session's life, closing the page leaves, the
    seller's Feature moves the viewer's highlight, and End with Delete keeps no replay."""
    async with serve(settings, viewer_session_ttl_seconds=6) as base, aiohttp.ClientSession(base_url=base) as session:
        api = GraphQLClient(session)
        seller = await make_vendor(api, unique("seller"), products=2, price="4.00", stock=9)
        stream_id = await start_stream_through_api(api, seller.token, title="Short lives", products=seller.product_ids)
        counted = "query($id: ID!) { stream(id: $id) { viewerCount playbackUrl } }"
        dialogs = Dialogs()
        dashboard = await new_page(browser, base, dialogs, token=seller.token)
        await dashboard.goto(f"/seller?stream={stream_id}")
        await expect(dashboard.locator("#connection")).to_have_attribute("data-status", "connected")

        viewer = await new_page(browser, base, dialogs)
        await viewer.goto(f"/live/{stream_id}")
        await expect(viewer.locator("#viewer-count")).to_have_text("1")
        await expect(dashboard.locator("#stat-viewers")).to_have_text("1")
        # LIVE with no media arriving (broadcasting false): the video area says the seller will be
        # right back and loads nothing (tests/test_browser_media.py plays real video).
        assert await viewer.locator("#video").get_attribute("src") is None
        await expect(viewer.locator("#video-placeholder")).to_contain_text("The seller will be right back")

        await viewer.wait_for_timeout(8000)  # longer than a session lives without a heartbeat
        assert (await api.data(counted, {"id": stream_id}))["stream"]["viewerCount"] == 1

        first = viewer.locator(".product").first
        await expect(first.locator(".name")).to_have_text("Product 0")
        await dashboard.locator(f'#feature-list li[data-product-id="{seller.product_ids[1]}"] .feature').click()
        await expect(first.locator(".name")).to_have_text("Product 1")
        await expect(first.locator(".badge")).to_have_text("Featured now")

        await viewer.close()  # leaving on page close
        await expect(dashboard.locator("#stat-viewers")).to_have_text("0")
        assert (await api.data(counted, {"id": stream_id}))["stream"]["viewerCount"] == 0

        await dashboard.click("#end-stream")
        await dashboard.click("#end-delete")
        await expect(dashboard.locator("#end-result-title")).to_have_text("Stream ended (not saved)")
        await dashboard.goto("/replays")
        await expect(dashboard.locator("#replays-status")).to_have_text(
            "No replays yet: sellers keep a stream by ending it with Save."
        )
        assert await dashboard.locator(f'.replay[data-stream-id="{stream_id}"]').count() == 0
        assert dialogs.seen == []
