"""The root schema, merged from each domain's Query, Mutation and Subscription."""
from __future__ import annotations

import functools
from collections.abc import Sequence
from typing import Any, Protocol

from strawberry.schema.config import StrawberryConfig
from strawberry.tools import merge_types

from livecart.schema.catalog import CatalogMutation, CatalogQuery
from livecart.schema.commerce import CommerceMutation, CommerceQuery
from livecart.schema.engagement import EngagementMutation
from livecart.schema.execution import LivecartExecutionContext
from livecart.schema import facts
from livecart.schema.document_cache import DocumentCache, DocumentStore
from livecart.schema.internals import graphql_schema
from livecart.schema.extensions import ErrorCodes, LivecartSchema
from livecart.schema.inputs import StorableText
from livecart.schema.limits import limit_extensions
from livecart.schema.moderation import ModerationMutation, ModerationQuery
from livecart.schema.live import LiveMutation, LiveQuery, LiveSubscription
from livecart.schema.realtime import RealtimeSubscription
from livecart.schema.scalars import SCALAR_OVERRIDES
from livecart.schema.stream import StreamMutation, StreamQuery
from livecart.schema.tracing import Traced
from livecart.schema.user import UserMutation, UserQuery

QUERIES = (UserQuery, CatalogQuery, StreamQuery, CommerceQuery, ModerationQuery, LiveQuery)
MUTATIONS = (
    UserMutation, CatalogMutation, EngagementMutation, StreamMutation, CommerceMutation, ModerationMutation, LiveMutation,
)
SUBSCRIPTIONS: tuple = (RealtimeSubscription, LiveSubscription)


class SchemaSettings(Protocol):
    """The settings values the schema reads (server/settings.py's Settings has them)."""

    tracing: bool

    @property
    def introspection_enabled(self) -> bool: ...

    @property
    def is_production(self) -> bool: ...


class _Defaults:
    """Settings()'s values for these: no tracing, introspection and suggestions on."""

    tracing = False
    introspection_enabled = True
    is_production = False


def build_schema(settings: SchemaSettings | None = None, *, extensions: Sequence[Any] = ()) -> LivecartSchema:
    """The served schema; `settings` decide tracing, introspection and field suggestions (the last
    two off in production). `extensions`: the server's own (server/app.py passes the query cache's),
    run after the error codes and before the document cache."""
    settings = settings or _Defaults()
    query = merge_types("Query", QUERIES)
    mutation = merge_types("Mutation", MUTATIONS)
    subscription = merge_types("Subscription", SUBSCRIPTIONS) if SUBSCRIPTIONS else None
    schema = LivecartSchema(
        query=query,
        mutation=mutation,
        subscription=subscription,
        scalar_overrides=SCALAR_OVERRIDES,
        execution_context_class=LivecartExecutionContext,  # large results in slices, no cycle (issue 13)
        extensions=[
            *((Traced,) if settings.tracing else ()),  # first: the operation's span holds the others' work
            *limit_extensions(introspection=settings.introspection_enabled),
            StorableText,
            ErrorCodes,
            *extensions,
            functools.partial(DocumentCache, DocumentStore()),  # last: the limits' own checks run first
        ],
        config=StrawberryConfig(disable_field_suggestions=settings.is_production),
    )
    facts.register(graphql_schema(schema))  # the fields' declared facts, for the checks that see only a document
    return schema
