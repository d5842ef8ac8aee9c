"""Query limits: what one document may cost before we run it.

Every limit answers with extensions.code QUERY_TOO_COMPLEX (and `limit` naming which one),
except an oversized list argument, which is the caller's input: BAD_USER_INPUT.
Introspection is refused when the settings turn it off (the production default).
What lists multiply to is bounded by the cost limit (schema/cost.py, issue 13).
"""
from __future__ import annotations

import functools
from collections.abc import Iterator
from typing import Any

from graphql import GraphQLError, ListValueNode, ValidationContext, ValidationRule
from strawberry.extensions import (
    AddValidationRules,
    DisableIntrospection,
    MaxAliasesLimiter,
    MaxTokensLimiter,
    QueryDepthLimiter,
    SchemaExtension,
)
from strawberry.extensions.query_depth_limiter import IgnoreContext

from livecart.models.errors import ErrorCode
from livecart.schema.cost import CostLimit, EmptySelectionSets

MAX_DEPTH = 10
MAX_ALIASES = 30
MAX_TOKENS = 2000
MAX_DOCUMENT_BYTES = 16 * 1024
MAX_LIST_ITEMS = 100


def too_complex(limit: str, message: str) -> GraphQLError:
    return GraphQLError(message, extensions={"code": ErrorCode.QUERY_TOO_COMPLEX.value, "limit": limit})


class _Tagging:
    """A ValidationContext whose reported errors carry our code: strawberry's rules report bare errors."""

    def __init__(self, context: ValidationContext, limit: str) -> None:
        self._context = context
        self._limit = limit

    def report_error(self, error: GraphQLError) -> None:
        error.extensions = {**(error.extensions or {}), "code": ErrorCode.QUERY_TOO_COMPLEX.value, "limit": self._limit}
        self._context.report_error(error)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._context, name)


def _coded(rules: list[type[ValidationRule]], limit: str) -> list[type[ValidationRule]]:
    def wrap(rule: type[ValidationRule]) -> type[ValidationRule]:
        class Coded(ValidationRule):
            def __init__(self, context: ValidationContext) -> None:
                super().__init__(context)
                # strawberry's depth and alias rules do all their work when built.
                self._inner = rule(_Tagging(context, limit))  # type: ignore[arg-type]

            def __getattr__(self, name: str) -> Any:
                return getattr(self._inner, name)

        return Coded

    return [wrap(rule) for rule in rules]


def _is_introspection(ignore: IgnoreContext) -> bool:
    # GraphiQL's introspection query nests ofType deeper than 10; it is not a user query.
    return ignore.field_name.startswith("__")


@functools.cache
def _depth_rules(max_depth: int) -> list[type[ValidationRule]]:
    return _coded(QueryDepthLimiter(max_depth=max_depth, should_ignore=_is_introspection).validation_rules, "depth")


@functools.cache
def _alias_rules(max_aliases: int) -> list[type[ValidationRule]]:
    return _coded(MaxAliasesLimiter(max_alias_count=max_aliases).validation_rules, "aliases")


class DepthLimit(AddValidationRules):
    def __init__(self, max_depth: int = MAX_DEPTH) -> None:
        super().__init__(_depth_rules(max_depth))


class AliasLimit(AddValidationRules):
    def __init__(self, max_aliases: int = MAX_ALIASES) -> None:
        super().__init__(_alias_rules(max_aliases))


class TokenLimit(MaxTokensLimiter):
    """graphql-core stops parsing at the limit; we give its syntax error our code."""

    def __init__(self, max_tokens: int = MAX_TOKENS) -> None:
        super().__init__(max_token_count=max_tokens)

    def on_parse(self) -> Iterator[None]:
        yield
        for error in self.execution_context.pre_execution_errors or ():
            if "tokens. Parsing aborted" in error.message:
                error.extensions = {"code": ErrorCode.QUERY_TOO_COMPLEX.value, "limit": "tokens"}


@functools.cache
def _document_size_rule(max_bytes: int) -> type[ValidationRule]:
    class DocumentSize(ValidationRule):
        def __init__(self, context: ValidationContext) -> None:
            super().__init__(context)
            loc = context.document.loc
            size = len(loc.source.body.encode()) if loc else 0
            if size > max_bytes:
                context.report_error(
                    too_complex("documentBytes", f"The document is {size} bytes; at most {max_bytes} are allowed.")
                )

    return DocumentSize


class DocumentSizeLimit(AddValidationRules):
    """Parsing is already bounded by the token limit, so checking the size after it is cheap."""

    def __init__(self, max_bytes: int = MAX_DOCUMENT_BYTES) -> None:
        super().__init__([_document_size_rule(max_bytes)])


def _list_too_long(argument: str, size: int, max_items: int) -> GraphQLError:
    return GraphQLError(
        f"{argument}: a list of {size} items; at most {max_items} are allowed.",
        extensions={"code": ErrorCode.BAD_USER_INPUT.value, "argument": argument},
    )


@functools.cache
def _literal_list_rule(max_items: int) -> type[ValidationRule]:
    class LiteralListSize(ValidationRule):
        def enter_argument(self, node, *_args) -> None:
            for size in _literal_list_sizes(node.value):
                if size > max_items:
                    self.report_error(_list_too_long(node.name.value, size, max_items))
                    return

    return LiteralListSize


def _literal_list_sizes(value) -> Iterator[int]:
    if isinstance(value, ListValueNode):
        yield len(value.values)
        for item in value.values:
            yield from _literal_list_sizes(item)
    for field in getattr(value, "fields", None) or ():
        yield from _literal_list_sizes(field.value)


def _variable_list_sizes(value: Any) -> Iterator[int]:
    if isinstance(value, list):
        yield len(value)
        for item in value:
            yield from _variable_list_sizes(item)
    elif isinstance(value, dict):
        for item in value.values():
            yield from _variable_list_sizes(item)


class ListArgumentLimit(AddValidationRules):
    """Bounds lists written in the document and lists passed as variables."""

    def __init__(self, max_items: int = MAX_LIST_ITEMS) -> None:
        super().__init__([_literal_list_rule(max_items)])
        self.max_items = max_items

    def on_validate(self) -> Iterator[None]:
        for name, value in (self.execution_context.variables or {}).items():
            size = max(_variable_list_sizes(value), default=0)
            if size > self.max_items:
                # Set before validation runs, so strawberry answers with this error alone.
                self.execution_context.pre_execution_errors = [_list_too_long(f"${name}", size, self.max_items)]
                break
        yield


def limit_extensions(introspection: bool = True) -> list[type[SchemaExtension]]:
    """Classes, not instances: strawberry builds one of each per operation (they hold its context)."""
    extensions: list[type[SchemaExtension]] = [
        TokenLimit, DocumentSizeLimit, EmptySelectionSets, DepthLimit, AliasLimit, ListArgumentLimit, CostLimit,
    ]
    if not introspection:
        extensions.append(DisableIntrospection)
    return extensions
