"""liveStreamsChanged (issue 19): the home page's list of live streams, at once and then after
each stream that goes live or ends, driven by the API's own mutations, on both brokers."""
from __future__ import annotations

from livecart.client.livecart_client import LivecartClient
from tests.realtime_support import base_url, broker_of, next_of, until
from tests.support import make_vendor

LIVE = "subscription { liveStreamsChanged { id title status vendor { name } viewerCount } }"
CREATE = 'mutation($t: String!) { createStream(title: $t, productIds: []) { id } }'
START = "mutation($id: ID!) { startStream(id: $id) { id } }"
END = "mutation($id: ID!) { endStream(id: $id, action: DELETE) { stream { id } } }"


async def test_streams_going_live_and_ending_reach_the_list_as_it_is_after_each(client):
    seller = await make_vendor(client, products=0)
    first = (await client.data(CREATE, {"t": "First"}, token=seller.token))["createStream"]["id"]
    second = (await client.data(CREATE, {"t": "Second"}, token=seller.token))["createStream"]["id"]
    async with LivecartClient(base_url(client)) as watcher:
        lists = watcher.subscribe(LIVE)
        assert (await next_of(lists))["liveStreamsChanged"] == []  # at once: no one is live
        await until(lambda: broker_of(client).hub.subscriber_count("streams") == 1)

        await client.data(START, {"id": first}, token=seller.token)
        shown = (await next_of(lists))["liveStreamsChanged"]
        assert shown == [{"id": first, "title": "First", "status": "LIVE", "vendor": {"name": "Shop"}, "viewerCount": 0}]

        await client.data(START, {"id": second}, token=seller.token)
        assert [s["id"] for s in (await next_of(lists))["liveStreamsChanged"]] == [second, first]  # newest first

        await client.data(END, {"id": first}, token=seller.token)
        assert [s["id"] for s in (await next_of(lists))["liveStreamsChanged"]] == [second]
        await lists.aclose()
    # The channel is let go with its last subscriber.
    await until(lambda: broker_of(client).hub.subscriber_count("streams") == 0)
