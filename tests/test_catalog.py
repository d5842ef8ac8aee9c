import pytest

from tests.support import make_vendor, register

CREATE = """mutation($n: String!, $p: Decimal!, $s: Int!, $d: String, $i: String) {
  createProduct(name: $n, price: $p, stock: $s, description: $d, imageUrl: $i) {
    id name price stock description imageUrl vendor { name user { username } } } }"""


async def test_vendor_creates_and_lists_products(client):
    seller = await make_vendor(client, products=0)
    data = await client.data(
        CREATE, {"n": " Mug ", "p": "12.5", "s": 3, "d": "Blue", "i": "https://img/1.png"}, token=seller.token
    )
    product = data["createProduct"]
    assert product["name"] == "Mug" and product["price"] == "12.50" and product["stock"] == 3
    assert product["vendor"] == {"name": "Shop", "user": {"username": "seller"}}

    assert (await client.data("query($id: ID!) { product(id: $id) { name } }", {"id": product["id"]}))["product"] == {"name": "Mug"}
    other = await make_vendor(client, "other", products=1)
    mine = await client.data("query($v: ID) { products(vendorId: $v) { name } }", {"v": str(seller.vendor_id)})
    assert mine["products"] == [{"name": "Mug"}]
    assert len((await client.data("{ products { id } }"))["products"]) == 2
    vendor_products = await client.data("{ me { vendor { products { name } } } }", token=other.token)
    assert vendor_products["me"]["vendor"]["products"] == [{"name": "Product 0"}]


async def test_only_vendors_create_products(client):
    buyer = await register(client, "buyer")
    error = await client.error(CREATE, {"n": "Mug", "p": "1.00", "s": 1}, token=buyer.token)
    assert error["extensions"]["code"] == "FORBIDDEN"
    error = await client.error(CREATE, {"n": "Mug", "p": "1.00", "s": 1})
    assert error["extensions"]["code"] == "UNAUTHENTICATED" and error["extensions"]["loginUrl"] == "/login"


@pytest.mark.parametrize("variables, argument", [
    ({"n": "Mug", "p": "0", "s": 1}, "price"),
    ({"n": "Mug", "p": "-1.00", "s": 1}, "price"),
    ({"n": "Mug", "p": "1.00", "s": -1}, "stock"),
    ({"n": "  ", "p": "1.00", "s": 1}, "name"),
    ({"n": "Mug", "p": "1.00", "s": 1, "i": "javascript:alert(1)"}, "imageUrl"),
    # A NUL (found by tests/test_fuzz.py: PostgreSQL refuses it in text, so these were crashes there).
    ({"n": "M\x00ug", "p": "1.00", "s": 1}, "name"),
    ({"n": "Mug", "p": "1.00", "s": 1, "d": "a\x00b"}, "description"),
    ({"n": "Mug", "p": "1.00", "s": 1, "i": "https://x.example/\x00"}, "imageUrl"),
])
async def test_bad_product_input_names_the_argument(client, variables, argument):
    seller = await make_vendor(client, products=0)
    error = await client.error(CREATE, variables, token=seller.token)
    assert error["extensions"] == {"code": "BAD_USER_INPUT", "argument": argument}


@pytest.mark.parametrize("price", ["1.001", "abc", "NaN", "Infinity"])
async def test_money_must_be_an_exact_amount(client, price):
    seller = await make_vendor(client, products=0)
    error = await client.error(CREATE, {"n": "Mug", "p": price, "s": 1}, token=seller.token)
    assert error["extensions"] == {"code": "BAD_USER_INPUT", "argument": "$p"}  # the variable that carried it
    assert error["message"].startswith("$p: ")
    written = f'mutation {{ createProduct(name: "Mug", price: "{price}", stock: 1) {{ id }} }}'
    error = await client.error(written, token=seller.token)
    assert error["extensions"] == {"code": "BAD_USER_INPUT", "argument": "price"}  # the argument it was written for
    assert error["message"].startswith("price: ")


async def test_money_as_a_json_float_is_refused(client):
    seller = await make_vendor(client, products=0)
    error = await client.error(CREATE, {"n": "Mug", "p": 0.1, "s": 1}, token=seller.token)
    assert error["extensions"]["code"] == "BAD_USER_INPUT"


@pytest.mark.parametrize("price", ["1e30", "9" * 40, "1E+999999"])
async def test_money_too_large_for_cents_is_bad_input_not_a_crash(client, price):
    # Found by tests/test_fuzz.py: quantizing these to cents overflowed the decimal context.
    seller = await make_vendor(client, products=0)
    error = await client.error(CREATE, {"n": "Mug", "p": price, "s": 1}, token=seller.token)
    assert error["extensions"]["code"] == "BAD_USER_INPUT"
    assert "InvalidOperation" not in error["message"]
    written = f'mutation {{ createProduct(name: "Mug", price: "{price}", stock: 1) {{ id }} }}'
    error = await client.error(written, token=seller.token)
    assert error["extensions"]["code"] == "BAD_USER_INPUT"


@pytest.mark.parametrize("bad_id", ["2147483648", "999999999999999999"])
async def test_ids_beyond_the_key_columns_are_bad_input(client, bad_id):
    # Found by tests/test_fuzz.py: PostgreSQL refused to compare them with an INTEGER key (a crash).
    buyer = await register(client, "buyer")
    error = await client.error("query($id: ID!) { product(id: $id) { id } }", {"id": bad_id})
    assert error["extensions"] == {"code": "BAD_USER_INPUT", "argument": "id"}
    error = await client.error("mutation($id: ID!) { addToCart(productId: $id) { total } }", {"id": bad_id}, token=buyer.token)
    assert error["extensions"] == {"code": "BAD_USER_INPUT", "argument": "productId"}
    assert (await client.data("query { product(id: 2147483647) { id } }"))["product"] is None
