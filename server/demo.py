"""`livecart demo-data`: a seller with products, a live stream featuring them, and buyers."""
from __future__ import annotations

from decimal import Decimal

from livecart.models import catalog, stream, user
from livecart.models.catalog import Product, Vendor
from livecart.models.stream import LiveStream, StreamStatus
from livecart.models.user import User
from livecart.server import db
from livecart.server.settings import Settings

DEMO_PASSWORD = "livecart-demo"
SELLER = "demo-seller"
BUYERS = ("alice", "bob", "carol")
PRODUCTS = (
    ("Ceramic pour-over set", Decimal("34.90"), 25, "Hand-glazed dripper with two cups."),
    ("Linen apron", Decimal("19.99"), 40, "Stone-washed linen, one size."),
    ("Single-origin beans 250 g", Decimal("12.50"), 100, "Washed Ethiopian, roasted this week."),
)


async def _account(username: str) -> User:
    existing = await User.get_or_none(username=username)
    if existing:
        return existing
    created, _ = await user.register(username, DEMO_PASSWORD, ttl_seconds=60)
    return created


async def load_demo_data(settings: Settings) -> None:
    await db.migrate(settings)
    await db.open_database(settings)
    try:
        seller = await _account(SELLER)
        vendor = await Vendor.get_or_none(user_id=seller.id) or await catalog.become_vendor(seller.id, "Demo Roasters")
        product_ids = []
        for name, price, stock, description in PRODUCTS:
            product = await Product.get_or_none(vendor_id=vendor.id, name=name) or await catalog.create_product(
                vendor, name=name, price=price, stock=stock, description=description, image_url=None
            )
            product_ids.append(product.id)
        live = await LiveStream.filter(vendor_id=vendor.id, status=StreamStatus.LIVE).order_by("-id").first()
        if live is None:
            live = await stream.create_stream(
                vendor.id,
                title="Morning coffee gear: live demo",
                description="Brewing, tasting and a few deals.",
                product_ids=product_ids,
            )
            await stream.start_stream(live)
        for name in BUYERS:
            await _account(name)
    finally:
        await db.close_database()
    print("livecart: demo data ready")
    print(f"  seller: {SELLER} / {DEMO_PASSWORD}")
    print(f"  buyers: {', '.join(BUYERS)} / {DEMO_PASSWORD}")
    print(f"  live page: {settings.public_url.rstrip('/')}/live/{live.id}")
