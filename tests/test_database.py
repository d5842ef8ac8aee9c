"""The database keeps the data right by itself, whatever the application does."""
from decimal import Decimal

import pytest
from tortoise.exceptions import IntegrityError

from models import InteractionType, LiveStream, Product, StreamInteraction, User, Vendor
from models import stream as streams
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
    from models import StreamProduct

    assert await StreamProduct.filter(stream_id=stream.id).count() == 0
    assert await Product.filter(id=seller.product_ids[0]).exists()


async def test_money_round_trips_exactly(client):
    seller = await make_vendor(client, products=1, price="0.10")
    product = await Product.get(id=seller.product_ids[0])
    assert product.price == Decimal("0.10") and isinstance(product.price, Decimal)
    assert sum([product.price] * 30, Decimal(0)) == Decimal("3.00")
