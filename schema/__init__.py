"""The root schema, merged from each domain's Query, Mutation and Subscription."""
from __future__ import annotations

import functools

from strawberry.schema.config import StrawberryConfig
from strawberry.tools import merge_types

from schema.catalog import CatalogMutation, CatalogQuery
from schema.commerce import CommerceMutation, CommerceQuery
from schema.engagement import EngagementMutation
from schema.document_cache import DocumentCache, DocumentStore
from schema.extensions import ErrorCodes, LivecartSchema
from schema.inputs import StorableText
from schema.limits import limit_extensions
from schema.moderation import ModerationMutation, ModerationQuery
from schema.live import LiveMutation, LiveQuery, LiveSubscription
from schema.realtime import RealtimeSubscription
from schema.scalars import SCALAR_OVERRIDES
from schema.stream import StreamMutation, StreamQuery
from schema.tracing import Traced
from schema.user import UserMutation, UserQuery
from server.query_cache import WritesMoveTheDataVersion
from server.settings import Settings

QUERIES = (UserQuery, CatalogQuery, StreamQuery, CommerceQuery, ModerationQuery, LiveQuery)
MUTATIONS = (
    UserMutation, CatalogMutation, EngagementMutation, StreamMutation, CommerceMutation, ModerationMutation, LiveMutation,
)
SUBSCRIPTIONS: tuple = (RealtimeSubscription, LiveSubscription)


def build_schema(settings: Settings | None = None) -> LivecartSchema:
    """The served schema; `settings` decide introspection and field suggestions (both off in production)."""
    settings = settings or Settings()
    query = merge_types("Query", QUERIES)
    mutation = merge_types("Mutation", MUTATIONS)
    subscription = merge_types("Subscription", SUBSCRIPTIONS) if SUBSCRIPTIONS else None
    return LivecartSchema(
        query=query,
        mutation=mutation,
        subscription=subscription,
        scalar_overrides=SCALAR_OVERRIDES,
        extensions=[
            *((Traced,) if settings.tracing else ()),  # first: the operation's span holds the others' work
            *limit_extensions(introspection=settings.introspection_enabled),
            StorableText,
            ErrorCodes,
            WritesMoveTheDataVersion,
            functools.partial(DocumentCache, DocumentStore()),  # last: the limits' own checks run first
        ],
        config=StrawberryConfig(disable_field_suggestions=settings.is_production),
    )
