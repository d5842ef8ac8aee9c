"""Tortoise models and the domain operations on them, one module per domain."""
from livecart.models.catalog import Product, Vendor
from livecart.models.commerce import CartItem, Order, OrderItem, OrderStatus, StreamOrder
from livecart.models.engagement import InteractionType, StreamInteraction, StreamViewer, StreamViewerUser
# Every model module, now: Tortoise reads each model class's source (inspect.getsource, an ast.parse)
# when the class is made. Made here, that happens once, on the first import of any model, in the
# importing thread; left to Tortoise.init it happened inside a migration, in whatever thread ran it
# (the tests migrate in a worker thread; CPython 3.11.7's ast is not safe to parse from two at once).
from livecart.models import live, moderation  # noqa: F401
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
