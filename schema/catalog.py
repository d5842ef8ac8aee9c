"""Vendors and products in the schema."""
from __future__ import annotations

from decimal import Decimal
from typing import Any

import strawberry
from strawberry.file_uploads import Upload
from strawberry.types import Info

from livecart.models import catalog as m
from livecart.models.fields import MAX_PAGE
from livecart.resolvers import catalog as r
from livecart.schema.cost import list_size
from livecart.schema.permissions import IsVendor
from livecart.schema.user import User, user_type


@strawberry.type
class Vendor:
    id: strawberry.ID
    name: str
    user_id: strawberry.Private[int]

    @classmethod
    def from_model(cls, vendor: m.Vendor) -> "Vendor":
        return cls(id=strawberry.ID(str(vendor.id)), name=vendor.name, user_id=vendor.user_id)

    @strawberry.field
    async def user(self, info: Info) -> User:
        return await user_type(info, self.user_id)

    @strawberry.field(description=f"The first `first` (1 to {MAX_PAGE}) products.", metadata=list_size(MAX_PAGE, "first", MAX_PAGE))
    async def products(self, info: Info, first: int = MAX_PAGE) -> list["Product"]:
        return [Product.from_model(p) for p in await r.products_of_vendor(info, int(self.id), first)]


async def vendor_type(info: Info, vendor_id: int) -> Vendor:
    return Vendor.from_model(await r.vendor_by_id(info, vendor_id))


@strawberry.type
class Product:
    id: strawberry.ID
    name: str
    description: str | None
    price: Decimal
    stock: int = strawberry.field(description="Units left to sell.")
    image_url: str | None
    vendor_id: strawberry.Private[int]

    @classmethod
    def from_model(cls, product: m.Product) -> "Product":
        return cls(
            id=strawberry.ID(str(product.id)),
            name=product.name,
            description=product.description,
            price=product.price,
            stock=product.stock,
            image_url=product.image_url,
            vendor_id=product.vendor_id,
        )

    @strawberry.field
    async def vendor(self, info: Info) -> Vendor:
        return await vendor_type(info, self.vendor_id)


@strawberry.type
class CatalogQuery:
    @strawberry.field
    async def product(self, info: Info, id: strawberry.ID) -> Product | None:
        product = await r.product(info, id)
        return Product.from_model(product) if product else None

    @strawberry.field(
        description=f"Newest first: the first `first` (1 to {MAX_PAGE}).", metadata=list_size(MAX_PAGE, "first", MAX_PAGE)
    )
    async def products(self, vendor_id: strawberry.ID | None = None, first: int = MAX_PAGE) -> list[Product]:
        return [Product.from_model(p) for p in await r.products(vendor_id, first)]


@strawberry.type
class CatalogMutation:
    @strawberry.mutation(description="Vendor only.", permission_classes=[IsVendor])
    async def create_product(
        self,
        info: Info,
        name: str,
        price: Decimal,
        stock: int,
        description: str | None = None,
        image_url: str | None = None,
    ) -> Product:
        product = await r.create_product(info, name, price, stock, description, image_url)
        return Product.from_model(product)

    @strawberry.mutation(
        description="The seller's own product: an uploaded image (multipart request; PNG, JPEG, GIF or WebP, at most"
        " IMAGE_MAX_BYTES; kept by livecart and served at /images/) or an https:// imageUrl, exactly one.",
        permission_classes=[IsVendor],
    )
    async def set_product_image(
        self, info: Info, product_id: strawberry.ID, image: Upload | None = None, image_url: str | None = None
    ) -> Product:
        return Product.from_model(await r.set_product_image(info, product_id, image, image_url))


@strawberry.type
class ProductOnStream:
    """What deals, auctions and a stream's orders share: their own id, the stream's, and the product."""

    model: strawberry.Private[Any]

    @strawberry.field
    def id(self) -> strawberry.ID:
        return strawberry.ID(str(self.model.id))

    @strawberry.field
    def stream_id(self) -> strawberry.ID:
        return strawberry.ID(str(self.model.stream_id))

    @strawberry.field
    async def product(self, info: Info) -> Product:
        return Product.from_model(await r.product_by_id(info, self.model.product_id))
