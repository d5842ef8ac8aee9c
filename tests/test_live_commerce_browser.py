"""Issue 18 in a real browser (Debian's Chromium through Playwright, as tests/test_browser.py): a
deal's countdown, "X left" falling as another buyer buys, Buy Now asking how many, an auction's
clock set back by a late bid, a guest's Buy Now offered again after logging in, and the replay
page showing the comment posted at the offset it is sought to."""
from __future__ import annotations

import datetime as dt
import re
from collections.abc import AsyncIterator

import aiohttp
import pytest

from livecart.models.engagement import StreamInteraction
from livecart.models.stream import LiveStream
from livecart.models.clock import utcnow
from livecart.models.user import User, issue_token
from livecart.server.app import create_app
from tests.processes import Ports
from tests.realtime_support import live_stream
from tests.support import GraphQLClient, make_vendor
from tests.test_browser import CHROMIUM, CHROMIUM_ARGS, Dialogs, ends_with, log_in_through_the_page, new_page
from tests.test_browser import pytestmark  # noqa: F401 - the same reasons to skip (no Chromium, no Playwright)

try:
    from playwright.async_api import async_playwright, expect
except ImportError:
    async_playwright = None

PORTS = Ports(19900, 19999)  # each served app takes the next free one

DEAL = """mutation($s: ID!, $p: ID!) { startFlashDeal(streamId: $s, productId: $p, price: "4.00", quantity: 5,
  perBuyerLimit: 2, countdownSeconds: 10, durationSeconds: 120) { id } }"""
AUCTION = """mutation($s: ID!, $p: ID!) { startAuction(streamId: $s, productId: $p, startingPrice: "5.00",
  durationSeconds: 10, mode: COUNTER_BID, windowSeconds: 8) { id endsAt } }"""
BUY = "mutation($p: ID!, $s: ID, $q: Int!) { buyNow(productId: $p, streamId: $s, quantity: $q) { id } }"
BID = "mutation($a: ID!, $x: Decimal!) { placeBid(auctionId: $a, amount: $x) { endsAt } }"
PNG = b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00\x00\x01\x00\x00\x00\x01\x08\x06\x00\x00\x00\x1f\x15\xc4\x89\x00\x00\x00\rIDATx\x9cc\xf8\xcf\xc0\xf0\x1f\x00\x05\x00\x01\xff\x89\x99=\x1d\x00\x00\x00\x00IEND\xaeB`\x82"
COMMENT = "mutation($s: ID!, $t: String!) { postComment(streamId: $s, text: $t) { id } }"


@pytest.fixture
def settings(settings, tmp_path):
    return settings.replace(rate_limits=False, image_dir=str(tmp_path / "images"))


@pytest.fixture
async def site(aiohttp_server, settings) -> AsyncIterator[str]:
    port = PORTS.take()
    base = f"http://127.0.0.1:{port}"
    server = await aiohttp_server(create_app(settings.replace(port=port, public_url=base)), port=port)
    yield base
    await server.close()


@pytest.fixture
async def api(site: str) -> AsyncIterator[GraphQLClient]:
    async with aiohttp.ClientSession(base_url=site) as session:
        yield GraphQLClient(session)


@pytest.fixture
async def browser():
    async with async_playwright() as playwright:
        chromium = await playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            yield chromium
        finally:
            await chromium.close()


async def buyer(name: str) -> str:
    return await issue_token(await User.create(username=name, password_hash="-"), 3600)


# `browser` after `site`: it closes first, so no open page holds up the server's shutdown.
async def test_deal_countdown_stock_falling_auction_clock_and_the_shoppable_replay(site, api, browser, tmp_path):
    seller = await make_vendor(api, products=2, price="9.50", stock=10)
    stream = await live_stream(seller)
    s, mug, bowl = str(stream.id), str(seller.product_ids[0]), str(seller.product_ids[1])
    viewer_token, other = await buyer("viewer"), await buyer("other")
    dialogs = Dialogs()
    viewer = await new_page(browser, site, dialogs, viewer_token)
    await viewer.goto(f"/live/{s}")
    await expect(viewer.locator("#connection")).to_have_attribute("data-status", "connected")

    # A deal counting down (10 s), by the server's clock; it opens by itself.
    await api.data(DEAL, {"s": s, "p": mug}, token=seller.token)
    deal = viewer.locator(".deal")
    await expect(deal.locator(".deal-countdown")).to_contain_text("opens in 0:")
    await expect(deal.locator(".deal-left")).to_have_text("5 left")
    await expect(deal.locator(".deal-buy")).to_be_disabled()
    await expect(deal.locator(".deal-countdown")).to_contain_text("ends in", timeout=15000)
    await viewer.screenshot(path=str(tmp_path / "deal.png"))

    # Another buyer takes two: "X left" falls on this page, pushed.
    await api.data(BUY, {"p": mug, "s": s, "q": 2}, token=other)
    await expect(deal.locator(".deal-left")).to_have_text("3 left")
    # This viewer buys two at the deal price: Buy asks how many and confirms first.
    await deal.locator(".deal-buy").click()
    await expect(viewer.locator("#buy-dialog")).to_be_visible()
    await viewer.fill("#buy-quantity", "2")
    await expect(viewer.locator("#buy-total")).to_have_text("$8.00")
    await viewer.click("#buy-confirm")
    await expect(viewer.locator(".toast-success").last).to_contain_text("$8.00")
    await expect(deal.locator(".deal-left")).to_have_text("1 left")
    await expect(viewer.locator(f'.product[data-product-id="{mug}"] .stock')).to_have_text("6 left")
    await expect(viewer.locator("#social-line")).to_contain_text("Someone just bought Product 0")

    # The seller's dashboard: deal revenue apart, and a product image uploaded from it.
    dashboard = await new_page(browser, site, dialogs, seller.token)
    await dashboard.goto(f"/seller?stream={s}")
    await expect(dashboard.locator("#stat-deal-revenue")).to_have_text("$16.00")
    await expect(dashboard.locator("#seller-deals .deal")).to_contain_text("1 of 5 left")
    image = tmp_path / "mug.png"
    image.write_bytes(PNG)
    await dashboard.locator(f'#my-products li[data-product-id="{mug}"] .image-file').set_input_files(str(image))
    await expect(dashboard.locator(f'#my-products li[data-product-id="{mug}"] img.thumb')).to_have_attribute("src", re.compile(r"^/images/.+\.png$"))

    # An auction with a counter-bid window of 8 s on 10 s: a late bid sets the clock back to 0:08.
    auction = (await api.data(AUCTION, {"s": s, "p": bowl}, token=seller.token))["startAuction"]
    clock = viewer.locator(".auction-clock")
    await expect(clock).to_contain_text("⏱ 0:")
    await viewer.fill("#bid-amount", "5.00")
    await viewer.click("#bid-button")
    await expect(viewer.locator(".auction-price")).to_have_text("$5.00")
    await expect(clock).to_have_text("⏱ 0:05", timeout=8000)  # the clock runs down...
    await api.data(BID, {"a": auction["id"], "x": "6.00"}, token=other)
    await expect(clock).to_have_text("⏱ 0:08")  # ...and a late bid sets it back
    await expect(viewer.locator(".auction-leader")).to_have_text("leading: other")
    await expect(viewer.locator(".auction-result")).to_have_text("Sold to other for $6.00", timeout=15000)
    await expect(dashboard.locator("#auction-bidders li").first).to_contain_text("other · $6.00")
    await viewer.screenshot(path=str(tmp_path / "auction.png"))

    # A guest's Buy Now survives logging in: back on the stream, it is offered again.
    guest = await new_page(browser, site, dialogs)
    await guest.goto(f"/live/{s}")
    await guest.locator(f'.product[data-product-id="{mug}"] .buy-now').click()
    await guest.wait_for_url(ends_with(f"/login?return=%2Flive%2F{s}"))
    await log_in_through_the_page(guest, "guest", "guest password", register_new=True)
    await guest.wait_for_url(ends_with(f"/live/{s}"))
    await expect(guest.locator("#buy-dialog")).to_be_visible()
    await guest.click("#buy-cancel")
    await expect(guest.locator("#buy-dialog")).to_have_count(0)

    # The replay: comments at 5 s and 40 s; sought to 20 s it shows the first, to 45 s both.
    for text in ("first look at the mugs", "the bowl is next"):
        await api.data(COMMENT, {"s": s, "t": text}, token=viewer_token)
    start = utcnow() - dt.timedelta(seconds=60)
    await LiveStream.filter(id=stream.id).update(started_at=start)
    await StreamInteraction.filter(comment_text="first look at the mugs").update(created_at=start + dt.timedelta(seconds=5))
    await StreamInteraction.filter(comment_text="the bowl is next").update(created_at=start + dt.timedelta(seconds=40))
    ended = await api.data('mutation($id: ID!) { endStream(id: $id, action: SAVE) { savedStream { id } } }', {"id": s}, token=seller.token)
    saved = ended["endStream"]["savedStream"]["id"]
    await viewer.goto(f"/replays?replay={saved}&t=20")
    comments = viewer.locator("#replay-comments .comment .text")
    await expect(comments).to_have_text(["first look at the mugs"])
    await expect(viewer.locator("#replay-at")).to_have_text("0:20")
    await expect(viewer.locator("#replay-products .product")).to_have_count(1)
    await expect(viewer.locator("#replay-products .product img")).to_have_attribute("src", re.compile(r"^/images/"))
    await viewer.evaluate("window.livecartReplay.seek(45)")
    await expect(comments).to_have_text(["first look at the mugs", "the bowl is next"])
    # And a viewer buys from the replay: an ordinary order at the product's price.
    await viewer.locator("#replay-products .buy-now").first.click()
    await viewer.click("#buy-confirm")
    await expect(viewer.locator(".toast-success").last).to_contain_text("Ordered Product 0: $9.50")
    await viewer.screenshot(path=str(tmp_path / "replay.png"))
    assert dialogs.seen == []
