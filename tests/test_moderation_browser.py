"""Moderation in a real browser (issue 17): a moderator's dashboard deletes a comment and pins
another, and they change on a viewer's open page without a reload; slow mode counts down there.
Chromium and the fixtures are test_browser.py's (it skips the same way without them)."""
from __future__ import annotations

from collections.abc import AsyncIterator

import aiohttp
import pytest

from tests.processes import Ports
from tests.support import GraphQLClient, make_vendor, register
from tests.test_browser import Dialogs, browser, expect, new_page, pytestmark, screenshots, serve  # noqa: F401 - fixtures

PORTS = Ports(19600, 19799)  # this module's range; each served app takes the next free one

CREATE = "mutation($p: [ID!]!) { createStream(title: \"Glaze night\", productIds: $p) { id } }"
START = "mutation($id: ID!) { startStream(id: $id) { id } }"
ADD_MOD = "mutation($v: ID!, $u: ID!) { addModerator(vendorId: $v, userId: $u) { id } }"
POST = "mutation($s: ID!, $t: String!) { postComment(streamId: $s, text: $t) { id } }"


@pytest.fixture
async def site(settings) -> AsyncIterator[str]:
    async with serve(settings.replace(rate_limits=False), ports=PORTS) as base:
        yield base


@pytest.fixture
async def api(site: str) -> AsyncIterator[GraphQLClient]:
    async with aiohttp.ClientSession(base_url=site) as session:
        yield GraphQLClient(session)


# `browser` after `site`: it closes first, so no open page holds up the server's shutdown.
async def test_a_moderator_deletes_and_pins_from_the_dashboard_and_slow_mode_counts_down(site, browser, api, screenshots):
    dialogs = Dialogs()
    seller = await make_vendor(api, "kiln")
    stream_id = (await api.data(CREATE, {"p": [str(p) for p in seller.product_ids]}, token=seller.token))["createStream"]["id"]
    await api.data(START, {"id": stream_id}, token=seller.token)
    mod = await register(api, "kiln-mod")
    await api.data(ADD_MOD, {"v": str(seller.vendor_id), "u": str(mod.id)}, token=seller.token)
    ann = await register(api, "ann")

    viewer = await new_page(browser, site, dialogs, ann.token)
    errors: list[str] = []
    viewer.on("pageerror", lambda e: errors.append(str(e)))
    await viewer.goto(f"/live/{stream_id}")
    await expect(viewer.locator("#connection")).to_have_attribute("data-status", "connected")
    await expect(viewer.locator("#moderate-link")).to_be_hidden()
    await viewer.fill("#comment-input", "buy my stuff at spam.example")
    await viewer.click("#comment-send")
    spam = viewer.locator("#comments .comment").filter(has_text="spam.example")
    await expect(spam).to_have_count(1)
    await viewer.fill("#comment-input", "Lovely glaze!")
    await viewer.click("#comment-send")
    await expect(viewer.locator("#comment-count")).to_have_text("2 comments")

    # The moderator's way in: the live page links to the tools, which are the chat's only.
    moderator = await new_page(browser, site, dialogs, mod.token)
    await moderator.goto(f"/live/{stream_id}")
    await expect(moderator.locator("#moderate-link")).to_be_visible()
    await moderator.click("#moderate-link")
    await moderator.wait_for_url(lambda url: url.endswith(f"/seller?stream={stream_id}"))
    await expect(moderator.locator("#moderated-title")).to_contain_text("Glaze night")
    await expect(moderator.locator("#stats-panel")).to_be_hidden()
    await expect(moderator.locator("#stream-key")).to_be_hidden()
    await expect(moderator.locator("#connection")).to_have_attribute("data-status", "connected")

    line = moderator.locator("#moderated-comments .comment").filter(has_text="spam.example")
    await line.locator(".delete-comment").click()
    await expect(line).to_have_count(0)
    # Gone from the viewer's open page, and from its count, without a reload.
    await expect(spam).to_have_count(0, timeout=3000)
    await expect(viewer.locator("#comment-count")).to_have_text("1 comment")

    # Pinned from the dashboard: on top of the viewer's chat.
    await moderator.locator("#moderated-comments .comment").filter(has_text="Lovely glaze!").locator(".pin-comment").click()
    await expect(viewer.locator("#pinned .pinned-comment")).to_contain_text("Lovely glaze!", timeout=3000)

    # A moderator's comment wears the badge on the viewer's page.
    await api.data(POST, {"s": stream_id, "t": "Welcome, everyone"}, token=mod.token)
    welcome = viewer.locator("#comments .comment").filter(has_text="Welcome, everyone")
    await expect(welcome.locator(".role-moderator")).to_have_text("Mod")

    # Slow mode set on the dashboard shows on the viewer's page. Ann commented moments ago, so a
    # comment now is refused and the page counts down to when the next one is taken.
    await moderator.select_option("#slow-mode-select", "30")
    await expect(viewer.locator("#slow-mode")).to_contain_text("one comment every 30 s", timeout=3000)
    await viewer.fill("#comment-input", "One more question")
    await viewer.click("#comment-send")
    await expect(viewer.locator(".toast-error")).to_contain_text("Slow mode")
    countdown = viewer.locator("#slow-mode-countdown")
    await expect(countdown).to_contain_text("next comment in")
    first = int((await countdown.text_content()).split(" in ")[1].split(" ")[0])
    assert 1 <= first <= 30
    await expect(viewer.locator("#comment-send")).to_be_disabled()
    await expect(countdown).not_to_contain_text(f"in {first} s", timeout=3000)  # it counts down
    await viewer.screenshot(path=str(screenshots / "moderation-live-page.png"))
    await moderator.screenshot(path=str(screenshots / "moderation-moderator-dashboard.png"), full_page=True)
    await expect(viewer.locator("#comments .comment").filter(has_text="One more question")).to_have_count(0)

    # A viewer whose comment is taken in slow mode gets the countdown too.
    bob = await register(api, "bob")
    other = await new_page(browser, site, dialogs, bob.token)
    await other.goto(f"/live/{stream_id}")
    await expect(other.locator("#slow-mode")).to_contain_text("one comment every 30 s")
    await other.fill("#comment-input", "First from bob")
    await other.click("#comment-send")
    await expect(other.locator("#comments .comment").filter(has_text="First from bob")).to_have_count(1)
    await expect(other.locator("#slow-mode-countdown")).to_contain_text("next comment in")
    await expect(other.locator("#comment-send")).to_be_disabled()

    # The owner's dashboard has the same tools, plus the moderators and the audit trail.
    owner = await new_page(browser, site, dialogs, seller.token)
    await owner.goto(f"/seller?stream={stream_id}")
    await expect(owner.locator("#manage-status")).to_have_text("LIVE")
    panel = owner.locator("#moderation-panel")
    await expect(panel.locator("#slow-mode-select")).to_have_value("30")
    await expect(panel.locator("#tools-pinned")).to_contain_text("Lovely glaze!")
    await expect(panel.locator("#moderator-list")).to_contain_text("kiln-mod")
    log = panel.locator("#moderation-log")
    await expect(log).to_contain_text("kiln-mod delete comment · ann")
    await expect(log).to_contain_text("kiln-mod slow mode · 30 s")
    await owner.screenshot(path=str(screenshots / "moderation-owner-dashboard.png"), full_page=True)
    await panel.locator(".unpin-comment").click()
    await expect(viewer.locator("#pinned")).to_be_hidden(timeout=3000)

    # Slow mode off, links held for review: Bob's link waits, seen by him and the moderators only,
    # until the moderator approves it from the dashboard.
    await panel.locator("#slow-mode-select").select_option("0")
    await expect(other.locator("#slow-mode")).to_be_hidden(timeout=3000)
    await expect(other.locator("#comment-send")).to_be_enabled()
    await panel.locator("#hold-links").check()
    await expect(moderator.locator("#hold-links")).to_be_checked(timeout=3000)
    await other.fill("#comment-input", "my shop: pots.example")
    await other.click("#comment-send")
    await expect(other.locator("#my-held")).to_contain_text("my shop: pots.example")
    await expect(other.locator("#my-held")).to_contain_text("waiting for a moderator's approval")
    waiting = moderator.locator("#held-comments .comment").filter(has_text="pots.example")
    await expect(waiting).to_have_count(1, timeout=3000)
    await expect(viewer.locator("#comments").filter(has_text="pots.example")).to_have_count(0)
    await waiting.locator(".approve-comment").click()
    for page in (viewer, other):
        await expect(page.locator("#comments .comment").filter(has_text="pots.example")).to_have_count(1, timeout=3000)
    await expect(other.locator("#my-held")).to_be_hidden()
    assert dialogs.seen == [] and errors == []
