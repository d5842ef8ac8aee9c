"""Vendors and products."""
from __future__ import annotations

from collections.abc import Sequence
from decimal import Decimal

from strawberry.types import Info

from livecart.models import catalog, policy
from livecart.models.catalog import Product, Vendor
from livecart.models.errors import bad_input, not_found
from livecart.models.fields import check_first, parse_id
from livecart.resolvers.loaders import rows_by_id, rows_grouped
from livecart.resolvers import ratelimit
from livecart.resolvers.user import seller_vendor, vendor_of_user


async def load_vendors(keys: Sequence[int]) -> list[Vendor | None]:
    return await rows_by_id(Vendor, keys)


async def load_products(keys: Sequence[int]) -> list[Product | None]:
    return await rows_by_id(Product, keys)


async def load_products_of_vendor(keys: Sequence[int]) -> list[list[Product]]:
    return await rows_grouped(Product, "vendor_id", keys, ("id",))


async def vendor_by_id(info: Info, vendor_id: int) -> Vendor | None:
    return await info.context.loader(load_vendors).load(vendor_id)


async def product_by_id(info: Info, product_id: int) -> Product | None:
    return await info.context.loader(load_products).load(product_id)


async def products_of_vendor(info: Info, vendor_id: int, first: int) -> list[Product]:
    check_first(first)
    return (await info.context.loader(load_products_of_vendor).load(vendor_id))[:first]


async def product(info: Info, id: str) -> Product | None:
    return await product_by_id(info, parse_id("id", id))


async def products(vendor_id: str | None, first: int) -> list[Product]:
    query = Product.all().limit(check_first(first))
    if vendor_id is not None:
        query = query.filter(vendor_id=parse_id("vendorId", vendor_id))
    return await query.order_by("-created_at", "-id")


async def create_product(
    info: Info, name: str, price: Decimal, stock: int, description: str | None, image_url: str | None
) -> Product:
    user = await info.context.require_user()
    await ratelimit.hit_address(info, ratelimit.PRODUCT_ADDRESS)
    vendor = await seller_vendor(info, user.id)
    return await catalog.create_product(
        vendor, name=name, price=price, stock=stock, description=description, image_url=image_url
    )


async def set_product_image(info: Info, product_id: str, image, image_url: str | None) -> Product:
    """The seller's own product only; the upload is read whole here (its size is bounded before
    the request body is read: server/graphql_view.py)."""
    user = await info.context.require_user()
    product = await Product.get_or_none(id=parse_id("productId", product_id))
    if product is None:
        raise not_found("product", product_id)
    policy.check_acts_for(
        await vendor_of_user(info, user.id), product.vendor_id, "Only the product's seller may change its image."
    )
    settings = info.context.settings
    if image is not None and not callable(getattr(image, "read", None)):
        # An Upload variable given in a JSON body (a string, a number...) is no file.
        raise bad_input("image", "must be a file sent in a multipart request (the GraphQL multipart request spec)")
    data = image.read() if image is not None else None
    return await catalog.set_product_image(
        product, data=data, url=image_url, directory=settings.image_dir, max_bytes=settings.image_max_bytes
    )
