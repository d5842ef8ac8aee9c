"""Cart, checkout and buyNow: stock and money exact, purchases on a stream in the seller's figures (flow 3)."""
from __future__ import annotations

import asyncio

import pytest

from livecart.models import stream as streams
from livecart.models.catalog import Product
from livecart.models.commerce import CartItem, Order, StreamOrder
from livecart.models.stream import LiveStream
from livecart.models.user import register as register_user
from tests.conftest import SERVICES_BACKEND
from tests.realtime_support import broker_of
from tests.support import make_vendor, register

ADD = "mutation($p: ID!, $q: Int! = 1, $s: ID) { addToCart(productId: $p, quantity: $q, streamId: $s) { items { product { id } quantity streamId } total } }"
CART = "{ cart { items { product { id } quantity streamId } total } }"
CHECKOUT = "mutation { checkout { id total items { product { id } quantity unitPrice amount streamId } } }"
BUY = "mutation($p: ID!, $q: Int! = 1, $s: ID) { buyNow(productId: $p, quantity: $q, streamId: $s) { id total items { streamId } } }"


@pytest.fixture
def settings(settings):
    # Many buyers register from one test address: these tests are about stock, not rate limits.
    return settings.replace(rate_limits=False)


async def live(seller) -> LiveStream:
    stream = await streams.create_stream(seller.vendor_id, title="Show", product_ids=seller.product_ids)
    return await streams.start_stream(stream)


async def buyers(count: int) -> list[str]:
    return [(await register_user(f"buyer{i}", "correct horse", 3600))[1] for i in range(count)]


async def test_cart_adds_merges_and_removes(client):
    seller = await make_vendor(client, products=2, price="0.10")
    stream = await live(seller)
    buyer = await register(client, "buyer")
    a, b = map(str, seller.product_ids)
    assert (await client.error(CART))["extensions"]["code"] == "UNAUTHENTICATED"
    await client.data(ADD, {"p": a, "q": 2, "s": str(stream.id)}, token=buyer.token)
    cart = (await client.data(ADD, {"p": a, "q": 3}, token=buyer.token))["addToCart"]
    assert cart["items"] == [{"product": {"id": a}, "quantity": 5, "streamId": str(stream.id)}]
    cart = (await client.data(ADD, {"p": b}, token=buyer.token))["addToCart"]
    assert cart["total"] == "0.60"
    for variables, code in (
        ({"p": a, "q": 0}, "BAD_USER_INPUT"), ({"p": a, "q": 101}, "BAD_USER_INPUT"),
        ({"p": a, "q": 6}, "OUT_OF_STOCK"), ({"p": "9999"}, "NOT_FOUND"), ({"p": a, "s": "9999"}, "NOT_FOUND"),
    ):
        assert (await client.error(ADD, variables, token=buyer.token))["extensions"]["code"] == code
    for quantity in (0, 101):
        refused = await client.error(BUY, {"p": a, "q": quantity}, token=buyer.token)
        assert refused["extensions"] == {"code": "BAD_USER_INPUT", "argument": "quantity"}
    await Product.filter(id=seller.product_ids[0]).update(stock=500)
    assert (await client.error(ADD, {"p": a, "q": 96}, token=buyer.token))["extensions"]["code"] == "BAD_USER_INPUT"
    removed = await client.data("mutation($p: ID!) { removeFromCart(productId: $p) { items { quantity } total } }", {"p": a}, token=buyer.token)
    assert removed["removeFromCart"] == {"items": [{"quantity": 1}], "total": "0.10"}


async def test_checkout_orders_every_line_at_todays_prices_and_empties_the_cart(client):
    seller = await make_vendor(client, products=2, price="0.10")
    buyer = await register(client, "buyer")
    a, b = seller.product_ids
    assert (await client.error(CHECKOUT, token=buyer.token))["extensions"]["code"] == "BAD_USER_INPUT"
    await client.data(ADD, {"p": str(a), "q": 3}, token=buyer.token)
    await client.data(ADD, {"p": str(b), "q": 2}, token=buyer.token)
    await Product.filter(id=b).update(price="0.20")  # the price when ordered is what counts
    order = (await client.data(CHECKOUT, token=buyer.token))["checkout"]
    assert order["total"] == "0.70"
    assert [(i["quantity"], i["unitPrice"], i["amount"], i["streamId"]) for i in order["items"]] == [
        (3, "0.10", "0.30", None), (2, "0.20", "0.40", None),
    ]
    assert (await client.data(CART, token=buyer.token))["cart"] == {"items": [], "total": "0.00"}
    assert [p.stock for p in await Product.filter(id__in=[a, b]).order_by("id")] == [7, 8]
    await client.data(ADD, {"p": str(b)}, token=buyer.token)
    second = (await client.data(BUY, {"p": str(a)}, token=buyer.token))["buyNow"]
    cart = (await client.data(CART, token=buyer.token))["cart"]  # buyNow leaves the cart as it was
    assert cart == {"items": [{"product": {"id": str(b)}, "quantity": 1, "streamId": None}], "total": "0.20"}
    mine = (await client.data("{ myOrders { id status } }", token=buyer.token))["myOrders"]
    assert mine == [{"id": second["id"], "status": "PLACED"}, {"id": order["id"], "status": "PLACED"}]


async def test_a_short_line_fails_the_whole_checkout_and_changes_nothing(client):
    seller = await make_vendor(client, products=2)
    stream = await live(seller)
    buyer = await register(client, "buyer")
    a, b = seller.product_ids
    await client.data(ADD, {"p": str(a), "q": 2, "s": str(stream.id)}, token=buyer.token)
    await client.data(ADD, {"p": str(b), "q": 5, "s": str(stream.id)}, token=buyer.token)
    await Product.filter(id=b).update(stock=4)
    listener = await broker_of(client).hub.add(f"stream:{stream.id}")
    error = await client.error(CHECKOUT, token=buyer.token)
    assert error["extensions"]["code"] == "OUT_OF_STOCK" and error["extensions"]["productId"] == str(b)
    assert "Product 1" in error["message"]
    assert [p.stock for p in await Product.filter(id__in=[a, b]).order_by("id")] == [10, 4]
    assert await CartItem.filter(user_id=buyer.id).count() == 2
    assert not await Order.exists() and not await StreamOrder.exists()
    row = await LiveStream.get(id=stream.id)
    assert (row.order_count, row.items_sold, str(row.revenue)) == (0, 0, "0.00")

    # Nor was anything published for it: the first event the stream hears is the next purchase's.
    await client.data(BUY, {"p": str(a), "s": str(stream.id)}, token=buyer.token)
    first = await asyncio.wait_for(listener.get(), 5)
    assert (first["type"], first["stream_order_id"]) == ("order_placed", (await StreamOrder.get()).id)
    broker_of(client).hub.remove(listener)


async def test_flow_3_purchase_during_a_stream_is_in_the_sellers_figures(client):
    seller = await make_vendor(client, products=2, price="0.10")
    other = await make_vendor(client, "other", products=1)
    stream, elsewhere = await live(seller), await live(other)
    buyer = await register(client, "buyer")
    a, b = map(str, seller.product_ids)
    await client.data(ADD, {"p": a, "q": 2, "s": str(stream.id)}, token=buyer.token)
    await client.data(ADD, {"p": b, "q": 1, "s": str(stream.id)}, token=buyer.token)
    await client.data(ADD, {"p": str(other.product_ids[0]), "s": str(stream.id)}, token=buyer.token)  # not this seller's
    order = (await client.data(CHECKOUT, token=buyer.token))["checkout"]
    assert [i["streamId"] for i in order["items"]] == [str(stream.id), str(stream.id), None]
    # Bought on another seller's stream: no credit to it.
    assert (await client.data(BUY, {"p": a, "s": str(elsewhere.id)}, token=buyer.token))["buyNow"]["items"] == [{"streamId": None}]
    await client.data(BUY, {"p": b, "q": 2, "s": str(stream.id)}, token=buyer.token)

    query = "query($id: ID!) { stream(id: $id) { stats { orders itemsSold revenue } orders { orderId quantity amount } } }"
    board = (await client.data(query, {"id": str(stream.id)}, token=seller.token))["stream"]
    assert board["stats"] == {"orders": 2, "itemsSold": 5, "revenue": "0.50"}
    assert [(o["quantity"], o["amount"]) for o in board["orders"]][0] == (2, "0.20")  # newest first
    assert sorted(o["amount"] for o in board["orders"]) == ["0.10", "0.20", "0.20"]
    assert (await client.data(query, {"id": str(elsewhere.id)}, token=other.token))["stream"]["stats"]["orders"] == 0

    await client.data('mutation($id: ID!) { endStream(id: $id, action: DELETE) { stats { orders } } }', {"id": str(stream.id)}, token=seller.token)
    assert (await client.data(BUY, {"p": a, "s": str(stream.id)}, token=buyer.token))["buyNow"]["items"] == [{"streamId": None}]
    assert (await LiveStream.get(id=stream.id)).order_count == 2


async def test_money_stays_exact_over_many_small_purchases(client):
    seller = await make_vendor(client, products=2, price="0.10", stock=1000)
    await Product.filter(id=seller.product_ids[1]).update(price="0.20")
    stream = await live(seller)
    buyer = await register(client, "buyer")
    for i in range(30):
        await client.data(BUY, {"p": str(seller.product_ids[i % 2]), "s": str(stream.id)}, token=buyer.token)
    row = await LiveStream.get(id=stream.id)
    assert str(row.revenue) == "4.50" and row.items_sold == 30 and row.order_count == 30
    totals = (await client.data("{ myOrders { total } }", token=buyer.token))["myOrders"]
    assert sorted({t["total"] for t in totals}) == ["0.10", "0.20"]


async def test_one_hundred_concurrent_buy_now_on_ten_in_stock(client):
    seller = await make_vendor(client, products=1, price="19.99", stock=10)
    stream = await live(seller)
    tokens = await buyers(5)
    variables = {"p": str(seller.product_ids[0]), "s": str(stream.id)}
    bodies = await asyncio.gather(*(client.execute(BUY, variables, token=tokens[i % 5]) for i in range(100)))
    errors = [b["errors"][0]["extensions"]["code"] for b in bodies if b.get("errors")]
    assert len(bodies) - len(errors) == 10 and errors == ["OUT_OF_STOCK"] * 90
    assert (await Product.get(id=seller.product_ids[0])).stock == 0
    assert await Order.all().count() == 10 and await StreamOrder.filter(stream_id=stream.id).count() == 10
    row = await LiveStream.get(id=stream.id)
    assert (row.order_count, row.items_sold, str(row.revenue)) == (10, 10, "199.90")


async def test_concurrent_checkouts_of_carts_sharing_products_never_oversell(client):
    seller = await make_vendor(client, products=3, price="0.10", stock=0)
    stock = dict(zip(seller.product_ids, (5, 7, 4)))
    for product_id, units in stock.items():
        await Product.filter(id=product_id).update(stock=units)
    stream = await live(seller)
    tokens = await buyers(12)
    for i, token in enumerate(tokens):
        # Lines added in different orders: locks are still taken by product id, so no deadlock.
        lines = [seller.product_ids[(i + k) % 3] for k in range(2)]
        for product_id in lines:
            await client.data(ADD, {"p": str(product_id), "q": 1 + i % 2, "s": str(stream.id)}, token=token)
    bodies = await asyncio.gather(*(client.execute(CHECKOUT, token=token) for token in tokens))
    assert all(b["errors"][0]["extensions"]["code"] == "OUT_OF_STOCK" for b in bodies if b.get("errors"))
    placed = [b["data"]["checkout"] for b in bodies if not b.get("errors")]
    assert placed
    sold = {product_id: 0 for product_id in stock}
    for order in placed:
        for item in order["items"]:
            sold[int(item["product"]["id"])] += item["quantity"]
    for product in await Product.filter(id__in=list(stock)):
        assert product.stock >= 0 and product.stock == stock[product.id] - sold[product.id]
    row = await LiveStream.get(id=stream.id)
    assert row.order_count == len(placed) and row.items_sold == sum(sold.values())
    assert str(row.revenue) == f"{sum(sold.values()) / 10:.2f}"
    assert await CartItem.all().count() == 2 * (len(tokens) - len(placed))  # failed carts intact


@pytest.mark.parametrize("backend", [SERVICES_BACKEND])  # a client-side bound on PostgreSQL statements
async def test_a_statement_over_the_timeout_is_abandoned_and_changes_nothing(aiohttp_client, settings):
    import asyncpg

    from livecart.server.app import create_app
    from tests.support import GraphQLClient

    client = GraphQLClient(await aiohttp_client(create_app(settings.replace(database_statement_timeout_seconds=1))))
    seller = await make_vendor(client, products=1, stock=5)
    buyer = await register(client, "buyer")
    product = str(seller.product_ids[0])
    blocker = await asyncpg.connect(settings.database_url)
    try:
        # Another session holds the product's row, as a stuck transaction or a frozen server would.
        locked = blocker.transaction()
        await locked.start()
        await blocker.execute("SELECT stock FROM products WHERE id = $1 FOR UPDATE", int(product))
        error = await client.error(BUY, {"p": product}, token=buyer.token)
        assert error["extensions"]["code"] == "SERVICE_UNAVAILABLE" and error["extensions"]["retryAfter"] > 0
        await locked.rollback()
    finally:
        await blocker.close()
    assert (await Product.get(id=int(product))).stock == 5 and not await Order.exists()
    # The pool's connections came back usable: the next purchase goes through.
    assert (await client.data(BUY, {"p": product}, token=buyer.token))["buyNow"]["total"] == "10.00"
