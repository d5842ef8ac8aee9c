"""The operation's span and its resolvers' spans where they do I/O (issue 16), added to the
schema only while TRACING=on (schema/__init__.py).

The operation's span is named as OpenTelemetry's GraphQL conventions say: `{type} {name}`
(`mutation postComment`), or the type alone for an anonymous operation, with
`graphql.operation.type`, `graphql.operation.name` and `graphql.document`. A resolver gets a span
only when it is asynchronous (a database read, a DataLoader, a publish): plain attribute reads
would only add noise and cost.
"""
from __future__ import annotations

import inspect
from collections.abc import Iterator
from typing import Any

from strawberry.extensions import SchemaExtension

from livecart.subscriptions import tracing


class Traced(SchemaExtension):
    def on_operation(self) -> Iterator[None]:
        with tracing.span("GraphQL operation") as span:
            yield
            if span is None:
                return
            context = self.execution_context
            try:
                kind = context.operation_type.value
            except Exception:  # noqa: BLE001 - a document that did not parse has no type: the span says so
                kind = "invalid"
            name = context.operation_name
            span.update_name(f"{kind} {name}" if name else kind)
            span.set_attribute("graphql.operation.type", kind)
            if name:
                span.set_attribute("graphql.operation.name", name)
            if isinstance(context.query, str):
                span.set_attribute("graphql.document", context.query)

    def resolve(self, _next: Any, root: Any, info: Any, *args: Any, **kwargs: Any) -> Any:
        result = _next(root, info, *args, **kwargs)
        if inspect.isawaitable(result):
            return self._traced(result, info)
        return result

    @staticmethod
    async def _traced(awaitable: Any, info: Any) -> Any:
        with tracing.span(
            f"resolve {info.parent_type.name}.{info.field_name}",
            graphql__field__name=info.field_name, graphql__field__parent_type=info.parent_type.name,
        ):
            return await awaitable
