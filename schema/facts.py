"""Facts about fields, declared once where the field is defined and collected from the schema.

- Caller-dependent: the field's value depends on who asks. Declared by the field's permission
  class (`depends_on_caller = True` on OwnerOnly, ModeratorOnly, IsAuthenticated, ...) or, for a
  field without one, by its metadata (`metadata=caller_dependent()`). A result that selects one
  is never shared between callers (the query cache; shared subscription results group by caller).
- Fed by: the event kinds a subscription field listens to (`metadata=fed_by(VIEWERS)`); the
  transport coalesces the queued results of a field fed only by kinds the hub coalesces
  (models/events.py declares those).

Everything that needs these facts asks the collected `FieldFacts` (see `facts_of`), never a
hand-kept list of names. Names, not types: an over-match only shares less.
"""
from __future__ import annotations

import weakref
from dataclasses import dataclass
from typing import Any

from graphql import GraphQLField, GraphQLSchema

from livecart.models.events import COALESCED_KINDS

CALLER_KEY = "livecart.caller_dependent"
FED_BY_KEY = "livecart.fed_by"


def caller_dependent(metadata: dict[str, Any] | None = None) -> dict[str, Any]:
    """Field metadata: its value depends on who asks (`metadata=caller_dependent(list_size(...))`)."""
    return {**(metadata or {}), CALLER_KEY: True}


def fed_by(kinds: frozenset[str], metadata: dict[str, Any] | None = None) -> dict[str, Any]:
    """Subscription field metadata: the event kinds it sends a result for."""
    return {**(metadata or {}), FED_BY_KEY: frozenset(kinds)}


def strawberry_field_of(field: GraphQLField) -> Any:
    return (field.extensions or {}).get("strawberry-definition")


def metadata_of(field: GraphQLField) -> dict[str, Any]:
    return getattr(strawberry_field_of(field), "metadata", None) or {}


def permissions_of(field: GraphQLField) -> list[type]:
    return list(getattr(strawberry_field_of(field), "permission_classes", None) or ())


def is_caller_dependent(field: GraphQLField) -> bool:
    if metadata_of(field).get(CALLER_KEY):
        return True
    return any(getattr(permission, "depends_on_caller", False) for permission in permissions_of(field))


def fed_kinds(field: GraphQLField) -> frozenset[str] | None:
    return metadata_of(field).get(FED_BY_KEY)


@dataclass(frozen=True)
class FieldFacts:
    caller_fields: frozenset[str]  # names of caller-dependent fields, on any type
    coalesced_subscriptions: frozenset[str]  # subscription fields fed only by coalesced kinds


_FACTS: "weakref.WeakKeyDictionary[GraphQLSchema, FieldFacts]" = weakref.WeakKeyDictionary()


def facts_of(schema: GraphQLSchema) -> FieldFacts:
    """The schema's field facts, collected once per schema."""
    facts = _FACTS.get(schema)
    if facts is None:
        facts = _FACTS[schema] = _collect(schema)
    return facts


def _collect(schema: GraphQLSchema) -> FieldFacts:
    caller: set[str] = set()
    for type_ in schema.type_map.values():
        fields = getattr(type_, "fields", None)
        if type_.name.startswith("__") or type_ is schema.mutation_type or not isinstance(fields, dict):
            continue
        for name, field in fields.items():
            if isinstance(field, GraphQLField) and is_caller_dependent(field):
                caller.add(name)
    coalesced: set[str] = set()
    if schema.subscription_type is not None:
        for name, field in schema.subscription_type.fields.items():
            kinds = fed_kinds(field)
            if kinds and kinds <= COALESCED_KINDS:
                coalesced.add(name)
    return FieldFacts(frozenset(caller), frozenset(coalesced))


# The facts of every schema built in this process (schema/__init__.py registers it), for the
# checks that see a document but not its schema. Before any is registered every document counts
# as caller-dependent: nothing is shared by mistake.
_registered_caller_fields: frozenset[str] | None = None


def register(schema: GraphQLSchema) -> FieldFacts:
    global _registered_caller_fields
    facts = facts_of(schema)
    _registered_caller_fields = facts.caller_fields | (_registered_caller_fields or frozenset())
    return facts


def caller_fields() -> frozenset[str] | None:
    """Every registered schema's caller-dependent field names; None before any is registered."""
    return _registered_caller_fields
