"""The one place that reaches into strawberry for what its public API does not give.

strawberry.Schema keeps the graphql-core schema it built in a private attribute; shared
execution, validation of streamed documents and the field facts need that schema. The attribute
is read here only, checked, so an upgrade that renames it fails loudly here (and in
tests/test_engine_internals.py) instead of somewhere in a subscription.
"""
from __future__ import annotations

from typing import Any

from graphql import GraphQLSchema


def graphql_schema(schema: Any) -> GraphQLSchema:
    """The graphql-core schema behind a strawberry schema."""
    inner = getattr(schema, "_schema", None)
    if not isinstance(inner, GraphQLSchema):
        raise RuntimeError(
            f"strawberry {type(schema).__name__} has no graphql-core schema in `_schema`: "
            "the pinned strawberry-graphql version changed; see schema/internals.py"
        )
    return inner
