"""Parsed and validated documents, kept per schema: a live page sends the same few documents
again and again, and parsing plus validating them cost a quarter of a query's time.

Only documents that parsed and passed every validation rule are kept (an invalid one is
checked again each time, exactly as without the cache), at most `max_documents` of them,
the least recently used going first. The validation rules are part of the key, so a
rule that differs between requests (introspection off) is never skipped.
"""
from __future__ import annotations

import functools
from collections import OrderedDict
from collections.abc import Iterator
from typing import Any

from graphql import DocumentNode, FieldNode, GraphQLError, OperationDefinitionNode, parse, visit
from graphql.language import Visitor
from strawberry.extensions import SchemaExtension

from livecart.schema import facts
from livecart.schema.limits import MAX_DOCUMENT_BYTES, MAX_TOKENS

MAX_DOCUMENTS = 512



@functools.lru_cache(maxsize=256)
def parsed(query: str) -> DocumentNode:
    """For the shared paths, under the same bounds as the served parse (schema/limits.py)."""
    if len(query) > MAX_DOCUMENT_BYTES:
        raise GraphQLError("The document is too large.")
    return parse(query, max_tokens=MAX_TOKENS)


@functools.lru_cache(maxsize=256)
def field_names(query: str) -> frozenset[str]:
    names: set[str] = set()

    class Names(Visitor):
        def enter_field(self, node: FieldNode, *_: Any) -> None:
            names.add(node.name.value)

    visit(parsed(query), Names())
    return frozenset(names)


def selects_caller_fields(query: str) -> bool:
    """Whether the document selects a field whose value depends on who asks (declared on the field:
    schema/facts.py): its result is never shared between callers. True before a schema is built."""
    fields = facts.caller_fields()
    return fields is None or not field_names(query).isdisjoint(fields)


# Fields read off the server's clock as they are answered (issue 18: deal and auction countdowns):
# a shared query answer would serve them as old as it is. Subscriptions may share them, since one
# execution per event is the same moment for everyone.
CLOCK_FIELDS = frozenset({"serverTime", "secondsLeft", "secondsToOpen"})


def selects_clock_fields(query: str) -> bool:
    return not field_names(query).isdisjoint(CLOCK_FIELDS)


def operation_of(query: str, operation_name: str | None) -> OperationDefinitionNode | None:
    """The operation GraphQL runs for this request; None when the document does not parse or name it."""
    try:
        document = parsed(query)
    except GraphQLError:
        return None
    operations = [d for d in document.definitions if isinstance(d, OperationDefinitionNode)]
    for operation in operations:
        if operation_name is None and len(operations) == 1 or (operation.name and operation.name.value == operation_name):
            return operation
    return None


def operation_type(query: str, operation_name: str | None) -> str | None:
    """"query", "mutation" or "subscription" (see operation_of)."""
    operation = operation_of(query, operation_name)
    return operation.operation.value if operation is not None else None


class DocumentStore:
    def __init__(self, max_documents: int = MAX_DOCUMENTS) -> None:
        self.max_documents = max_documents
        self._parsed: OrderedDict[tuple[str, Any], DocumentNode] = OrderedDict()
        self._valid: set[tuple[int, tuple]] = set()  # (id of a kept document, its rules)

    def parsed(self, key: tuple[str, Any]) -> DocumentNode | None:
        document = self._parsed.get(key)
        if document is not None:
            self._parsed.move_to_end(key)
        return document

    def keep(self, key: tuple[str, Any], document: DocumentNode, rules: tuple) -> None:
        self._parsed[key] = document
        self._parsed.move_to_end(key)
        self._valid.add((id(document), rules))
        while len(self._parsed) > self.max_documents:
            _, dropped = self._parsed.popitem(last=False)
            self._valid = {entry for entry in self._valid if entry[0] != id(dropped)}

    def is_valid(self, document: DocumentNode, rules: tuple) -> bool:
        return (id(document), rules) in self._valid


class DocumentCache(SchemaExtension):
    """Last among the extensions: the others' checks before parsing and validating still run."""

    def __init__(self, store: DocumentStore) -> None:
        super().__init__()
        self.store = store
        self._key: tuple[str, Any] | None = None

    def on_parse(self) -> Iterator[None]:
        context = self.execution_context
        if context.query and context.graphql_document is None:
            self._key = (context.query, tuple(sorted(context.parse_options.items())))
            context.graphql_document = self.store.parsed(self._key)
        yield

    def on_validate(self) -> Iterator[None]:
        context = self.execution_context
        rules = tuple(context.validation_rules)
        document = context.graphql_document
        checked_here = context.pre_execution_errors is None and document is not None and self._key is not None
        if checked_here and self.store.is_valid(document, rules):
            context.pre_execution_errors = []
            checked_here = False
        yield
        if checked_here and context.pre_execution_errors == []:
            self.store.keep(self._key, document, rules)
