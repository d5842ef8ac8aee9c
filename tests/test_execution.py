"""How documents execute (schema/execution.py, issue 13): a large result is completed over several
turns of the event loop, answering exactly what graphql-core answers in one; and an execution
leaves no reference cycle, so its context and everything loaded through it are freed when it ends."""
from __future__ import annotations

import asyncio
import gc
import weakref

import pytest
import strawberry
from strawberry.schema.schema import StrawberryGraphQLCoreExecutionContext

from livecart.schema import execution
from livecart.schema.execution import LivecartExecutionContext

TICKS = {"count": 0}


@strawberry.type
class Item:
    index: int

    @strawberry.field
    def tick(self) -> int:
        """The loop turns counted so far when this item is completed."""
        return TICKS["count"]

    @strawberry.field
    async def double(self) -> int:
        await asyncio.sleep(0)
        return self.index * 2

    @strawberry.field
    def strict(self) -> int:
        if self.index == 7:
            raise ValueError("item 7 fails")
        return self.index


@strawberry.type
class Query:
    @strawberry.field
    def items(self, n: int) -> list[Item]:
        return [Item(index=i) for i in range(n)]

    @strawberry.field
    async def later_items(self, n: int) -> list[Item | None]:
        await asyncio.sleep(0)
        return [Item(index=i) for i in range(n)]

    @strawberry.field
    def context_name(self, info: strawberry.Info) -> str:
        return type(info.context).__name__


def schema(execution_context_class) -> strawberry.Schema:
    return strawberry.Schema(query=Query, execution_context_class=execution_context_class)


async def counting_turns(stop: asyncio.Event) -> None:
    while not stop.is_set():
        TICKS["count"] += 1
        await asyncio.sleep(0)


async def execute_while_counting(query: str, execution_context_class) -> dict:
    stop = asyncio.Event()
    ticker = asyncio.create_task(counting_turns(stop))
    try:
        result = await schema(execution_context_class).execute(query)
    finally:
        stop.set()
        await ticker
    return {"data": result.data, "errors": [(e.message, e.path) for e in result.errors or []]}


@pytest.fixture
def tiny_slices(monkeypatch):
    """Every completion after a turn's first finds the slice spent: the most slicing there can be."""
    monkeypatch.setattr(execution, "SLICE_SECONDS", 0.0)


@pytest.mark.parametrize("field", ["items", "laterItems"])
async def test_a_large_list_is_completed_over_several_turns_of_the_loop(tiny_slices, field):
    query = f"{{ {field}(n: 50) {{ index tick double }} }}"
    sliced = await execute_while_counting(query, LivecartExecutionContext)
    ticks = [item["tick"] for item in sliced["data"][field]]
    assert ticks[-1] > ticks[0], "the loop got no turn while the list was completed"

    whole = await execute_while_counting(query, StrawberryGraphQLCoreExecutionContext)
    ticks = [item["tick"] for item in whole["data"][field]]
    assert ticks[-1] == ticks[0]  # graphql-core's own: one turn (what made /healthz wait)

    strip = lambda answer: [{k: v for k, v in item.items() if k != "tick"} for item in answer["data"][field]]  # noqa: E731
    assert strip(sliced) == strip(whole) == [{"index": i, "double": 2 * i} for i in range(50)]


async def test_a_failing_item_is_answered_as_graphql_core_answers_it(tiny_slices):
    for field in ("items", "laterItems"):
        query = f"{{ {field}(n: 20) {{ index strict double }} }}"
        sliced = await execute_while_counting(query, LivecartExecutionContext)
        whole = await execute_while_counting(query, StrawberryGraphQLCoreExecutionContext)
        assert sliced == whole
        assert sliced["errors"] == [("item 7 fails", [field, 7, "strict"])]


def test_a_synchronous_execution_is_not_sliced(tiny_slices):
    result = schema(LivecartExecutionContext).execute_sync("{ items(n: 30) { index } }")
    assert not result.errors
    assert result.data == {"items": [{"index": i} for i in range(30)]}


async def test_an_execution_leaves_its_context_to_reference_counting():
    class Context:
        pass

    collecting = gc.isenabled()
    gc.disable()  # only reference counting frees the context now
    try:
        for execution_context_class, freed in ((StrawberryGraphQLCoreExecutionContext, False), (LivecartExecutionContext, True)):
            context = Context()
            result = await schema(execution_context_class).execute("{ contextName laterItems(n: 3) { double } }", context_value=context)
            assert result.data["contextName"] == "Context"
            gone = weakref.ref(context)
            del context, result
            assert (gone() is None) is freed, execution_context_class.__name__
            gc.collect()
    finally:
        if collecting:
            gc.enable()
