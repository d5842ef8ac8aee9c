"""The small events a change logs in its own transaction (models/outbox.py), published once it commits.

An event names what changed and carries just enough to find it again; the
subscription resolvers turn it into the contract's types.
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

Event = dict[str, Any]


@dataclass(frozen=True)
class EventKind:
    """How the hub treats one kind of event, declared on its constructor below (`@kind(...)`):
    `coalesce`: at most one delivery per this many seconds per stream, the newest winning;
    `moves_stats`: it moves the seller's figures (each schedules one coalesced stats_changed)."""

    name: str
    coalesce: float | None = None
    moves_stats: bool = False


KINDS: dict[str, EventKind] = {}


def kind(coalesce: float | None = None, moves_stats: bool = False) -> Callable[[Callable[..., Event]], Callable[..., Event]]:
    """Declares the event kind its constructor makes (named after the function)."""

    def declare(constructor: Callable[..., Event]) -> Callable[..., Event]:
        name = constructor.__name__
        KINDS[name] = EventKind(name, coalesce, moves_stats)
        return constructor

    return declare


AUTH_CHANNEL = "auth"  # every process listens: what concerns connections, whatever stream they follow
DIRECTORY_CHANNEL = "streams"  # which streams are live: what the home page follows
CLOCKS_CHANNEL = "clocks"  # every process listens: deal and auction clocks, to end them on time (server/sweeper.py)


def stream_channel(stream_id: int) -> str:
    return f"stream:{stream_id}"


@kind()
def token_revoked(token_hash: str) -> Event:
    """A token was revoked (logout): the WebSockets it authenticated close, on every process."""
    return {"type": "token_revoked", "token_hash": token_hash}


@kind(moves_stats=True)
def comment_added(stream_id: int, comment_id: int) -> Event:
    return {"type": "comment_added", "stream_id": stream_id, "comment_id": comment_id}


@kind(moves_stats=True)
def comment_deleted(stream_id: int, comment_ids: list[int]) -> Event:
    """Comments left the stream's chat (deleted, or removed with a ban)."""
    return {"type": "comment_deleted", "stream_id": stream_id, "comment_ids": list(comment_ids)}


@kind()
def comment_held(stream_id: int, comment_id: int) -> Event:
    """A comment waits for a moderator's approval (only moderators hear of it)."""
    return {"type": "comment_held", "stream_id": stream_id, "comment_id": comment_id}


@kind()
def chat_updated(stream_id: int) -> Event:
    """Slow mode, review of links or the pinned comment changed; read when sent."""
    return {"type": "chat_updated", "stream_id": stream_id}


@kind(coalesce=0.5, moves_stats=True)
def viewers_changed(stream_id: int) -> Event:
    """The count moved; subscribers read it when they send (an event from another process may
    arrive after a newer one, so a count carried here could be older than one already shown)."""
    return {"type": "viewers_changed", "stream_id": stream_id}


@kind(coalesce=0.5, moves_stats=True)
def reactions_changed(stream_id: int) -> Event:
    """Likes or dislikes moved; read when sent, as viewers_changed."""
    return {"type": "reactions_changed", "stream_id": stream_id}


@kind(moves_stats=True)
def stream_updated(stream_id: int) -> Event:
    """Status, featured products or their stock changed."""
    return {"type": "stream_updated", "stream_id": stream_id}


@kind(moves_stats=True)
def order_placed(stream_id: int, stream_order_id: int) -> Event:
    return {"type": "order_placed", "stream_id": stream_id, "stream_order_id": stream_order_id}


@kind(coalesce=1.0)
def stats_changed(stream_id: int) -> Event:
    """Never published: each process's hub derives it, coalesced, from the events that move the
    seller's figures (`moves_stats` above), so no mutation has to send it alongside them."""
    return {"type": "stats_changed", "stream_id": stream_id}


@kind()
def live_streams_changed(stream_id: int) -> Event:
    """A stream went live or ended: the list of live streams is another now."""
    return {"type": "live_streams_changed", "stream_id": stream_id}
# ---------------------------------------------------------------- live commerce (issue 18)


@kind(coalesce=0.5)
def stock_changed(stream_id: int, product_id: int, bought: bool = False, buyer_id: int | None = None) -> Event:
    """Units of a product offered on the stream moved (a purchase): coalesced by the hub to two a
    second per stream, the newest naming the product of the "someone just bought" line."""
    return {"type": "stock_changed", "stream_id": stream_id, "product_id": product_id, "bought": bought, "buyer_id": buyer_id}


@kind()
def sold_out(stream_id: int, product_id: int) -> Event:
    """A product or a deal ran out: never coalesced, so it shows at once."""
    return {"type": "sold_out", "stream_id": stream_id, "product_id": product_id}


@kind()
def deal_changed(stream_id: int, deal_id: int) -> Event:
    """A flash deal started or ended."""
    return {"type": "deal_changed", "stream_id": stream_id, "deal_id": deal_id}


@kind()
def auction_changed(stream_id: int, auction_id: int) -> Event:
    """An auction started, took a bid or ended: every one is pushed."""
    return {"type": "auction_changed", "stream_id": stream_id, "auction_id": auction_id}


@kind()
def clock_set(kind: str, ident: int, ends_at) -> Event:
    """A deal's or an auction's clock was set (start, or a bid in the counter-bid window): every
    process times its end."""
    return {"type": "clock_set", "kind": kind, "id": ident, "ends_at": ends_at.isoformat()}


def kinds_of(*constructors: Callable[..., Event]) -> frozenset[str]:
    """The kinds the given constructors make (what a subscription field is fed by)."""
    names = frozenset(constructor.__name__ for constructor in constructors)
    unknown = names - KINDS.keys()
    if unknown:
        raise ValueError(f"not declared event kinds: {sorted(unknown)}")
    return names


# Derived from the declarations above: what the hub coalesces and what moves the seller's figures.
COALESCED_KINDS = frozenset(k.name for k in KINDS.values() if k.coalesce is not None)
STATS_SOURCES = frozenset(k.name for k in KINDS.values() if k.moves_stats)
