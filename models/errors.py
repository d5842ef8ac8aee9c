"""The one error type the domain raises; its code is what clients see in extensions.code."""
from __future__ import annotations

import enum
from typing import Any


class ErrorCode(str, enum.Enum):
    UNAUTHENTICATED = "UNAUTHENTICATED"
    FORBIDDEN = "FORBIDDEN"
    NOT_FOUND = "NOT_FOUND"
    BAD_USER_INPUT = "BAD_USER_INPUT"
    CONFLICT = "CONFLICT"
    OUT_OF_STOCK = "OUT_OF_STOCK"
    RATE_LIMITED = "RATE_LIMITED"
    # Additions (issue 9): a query over a limit (depth, aliases, tokens, size), and a
    # database or Redis that cannot be reached right now (retry later; nothing was done).
    QUERY_TOO_COMPLEX = "QUERY_TOO_COMPLEX"
    SERVICE_UNAVAILABLE = "SERVICE_UNAVAILABLE"
    # WebSocket limits: one subscription more than a connection may run (extensions.limit), and a
    # handshake from an address that already holds as many sockets as it may (HTTP 429).
    TOO_MANY_SUBSCRIPTIONS = "TOO_MANY_SUBSCRIPTIONS"
    TOO_MANY_CONNECTIONS = "TOO_MANY_CONNECTIONS"
    # Persisted documents (issue 16): a hash the server does not know (the client sends the
    # document with it again), and a document outside TRUSTED_DOCUMENTS.
    PERSISTED_QUERY_NOT_FOUND = "PERSISTED_QUERY_NOT_FOUND"
    PERSISTED_QUERY_NOT_ALLOWED = "PERSISTED_QUERY_NOT_ALLOWED"
    # Live commerce (issue 18): over a deal's per-buyer limit (extensions.limit), a bid under the
    # next increment (extensions.minimumBid), a bid after the clock (extensions.endsAt).
    LIMIT_EXCEEDED = "LIMIT_EXCEEDED"
    BID_TOO_LOW = "BID_TOO_LOW"
    AUCTION_ENDED = "AUCTION_ENDED"
    # Durable events (issue 15): a cursor older than the event log keeps (extensions.oldestCursor),
    # and a subscriber too slow to keep up, disconnected (extensions.cursor: where to resume).
    CURSOR_EXPIRED = "CURSOR_EXPIRED"
    LAGGED = "LAGGED"
    # Not raised by the domain: given to errors GraphQL itself finds, and to masked crashes.
    GRAPHQL_VALIDATION_FAILED = "GRAPHQL_VALIDATION_FAILED"
    INTERNAL_SERVER_ERROR = "INTERNAL_SERVER_ERROR"


class DomainError(Exception):
    """An expected failure; graphql-core copies `extensions` into the response error."""

    def __init__(self, code: ErrorCode, message: str, **extra: Any) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.extensions: dict[str, Any] = {"code": code.value, **extra}


def bad_input(argument: str, message: str) -> DomainError:
    return DomainError(ErrorCode.BAD_USER_INPUT, f"{argument}: {message}", argument=argument)


def not_found(what: str, ident: Any) -> DomainError:
    return DomainError(ErrorCode.NOT_FOUND, f"No {what} with id {ident}.")


def forbidden(message: str) -> DomainError:
    return DomainError(ErrorCode.FORBIDDEN, message)


def conflict(message: str) -> DomainError:
    return DomainError(ErrorCode.CONFLICT, message)
