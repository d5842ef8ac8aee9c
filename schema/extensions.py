"""Every error a client sees carries a code; crashes are masked and logged.

A masked error carries the request id (also in the X-Request-ID header and the logs), so a
client can quote it and an operator can find the traceback. A database or Redis that cannot
be reached is not a bug of ours: it is answered SERVICE_UNAVAILABLE with retryAfter, so
clients retry instead of reporting a crash.
"""
from __future__ import annotations

import asyncio
import dataclasses
import logging
import re
from typing import Any

import strawberry
from graphql import ArgumentNode, DocumentNode, Node, Visitor, visit
from graphql.error import GraphQLError
from strawberry.extensions import MaskErrors

from livecart.models.errors import DomainError, ErrorCode
from livecart.schema.scalars import MONEY

log = logging.getLogger("livecart.errors")

INTERNAL_MESSAGE = "Internal server error."
UNAVAILABLE_MESSAGE = "The service is briefly unavailable; nothing was done. Try again shortly."
UNAVAILABLE_RETRY_AFTER = 2


def is_unavailable(exc: BaseException) -> bool:
    """True when the cause is a database or Redis we cannot reach (anywhere in the chain)."""
    import asyncpg
    import redis.exceptions
    from tortoise.exceptions import DBConnectionError

    unreachable = (
        ConnectionError,  # OSError family: refused, reset, broken pipe
        asyncio.TimeoutError,
        DBConnectionError,
        asyncpg.exceptions.PostgresConnectionError,
        asyncpg.exceptions.InterfaceError,  # "connection is closed"
        asyncpg.exceptions.CannotConnectNowError,  # "the database system is starting up"
        asyncpg.exceptions.OperatorInterventionError,  # "terminating connection due to administrator command"
        asyncpg.exceptions.TooManyConnectionsError,  # every slot taken: a new pool connection is refused
        redis.exceptions.ConnectionError,
        redis.exceptions.TimeoutError,
    )
    seen: set[int] = set()
    while exc is not None and id(exc) not in seen:
        if isinstance(exc, unreachable) or _connection_dropped_under_asyncpg(exc):
            return True
        seen.add(id(exc))
        exc = exc.__cause__ or exc.__context__
    return False


def _connection_dropped_under_asyncpg(exc: BaseException) -> bool:
    """asyncpg's protocol state error when the server ended a pooled connection between two
    operations: it read the server's "terminating connection" error while idle, and the pool
    handed the connection out before the socket's end arrived (MagicStack/asyncpg#1069; seen in
    tests/test_faults.py on `pg_ctl stop -m fast`). Only this message: other internal errors are bugs."""
    import asyncpg

    return isinstance(exc, asyncpg.exceptions.InternalClientError) and str(exc).startswith("cannot switch to state")


class ErrorCodes(MaskErrors):
    def __init__(self) -> None:
        super().__init__(error_message=INTERNAL_MESSAGE)

    def _process_errors(self, errors: list[GraphQLError]) -> list[GraphQLError]:
        """strawberry's MaskErrors hook (private: its presence is checked by tests/test_engine_internals.py)."""
        return self.coded_errors(errors)

    def coded_errors(self, errors: list[GraphQLError]) -> list[GraphQLError]:
        coded = [self._coded(error) for error in errors]
        self._count(coded)
        return coded

    def _context(self):
        # A RequestContext (resolvers/context.py), or none at all: shared execution and the
        # schema's own tests run without a request.
        return getattr(self.execution_context, "context", None)

    @classmethod
    def format_for(cls, errors: list[GraphQLError], context: Any) -> list[dict]:
        """The errors as a client with this context is shown them, outside an operation's own
        execution (the shared path's failures: subscriptions/shared.py)."""
        extension = cls()
        extension.execution_context = _CallerOnly(context)
        return [error.formatted for error in extension.coded_errors(errors)]

    def _request_id(self) -> str | None:
        return getattr(self._context(), "request_id", None)

    def _count(self, errors: list[GraphQLError]) -> None:
        count_errors = getattr(self._context(), "count_errors", None)
        if count_errors is not None:
            count_errors([(e.extensions or {}).get("code", "") for e in errors])

    def _coded(self, error: GraphQLError) -> GraphQLError:
        original = _root_cause(error)
        if isinstance(original, DomainError):
            error.extensions = {**original.extensions, **(error.extensions or {}), "code": original.code.value}
            if error.path is None and original.extensions.get("argument") == MONEY:  # refused while coercing input
                self._name_the_input(error, original)
            return error
        if original is None:
            # Found by GraphQL itself (syntax, unknown field, bad variable) or by a limit: safe to show.
            if not (error.extensions or {}).get("code"):
                error.extensions = {**(error.extensions or {}), "code": ErrorCode.GRAPHQL_VALIDATION_FAILED.value}
            return error
        request_id = self._request_id()
        if is_unavailable(original):
            log.warning("service unavailable at %s (request %s): %r", error.path, request_id, original)
            masked = self.anonymise_error(error)
            masked.message = UNAVAILABLE_MESSAGE
            masked.extensions = {
                "code": ErrorCode.SERVICE_UNAVAILABLE.value,
                "retryAfter": UNAVAILABLE_RETRY_AFTER,
                "requestId": request_id,
            }
            return masked
        log.error("unexpected error at %s (request %s)", error.path, request_id, exc_info=original)
        masked = self.anonymise_error(error)
        masked.extensions = {"code": ErrorCode.INTERNAL_SERVER_ERROR.value, "requestId": request_id}
        return masked


    def _name_the_input(self, error: GraphQLError, refusal: DomainError) -> None:
        """A scalar knows its type, not which argument it was coerced for: name that (or the
        variable) instead, in the message and in `argument`, as the resolvers' own checks do."""
        named = _variable_named(error.message)
        if named is None:
            document = getattr(self.execution_context, "graphql_document", None)
            named = _argument_holding(document, error.nodes[0]) if document is not None and error.nodes else None
        if named is not None:
            error.message = f"{named}: {refusal.message.split(': ', 1)[-1]}"
            error.extensions["argument"] = named


@dataclasses.dataclass(slots=True)
class _CallerOnly:
    """What ErrorCodes reads of an execution context outside one: the caller's context."""

    context: Any
    graphql_document: Any = None


_VARIABLE_ERROR = re.compile(r"Variable '(\$\w+)'")


def _variable_named(message: str) -> str | None:
    match = _VARIABLE_ERROR.match(message)
    return match[1] if match else None


def _argument_holding(document: DocumentNode, value: Node) -> str | None:
    """The name of the argument whose written value is (or contains) `value`."""
    if value.loc is None:
        return None
    found: list[str] = []

    class FindArgument(Visitor):
        def enter_argument(self, node: ArgumentNode, *_args) -> None:
            if node.value.loc is not None and node.value.loc.start <= value.loc.start < node.value.loc.end:
                found.append(node.name.value)

    visit(document, FindArgument())
    return found[-1] if found else None  # the innermost, for an argument inside another's value


def _root_cause(error: GraphQLError) -> BaseException | None:
    """The exception behind an error; graphql-core wraps input coercion errors twice."""
    cause = error.original_error
    while isinstance(cause, GraphQLError) and not isinstance(cause, DomainError):
        cause = cause.original_error
    return cause


class LivecartSchema(strawberry.Schema):
    """Logs a client's mistake as one line, and only a crash with its traceback.

    strawberry logs every error at ERROR with a traceback, so each refused login or bad
    document read like a crash in the server log. What clients see is unchanged: this is
    only the log, and it sees the errors before they are masked.
    """

    def process_errors(self, errors: list[GraphQLError], execution_context=None) -> None:
        unexpected = []
        for error in errors:
            cause = _root_cause(error)
            if cause is None or isinstance(cause, DomainError):
                code = cause.code.value if isinstance(cause, DomainError) else (error.extensions or {}).get("code")
                log.info("refused %s at %s: %s", code or ErrorCode.GRAPHQL_VALIDATION_FAILED.value, error.path, error.message)
            elif is_unavailable(cause):
                # Already logged once, as a warning naming the cause, by ErrorCodes: an outage of the
                # database or Redis must not flood the log with one traceback per request.
                continue
            else:
                unexpected.append(error)
        super().process_errors(unexpected, execution_context)
