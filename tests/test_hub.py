"""The hub's groups at the seam between a subscriber's own chain and the shared path: an event is
heard by each subscriber once, whether it joins its group before, during or after that event's
shared execution (the cause of a duplicate first comment, seen once in several full runs)."""
from __future__ import annotations

import asyncio
import contextvars

from livecart.subscriptions.hub import Hub

CHANNEL = "stream:1"
KINDS = frozenset({"comment_added"})


class GatedDelivery:
    """A group member whose shared execution waits until the test opens the gate: what a
    database read does to the group's worker in a real run, made deterministic."""

    group_key = "same document, variables and role"

    def __init__(self, gate: asyncio.Event) -> None:
        self.gate = gate
        self.sent: list[bytes] = []
        self.detached = False
        self.task_context = contextvars.copy_context()

    async def payload(self, event) -> bytes:
        await self.gate.wait()
        return event["text"].encode()

    def send(self, payload: bytes) -> None:
        self.sent.append(payload)


def comment(text: str) -> dict:
    return {"type": "comment_added", "stream_id": 1, "text": text}


async def until_sent(delivery: GatedDelivery, count: int) -> None:
    for _ in range(200):
        if len(delivery.sent) >= count:
            return
        await asyncio.sleep(0.005)
    raise AssertionError(f"sent {delivery.sent}, expected {count}")


async def a_group_and_a_latecomer():
    """A hub whose group has one member (`first`), and a subscriber `b` still on its own chain (it
    hears through its inbox) that will join it with `late`; both wait on `gate` to execute."""
    hub = Hub()
    gate = asyncio.Event()
    first, late = GatedDelivery(gate), GatedDelivery(gate)
    a = await hub.add(CHANNEL, wants=KINDS)
    hub.share(a, first, KINDS)
    b = await hub.add(CHANNEL, wants=KINDS)
    return hub, gate, first, late, b


async def test_a_subscriber_joining_its_group_mid_event_hears_that_event_once():
    hub, gate, first, late, b = await a_group_and_a_latecomer()

    hub.deliver(CHANNEL, comment("c0"))  # the group's worker starts on it and waits on the "database"
    await asyncio.sleep(0)
    hub.share(b, late, KINDS)  # b joins while c0's shared execution is in flight
    gate.set()
    await until_sent(first, 1)
    assert [e["text"] for e in b.queue] == ["c0"]  # its own chain sends c0 ...
    assert late.sent == []  # ... so the group does not send it a second time

    hub.deliver(CHANNEL, comment("c1"))
    await until_sent(late, 1)
    await until_sent(first, 2)
    assert first.sent == [b"c0", b"c1"] and late.sent == [b"c1"]
    assert [e["text"] for e in b.queue] == ["c0"]  # nothing more through the inbox
    hub.close()


async def test_events_queued_in_the_group_before_a_member_joins_skip_it_and_later_ones_reach_it():
    hub, gate, first, late, b = await a_group_and_a_latecomer()
    for text in ("c0", "c1", "c2"):  # one in flight, two waiting in the group's queue
        hub.deliver(CHANNEL, comment(text))
    hub.share(b, late, KINDS)
    hub.deliver(CHANNEL, comment("c3"))
    gate.set()
    await until_sent(first, 4)
    await until_sent(late, 1)
    assert first.sent == [b"c0", b"c1", b"c2", b"c3"]
    assert [e["text"] for e in b.queue] == ["c0", "c1", "c2"] and late.sent == [b"c3"]

    hub.remove(b)  # leaving forgets where it joined: a new member counts from its own join
    c = await hub.add(CHANNEL, wants=KINDS)
    hub.share(c, late, KINDS)
    hub.deliver(CHANNEL, comment("c4"))
    await until_sent(late, 2)
    assert late.sent == [b"c3", b"c4"]
    hub.close()
