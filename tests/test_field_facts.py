"""Facts about fields are declared on the fields (schema/facts.py) and everything else derives
from them: a field that answers per caller and is not marked would let the query cache or a
shared subscription result serve one caller's answer to another."""
from __future__ import annotations

from typing import Any

import strawberry
from graphql import GraphQLField, GraphQLSchema
from strawberry.types import Info

from livecart.schema import build_schema
from livecart.schema import facts
from livecart.schema.commerce import OwnerOnly
from livecart.schema.document_cache import selects_caller_fields
from livecart.schema.internals import graphql_schema
from livecart.schema.moderation import ModeratorOnly
from livecart.models import events
from livecart.subscriptions import hub

OWNER_PERMISSIONS = (OwnerOnly, ModeratorOnly)
OWNER_DESCRIPTIONS = ("Owner only", "Owner and moderators")


def owner_only(field: GraphQLField) -> bool:
    """Guarded by an owner permission, or documented as owner-only."""
    if any(issubclass(p, OWNER_PERMISSIONS) for p in facts.permissions_of(field)):
        return True
    return (field.description or "").startswith(OWNER_DESCRIPTIONS)


def unmarked_owner_fields(schema: GraphQLSchema) -> list[str]:
    """Owner-only fields that are not caller-dependent. Root subscription fields are left out: their
    resolvers check the caller before a subscriber joins a group, and every owner gets the same."""
    found = []
    for type_ in schema.type_map.values():
        fields = getattr(type_, "fields", None)
        if type_.name.startswith("__") or type_ in (schema.mutation_type, schema.subscription_type) or not isinstance(fields, dict):
            continue
        for name, field in fields.items():
            if owner_only(field) and not facts.is_caller_dependent(field):
                found.append(f"{type_.name}.{name}")
    return found


def test_every_owner_only_field_is_marked_caller_dependent():
    schema = graphql_schema(build_schema())
    owner_fields = [f for t in schema.type_map.values() for f in (getattr(t, "fields", None) or {}).values()
                    if isinstance(f, GraphQLField) and owner_only(f)]
    assert len(owner_fields) >= 5  # stats, activeViewers, orders, streamKey, media, bidders, heldComments ...
    assert unmarked_owner_fields(schema) == []


def test_an_owner_only_field_left_unmarked_is_found():
    class Forgetful(OwnerOnly):
        depends_on_caller = False  # a new owner permission that forgot to say so

    @strawberry.type
    class Query:
        @strawberry.field(permission_classes=[Forgetful])
        def secret(self, info: Info) -> int:
            return 1

        @strawberry.field(description="Owner only: the seller's takings.")
        def takings(self) -> int:
            return 2

        @strawberry.field(description="Owner only: marked.", metadata=facts.caller_dependent())
        def marked(self) -> int:
            return 3

    schema = graphql_schema(strawberry.Schema(Query))
    assert sorted(unmarked_owner_fields(schema)) == ["Query.secret", "Query.takings"]


def test_caller_dependent_fields_are_collected_from_the_schema():
    collected = facts.facts_of(graphql_schema(build_schema())).caller_fields
    # by permission class (OwnerOnly, ModeratorOnly, IsAuthenticated) and by metadata
    assert {"stats", "streamKey", "media", "heldComments", "moderationLog", "me", "myReaction", "cart", "bidders"} <= collected
    assert not {"liveStreams", "stream", "comments", "title"} & collected
    assert selects_caller_fields("{ me { id } }")
    assert selects_caller_fields("query($s: ID!) { stream(id: $s) { title stats { likes } } }")
    assert not selects_caller_fields("{ liveStreams { id title } }")


def test_coalescing_follows_the_events_that_feed_each_subscription():
    schema = graphql_schema(build_schema())
    subscriptions: dict[str, Any] = schema.subscription_type.fields
    for name, field in subscriptions.items():
        kinds = facts.fed_kinds(field)
        assert kinds, f"subscription {name} declares no events (fed_by)"
        assert kinds <= events.KINDS.keys(), name
    coalesced = facts.facts_of(schema).coalesced_subscriptions
    assert coalesced == {"viewerCount", "reactionsChanged", "streamStats"}
    assert all(all(k in hub.COALESCED for k in facts.fed_kinds(subscriptions[n])) for n in coalesced)
    assert set(hub.COALESCED) == events.COALESCED_KINDS
    assert "stats_changed" not in events.STATS_SOURCES and "viewers_changed" in events.STATS_SOURCES
