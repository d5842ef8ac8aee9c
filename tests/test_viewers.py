"""Viewer sessions: join, heartbeat, leave, lapse, and the counts they keep."""
from __future__ import annotations

import datetime as dt

from tortoise.transactions import in_transaction

from models import engagement
from models import stream as streams
from models.engagement import StreamViewer
from models.stream import LiveStream
from models.user import utcnow
from tests.support import make_vendor


async def live_stream(vendor, title="Show") -> LiveStream:
    stream = await streams.create_stream(vendor.vendor_id, title=title, product_ids=vendor.product_ids)
    return await streams.start_stream(stream)


async def test_closing_a_streams_sessions_inside_the_callers_transaction(client):
    seller = await make_vendor(client)
    stream = await live_stream(seller)
    now = utcnow()
    lapsed_at = now - dt.timedelta(seconds=10)
    await StreamViewer.create(stream=stream, last_seen_at=now, expires_at=now + dt.timedelta(seconds=45))
    await StreamViewer.create(stream=stream, last_seen_at=now, expires_at=lapsed_at)
    await LiveStream.filter(id=stream.id).update(viewer_count=2, peak_viewers=2)

    async with in_transaction():
        closed = await engagement.close_sessions_of_stream(stream.id, now)
        await LiveStream.filter(id=stream.id).update(status=streams.StreamStatus.ENDED, ended_at=now)

    assert closed == 2
    await stream.refresh_from_db()
    assert (stream.viewer_count, stream.peak_viewers) == (0, 2)
    sessions = await StreamViewer.filter(stream_id=stream.id).order_by("id")
    assert [s.is_active for s in sessions] == [False, False]
    assert sessions[0].left_at == now and sessions[1].left_at == lapsed_at
    assert await engagement.close_sessions_of_stream(stream.id, now) == 0
