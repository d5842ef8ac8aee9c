"""Batch functions shared by the domains' DataLoaders: one statement per batch."""
from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from typing import Any

from tortoise.models import Model


async def rows_by_id(model: type[Model], keys: Sequence[int]) -> list[Any]:
    rows = {row.pk: row for row in await model.filter(pk__in=set(keys))}
    return [rows.get(key) for key in keys]


async def rows_grouped(model: type[Model], column: str, keys: Sequence[int], order_by: Sequence[str]) -> list[list]:
    groups: dict[int, list] = defaultdict(list)
    for row in await model.filter(**{f"{column}__in": set(keys)}).order_by(*order_by):
        groups[getattr(row, column)].append(row)
    return [groups.get(key, []) for key in keys]
