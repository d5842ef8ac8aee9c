"""Carts, orders and the purchases attributed to streams."""
from __future__ import annotations

import datetime as dt
import enum
from dataclasses import asdict, dataclass
from dataclasses import fields as fields_of
from decimal import Decimal

from tortoise import fields
from tortoise.indexes import Index
from tortoise.migrations.constraints import CheckConstraint
from tortoise.models import Model

from models.fields import MoneyField, to_money
from models.stream import LiveStream, duration_seconds

MAX_LINE_QUANTITY = 100


class OrderStatus(str, enum.Enum):
    PLACED = "placed"
    CANCELLED = "cancelled"


class CartItem(Model):
    id = fields.IntField(primary_key=True)
    user = fields.ForeignKeyField("models.User", related_name="cart_items", on_delete=fields.CASCADE)
    product = fields.ForeignKeyField("models.Product", related_name="cart_items", on_delete=fields.CASCADE)
    quantity = fields.IntField()
    stream = fields.ForeignKeyField("models.LiveStream", related_name="cart_items", on_delete=fields.SET_NULL, null=True)
    added_at = fields.DatetimeField(auto_now_add=True)

    class Meta:
        table = "cart_items"
        unique_together = (("user", "product"),)
        constraints = (
            CheckConstraint(check=f"quantity BETWEEN 1 AND {MAX_LINE_QUANTITY}", name="cart_items_quantity_valid"),
        )


class Order(Model):
    id = fields.IntField(primary_key=True)
    # Orders are financial records: deleting a buyer or product never erases them.
    buyer = fields.ForeignKeyField("models.User", related_name="orders", on_delete=fields.RESTRICT)
    status = fields.CharEnumField(OrderStatus, max_length=16, default=OrderStatus.PLACED)
    total = MoneyField()
    created_at = fields.DatetimeField(auto_now_add=True)

    class Meta:
        table = "orders"
        indexes = (Index(fields=("buyer_id", "created_at"), name="orders_idx_buyer_id"),)
        constraints = (CheckConstraint(check="total >= 0", name="orders_total_not_negative"),)


class OrderItem(Model):
    id = fields.IntField(primary_key=True)
    order = fields.ForeignKeyField("models.Order", related_name="items", on_delete=fields.CASCADE)
    product = fields.ForeignKeyField("models.Product", related_name="order_items", on_delete=fields.RESTRICT)
    quantity = fields.IntField()
    unit_price = MoneyField()
    amount = MoneyField()
    stream = fields.ForeignKeyField("models.LiveStream", related_name="order_items", on_delete=fields.SET_NULL, null=True)

    class Meta:
        table = "order_items"
        indexes = (Index(fields=("order_id",), name="order_items_idx_order_id"),)
        constraints = (
            CheckConstraint(check="quantity > 0", name="order_items_quantity_positive"),
        )


class StreamOrder(Model):
    """A purchase attributed to the stream it was made on (the seller's figures)."""

    id = fields.IntField(primary_key=True)
    stream = fields.ForeignKeyField("models.LiveStream", related_name="stream_orders", on_delete=fields.CASCADE)
    order = fields.ForeignKeyField("models.Order", related_name="stream_orders", on_delete=fields.CASCADE)
    product = fields.ForeignKeyField("models.Product", related_name="stream_orders", on_delete=fields.RESTRICT)
    vendor = fields.ForeignKeyField("models.Vendor", related_name="stream_orders", on_delete=fields.RESTRICT)
    buyer = fields.ForeignKeyField("models.User", related_name="stream_orders", on_delete=fields.RESTRICT)
    quantity = fields.IntField()
    amount = MoneyField()
    created_at = fields.DatetimeField(auto_now_add=True)

    class Meta:
        table = "stream_orders"
        indexes = (
            Index(fields=("stream_id",), name="stream_orders_idx_stream_id"),
            Index(fields=("vendor_id",), name="stream_orders_idx_vendor_id"),
            Index(fields=("created_at",), name="stream_orders_idx_created_at"),
        )
        constraints = (
            CheckConstraint(check="quantity > 0", name="stream_orders_quantity_positive"),
            CheckConstraint(check="amount >= 0", name="stream_orders_amount_not_negative"),
        )


# ---------------------------------------------------------------- the seller's figures

@dataclass(frozen=True)
class StreamFigures:
    """Every figure of a stream, read from the counters maintained on its row."""

    stream_id: int
    duration_seconds: int
    viewer_count: int
    unique_viewers: int
    peak_viewers: int
    likes: int
    dislikes: int
    comments: int
    orders: int
    items_sold: int
    revenue: Decimal

    @classmethod
    def of(cls, stream: LiveStream, now: dt.datetime | None = None) -> StreamFigures:
        return cls(
            stream_id=stream.id,
            duration_seconds=duration_seconds(stream, now),
            viewer_count=stream.viewer_count,
            unique_viewers=stream.unique_viewers,
            peak_viewers=stream.peak_viewers,
            likes=stream.likes,
            dislikes=stream.dislikes,
            comments=stream.comment_count,
            orders=stream.order_count,
            items_sold=stream.items_sold,
            revenue=to_money(stream.revenue),
        )

    def to_json(self) -> dict:
        """The snapshot kept on a saved stream; money as a string so it stays exact."""
        snapshot = asdict(self)
        snapshot["revenue"] = format(self.revenue, "f")
        return snapshot

    @classmethod
    def from_json(cls, stream_id: int, snapshot: dict) -> StreamFigures:
        values = {f.name: snapshot.get(f.name, 0) for f in fields_of(cls)}
        values["stream_id"] = stream_id
        values["revenue"] = to_money(snapshot.get("revenue", "0"))
        return cls(**values)


async def stream_figures(stream_id: int) -> StreamFigures | None:
    """The figures now: one statement, never cached, so a subscription sees each change."""
    stream = await LiveStream.get_or_none(id=stream_id)
    return StreamFigures.of(stream) if stream else None
