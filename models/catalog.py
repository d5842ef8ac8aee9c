"""Sellers and what they sell."""
from __future__ import annotations

from decimal import Decimal

from tortoise import fields
from tortoise.exceptions import IntegrityError
from tortoise.indexes import Index
from tortoise.migrations.constraints import CheckConstraint
from tortoise.models import Model

from livecart.models.errors import DomainError, ErrorCode, bad_input, conflict
from livecart.models.fields import MAX_MONEY, MoneyField, plain_text, to_money


class Vendor(Model):
    id = fields.IntField(primary_key=True)
    # A seller profile goes with its account; an account with sales history is never deleted.
    user = fields.OneToOneField("models.User", related_name="vendor", on_delete=fields.RESTRICT)
    name = fields.CharField(max_length=100)
    created_at = fields.DatetimeField(auto_now_add=True)

    class Meta:
        table = "vendors"


class Product(Model):
    id = fields.IntField(primary_key=True)
    vendor = fields.ForeignKeyField("models.Vendor", related_name="products", on_delete=fields.RESTRICT)
    name = fields.CharField(max_length=200)
    description = fields.TextField(null=True)
    price = MoneyField()
    stock = fields.IntField()
    image_url = fields.CharField(max_length=1000, null=True)
    created_at = fields.DatetimeField(auto_now_add=True)

    class Meta:
        table = "products"
        indexes = (Index(fields=("vendor_id",), name="products_idx_vendor_id"),)
        constraints = (
            CheckConstraint(check="stock >= 0", name="products_stock_not_negative"),
            CheckConstraint(check="price > 0", name="products_price_positive"),
        )


MAX_STOCK = 1_000_000


async def become_vendor(user_id: int, name: str) -> Vendor:
    name = plain_text("name", name).strip()
    if not 1 <= len(name) <= 100:
        raise bad_input("name", "1 to 100 characters")
    try:
        return await Vendor.create(user_id=user_id, name=name)
    except IntegrityError:
        raise conflict("This account already has a seller profile.") from None


async def create_product(
    vendor: Vendor, *, name: str, price, stock: int, description: str | None, image_url: str | None
) -> Product:
    name = plain_text("name", name).strip()
    description = plain_text("description", description)
    image_url = plain_text("imageUrl", image_url)
    if not 1 <= len(name) <= 200:
        raise bad_input("name", "1 to 200 characters")
    try:
        price = to_money(price)
    except (TypeError, ValueError):
        raise bad_input("price", "not an amount of money") from None
    if not Decimal("0.01") <= price <= MAX_MONEY:
        raise bad_input("price", f"must be positive and at most {MAX_MONEY}")
    if not 0 <= stock <= MAX_STOCK:
        raise bad_input("stock", f"0 to {MAX_STOCK}")
    if description is not None and len(description) > 5000:
        raise bad_input("description", "at most 5000 characters")
    if image_url is not None and (len(image_url) > 1000 or not image_url.startswith(("https://", "http://", "/"))):
        raise bad_input("imageUrl", "an http(s) URL or a path, at most 1000 characters")
    return await Product.create(
        vendor=vendor, name=name, price=price, stock=stock, description=description, image_url=image_url
    )


# ---------------------------------------------------------------- product images (issue 18)

# Known by their first bytes, never by what the client says they are; SVG (which can carry script) is not taken.
IMAGE_SIGNATURES = ((b"\x89PNG\r\n\x1a\n", "png"), (b"\xff\xd8\xff", "jpg"), (b"GIF87a", "gif"), (b"GIF89a", "gif"))
IMAGE_URL_PREFIX = "/images/"


def image_kind(data: bytes) -> str | None:
    if len(data) >= 12 and data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "webp"
    return next((kind for signature, kind in IMAGE_SIGNATURES if data.startswith(signature)), None)


def check_image_url(url: str) -> str:
    from urllib.parse import urlsplit

    url = plain_text("imageUrl", url).strip()
    parts = urlsplit(url)
    if len(url) > 1000 or parts.scheme != "https" or not parts.hostname or any(c.isspace() for c in url):
        raise bad_input("imageUrl", "an https:// URL of at most 1000 characters")
    return url


def store_image(data: bytes, directory: str, max_bytes: int) -> str:
    """Keeps an uploaded image under its content's hash (the same image twice is one file) and
    returns its path on this site. Refused before anything is written: too large, or not PNG,
    JPEG, GIF or WebP."""
    import hashlib
    import os
    import pathlib
    import tempfile

    if len(data) > max_bytes:
        raise DomainError(
            ErrorCode.BAD_USER_INPUT, f"image: at most {max_bytes} bytes; this one has {len(data)}.",
            argument="image", limit=max_bytes,
        )
    kind = image_kind(data)
    if kind is None:
        raise bad_input("image", "a PNG, JPEG, GIF or WebP image")
    folder = pathlib.Path(directory)
    folder.mkdir(parents=True, exist_ok=True)
    name = f"{hashlib.sha256(data).hexdigest()[:32]}.{kind}"
    # Written aside, then renamed: a reader never sees half a file.
    fd, temporary = tempfile.mkstemp(dir=folder, prefix=".upload-")
    with os.fdopen(fd, "wb") as file:
        file.write(data)
    os.chmod(temporary, 0o644)
    os.replace(temporary, folder / name)
    return IMAGE_URL_PREFIX + name


async def set_product_image(product: Product, *, data: bytes | None, url: str | None, directory: str, max_bytes: int) -> Product:
    """An uploaded image (stored here) or an https URL, exactly one of them."""
    if (data is None) == (url is None):
        raise bad_input("image", "give either an uploaded image or an imageUrl")
    image_url = store_image(data, directory, max_bytes) if data is not None else check_image_url(url)
    await Product.filter(id=product.id).update(image_url=image_url)
    product.image_url = image_url
    return product
