"""Tortoise models and the domain operations on them, one module per domain."""
from livecart.models.catalog import Product, Vendor
from livecart.models.commerce import CartItem, Order, OrderItem, OrderStatus, StreamOrder
from livecart.models.engagement import InteractionType, StreamInteraction, StreamViewer, StreamViewerUser
from livecart.models.stream import LiveStream, SavedStream, StreamProduct, StreamStatus
from livecart.models.user import AuthToken, User

__all__ = [
    "AuthToken", "CartItem", "InteractionType", "LiveStream", "Order", "OrderItem", "OrderStatus",
    "Product", "SavedStream", "StreamInteraction", "StreamOrder", "StreamProduct", "StreamStatus",
    "StreamViewer", "StreamViewerUser", "User", "Vendor",
]

MODEL_MODULES = [
    "livecart.models.user", "livecart.models.catalog", "livecart.models.stream", "livecart.models.engagement", "livecart.models.commerce", "livecart.models.moderation", "livecart.models.live",
    "livecart.models.outbox",
]
