"""Carts, orders and the purchases attributed to streams."""
from __future__ import annotations

import enum

from tortoise import fields
from tortoise.indexes import Index
from tortoise.migrations.constraints import CheckConstraint
from tortoise.models import Model

from models.fields import MoneyField

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
