"""Tortoise models and the domain operations on them, one module per domain."""
from models.catalog import Product, Vendor
from models.commerce import CartItem, Order, OrderItem, OrderStatus, StreamOrder
from models.engagement import InteractionType, StreamInteraction, StreamViewer, StreamViewerUser
from models.stream import LiveStream, SavedStream, StreamProduct, StreamStatus
from models.user import AuthToken, User

__all__ = [
    "AuthToken", "CartItem", "InteractionType", "LiveStream", "Order", "OrderItem", "OrderStatus",
    "Product", "SavedStream", "StreamInteraction", "StreamOrder", "StreamProduct", "StreamStatus",
    "StreamViewer", "StreamViewerUser", "User", "Vendor",
]

MODEL_MODULES = [
    "models.user", "models.catalog", "models.stream", "models.engagement", "models.commerce", "models.moderation", "models.live",
]
