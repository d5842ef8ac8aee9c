"""The database keeps the data right by itself, whatever the application does."""
import asyncio
from decimal import Decimal

import pytest
from tortoise.backends.asyncpg.client import TransactionWrapper
from tortoise.backends.sqlite.client import SqliteTransactionWrapper
from tortoise.exceptions import IntegrityError

from livecart.models import InteractionType, LiveStream, Product, StreamInteraction, User, Vendor
from livecart.models import stream as streams
from livecart.models import user as users
from tests.support import make_vendor


async def test_stock_never_below_zero(client):
    seller = await make_vendor(client, products=1, stock=1)
    with pytest.raises(IntegrityError):
        await Product.filter(id=seller.product_ids[0]).update(stock=-1)
    assert (await Product.get(id=seller.product_ids[0])).stock == 1


async def test_one_reaction_per_stream_and_user_but_many_comments(client):
    seller = await make_vendor(client)
    stream = await streams.create_stream(seller.vendor_id, title="s")
    await StreamInteraction.create(stream=stream, user_id=seller.id, interaction_type=InteractionType.LIKE)
    with pytest.raises(IntegrityError):
        await StreamInteraction.create(stream=stream, user_id=seller.id, interaction_type=InteractionType.DISLIKE)
    for text in ("one", "two"):
        await StreamInteraction.create(stream=stream, user_id=seller.id, interaction_type=InteractionType.COMMENT, comment_text=text)
    assert await StreamInteraction.filter(stream=stream).count() == 3


async def test_usernames_are_unique(client):
    await User.create(username="same", password_hash="x")
    with pytest.raises(IntegrityError):
        await User.create(username="same", password_hash="y")


async def test_foreign_keys_and_on_delete_rules(client):
    seller = await make_vendor(client, products=1)
    stream = await streams.create_stream(seller.vendor_id, title="s", product_ids=seller.product_ids)
    with pytest.raises(IntegrityError):  # a vendor with products is never deleted from under them
        await Vendor.filter(id=seller.vendor_id).delete()
    with pytest.raises(IntegrityError):
        await Product.create(vendor_id=9999, name="orphan", price=Decimal("1.00"), stock=1)
    await LiveStream.filter(id=stream.id).delete()  # its featured products go with it
    from livecart.models import StreamProduct

    assert await StreamProduct.filter(stream_id=stream.id).count() == 0
    assert await Product.filter(id=seller.product_ids[0]).exists()


async def test_money_round_trips_exactly(client):
    seller = await make_vendor(client, products=1, price="0.10")
    product = await Product.get(id=seller.product_ids[0])
    assert product.price == Decimal("0.10") and isinstance(product.price, Decimal)
    assert sum([product.price] * 30, Decimal(0)) == Decimal("3.00")


# The seed's indexes (prefixed with their table: index names are per database, not per table),
# and ours that the queries lean on.
SEED_INDEXES = {
    "orders_idx_buyer_id": ("orders", ["buyer_id", "created_at"]),
    "order_items_idx_order_id": ("order_items", ["order_id"]),
    "products_idx_vendor_id": ("products", ["vendor_id"]),
    "live_streams_idx_status": ("live_streams", ["status", "started_at"]),
    "live_streams_idx_vendor_id": ("live_streams", ["vendor_id", "created_at"]),
    "stream_viewers_idx_active_expiry": ("stream_viewers", ["is_active", "expires_at"]),
    "saved_streams_idx_vendor_id": ("saved_streams", ["vendor_id"]),
    "saved_streams_idx_streamed_at": ("saved_streams", ["streamed_at"]),
    "saved_streams_idx_saved_at": ("saved_streams", ["saved_at"]),
    "stream_interactions_idx_stream_user": ("stream_interactions", ["stream_id", "user_id"]),
    "stream_interactions_idx_stream_type": ("stream_interactions", ["stream_id", "interaction_type"]),
    "stream_interactions_idx_created_at": ("stream_interactions", ["created_at"]),
    "stream_viewers_stream_id": ("stream_viewers", ["stream_id", "is_active"]),
    "stream_orders_idx_stream_id": ("stream_orders", ["stream_id"]),
    "stream_orders_idx_vendor_id": ("stream_orders", ["vendor_id"]),
    "stream_orders_idx_created_at": ("stream_orders", ["created_at"]),
    "stream_interactions_one_reaction": ("stream_interactions", ["stream_id", "user_id"]),
}


async def _indexes() -> dict[str, tuple[str, list[str]]]:
    """Every index the migrations made: name -> (table, columns in order)."""
    connection = LiveStream._meta.db
    if connection.capabilities.dialect == "sqlite":
        found = {}
        for row in await connection.execute_query_dict("SELECT name, tbl_name FROM sqlite_master WHERE type = 'index'"):
            columns = await connection.execute_query_dict(f"PRAGMA index_info('{row['name']}')")
            found[row["name"]] = (row["tbl_name"], [c["name"] for c in sorted(columns, key=lambda c: c["seqno"])])
        return found
    rows = await connection.execute_query_dict(
        "SELECT i.relname AS name, t.relname AS tbl, array_agg(a.attname ORDER BY k.ord) AS columns"
        " FROM pg_index x JOIN pg_class i ON i.oid = x.indexrelid JOIN pg_class t ON t.oid = x.indrelid"
        " JOIN pg_namespace n ON n.oid = t.relnamespace AND n.nspname = current_schema()"
        " CROSS JOIN LATERAL unnest(x.indkey) WITH ORDINALITY AS k(attnum, ord)"
        " JOIN pg_attribute a ON a.attrelid = t.oid AND a.attnum = k.attnum"
        " GROUP BY i.relname, t.relname"
    )
    return {row["name"]: (row["tbl"], list(row["columns"])) for row in rows}


async def test_the_seeds_indexes_exist_on_their_columns(client):
    found = await _indexes()
    for name, expected in SEED_INDEXES.items():
        assert found.get(name) == expected, (name, found.get(name))


async def test_a_transaction_cancelled_while_it_begins_gives_its_connection_back(client, settings, monkeypatch):
    """A request whose client goes away is cancelled wherever it is, BEGIN included. Tortoise takes
    the connection before BEGIN and only gives it back on leaving the block, which a failed entry
    never reaches: on SQLite every later write then waited forever (a viewer left the live page
    during its joinStream and the next registration never answered), on PostgreSQL the pool lost a
    connection each time. models/atomic.py gives it back; more cancellations than the pool holds
    must leave writes working."""
    beginning = asyncio.Event()
    originals = {wrapper: wrapper.begin for wrapper in (SqliteTransactionWrapper, TransactionWrapper)}
    for wrapper, original in originals.items():
        async def begin(self, original=original):
            await original(self)  # BEGIN has run: the database holds the transaction open
            beginning.set()
            await asyncio.sleep(60)  # where the cancellation comes
        monkeypatch.setattr(wrapper, "begin", begin)

    for attempt in range(settings.database_pool_size + 1):
        beginning.clear()
        left = asyncio.ensure_future(users.register(f"left-{attempt}", "correct horse", 60))
        await asyncio.wait_for(beginning.wait(), 10)
        left.cancel()
        with pytest.raises(asyncio.CancelledError):
            await left

    for wrapper, original in originals.items():
        monkeypatch.setattr(wrapper, "begin", original)
    await asyncio.wait_for(users.register("stayed", "correct horse", 60), 10)
    assert [u.username for u in await User.all()] == ["stayed"]  # the cancelled ones wrote nothing
