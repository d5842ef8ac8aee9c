"""The one answer to "may this user act as this vendor / as this stream's seller?".

A user sells through at most one vendor (Vendor.user is one-to-one), so the question is always the
same: is the caller's vendor the vendor in question. Permission classes (schema/), resolvers
(HTTP and subscriptions) and models ask here; what differs between them is only the wording of the
refusal, which names what was refused. Moderators (models/moderation.py) build on this: the
owner for everything, a moderator for the chat only.
"""
from __future__ import annotations

from livecart.models.catalog import Vendor
from livecart.models.errors import forbidden, not_found
from livecart.models.stream import LiveStream

NOT_A_SELLER = "Only sellers may do this: become a vendor first."
NOT_THE_STREAMS_SELLER = "Only the stream's seller may do this."
NOT_THE_VENDOR = "Only the seller may do this."


async def vendor_of(user_id: int) -> Vendor | None:
    """The vendor the user sells through, if any (resolvers batch the same lookup with a DataLoader:
    resolvers/user.py's vendor_of_user)."""
    return await Vendor.get_or_none(user_id=user_id)


def acts_for(vendor: Vendor | None, vendor_id: int) -> bool:
    """Whether the holder of `vendor` (the caller's, or None) may act as vendor `vendor_id`."""
    return vendor is not None and vendor.id == vendor_id


async def may_act_for(vendor_id: int, user_id: int | None) -> bool:
    return user_id is not None and acts_for(await vendor_of(user_id), vendor_id)


def check_acts_for(vendor: Vendor | None, vendor_id: int, message: str = NOT_THE_VENDOR) -> None:
    """FORBIDDEN (with `message`) unless the caller's vendor is `vendor_id`."""
    if not acts_for(vendor, vendor_id):
        raise forbidden(message)


async def require_seller(user_id: int) -> Vendor:
    """The caller's vendor; FORBIDDEN for a user who sells nothing."""
    vendor = await vendor_of(user_id)
    if vendor is None:
        raise forbidden(NOT_A_SELLER)
    return vendor


async def require_vendor_owner(vendor_id: int, user_id: int, message: str = NOT_THE_VENDOR) -> Vendor:
    """NOT_FOUND for no such vendor, FORBIDDEN for anyone but its owner."""
    vendor = await Vendor.get_or_none(id=vendor_id)
    if vendor is None:
        raise not_found("vendor", vendor_id)
    if vendor.user_id != user_id:
        raise forbidden(message)
    return vendor


async def require_stream_seller(stream: LiveStream, user_id: int, message: str = NOT_THE_STREAMS_SELLER) -> None:
    if not await may_act_for(stream.vendor_id, user_id):
        raise forbidden(message)


async def owned_stream(stream_id: int, user_id: int, message: str = NOT_THE_STREAMS_SELLER) -> LiveStream:
    """The stream, if the caller sells it: NOT_FOUND for no such stream, FORBIDDEN for anyone else."""
    stream = await LiveStream.get_or_none(id=stream_id)
    if stream is None:
        raise not_found("stream", stream_id)
    await require_stream_seller(stream, user_id, message)
    return stream
