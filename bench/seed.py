"""A fresh database for each bench run, filled through livecart's own models.

Accounts get a token straight from models.user.issue_token with a fixed password hash:
hashing 250 passwords with argon2 would take longer than some measurements.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, field
from decimal import Decimal
from urllib.parse import urlsplit, urlunsplit

import secrets

import asyncpg

from livecart.server import db
from livecart.server.settings import Settings

TOKEN_TTL = 24 * 3600
UNUSABLE_PASSWORD_HASH = "$argon2id$v=19$m=65536,t=3,p=4$YmVuY2hiZW5jaGJlbmNo$bench-account-no-password-login"


@dataclass
class Seeded:
    """What the measurements need to know about the data."""

    stream_id: int = 0
    live_stream_ids: list[int] = field(default_factory=list)
    seller_token: str = ""
    commenter_tokens: list[str] = field(default_factory=list)
    buyer_tokens: list[str] = field(default_factory=list)
    seller_tokens: list[str] = field(default_factory=list)  # the seller of live_stream_ids[i] is seller_tokens[i]
    stream_product_ids: list[list[int]] = field(default_factory=list)  # featured on live_stream_ids[i]
    viewer_tokens: list[str] = field(default_factory=list)
    # The bench's reactions so far, (token, stream id) -> LIKE or DISLIKE: a reaction repeated changes
    # nothing (no write, no event), so whoever reacts next takes the other kind.
    reacted: dict[tuple[str, int], str] = field(default_factory=dict)
    sale_product_id: int = 0
    sale_stock: int = 0
    comments_on_stream: int = 0

    def next_reaction(self, token: str, stream_id: int) -> str:
        kind = self.reacted[(token, stream_id)] = "DISLIKE" if self.reacted.get((token, stream_id)) == "LIKE" else "LIKE"
        return kind

    def as_dict(self) -> dict:
        return asdict(self)


async def ensure_database(database_url: str) -> None:
    """Create the bench's database when missing (on the same server, through `postgres`)."""
    parts = urlsplit(database_url)
    name = parts.path.lstrip("/")
    admin_url = urlunsplit((parts.scheme, parts.netloc, "/postgres", parts.query, ""))
    conn = await asyncpg.connect(admin_url)
    try:
        if not await conn.fetchval("SELECT 1 FROM pg_database WHERE datname = $1", name):
            await conn.execute(f'CREATE DATABASE "{name}"')
    finally:
        await conn.close()


async def reset_schema(database_url: str) -> None:
    conn = await asyncpg.connect(database_url)
    try:
        await conn.execute("DROP SCHEMA public CASCADE; CREATE SCHEMA public")
    finally:
        await conn.close()


async def _account(username: str) -> tuple[int, str]:
    from livecart.models.user import User, issue_token

    user = await User.create(username=username, password_hash=UNUSABLE_PASSWORD_HASH)
    return user.id, await issue_token(user, TOKEN_TTL)


async def _accounts(prefix: str, count: int) -> list[str]:
    """`count` accounts with a token each, in a few statements: thousands of viewers one by one
    would take longer than the measurement they are for."""
    import datetime as dt

    from livecart.models.user import AuthToken, User, fold_username, hash_token
    from livecart.models.clock import utcnow

    names = [f"{prefix}-{i}" for i in range(count)]
    await User.bulk_create([User(username=n, username_folded=fold_username(n), password_hash=UNUSABLE_PASSWORD_HASH)
                            for n in names], batch_size=1000)
    ids = dict(await User.filter(username__in=names).values_list("username", "id"))
    tokens = [secrets.token_urlsafe(32) for _ in names]
    expires = utcnow() + dt.timedelta(seconds=TOKEN_TTL)
    await AuthToken.bulk_create([AuthToken(user_id=ids[n], token_hash=hash_token(t), expires_at=expires)
                                 for n, t in zip(names, tokens)], batch_size=1000)
    return tokens


async def _vendor_with_products(index: int, products: int) -> tuple[int, str, list[int]]:
    from livecart.models import catalog

    user_id, token = await _account(f"bench-seller-{index}")
    vendor = await catalog.become_vendor(user_id, f"Bench shop {index}")
    product_ids = []
    for p in range(products):
        product = await catalog.create_product(
            vendor, name=f"Shop {index} item {p}", price=Decimal("12.50") + p, stock=10_000,
            description="A product the live page shows.", image_url=f"/img/{index}-{p}.jpg",
        )
        product_ids.append(product.id)
    return vendor.id, token, product_ids


async def _live_stream(vendor_id: int, title: str, product_ids: list[int]) -> int:
    from livecart.models import stream

    row = await stream.create_stream(vendor_id, title=title, description="Bench stream", product_ids=product_ids)
    await stream.start_stream(row)
    return row.id


async def _comments(stream_id: int, author_ids: list[int], count: int) -> None:
    from tortoise.expressions import F

    from livecart.models.engagement import InteractionType, StreamInteraction
    from livecart.models.stream import LiveStream

    await StreamInteraction.bulk_create([
        StreamInteraction(stream_id=stream_id, user_id=author_ids[i % len(author_ids)],
                          interaction_type=InteractionType.COMMENT, comment_text=f"Seeded comment {i}")
        for i in range(count)
    ])
    await LiveStream.filter(id=stream_id).update(comment_count=F("comment_count") + count)


async def seed(database_url: str, *, vendors: int = 10, products_per_vendor: int = 4, commenters: int = 20,
               buyers: int = 200, comments: int = 200, sale_stock: int = 100, viewers: int = 0) -> Seeded:
    """Reset the schema, migrate it, and fill it: the live page of `vendors` live streams,
    one bench stream with `comments` comments, a flash-sale product, and `viewers` accounts."""
    from livecart.models import catalog

    await ensure_database(database_url)
    await reset_schema(database_url)
    settings = Settings(database_url=database_url)
    await db.migrate(settings)
    await db.open_database(settings)
    try:
        seeded = Seeded(sale_stock=sale_stock)
        for v in range(vendors):
            vendor_id, token, product_ids = await _vendor_with_products(v, products_per_vendor)
            if v == 0:
                from livecart.models.catalog import Vendor

                sale = await catalog.create_product(
                    await Vendor.get(id=vendor_id), name="Flash sale item", price=Decimal("9.99"),
                    stock=sale_stock, description="Limited stock", image_url=None,
                )
                seeded.sale_product_id = sale.id
                seeded.seller_token = token
                product_ids = [sale.id, *product_ids]
            seeded.seller_tokens.append(token)
            seeded.stream_product_ids.append(product_ids)
            seeded.live_stream_ids.append(await _live_stream(vendor_id, f"Bench live {v}", product_ids))
        seeded.stream_id = seeded.live_stream_ids[0]
        author_ids = []
        for c in range(commenters):
            user_id, token = await _account(f"bench-fan-{c}")
            author_ids.append(user_id)
            seeded.commenter_tokens.append(token)
        await _comments(seeded.stream_id, author_ids, comments)
        seeded.comments_on_stream = comments
        for b in range(buyers):
            seeded.buyer_tokens.append((await _account(f"bench-buyer-{b}"))[1])
        seeded.viewer_tokens = await _accounts("bench-viewer", viewers) if viewers else []
        return seeded
    finally:
        await db.close_database()
