"""Query cost: how many objects one document may make the server resolve, estimated before it runs.

In the manner of the IBM GraphQL cost specification (`@cost`, `@listSize`): every field costs 1
each time it can be resolved, a leaf (scalar, enum) as much as an object (resolving a field is
what a query's CPU time goes to, about as much for either), and a list multiplies the cost of its
items (1 for the item, plus its fields) by its bound. Every list field
declares that bound where it is defined (`list_size` in its strawberry field's metadata): either
the argument that sizes it (`first`, `limit`) with that argument's maximum, or a fixed size the
domain guarantees. A written literal counts as written (capped by the maximum); a variable or an
absent argument counts as its maximum or default (the document is validated once, whatever the
variables: schema/document_cache.py). Aliases and fragments count as many times as they are
written, so the estimate never undercounts what graphql-core executes.

Over MAX_COST the document is refused before anything runs: QUERY_TOO_COMPLEX with
extensions.cost and extensions.limit (MAX_COST), on HTTP and WebSocket alike (the rule is one of
the schema's validation rules). A list field without a declared bound fails the schema test
(tests/test_security.py), so a new list cannot slip through unbounded.
"""
from __future__ import annotations

import functools
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from graphql import (
    FieldNode,
    FragmentSpreadNode,
    GraphQLError,
    GraphQLField,
    GraphQLList,
    GraphQLNonNull,
    GraphQLObjectType,
    InlineFragmentNode,
    IntValueNode,
    OperationDefinitionNode,
    SelectionSetNode,
    ValidationContext,
    ValidationRule,
    Visitor,
    get_named_type,
    is_leaf_type,
    visit,
)
from strawberry.extensions import AddValidationRules, SchemaExtension

from livecart.models.errors import ErrorCode

MAX_COST = 3500
# An answer (HTTP body, or one WebSocket result) larger than this is replaced by an error: text
# fields are bounded (a product's description at 5,000 characters) but many of them add up.
MAX_RESPONSE_BYTES = 2 * 1024 * 1024
LIST_SIZE_KEY = "livecart.listSize"


@dataclass(frozen=True)
class ListSize:
    """A list's bound: `argument`'s value up to `maximum` (`default` when absent), or `maximum` alone."""

    maximum: int
    argument: str | None = None
    default: int | None = None


def list_size(maximum: int, argument: str | None = None, default: int | None = None) -> dict[str, ListSize]:
    """Field metadata: `@strawberry.field(metadata=list_size(100, "first", 50))`."""
    return {LIST_SIZE_KEY: ListSize(maximum, argument, default)}


def declared_list_size(field: GraphQLField) -> ListSize | None:
    definition = (field.extensions or {}).get("strawberry-definition")
    return (getattr(definition, "metadata", None) or {}).get(LIST_SIZE_KEY)


def is_list_field(field: GraphQLField) -> bool:
    field_type = field.type
    if isinstance(field_type, GraphQLNonNull):
        field_type = field_type.of_type
    return isinstance(field_type, GraphQLList)


def too_costly(cost: int, limit: int) -> GraphQLError:
    return GraphQLError(
        f"The query could resolve up to {cost} objects; at most {limit} are allowed. Ask for smaller pages (first/limit) or fewer nested lists.",
        extensions={"code": ErrorCode.QUERY_TOO_COMPLEX.value, "cost": cost, "limit": limit},
    )


def response_too_large(size: int, limit: int = MAX_RESPONSE_BYTES) -> dict[str, object]:
    """The error that replaces an over-large answer (already encoded: a plain dict)."""
    return {
        "message": f"The answer is {size} bytes; at most {limit} are sent. Ask for smaller pages or fewer fields.",
        "extensions": {"code": ErrorCode.QUERY_TOO_COMPLEX.value, "limit": "responseBytes", "max": limit},
    }


def empty_selection(node: Any) -> GraphQLError:
    # graphql-core 3.3 parses `{ me { } }`; the specification has no empty selection sets.
    return GraphQLError(
        "A selection set must select at least one field.",
        nodes=[node],
        extensions={"code": ErrorCode.GRAPHQL_VALIDATION_FAILED.value},
    )


class _Estimate:
    def __init__(self, context: ValidationContext, limit: int) -> None:
        self.context = context
        self.limit = limit
        self.empty: list[Any] = []

    def selection_set(self, parent: Any, selection_set: SelectionSetNode | None, spreads: frozenset[str]) -> int:
        if selection_set is None:
            return 0
        if not selection_set.selections:
            self.empty.append(selection_set)
            return 0
        total = 0
        for selection in selection_set.selections:
            if isinstance(selection, FieldNode):
                total += self.field(parent, selection, spreads)
            elif isinstance(selection, InlineFragmentNode):
                condition = selection.type_condition
                target = self.context.schema.get_type(condition.name.value) if condition else parent
                total += self.selection_set(target or parent, selection.selection_set, spreads)
            elif isinstance(selection, FragmentSpreadNode):
                name = selection.name.value
                fragment = self.context.get_fragment(name)
                if fragment is None or name in spreads:  # unknown or cyclic: other rules report it
                    continue
                target = self.context.schema.get_type(fragment.type_condition.name.value)
                total += self.selection_set(target or parent, fragment.selection_set, spreads | {name})
            if total > self.limit * 1000:  # far over already: stop counting (a huge product of lists)
                return total
        return total

    def field(self, parent: Any, node: FieldNode, spreads: frozenset[str]) -> int:
        fields = getattr(parent, "fields", None)
        definition = fields.get(node.name.value) if fields else None
        if definition is None:  # __typename, introspection, or unknown (reported elsewhere)
            if node.selection_set is not None and not node.selection_set.selections:
                self.empty.append(node.selection_set)
            return 0
        named = get_named_type(definition.type)
        if is_leaf_type(named):
            return self.size(definition, node)
        items = 1 + self.selection_set(named, node.selection_set, spreads)
        return self.size(definition, node) * items

    def size(self, definition: GraphQLField, node: FieldNode) -> int:
        if not is_list_field(definition):
            return 1
        bound = declared_list_size(definition)
        if bound is None:
            return self.limit + 1  # an unbounded list is refused wherever it is asked for
        if bound.argument is None:
            return bound.maximum
        for argument in node.arguments or ():
            if argument.name.value == bound.argument:
                if isinstance(argument.value, IntValueNode):
                    return max(0, min(int(argument.value.value), bound.maximum))
                return bound.maximum  # a variable: whatever it may be
        return bound.default if bound.default is not None else bound.maximum


def document_cost(context: ValidationContext, operation: OperationDefinitionNode, limit: int = MAX_COST) -> tuple[int, list]:
    """The operation's estimated cost, and any empty selection sets found on the way."""
    schema = context.schema
    root = {"query": schema.query_type, "mutation": schema.mutation_type, "subscription": schema.subscription_type}
    estimate = _Estimate(context, limit)
    cost = estimate.selection_set(root.get(operation.operation.value), operation.selection_set, frozenset())
    return cost, estimate.empty


@functools.cache
def _cost_rule(max_cost: int) -> type[ValidationRule]:
    class QueryCost(ValidationRule):
        def enter_operation_definition(self, node: OperationDefinitionNode, *_args: Any) -> None:
            cost, empty = document_cost(self.context, node, max_cost)
            if not empty and cost > max_cost:
                self.report_error(too_costly(cost, max_cost))

    return QueryCost


class CostLimit(AddValidationRules):
    def __init__(self, max_cost: int = MAX_COST) -> None:
        super().__init__([_cost_rule(max_cost)])


def _empty_selection_sets(document: Any) -> Iterator[Any]:
    found: list[Any] = []

    class Empty(Visitor):
        def enter_selection_set(self, node: SelectionSetNode, *_args: Any) -> None:
            if not node.selections:
                found.append(node)

    visit(document, Empty())
    return iter(found)


class EmptySelectionSets(SchemaExtension):
    """First of the limits: strawberry's depth rule crashes on `{ me { } }` (max() of nothing),
    which graphql-core 3.3 parses; the specification has no empty selection sets."""

    def on_validate(self) -> Iterator[None]:
        context = self.execution_context
        document = context.graphql_document
        if document is not None and context.pre_execution_errors is None:
            empty = next(_empty_selection_sets(document), None)
            if empty is not None:
                # Set before validation runs, so strawberry answers with this error alone.
                context.pre_execution_errors = [empty_selection(empty)]
        yield


def unbounded_list_fields(schema: Any) -> Iterator[str]:
    """`Type.field` for every list field of our object types that declares no bound (for the schema test)."""
    for name, graphql_type in schema.type_map.items():
        if name.startswith("__") or not isinstance(graphql_type, GraphQLObjectType):
            continue
        for field_name, field in graphql_type.fields.items():
            if is_list_field(field) and not is_leaf_type(get_named_type(field.type)) and declared_list_size(field) is None:
                yield f"{name}.{field_name}"
