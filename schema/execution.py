"""How documents execute: large results in slices, and without a reference cycle (issue 13).

Both keep one costly document (within the cost limit, schema/cost.py) from holding the event loop,
and so every other request, /healthz included, for tens of ms.

Slices.

graphql-core completes a result as its data arrives: when a list's rows load, every item's fields
are resolved in one go, and when a DataLoader answers, every field that waited for it wakes in the
same turn of the event loop. Within the cost limit (schema/cost.py) that is up to a few thousand
fields at once: tens of ms during which nothing else is served, /healthz included.

Here the work of one turn of the loop is bounded by time: the first completion in a turn opens a
slice of SLICE_SECONDS; a completion that finds the slice spent waits for a later turn (the loop
polls its sockets in between), and so does the rest of a list whose items find it spent. Small
documents never fill a slice and run exactly as before; a large one is spread over several turns,
which costs it a little CPU (a few µs per postponed completion) and no change in what it answers.

No cycle. graphql-core's executor keeps its resolver helpers (GraphQLResolveInfoHelpers, bound
methods of itself) on itself: a reference cycle through the context, its DataLoaders and every row
they loaded. Each execution's objects, thousands for a large one, were then freed by the garbage
collector instead of when the execution ended: one or two full collections a second under a stream of
large documents, each one a block of 25 to 90 ms, and near a third of the document's CPU. The helpers
here reach the executor through a weak reference.
"""
from __future__ import annotations

import asyncio
import time
import weakref
from collections.abc import Sequence
from typing import Any

from graphql import GraphQLResolveInfoHelpers
from graphql.pyutils import gather_with_cancel
from strawberry.schema.schema import StrawberryGraphQLCoreExecutionContext

# What one turn of the event loop may spend completing results before it lets others in. A
# /healthz waits about two turns behind a large document: twice this plus one field's work.
SLICE_SECONDS = 0.002


class _Slice:
    """The current slice of the running loop: opened by the first check in a turn of the loop,
    closed by a callback queued behind everything that turn runs."""

    __slots__ = ("loop", "opened_at")

    def __init__(self) -> None:
        self.loop: asyncio.AbstractEventLoop | None = None
        self.opened_at: float | None = None

    def spent(self) -> bool:
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:  # executed synchronously (schema.execute_sync): nothing to share the time with
            return False
        now = time.perf_counter()
        if self.opened_at is None or self.loop is not loop:  # none open on this loop: open one
            self.loop, self.opened_at = loop, now
            loop.call_soon(self._close, loop)
            return False
        return now - self.opened_at > SLICE_SECONDS

    def _close(self, loop: asyncio.AbstractEventLoop) -> None:
        if self.loop is loop:
            self.opened_at = None


_SLICE = _Slice()


async def next_slice() -> None:
    """Wait until a turn of the loop has time for more (at once when this one still has)."""
    while _SLICE.spent():
        await asyncio.sleep(0)


def _weak_helpers(executor: StrawberryGraphQLCoreExecutionContext) -> GraphQLResolveInfoHelpers:
    reach = weakref.ref(executor)
    return GraphQLResolveInfoHelpers(
        gather=lambda values: reach().gather_async_work(values),  # type: ignore[union-attr]
        track=lambda values: reach().track_async_work(values),  # type: ignore[union-attr]
    )


class LivecartExecutionContext(StrawberryGraphQLCoreExecutionContext):
    """strawberry's execution context, whose completions wait for a slice with room, and which
    leaves no reference cycle behind (above)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.async_helpers = _weak_helpers(self)

    def create_sub_executor(self, *args: Any, **kwargs: Any) -> Any:  # @defer's: a shallow copy, its own helpers
        sub_executor = super().create_sub_executor(*args, **kwargs)
        sub_executor.async_helpers = _weak_helpers(sub_executor)
        return sub_executor

    async def complete_awaitable_value(self, return_type, field_details_list, info, path, result, position_context):
        """graphql-core's, waiting for a turn with room between the resolver's value and its
        completion: a DataLoader's batch wakes many such fields at once."""
        return await self._complete_in_turn(return_type, field_details_list, info, path, result, position_context)

    async def complete_awaitable_list_item_value(self, item, item_type, field_details_list, info, item_path, position_context):
        """graphql-core's, with the same wait as complete_awaitable_value."""
        return await self._complete_in_turn(item_type, field_details_list, info, item_path, item, position_context)

    async def _complete_in_turn(self, type_, field_details_list, info, path, awaitable, position_context):
        try:
            resolved = await self.with_abort_signal(awaitable)
            if _SLICE.spent():
                await next_slice()
            completed = self.complete_value(type_, field_details_list, info, path, resolved, position_context)
            if self.is_awaitable(completed):
                completed = await completed
        except Exception as raw_error:
            self.handle_field_error(raw_error, type_, field_details_list, path)
            return None
        return completed

    def complete_iterable_value(self, item_type, field_details_list, info, path, items, position_context):
        """As graphql-core's, except that the items left when the slice is spent are completed
        in later turns. Only for a list already in memory (what our resolvers return) without
        @stream; anything else is graphql-core's own."""
        if not isinstance(items, (list, tuple)) or self.get_stream_usage(field_details_list, path) is not None:
            return super().complete_iterable_value(item_type, field_details_list, info, path, items, position_context)
        completed: list[Any] = []
        pending: list[int] = []  # indexes of awaitable entries of `completed`
        try:
            for index, item in enumerate(items):
                if _SLICE.spent():
                    return self._complete_later(item_type, field_details_list, info, path, items, position_context, index, completed, pending)
                self._complete_item(item_type, field_details_list, info, path, item, index, position_context, completed, pending)
        except Exception:
            self._settle(completed, pending)
            raise
        if not pending:
            return completed
        return self._gather(completed, pending)

    def _complete_item(self, item_type, field_details_list, info, path, item, index, position_context, completed, pending) -> None:
        item_path = path.add_key(index, None)
        if self.is_awaitable(item):
            completed.append(self.complete_awaitable_list_item_value(item, item_type, field_details_list, info, item_path, position_context))
            pending.append(index)
        elif self.complete_list_item_value(item, completed, item_type, field_details_list, info, item_path, position_context):
            pending.append(index)

    async def _complete_later(self, item_type, field_details_list, info, path, items, position_context, start, completed, pending) -> list[Any]:
        try:
            for index in range(start, len(items)):
                await next_slice()
                self._complete_item(item_type, field_details_list, info, path, items[index], index, position_context, completed, pending)
        except Exception:
            self._settle(completed, pending)
            raise
        except asyncio.CancelledError:  # the request is gone: what was started is not run
            for index in pending:
                close = getattr(completed[index], "close", None)
                if close is not None:
                    close()
            raise
        if not pending:
            return completed
        return await self._gather(completed, pending)

    def _settle(self, completed: list[Any], pending: Sequence[int]) -> None:
        # As graphql-core does when an item fails: the started ones still settle, in the background.
        awaitables = [completed[index] for index in pending if index < len(completed)]
        if awaitables:
            self.settle_in_background(awaitables)

    async def _gather(self, completed: list[Any], pending: list[int]) -> list[Any]:
        if len(pending) == 1:
            completed[pending[0]] = await completed[pending[0]]
            return completed
        for index, value in zip(pending, await gather_with_cancel(*(completed[i] for i in pending)), strict=True):
            completed[index] = value
        return completed
