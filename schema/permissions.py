"""Permission classes: who may read a field or run a mutation.

They raise the domain error themselves, so the client gets its code (and, for
UNAUTHENTICATED, a loginUrl that returns to the stream the call was about).
"""
from __future__ import annotations

from typing import Any

from strawberry.permission import BasePermission
from strawberry.types import Info

from livecart.models.errors import DomainError
from livecart.models.fields import parse_id
from livecart.resolvers.user import seller_vendor


def return_path_for(kwargs: dict[str, Any]) -> str | None:
    """The stream page to come back to after logging in; none for an id that names no page."""
    raw = kwargs.get("stream_id")
    if raw is None:
        return None
    try:
        return f"/live/{parse_id('streamId', raw)}"
    except DomainError:
        return None


class IsAuthenticated(BasePermission):
    depends_on_caller = True  # the fields it guards answer per caller (schema/facts.py)

    async def has_permission(self, source: Any, info: Info, **kwargs: Any) -> bool:
        await info.context.require_user(return_path_for(kwargs))
        return True


class IsVendor(BasePermission):
    depends_on_caller = True

    async def has_permission(self, source: Any, info: Info, **kwargs: Any) -> bool:
        user = await info.context.require_user(return_path_for(kwargs))
        await seller_vendor(info, user.id)  # models/policy.py's answer, kept for the resolver that follows
        return True
