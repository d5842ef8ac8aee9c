"""Text every argument must be: encodable as UTF-8.

JSON's "\\ud800" decodes to a lone surrogate, which no database, password hasher or JSON
encoder takes. Left to reach them, such a string was a crash; refused up front, it is the
caller's input: BAD_USER_INPUT naming the argument, on both backends alike, before anything
runs. (A NUL is valid Unicode, and what it means is the domain's call: a comment drops it
with the other control characters, a name or a title refuses it, models/fields.plain_text.)
"""
from __future__ import annotations

import functools
from collections.abc import Iterator
from typing import Any

from graphql import GraphQLError, StringValueNode, ValidationRule
from strawberry.extensions import AddValidationRules

from livecart.models.errors import ErrorCode

PROBLEM = "text must be valid Unicode (no lone surrogates)"


def is_storable_text(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:  # a lone surrogate
        return False
    return True


def _bad_text(argument: str) -> GraphQLError:
    return GraphQLError(f"{argument}: {PROBLEM}.", extensions={"code": ErrorCode.BAD_USER_INPUT.value, "argument": argument})


def _literal_strings(value) -> Iterator[str]:
    if isinstance(value, StringValueNode):
        yield value.value
    for item in getattr(value, "values", None) or ():  # a list
        yield from _literal_strings(item)
    for field in getattr(value, "fields", None) or ():  # an input object
        yield from _literal_strings(field.value)


def _variable_strings(value: Any) -> Iterator[str]:
    if isinstance(value, str):
        yield value
    elif isinstance(value, list):
        for item in value:
            yield from _variable_strings(item)
    elif isinstance(value, dict):
        for key, item in value.items():
            yield from _variable_strings(key)
            yield from _variable_strings(item)


@functools.cache
def _literal_text_rule() -> type[ValidationRule]:
    class LiteralText(ValidationRule):
        def enter_argument(self, node, *_args) -> None:
            if not all(is_storable_text(text) for text in _literal_strings(node.value)):
                self.report_error(_bad_text(node.name.value))

    return LiteralText


class StorableText(AddValidationRules):
    """Checks strings written in the document and strings passed as variables."""

    def __init__(self) -> None:
        super().__init__([_literal_text_rule()])

    def on_validate(self) -> Iterator[None]:
        if self.execution_context.pre_execution_errors:  # refused already (a list over its limit)
            yield
            return
        for name, value in (self.execution_context.variables or {}).items():
            if not all(is_storable_text(text) for text in _variable_strings(value)):
                # Set before validation runs, so strawberry answers with this error alone.
                self.execution_context.pre_execution_errors = [_bad_text(f"${name}")]
                break
        yield
