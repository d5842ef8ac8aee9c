"""The pages as a viewer and a seller meet them (issue 19), in Chromium at a phone's size
(390x844, and 320 px wide for overflow) and a desktop's (1280x800), on each backend: nothing
wider than the screen, the live page's layout, touch targets, the honest states (before Go Live,
ended, missing), the home page following streams live, viewers counted by person, and axe-core
(fetched by `make install` from the npm registry, client/vendor.json) finding nothing serious.

Set LIVECART_SCREENSHOTS=docs/screenshots to refresh the README tour's phone screenshot.
"""
from __future__ import annotations

import pathlib
from collections.abc import AsyncIterator

import pytest

from livecart.server.settings import Settings
from tests.processes import Ports
from tests.support import GraphQLClient, make_vendor, register
from tests.test_browser import (  # noqa: F401 (fixtures)
    Dialogs, api, browser, ends_with, expect, screenshots, serve, start_stream_through_api, unique,
)
from tests.test_browser import pytestmark  # noqa: F401 (the same skips: no Chromium, no playwright)

PORTS = Ports(20000, 20099)  # each served app takes the next free one
PHONE = {"width": 390, "height": 844}
NARROW = {"width": 320, "height": 640}
DESKTOP = {"width": 1280, "height": 800}
AXE = pathlib.Path(__file__).resolve().parent.parent / "client" / "static" / "vendor" / "axe-core" / "axe.min.js"

START = "mutation($id: ID!) { startStream(id: $id) { id } }"
END = "mutation($id: ID!, $a: EndStreamAction!) { endStream(id: $id, action: $a) { stream { status } } }"
CREATE = "mutation($t: String!, $p: [ID!]!) { createStream(title: $t, productIds: $p) { id } }"
COMMENT = "mutation($s: ID!, $t: String!) { postComment(streamId: $s, text: $t) { id } }"


@pytest.fixture
async def site(settings: Settings) -> AsyncIterator[str]:
    async with serve(settings, ports=PORTS) as base:
        yield base


async def open_page(browser, base: str, viewport: dict, token: str | None = None, context=None):
    """A page in a fresh context (its own storage: another browser) unless `context` is given."""
    if context is None:
        context = await browser.new_context(base_url=base, viewport=viewport)
        if token:
            await context.add_init_script(f"localStorage.setItem('livecart.token', {token!r})")
    page = await context.new_page()
    Dialogs().watch(page)
    return page


async def scheduled_stream(api: GraphQLClient, title: str = "Kiln opening") -> tuple:
    seller = await make_vendor(api, unique("seller"), products=2, price="12.50", stock=5)
    created = await api.data(CREATE, {"t": title, "p": [str(p) for p in seller.product_ids]}, token=seller.token)
    return seller, created["createStream"]["id"]


async def live_stream(api: GraphQLClient, title: str = "Kiln opening") -> tuple:
    seller, stream_id = await scheduled_stream(api, title)
    await api.data(START, {"id": stream_id}, token=seller.token)
    return seller, stream_id


# ---------------------------------------------------------------- checks every page gets


async def horizontal_overflow(page) -> int:
    """How many pixels the page is wider than its viewport (0: no sideways scrolling)."""
    return await page.evaluate("document.documentElement.scrollWidth - window.innerWidth")


async def small_targets(page) -> list[str]:
    """Visible controls smaller than 44 px tall (links inside running text are exempt, as in WCAG 2.5.8)."""
    return await page.evaluate(
        """() => [...document.querySelectorAll(
              'button, a.button, input:not([type=checkbox]):not([type=radio]), header.site a, summary, .manage-link')]
            .filter((el) => el.offsetParent !== null && !el.closest('dialog:not([open])'))
            .map((el) => [el, el.getBoundingClientRect()])
            .filter(([, box]) => box.width > 0 && box.height < 43.5)
            .map(([el, box]) => `${el.outerHTML.slice(0, 80)} (${Math.round(box.height)} px)`)"""
    )


async def serious_accessibility_problems(page) -> list[dict]:
    """axe-core's serious and critical violations on the page as it is now."""
    assert AXE.exists(), f"{AXE} is missing: `make install` fetches it (client/vendor.py)"
    # From our own origin, as the pages' Content-Security-Policy allows (no inline script, no CDN).
    if not await page.evaluate("typeof window.axe === 'object'"):
        await page.add_script_tag(url="/static/vendor/axe-core/axe.min.js")
    return await page.evaluate(
        """async () => {
          const result = await axe.run(document, { resultTypes: ['violations'] });
          return result.violations
            .filter((v) => v.impact === 'serious' || v.impact === 'critical')
            .map((v) => ({ id: v.id, help: v.help, nodes: v.nodes.slice(0, 4).map((n) => n.target.join(' ')) }));
        }"""
    )


async def assert_fits_and_is_accessible(page, what: str) -> None:
    assert await horizontal_overflow(page) <= 0, f"{what}: wider than the screen"
    assert await small_targets(page) == [], what
    assert await serious_accessibility_problems(page) == [], what


# ---------------------------------------------------------------- every page, two sizes


@pytest.mark.parametrize("viewport", [PHONE, DESKTOP], ids=["phone", "desktop"])
async def test_every_page_fits_the_screen_has_big_targets_and_no_serious_accessibility_problem(site, browser, api, viewport):
    seller, live_id = await live_stream(api, "Mugs, fresh from the kiln, with a title long enough to wrap on a phone")
    viewer = await register(api, unique("a-rather-long-username"))
    await api.data(COMMENT, {"s": live_id, "t": "Is the glaze food safe? " * 8}, token=viewer.token)
    _, scheduled_id = await scheduled_stream(api, "Tomorrow")
    ender, ended_id = await live_stream(api, "Yesterday")
    await api.data(END, {"id": ended_id, "a": "SAVE"}, token=ender.token)

    guest = await open_page(browser, site, viewport)
    member = await open_page(browser, site, viewport, token=viewer.token)
    owner = await open_page(browser, site, viewport, token=seller.token)
    pages = [
        (guest, "/", "#streams .stream-card"),
        (guest, f"/live/{live_id}", "#chat-login"),
        (member, f"/live/{live_id}", "#comment-form"),
        (guest, f"/live/{scheduled_id}", "#chat-closed"),
        (member, f"/live/{ended_id}", "#ended-banner"),
        (guest, "/live/999999", "#not-found-title"),
        (guest, "/live/abc", "#not-found-title"),
        (guest, "/replays", "#replays .replay"),
        (guest, "/login", "#login-form"),
        (owner, "/seller", "#my-streams li"),
        (owner, f"/seller?stream={live_id}", "#manage"),
    ]
    for page, path, ready in pages:
        await page.goto(path)
        await expect(page.locator(ready).first).to_be_visible()
        await assert_fits_and_is_accessible(page, f"{path} at {viewport['width']} px")

    # At 320 px too, nothing is wider than the screen.
    await guest.set_viewport_size(NARROW)
    await owner.set_viewport_size(NARROW)
    for page, path, ready in pages:
        await page.goto(path)
        await expect(page.locator(ready).first).to_be_visible()
        assert await horizontal_overflow(page) <= 0, f"{path} at 320 px"


# ---------------------------------------------------------------- the live page's layout


async def box(page, selector: str) -> dict:
    found = await page.locator(selector).first.bounding_box()
    assert found is not None, f"{selector} is not shown"
    return found


async def test_on_a_phone_the_video_fills_the_screen_with_the_chat_and_the_featured_product_over_it(site, browser, api, screenshots):
    seller, stream_id = await live_stream(api)
    viewer = await register(api, unique("viewer"))
    for text in ("Hello from the kiln!", "How big is the mug?", "Does it go in the dishwasher?"):
        await api.data(COMMENT, {"s": stream_id, "t": text}, token=viewer.token)
    page = await open_page(browser, site, PHONE, token=viewer.token)
    await page.goto(f"/live/{stream_id}")
    await expect(page.locator("#connection")).to_have_attribute("data-status", "connected")
    await expect(page.locator("#comments .comment")).to_have_count(3)

    stage, header = await box(page, ".stage"), await box(page, "header.site")
    assert stage["x"] == 0 and stage["width"] == PHONE["width"]  # full width
    assert stage["y"] == pytest.approx(header["height"], abs=1)  # right under the header...
    assert stage["y"] + stage["height"] == pytest.approx(PHONE["height"], abs=1)  # ...to the screen's bottom
    chat, featured, buy = await box(page, "#comments"), await box(page, "#featured"), await box(page, "#featured .buy-now")
    title = await box(page, "#stream-title")
    lower_half = stage["y"] + stage["height"] / 2
    assert stage["y"] <= title["y"] < lower_half  # the title over the video's top
    assert lower_half <= chat["y"] and chat["y"] + chat["height"] <= featured["y"]  # the chat over its lower part
    name = await box(page, "#featured .name")
    assert name["y"] + name["height"] <= buy["y"]  # the featured product pinned above Buy Now
    assert buy["y"] + buy["height"] <= PHONE["height"]  # on screen without scrolling
    await expect(page.locator("#featured .name")).to_have_text("Product 0")
    await page.screenshot(path=str(screenshots / "live-page-phone.png"))

    # Everything on offer follows below the video, as a list to scroll to.
    shop = await box(page, ".products-panel")
    assert shop["y"] >= stage["y"] + stage["height"]
    await expect(page.locator("#products .product")).to_have_count(2)
    # Buy Now from the pinned card buys (and counts for the stream).
    await page.locator("#featured .buy-now").click()
    await page.click("#buy-confirm")  # Buy Now asks how many (1) and confirms (issue 18)
    await expect(page.locator(".toast-success")).to_contain_text("Ordered Product 0: $12.50")
    await expect(page.locator("#featured .stock")).to_have_text("4 left")


async def test_on_a_desktop_the_video_and_the_chat_sit_side_by_side(site, browser, api):
    _, stream_id = await live_stream(api)
    page = await open_page(browser, site, DESKTOP)
    await page.goto(f"/live/{stream_id}")
    await expect(page.locator("#connection")).to_have_attribute("data-status", "connected")
    video, chat = await box(page, ".stage .video-frame"), await box(page, ".chat-panel")
    featured = await box(page, "#featured")
    assert chat["x"] >= video["x"] + video["width"]  # beside it
    assert chat["y"] == pytest.approx(video["y"], abs=1)
    assert video["width"] / video["height"] == pytest.approx(16 / 9, rel=0.02)
    assert featured["y"] >= video["y"] + video["height"]  # the featured product under the video


async def test_the_chat_is_announced_politely_and_every_control_has_a_name(site, browser, api):
    _, stream_id = await live_stream(api)
    viewer = await register(api, unique("viewer"))
    page = await open_page(browser, site, PHONE, token=viewer.token)
    await page.goto(f"/live/{stream_id}")
    await expect(page.locator("#connection")).to_have_attribute("data-status", "connected")
    announcer = page.locator("#chat-announcer")
    await expect(announcer).to_have_attribute("aria-live", "polite")
    await api.data(COMMENT, {"s": stream_id, "t": "first!"}, token=viewer.token)
    await expect(announcer).to_have_text(f"{viewer.username}: first!")
    await expect(page.get_by_label("Your message")).to_be_visible()
    # The reactions are named by what they do and their count, not by their emoji.
    await expect(page.get_by_role("button", name="Like 0", exact=True)).to_be_visible()
    await expect(page.get_by_role("button", name="Dislike 0", exact=True)).to_be_visible()


# ---------------------------------------------------------------- honest states


@pytest.mark.parametrize("viewport", [PHONE, DESKTOP], ids=["phone", "desktop"])
async def test_before_go_live_the_page_and_the_dashboard_say_so_and_offer_only_what_works(site, browser, api, viewport):
    seller, stream_id = await scheduled_stream(api)
    page = await open_page(browser, site, viewport)
    await page.goto(f"/live/{stream_id}")
    await expect(page.locator("#stream-status")).to_have_text("SCHEDULED")
    await expect(page.locator("#chat-closed")).to_have_text("The chat opens when the stream goes live.")
    await expect(page.locator("#chat-login")).to_be_hidden()
    await expect(page.locator("#like-button")).to_be_disabled()
    await expect(page.locator("#video-placeholder")).to_contain_text("has not started yet")
    await expect(page.locator("#ended-banner")).to_be_hidden()

    dashboard = await open_page(browser, site, viewport, token=seller.token)
    await dashboard.goto(f"/seller?stream={stream_id}")
    await expect(dashboard.locator("#manage-status")).to_have_text("SCHEDULED")
    await expect(dashboard.locator("#go-live")).to_be_visible()
    await expect(dashboard.locator("#end-stream")).to_be_hidden()  # nothing to end yet
    await expect(dashboard.locator("#manage-note")).to_contain_text("Not live yet")
    await assert_fits_and_is_accessible(dashboard, "the dashboard before Go Live")

    await dashboard.click("#go-live")
    await expect(dashboard.locator("#go-live")).to_be_hidden()
    await expect(dashboard.locator("#end-stream")).to_be_visible()
    # The open page goes live by itself: the chat invitation, reactions, and a viewer counted.
    await expect(page.locator("#stream-status")).to_have_text("LIVE")
    await expect(page.locator("#chat-login")).to_be_visible()
    await expect(page.locator("#chat-closed")).to_be_hidden()
    await expect(page.locator("#like-button")).to_be_enabled()
    await expect(dashboard.locator("#stat-viewers")).to_have_text("1")


@pytest.mark.parametrize("viewport", [PHONE, DESKTOP], ids=["phone", "desktop"])
async def test_an_ended_stream_closes_its_chat_offers_its_replay_and_its_products_as_a_shop(site, browser, api, viewport):
    seller, stream_id = await live_stream(api)
    viewer = await register(api, unique("viewer"))
    page = await open_page(browser, site, viewport, token=viewer.token)
    await page.goto(f"/live/{stream_id}")
    await expect(page.locator("#comment-form")).to_be_visible()
    await expect(page.locator("#connection")).to_have_attribute("data-status", "connected")

    dashboard = await open_page(browser, site, viewport, token=seller.token)
    await dashboard.goto(f"/seller?stream={stream_id}")
    await dashboard.click("#end-stream")
    await dashboard.click("#end-save")
    await expect(dashboard.locator("#end-result-title")).to_have_text("Stream saved for on-demand viewing")
    await expect(dashboard.locator("#end-result-replays")).to_be_visible()

    # The open page, without a reload: ended, and nothing on it says otherwise.
    for current in (page, None):
        if current is None:  # and the same when opened afresh
            await page.reload()
        await expect(page.locator("#stream-status")).to_have_text("ENDED")
        await expect(page.locator("#ended-banner")).to_be_visible()
        await expect(page.locator("#comment-form")).to_be_hidden()
        await expect(page.locator("#chat-closed")).to_have_text("The chat is closed: this stream has ended.")
        await expect(page.locator("#connection")).to_be_hidden()  # no "connected" beside ENDED
        await expect(page.locator("#featured")).to_be_hidden()
        await expect(page.locator(".badge.featured")).to_have_count(0)
        await expect(page.locator("#like-button")).to_be_disabled()
        await expect(page.locator("#replay-link")).to_be_visible()
        await expect(page.locator("#shop-heading")).to_have_text("Shop Shop")
        await expect(page.locator("#products .buy-now").first).to_have_text("🛒 Buy")
    await page.click("#replay-link")
    await page.wait_for_url(ends_with(f"/replays#stream-{stream_id}"))
    await expect(page.locator(f"#stream-{stream_id}")).to_be_visible()

    # The dashboard reopened on it: final figures, no controls.
    await dashboard.goto(f"/seller?stream={stream_id}")
    await expect(dashboard.locator("#manage-status")).to_have_text("ENDED")
    await expect(dashboard.locator("#go-live")).to_be_hidden()
    await expect(dashboard.locator("#end-stream")).to_be_hidden()
    await expect(dashboard.locator("#manage-note")).to_contain_text("has ended")


async def test_ending_without_a_replay_leaves_no_stray_link(site, browser, api):
    seller, stream_id = await live_stream(api)
    dashboard = await open_page(browser, site, PHONE, token=seller.token)
    await dashboard.goto(f"/seller?stream={stream_id}")
    await dashboard.click("#end-stream")
    await dashboard.click("#end-delete")
    await expect(dashboard.locator("#end-result-title")).to_have_text("Stream ended (not saved)")
    await expect(dashboard.locator("#end-result-replays")).to_be_hidden()
    # The way back is a button of its own, not a "· Back" left over from a hidden neighbour.
    assert (await dashboard.locator("#end-result p").inner_text()).strip() == "Back to the dashboard"
    page = await open_page(browser, site, PHONE)
    await page.goto(f"/live/{stream_id}")
    await expect(page.locator("#ended-detail")).to_have_text("It was not kept as a replay.")
    await expect(page.locator("#replay-link")).to_be_hidden()


@pytest.mark.parametrize("path", ["/live/999999", "/live/abc", "/live/12abc"])
async def test_a_missing_stream_is_a_404_page_with_a_way_back(site, browser, path):
    page = await open_page(browser, site, PHONE)
    response = await page.goto(path)
    assert response.status == 404
    await expect(page.locator("h1")).to_have_text("There is no such stream")
    await expect(page.locator("#connection")).to_have_count(0)  # nothing pretends to connect
    await page.click("#back-home")
    await page.wait_for_url(f"{site}/")


# ---------------------------------------------------------------- the home page follows


async def test_the_home_page_shows_streams_going_live_and_ending_without_a_reload(site, browser, api):
    seller, stream_id = await scheduled_stream(api, "Opening night")
    page = await open_page(browser, site, PHONE)
    await page.goto("/")
    await expect(page.locator("#connection")).to_have_attribute("data-status", "connected")
    await expect(page.locator("#streams-status")).to_contain_text("No one is live right now")
    await page.evaluate("window.sameDocument = true")  # gone if the page reloads

    await api.data(START, {"id": stream_id}, token=seller.token)
    card = page.locator(f'.stream-card[data-stream-id="{stream_id}"]')
    await expect(card).to_contain_text("Opening night")
    await expect(card.locator(".poster")).to_be_visible()
    await expect(card.locator(".viewers")).to_have_text("0 watching")

    watcher = await open_page(browser, site, PHONE)
    await watcher.goto(f"/live/{stream_id}")
    await expect(card.locator(".viewers")).to_have_text("1 watching")  # the card's own count follows

    await api.data(END, {"id": stream_id, "a": "DELETE"}, token=seller.token)
    await expect(card).to_have_count(0)
    await expect(page.locator("#streams-status")).to_contain_text("No one is live right now")
    assert await page.evaluate("window.sameDocument") is True


# ---------------------------------------------------------------- viewers are people


async def test_two_tabs_of_one_user_are_one_viewer_and_closing_them_leaves_within_seconds(site, browser, api):
    seller, stream_id = await live_stream(api)
    viewer = await register(api, unique("viewer"))
    dashboard = await open_page(browser, site, DESKTOP, token=seller.token)
    await dashboard.goto(f"/seller?stream={stream_id}")
    await expect(dashboard.locator("#connection")).to_have_attribute("data-status", "connected")

    first = await open_page(browser, site, DESKTOP, token=viewer.token)
    second = await open_page(browser, site, DESKTOP, context=first.context)  # the same browser
    for tab in (first, second):
        await tab.goto(f"/live/{stream_id}")
        await expect(tab.locator("#viewer-count")).to_have_text("1")
    await expect(dashboard.locator("#stat-viewers")).to_have_text("1")
    await expect(dashboard.locator("#active-viewers li")).to_have_count(1)
    await expect(dashboard.locator("#active-viewers")).to_contain_text(viewer.username)

    # A guest's two tabs share the browser's id: one more viewer, not two.
    guest = await open_page(browser, site, DESKTOP)
    guest_tab = await open_page(browser, site, DESKTOP, context=guest.context)
    for tab in (guest, guest_tab):
        await tab.goto(f"/live/{stream_id}")
    await expect(dashboard.locator("#stat-viewers")).to_have_text("2")

    await first.close()  # one tab of two: still watching
    await dashboard.wait_for_timeout(500)
    await expect(dashboard.locator("#stat-viewers")).to_have_text("2")
    for tab in (second, guest, guest_tab):
        await tab.close()  # the page says goodbye as it goes
    await expect(dashboard.locator("#stat-viewers")).to_have_text("0", timeout=5000)
    await expect(dashboard.locator("#active-viewers li")).to_have_count(0)


async def test_the_dashboard_shows_the_newest_comment_first(site, browser, api):
    seller, stream_id = await live_stream(api)
    viewer = await register(api, unique("viewer"))
    for text in ("one", "two"):
        await api.data(COMMENT, {"s": stream_id, "t": text}, token=viewer.token)
    dashboard = await open_page(browser, site, DESKTOP, token=seller.token)
    await dashboard.goto(f"/seller?stream={stream_id}")
    await expect(dashboard.locator("#connection")).to_have_attribute("data-status", "connected")
    await expect(dashboard.locator("#seller-comments .comment .text")).to_have_text(["two", "one"])
    await api.data(COMMENT, {"s": stream_id, "t": "three"}, token=viewer.token)
    await expect(dashboard.locator("#seller-comments .comment .text")).to_have_text(["three", "two", "one"])
