"""Accounts: register, log in and out, the caller, and users by id."""
from __future__ import annotations

from collections.abc import Sequence

from strawberry.types import Info

from livecart.models import policy
from livecart.models import user as accounts
from livecart.models.catalog import Vendor, become_vendor
from livecart.models.errors import forbidden
from livecart.models.user import User
from livecart.resolvers.loaders import rows_by_id
from livecart.resolvers import ratelimit
from livecart.models import events


async def load_users(keys: Sequence[int]) -> list[User | None]:
    return await rows_by_id(User, keys)


async def load_vendor_by_user(keys: Sequence[int]) -> list[Vendor | None]:
    vendors = {v.user_id: v for v in await Vendor.filter(user_id__in=set(keys))}
    return [vendors.get(key) for key in keys]


async def user_by_id(info: Info, user_id: int) -> User | None:
    return await info.context.loader(load_users).load(user_id)


async def vendor_of_user(info: Info, user_id: int) -> Vendor | None:
    """policy.vendor_of, batched and kept for the request: a permission and its resolver share it."""
    return await info.context.loader(load_vendor_by_user).load(user_id)


async def seller_vendor(info: Info, user_id: int) -> Vendor:
    """The caller's vendor; FORBIDDEN (policy.NOT_A_SELLER) for a user who sells nothing."""
    vendor = await vendor_of_user(info, user_id)
    if vendor is None:
        raise forbidden(policy.NOT_A_SELLER)
    return vendor


async def register(info: Info, username: str, password: str) -> tuple[User, str]:
    await ratelimit.hit_address(info, ratelimit.REGISTER_ADDRESS)
    return await accounts.register(username, password, info.context.settings.token_ttl_seconds)


async def login(info: Info, username: str, password: str) -> tuple[User, str]:
    async with ratelimit.login_attempt(info, accounts.fold_username(username)):
        return await accounts.login(username, password, info.context.settings.token_ttl_seconds)


async def logout(info: Info) -> bool:
    token = info.context.token
    revoked = await accounts.revoke_token(token) if token else False
    info.context.forget_user()
    if revoked:  # after the commit: connections opened with it end too (server/ops.py)
        await info.context.broker.publish(events.AUTH_CHANNEL, events.token_revoked(accounts.hash_token(token)))
    return revoked


async def make_vendor(info: Info, name: str) -> Vendor:
    user = await info.context.require_user()
    await ratelimit.hit_address(info, ratelimit.VENDOR_ADDRESS)
    return await become_vendor(user.id, name)
