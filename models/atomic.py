"""`atomic()`: Tortoise's `in_transaction()`, safe to cancel while the transaction starts.

Tortoise's transaction context takes the connection (SQLite: the lock on its one connection;
PostgreSQL: a connection from the pool) and then awaits BEGIN, all inside `__aenter__`. A task
cancelled during that await (a request whose client went away, a WebSocket operation ended by its
socket closing) raises out of `__aenter__`, so `__aexit__` never runs and the lock or the pooled
connection is never given back. On SQLite every later write then waits forever: a viewer who left
the live page while its joinStream was starting stopped the embedded server's writes for good (a
fresh-clone run's browser test: the next registration never answered). On PostgreSQL the pool
loses a connection each time.

Every transaction in livecart goes through `atomic()` (models/outbox.transaction too), so this is
the one place that knows how Tortoise enters a transaction.
"""
from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from typing import Any

from tortoise.transactions import in_transaction


@contextlib.asynccontextmanager
async def atomic() -> AsyncIterator[Any]:
    """`async with atomic() as connection:` one transaction (a savepoint inside another)."""
    context = in_transaction()
    try:
        connection = await context.__aenter__()
    except BaseException as error:
        if _holds_connection(context):
            # The rollback may fail on a connection whose BEGIN was interrupted; the release
            # still runs (Tortoise's `finally`), and the original error is the one raised.
            with contextlib.suppress(Exception):
                await _leave(context, error)
        raise
    try:
        yield connection
    except BaseException as error:
        await _leave(context, error)  # Tortoise's contexts roll back and never swallow the error
        raise
    await context.__aexit__(None, None, None)


def _holds_connection(context: Any) -> bool:
    """Whether a transaction context that failed to start took its connection. Tortoise's
    contexts set `token` (the connection made current for this task) once they hold the
    connection and before they await BEGIN; without it, the wait for the lock or the pool is what
    failed, and nothing was taken. tests/test_database.py cancels a transaction in BEGIN on both
    databases: it fails if an upgrade of Tortoise changes this."""
    return getattr(context, "token", None) is not None


async def _leave(context: Any, error: BaseException) -> None:
    """The context's own exit for a failed transaction: roll back, then give the connection back."""
    await context.__aexit__(type(error), error, error.__traceback__)
