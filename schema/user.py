"""Accounts in the schema: User, AuthPayload, and the auth mutations."""
from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

import strawberry
from strawberry.types import Info

from livecart.models import user as m
from livecart.resolvers import user as r
from livecart.schema.facts import caller_dependent
from livecart.schema.permissions import IsAuthenticated

if TYPE_CHECKING:
    from livecart.schema.catalog import Vendor


@strawberry.type
class User:
    id: strawberry.ID
    username: str

    @classmethod
    def from_model(cls, user: m.User) -> "User":
        return cls(id=strawberry.ID(str(user.id)), username=user.username)

    @strawberry.field(description="The seller profile, for a user who sells.")
    async def vendor(self, info: Info) -> Annotated["Vendor", strawberry.lazy("livecart.schema.catalog")] | None:
        from livecart.schema.catalog import Vendor

        vendor = await r.vendor_of_user(info, int(self.id))
        return Vendor.from_model(vendor) if vendor else None


async def user_type(info: Info, user_id: int) -> User:
    return User.from_model(await r.user_by_id(info, user_id))


@strawberry.type
class AuthPayload:
    token: str
    user: User


@strawberry.type
class UserQuery:
    @strawberry.field(description="The caller; null when anonymous.", metadata=caller_dependent())
    async def me(self, info: Info) -> User | None:
        user = await info.context.user()
        return User.from_model(user) if user else None


@strawberry.type
class UserMutation:
    @strawberry.mutation
    async def register(self, info: Info, username: str, password: str) -> AuthPayload:
        user, token = await r.register(info, username, password)
        return AuthPayload(token=token, user=User.from_model(user))

    @strawberry.mutation
    async def login(self, info: Info, username: str, password: str) -> AuthPayload:
        user, token = await r.login(info, username, password)
        return AuthPayload(token=token, user=User.from_model(user))

    @strawberry.mutation(description="Revokes the token the request came with.", permission_classes=[IsAuthenticated])
    async def logout(self, info: Info) -> bool:
        return await r.logout(info)

    @strawberry.mutation(description="Gives the caller a seller profile.", permission_classes=[IsAuthenticated])
    async def become_vendor(self, info: Info, name: str) -> Annotated["Vendor", strawberry.lazy("livecart.schema.catalog")]:
        from livecart.schema.catalog import Vendor

        return Vendor.from_model(await r.make_vendor(info, name))
