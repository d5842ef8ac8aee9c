"""Every error a client sees carries a code; crashes are masked and logged."""
from __future__ import annotations

import logging

from graphql.error import GraphQLError
from strawberry.extensions import MaskErrors

from models.errors import DomainError, ErrorCode

log = logging.getLogger("livecart.errors")

INTERNAL_MESSAGE = "Internal server error."


class ErrorCodes(MaskErrors):
    def __init__(self) -> None:
        super().__init__(error_message=INTERNAL_MESSAGE)

    def _process_errors(self, errors: list[GraphQLError]) -> list[GraphQLError]:
        return [self._coded(error) for error in errors]

    def _coded(self, error: GraphQLError) -> GraphQLError:
        original = error.original_error
        if isinstance(original, DomainError):
            return error
        if original is None:
            # Found by GraphQL itself (syntax, unknown field, bad variable): safe to show.
            if not (error.extensions or {}).get("code"):
                error.extensions = {**(error.extensions or {}), "code": ErrorCode.GRAPHQL_VALIDATION_FAILED.value}
            return error
        log.error("unexpected error at %s", error.path, exc_info=original)
        masked = self.anonymise_error(error)
        masked.extensions = {"code": ErrorCode.INTERNAL_SERVER_ERROR.value}
        return masked
