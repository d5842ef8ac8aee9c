"""Batch functions shared by the domains' DataLoaders (one statement per batch), and the loader
scope: which DataLoaders a resolver's `info.context.loader(...)` hands out."""
from __future__ import annotations

import asyncio
from collections import defaultdict
from collections.abc import Awaitable, Callable, Sequence
from contextvars import ContextVar
from typing import Any

from strawberry.dataloader import DataLoader
from tortoise.models import Model

BatchLoad = Callable[[Sequence[Any]], Awaitable[Sequence[Any]]]

# A WebSocket's Context lives as long as the connection, so its loaders would serve
# stale rows to later events. Each subscription event opens a fresh loader scope
# (new_loader_scope); it is task-local, so one operation's scope never leaks into another's.
_event_loaders: ContextVar[dict | None] = ContextVar("livecart_event_loaders", default=None)


def new_loader_scope() -> None:
    """Give the rest of this operation's current event fresh DataLoaders."""
    _event_loaders.set({})


class ShieldedLoader:
    """A DataLoader whose loads are shielded. Fields asking for the same key share one future, and
    graphql-core cancels a field's siblings when an error nulls their parent: a cancelled field
    awaiting that future directly would cancel it for every other field waiting on the key."""

    __slots__ = ("_loader",)

    def __init__(self, loader: DataLoader) -> None:
        self._loader = loader

    def load(self, key: Any) -> Awaitable[Any]:
        return asyncio.shield(self._loader.load(key))

    def __getattr__(self, name: str) -> Any:
        return getattr(self._loader, name)


def event_loaders() -> dict | None:
    """The current subscription event's loaders (None outside one: the request's own apply)."""
    return _event_loaders.get()


async def rows_by_id(model: type[Model], keys: Sequence[int]) -> list[Any]:
    rows = {row.pk: row for row in await model.filter(pk__in=set(keys))}
    return [rows.get(key) for key in keys]


async def rows_grouped(model: type[Model], column: str, keys: Sequence[int], order_by: Sequence[str]) -> list[list]:
    groups: dict[int, list] = defaultdict(list)
    for row in await model.filter(**{f"{column}__in": set(keys)}).order_by(*order_by):
        groups[getattr(row, column)].append(row)
    return [groups.get(key, []) for key in keys]
