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
        await _leave_half_started(context, error)
        raise
    try:
        yield connection
    except BaseException as error:
        if not await context.__aexit__(type(error), error, error.__traceback__):
            raise
    else:
        await context.__aexit__(None, None, None)


async def _leave_half_started(context: Any, error: BaseException) -> None:
    """Give back what a transaction context took before it failed to start. Tortoise's contexts
    set `token` (the connection made current for this task) once they hold the connection and
    before they await BEGIN; their `__aexit__` rolls back whatever BEGIN did, then releases the
    connection. Without `token` nothing was taken (the wait for the lock or the pool was what got
    cancelled). tests/test_database.py cancels a transaction in BEGIN on both databases: it fails
    if an upgrade of Tortoise changes this."""
    if getattr(context, "token", None) is None:
        return
    # The rollback may fail on a connection whose BEGIN was interrupted; the release still runs
    # (Tortoise's `finally`), and the caller re-raises the original error.
    with contextlib.suppress(Exception):
        await context.__aexit__(type(error), error, error.__traceback__)
