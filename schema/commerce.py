"""Carts, orders and the seller's figures in the schema."""
from __future__ import annotations

import strawberry


@strawberry.type
class OwnerFields:
    """LiveStream's owner-only fields (stats, active viewers, orders, stream key), mixed into LiveStream."""
